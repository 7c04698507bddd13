//! The `bitbucket` dialect: the POST service of seed 002 (form field `payload`), Bitbucket
//! Cloud's `repo:push` webhook and Bitbucket Server's `repo:refs_changed` webhook.
//!
//! Options: `secret` (checked against `X-Hub-Signature`, see [`super::signature`]) and
//! `codebase`. Deleted refs make no change. Cloud and Server payloads carry no file lists;
//! their changes name the pushed head commit of each ref, with a plain branch or tag name
//! (Buildbot's separate `bitbucketcloud`/`bitbucketserver` hooks give `refs/heads/NAME`).

use serde_json::Value;
use store::NewChange;

use super::fields::{json_body, person, Field};
use super::{HookError, HookRequest};

/// What kind of delivery this is, from `X-Event-Key` and the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The legacy POST service: a form with `payload`.
    PostService,
    /// Bitbucket Cloud `repo:push`.
    CloudPush,
    /// Bitbucket Server `repo:refs_changed` (and the older `repo:push` of plugins).
    ServerRefsChanged,
    /// Anything else (`diagnostics:ping`, pull requests…): accepted, no change.
    Other,
}

/// Turns a Bitbucket delivery into changes.
pub fn parse(request: &HookRequest, options: &Value) -> Result<Vec<NewChange>, HookError> {
    let codebase = match options.get("codebase") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(HookError::Options(
                "bitbucket: 'codebase' must be a string".into(),
            ))
        }
    };
    let event_key = request.header("x-event-key");
    let payload = match request.is_form() {
        true => {
            let Some(payload) = request.arg("payload") else {
                return Err(HookError::BadPayload("form has no 'payload' field".into()));
            };
            serde_json::from_str(payload).map_err(|e| {
                HookError::BadPayload(format!("form field 'payload' is not valid JSON: {e}"))
            })?
        }
        false => json_body(&request.body)?,
    };
    let root = Field::root(&payload)?;
    let event = match (request.is_form(), event_key) {
        (true, _) => Event::PostService,
        (false, Some("repo:refs_changed")) => Event::ServerRefsChanged,
        // Cloud sends `push.changes`; Server plugins sent `changes` under the same key.
        (false, Some("repo:push")) if root.get("push").is_null() => Event::ServerRefsChanged,
        (false, Some("repo:push")) => Event::CloudPush,
        (false, Some(_)) => Event::Other,
        (false, None) => {
            return Err(HookError::BadPayload("missing X-Event-Key header".into()));
        }
    };
    let mut changes = match event {
        Event::PostService => post_service(request, &root, event_key)?,
        Event::CloudPush => cloud_push(request, &root)?,
        Event::ServerRefsChanged => server_refs_changed(request, &root)?,
        Event::Other => Vec::new(),
    };
    for change in &mut changes {
        change.codebase = codebase.to_string();
    }
    Ok(changes)
}

fn event_property(event: &str) -> model::Properties {
    let mut properties = model::Properties::new();
    properties.set("event", Value::from(event), "Change");
    properties
}

fn post_service(
    request: &HookRequest,
    root: &Field<'_>,
    event_key: Option<&str>,
) -> Result<Vec<NewChange>, HookError> {
    let repo_url = format!(
        "{}{}",
        root.get("canon_url").str()?,
        root.get("repository").get("absolute_url").str()?
    );
    let mut changes = Vec::new();
    for commit in root.get("commits").items()? {
        let files = commit
            .get("files")
            .opt_items()?
            .iter()
            .map(|file| file.get("file").str().map(str::to_string))
            .collect::<Result<Vec<_>, _>>()?;
        let revision = commit.get("raw_node").str()?;
        let mut properties = model::Properties::new();
        if let Some(event) = event_key {
            properties = event_property(event);
        }
        changes.push(NewChange {
            author: commit.get("raw_author").str()?.to_string(),
            committer: None,
            comments: commit.get("message").opt_str()?.unwrap_or("").to_string(),
            branch: commit.get("branch").opt_str()?.map(str::to_string),
            revision: Some(revision.to_string()),
            revlink: Some(format!("{repo_url}commits/{revision}")),
            when_timestamp: commit.get("utctimestamp").timestamp()?,
            category: None,
            repository: repo_url.clone(),
            codebase: String::new(),
            project: String::new(),
            files,
            properties,
            created_at: request.received_at,
        });
    }
    Ok(changes)
}

fn cloud_push(request: &HookRequest, root: &Field<'_>) -> Result<Vec<NewChange>, HookError> {
    let repository = root.get("repository");
    let repo_url = repository.get("links").get("html").get("href").str()?;
    let project = repository.get("full_name").str()?;
    let mut changes = Vec::new();
    for change in root.get("push").get("changes").items()? {
        let new = change.get("new");
        if new.is_null() {
            continue;
        }
        let category = match new.get("type").str()? {
            "branch" => None,
            "tag" | "annotated_tag" => Some("tag".to_string()),
            _ => continue,
        };
        let target = new.get("target");
        changes.push(NewChange {
            author: target.get("author").get("raw").str()?.to_string(),
            committer: None,
            comments: target.get("message").opt_str()?.unwrap_or("").to_string(),
            branch: Some(new.get("name").str()?.to_string()),
            revision: Some(target.get("hash").str()?.to_string()),
            revlink: target
                .get("links")
                .get("html")
                .get("href")
                .opt_str()?
                .map(str::to_string),
            when_timestamp: target.get("date").timestamp()?,
            category,
            repository: repo_url.to_string(),
            codebase: String::new(),
            project: project.to_string(),
            files: Vec::new(),
            properties: event_property("repo:push"),
            created_at: request.received_at,
        });
    }
    Ok(changes)
}

fn server_refs_changed(
    request: &HookRequest,
    root: &Field<'_>,
) -> Result<Vec<NewChange>, HookError> {
    let repository = root.get("repository");
    let actor = root.get("actor");
    let author = person(
        actor.get("displayName").str()?,
        actor.get("emailAddress").opt_str()?,
    );
    // The clone URL when the server lists links; else PROJECT/slug, which names it uniquely.
    let mut repo_url = None;
    for link in repository.get("links").get("clone").opt_items()? {
        if link.get("name").opt_str()? == Some("http") {
            repo_url = Some(link.get("href").str()?.to_string());
        }
    }
    let repo_url = match repo_url {
        Some(url) => url,
        None => format!(
            "{}/{}",
            repository.get("project").get("key").str()?,
            repository.get("slug").str()?
        ),
    };
    let project = repository.get("project").get("name").str()?;
    let when = match root.get("date").is_null() {
        true => request.received_at,
        false => root.get("date").timestamp()?,
    };
    let mut changes = Vec::new();
    for change in root.get("changes").items()? {
        if change.get("type").opt_str()? == Some("DELETE") {
            continue;
        }
        let reference = change.get("ref");
        let category = match reference.get("type").str()? {
            "BRANCH" => None,
            "TAG" => Some("tag".to_string()),
            _ => continue,
        };
        changes.push(NewChange {
            author: author.clone(),
            committer: None,
            comments: String::new(),
            branch: Some(reference.get("displayId").str()?.to_string()),
            revision: Some(change.get("toHash").str()?.to_string()),
            revlink: None,
            when_timestamp: when,
            category,
            repository: repo_url.clone(),
            codebase: String::new(),
            project: project.to_string(),
            files: Vec::new(),
            properties: event_property("repo:refs_changed"),
            created_at: request.received_at,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::hooks::signature::hmac_sha256_hex;
    use crate::hooks::testing::{describe, request};
    use crate::hooks::{parse as verify_and_parse, Dialect};

    const POST_SERVICE: &str = include_str!("../../tests/fixtures/bitbucket/post-service.json");
    const CLOUD_PUSH: &str = include_str!("../../tests/fixtures/bitbucket/cloud-repo_push.json");
    const SERVER_REFS: &str =
        include_str!("../../tests/fixtures/bitbucket/server-refs_changed.json");

    /// The one caller of `parse`: a JSON delivery with `X-Event-Key: event`.
    fn check(event: &str, body: &str, options: Value) -> String {
        let req = request(
            &[("content-type", "application/json"), ("x-event-key", event)],
            "",
            body.as_bytes(),
        );
        match verify_and_parse(Dialect::Bitbucket, &req, &options) {
            Ok(changes) => describe(&changes),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn post_service_form() {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", POST_SERVICE)
            .finish();
        let req = request(
            &[("content-type", "application/x-www-form-urlencoded")],
            "project=px",
            body.as_bytes(),
        );
        let changes = verify_and_parse(Dialect::Bitbucket, &req, &json!({})).unwrap();
        insta::assert_snapshot!(describe(&changes), @r"
        author: Marcus Bertrand <marcus@somedomain.com>
        revision: 620ade18607ac42d872b568bb92acaa9a28620e9
        branch: master
        files: somefile.py
        comments: Added some more things to somefile.py\n
        repository: https://bitbucket.org/marcus/project-x/
        revlink: https://bitbucket.org/marcus/project-x/commits/620ade18607ac42d872b568bb92acaa9a28620e9
        when: 1338350336
        --
        ");
    }

    #[test]
    fn cloud_push() {
        insta::assert_snapshot!(check("repo:push", CLOUD_PUSH, json!({"codebase": "cb"})), @r"
        author: Emma <emmap1@bitbucket.com>
        revision: 709d658dc5b6d6afcd46049c2f332ee3f515a67d
        branch: master
        comments: new commit message
        repository: https://api.bitbucket.org/bitbucket/bitbucket
        project: team_name/repo_name
        codebase: cb
        revlink: https://bitbucket.org/user_name/repo_name/commits/c4b2b7914156a878aa7c9da452a09fb50c2091f2
        when: 1433820889
        properties: event=repo:push
        --
        ");
        let deleted = json!({
            "repository": {"links": {"html": {"href": "https://bitbucket.org/o/r"}}, "full_name": "o/r"},
            "push": {"changes": [{"new": null, "old": {"type": "branch", "name": "gone"}}]}
        });
        assert_eq!(check("repo:push", &deleted.to_string(), json!({})), "");
    }

    #[test]
    fn server_refs_changed() {
        insta::assert_snapshot!(check("repo:refs_changed", SERVER_REFS, json!({})), @r"
        author: Administrator <admin@example.com>
        revision: 178864a7d521b6f5e720b386b2c2b0ef8563e0dc
        branch: master
        repository: PROJ/repository
        project: project
        when: 1505778332
        properties: event=repo:refs_changed
        --
        ");
        let deleted = SERVER_REFS.replace("\"type\":\"UPDATE\"", "\"type\":\"DELETE\"");
        assert_eq!(check("repo:refs_changed", &deleted, json!({})), "");
        assert_eq!(check("diagnostics:ping", "{\"test\": true}", json!({})), "");
    }

    #[test]
    fn signatures() {
        let secret = json!({"secret": "s3"});
        let sign = |body: &str| format!("sha256={}", hmac_sha256_hex(b"s3", body.as_bytes()));
        let with = |signature: Option<&str>| {
            let mut headers = vec![
                ("content-type", "application/json"),
                ("x-event-key", "repo:refs_changed"),
            ];
            if let Some(signature) = signature {
                headers.push(("x-hub-signature", signature));
            }
            let req = request(&headers, "", SERVER_REFS.as_bytes());
            match verify_and_parse(Dialect::Bitbucket, &req, &secret) {
                Ok(changes) => format!("{} change(s)", changes.len()),
                Err(err) => format!("error: {err}"),
            }
        };
        assert_eq!(with(None), "error: request has no x-hub-signature header");
        assert_eq!(with(Some(&sign(SERVER_REFS))), "1 change(s)");
        assert_eq!(
            with(Some(&sign(CLOUD_PUSH))),
            "error: signature does not match the body"
        );
    }
}
