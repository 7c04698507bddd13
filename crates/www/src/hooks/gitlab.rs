//! The `gitlab` dialect: push, tag push and merge request events.
//!
//! Options: `secret` (compared with `X-Gitlab-Token` in constant time) and `codebase`. The
//! changes are Buildbot's, with two differences: a tag push, which lists no commits, makes
//! one change for the tagged commit (Buildbot makes none), and a push whose `after` is all
//! zeros (a deleted branch) makes none.

use serde_json::Value;
use store::NewChange;

use super::fields::{git_ref, is_zero_sha, json_body, person, Field, GitRef};
use super::{HookError, HookRequest};

/// The events this dialect tells apart: `object_kind`, else `X-Gitlab-Event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `push` / `Push Hook`.
    Push,
    /// `tag_push` / `Tag Push Hook`.
    TagPush,
    /// `merge_request` / `Merge Request Hook`.
    MergeRequest,
    /// Anything else: accepted, no change.
    Other,
}

impl Event {
    fn from_name(name: &str) -> Event {
        match name {
            "push" | "Push Hook" => Event::Push,
            "tag_push" | "Tag Push Hook" => Event::TagPush,
            "merge_request" | "Merge Request Hook" => Event::MergeRequest,
            _ => Event::Other,
        }
    }

    /// The name Buildbot gives the event in `category` and the `event` property.
    fn category(self) -> &'static str {
        match self {
            Event::Push => "push",
            Event::TagPush => "tag_push",
            Event::MergeRequest => "merge_request",
            Event::Other => "other",
        }
    }
}

/// Turns a GitLab delivery into changes.
pub fn parse(request: &HookRequest, options: &Value) -> Result<Vec<NewChange>, HookError> {
    let codebase = match options.get("codebase") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(HookError::Options(
                "gitlab: 'codebase' must be a string".into(),
            ))
        }
    };
    let payload = json_body(&request.body)?;
    let root = Field::root(&payload)?;
    let event = match (
        root.get("object_kind").opt_str()?,
        request.header("x-gitlab-event"),
    ) {
        (Some(kind), _) | (None, Some(kind)) => Event::from_name(kind),
        (None, None) => {
            return Err(HookError::BadPayload(
                "no 'object_kind' field and no X-Gitlab-Event header".into(),
            ))
        }
    };
    let changes = match event {
        Event::Push | Event::TagPush => push(request, &root, event)?,
        Event::MergeRequest => merge_request(request, &root)?,
        Event::Other => Vec::new(),
    };
    Ok(changes
        .into_iter()
        .map(|change| NewChange {
            codebase: codebase.to_string(),
            ..change
        })
        .collect())
}

fn push(
    request: &HookRequest,
    root: &Field<'_>,
    event: Event,
) -> Result<Vec<NewChange>, HookError> {
    let Some(git_ref) = git_ref(root.get("ref").str()?) else {
        return Ok(Vec::new());
    };
    if root.get("after").opt_str()?.is_some_and(is_zero_sha) {
        return Ok(Vec::new());
    }
    let repository = root.get("repository");
    let repo_url = repository.get("url").str()?;
    let project = repository.get("name").str()?;
    let change =
        |author: String, comments: &str, revision: &str, revlink: Option<&str>, when, files| {
            let mut properties = model::Properties::new();
            properties.set("event", Value::from(event.category()), "Change");
            NewChange {
                author,
                committer: None,
                comments: comments.to_string(),
                branch: Some(git_ref.name().to_string()),
                revision: Some(revision.to_string()),
                revlink: revlink.map(str::to_string),
                when_timestamp: when,
                category: Some(event.category().to_string()),
                repository: repo_url.to_string(),
                codebase: String::new(),
                project: project.to_string(),
                files,
                properties,
                created_at: request.received_at,
            }
        };
    let commits = root.get("commits").opt_items()?;
    if commits.is_empty() && matches!(git_ref, GitRef::Tag(_)) {
        let revision = match root.get("checkout_sha").opt_str()? {
            Some(sha) => sha,
            None => root.get("after").str()?,
        };
        let author = person(
            root.get("user_name").str()?,
            root.get("user_email").opt_str()?,
        );
        let message = root.get("message").opt_str()?.unwrap_or("");
        return Ok(vec![change(
            author,
            message,
            revision,
            None,
            request.received_at,
            Vec::new(),
        )]);
    }
    let mut changes = Vec::new();
    for commit in &commits {
        if !commit.get("distinct").bool_or(true)? {
            continue;
        }
        let author = commit.get("author");
        let mut files = commit.get("added").strings()?;
        files.extend(commit.get("modified").strings()?);
        files.extend(commit.get("removed").strings()?);
        changes.push(change(
            person(author.get("name").str()?, author.get("email").opt_str()?),
            commit.get("message").opt_str()?.unwrap_or(""),
            commit.get("id").str()?,
            commit.get("url").opt_str()?,
            commit.get("timestamp").timestamp()?,
            files,
        ));
    }
    Ok(changes)
}

fn merge_request(request: &HookRequest, root: &Field<'_>) -> Result<Vec<NewChange>, HookError> {
    let attributes = root.get("object_attributes");
    attributes.object()?;
    // Buildbot builds a merge request when it opens, reopens, or gains commits (`oldrev`).
    if matches!(
        attributes.get("state").str()?,
        "closed" | "merged" | "approved"
    ) {
        return Ok(Vec::new());
    }
    let wanted = match attributes.get("action").opt_str()? {
        Some("open" | "reopen") => true,
        Some("update") => !attributes.get("oldrev").is_null(),
        _ => false,
    };
    if !wanted {
        return Ok(Vec::new());
    }
    let commit = attributes.get("last_commit");
    let author = commit.get("author");
    let source = attributes.get("source");
    let target = attributes.get("target");
    let mut properties = model::Properties::new();
    let mut set = |name: &str, value: Value| properties.set(name, value, "Change");
    set(
        "source_branch",
        Value::from(attributes.get("source_branch").str()?),
    );
    set(
        "source_project_id",
        Value::from(attributes.get("source_project_id").id()?),
    );
    set(
        "source_repository",
        Value::from(source.get("git_http_url").str()?),
    );
    set(
        "source_git_ssh_url",
        Value::from(source.get("git_ssh_url").str()?),
    );
    set(
        "target_branch",
        Value::from(attributes.get("target_branch").str()?),
    );
    set(
        "target_project_id",
        Value::from(attributes.get("target_project_id").id()?),
    );
    set(
        "target_repository",
        Value::from(target.get("git_http_url").str()?),
    );
    set(
        "target_git_ssh_url",
        Value::from(target.get("git_ssh_url").str()?),
    );
    set("event", Value::from(Event::MergeRequest.category()));
    let iid = attributes.get("iid").id()?;
    let title = attributes.get("title").str()?;
    let description = attributes.get("description").opt_str()?.unwrap_or("");
    Ok(vec![NewChange {
        author: person(author.get("name").str()?, author.get("email").opt_str()?),
        committer: None,
        comments: format!("MR#{iid}: {title}\n\n{description}"),
        branch: Some(attributes.get("target_branch").str()?.to_string()),
        revision: Some(commit.get("id").str()?.to_string()),
        revlink: attributes.get("url").opt_str()?.map(str::to_string),
        when_timestamp: commit.get("timestamp").timestamp()?,
        category: Some(Event::MergeRequest.category().to_string()),
        repository: target.get("git_http_url").str()?.to_string(),
        codebase: String::new(),
        project: target.get("name").str()?.to_string(),
        files: Vec::new(),
        properties,
        created_at: request.received_at,
    }])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::hooks::testing::{describe, request};
    use crate::hooks::{parse as verify_and_parse, Dialect};

    const PUSH: &str = include_str!("../../tests/fixtures/gitlab/push.json");
    const TAG_PUSH: &str = include_str!("../../tests/fixtures/gitlab/tag_push.json");
    const MERGE_REQUEST: &str = include_str!("../../tests/fixtures/gitlab/merge_request.json");

    /// The one caller of `parse`: a delivery with the right token.
    fn check(event: &str, body: &str, options: Value) -> String {
        let req = request(
            &[
                ("content-type", "application/json"),
                ("x-gitlab-event", event),
                ("x-gitlab-token", "t0ken"),
            ],
            "",
            body.as_bytes(),
        );
        let mut options = options;
        options["secret"] = json!("t0ken");
        match verify_and_parse(Dialect::GitLab, &req, &options) {
            Ok(changes) => describe(&changes),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn push_two_commits() {
        insta::assert_snapshot!(check("Push Hook", PUSH, json!({"codebase": "diaspora"})), @r"
        author: Jordi Mallach <jordi@softcatala.org>
        revision: b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327
        branch: master
        files: CHANGELOG app/controller/application.rb
        comments: Update Catalan translation to e38cb41.\n\nSee https://gitlab.com/gitlab-org/gitlab for more information
        repository: git@example.com:mike/diaspora.git
        project: Diaspora
        codebase: diaspora
        category: push
        revlink: http://example.com/mike/diaspora/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327
        when: 1323692851
        properties: event=push
        --
        author: GitLab dev user <gitlabdev@dv6700.(none)>
        revision: da1560886d4f094c3e6c9ef40349f7d38b5d27d7
        branch: master
        files: CHANGELOG app/controller/application.rb
        comments: fixed readme
        repository: git@example.com:mike/diaspora.git
        project: Diaspora
        codebase: diaspora
        category: push
        revlink: http://example.com/mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7
        when: 1325626589
        properties: event=push
        --
        ");
    }

    #[test]
    fn tag_push_builds_the_tagged_commit() {
        insta::assert_snapshot!(check("Tag Push Hook", TAG_PUSH, json!({})), @r"
        author: John Smith
        revision: 82b3d5ae55f7080f1e6022629cdb57bfae7cccc7
        branch: v1.0.0
        repository: ssh://git@example.com/jsmith/example.git
        project: Example
        category: tag_push
        when: [received]
        properties: event=tag_push
        --
        ");
    }

    #[test]
    fn merge_request_opened() {
        insta::assert_snapshot!(check("Merge Request Hook", MERGE_REQUEST, json!({})), @r"
        author: GitLab dev user <gitlabdev@dv6700.(none)>
        revision: da1560886d4f094c3e6c9ef40349f7d38b5d27d7
        branch: master
        comments: MR#1: MS-Viewport\n\n
        repository: http://example.com/awesome_space/awesome_project.git
        project: Awesome Project
        category: merge_request
        revlink: http://example.com/diaspora/merge_requests/1
        when: 1325626589
        properties: event=merge_request source_branch=ms-viewport source_git_ssh_url=git@example.com:awesome_space/awesome_project.git source_project_id=14 source_repository=http://example.com/awesome_space/awesome_project.git target_branch=master target_git_ssh_url=git@example.com:awesome_space/awesome_project.git target_project_id=14 target_repository=http://example.com/awesome_space/awesome_project.git
        --
        ");
    }

    #[test]
    fn ignored_events_and_deleted_branches() {
        let merged = MERGE_REQUEST.replace("\"state\": \"opened\"", "\"state\": \"merged\"");
        assert_eq!(check("Merge Request Hook", &merged, json!({})), "");
        let edited = MERGE_REQUEST.replace("\"action\": \"open\"", "\"action\": \"update\"");
        assert_eq!(check("Merge Request Hook", &edited, json!({})), "");
        let deleted = PUSH.replace(
            "\"after\": \"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\"",
            "\"after\": \"0000000000000000000000000000000000000000\"",
        );
        assert_eq!(check("Push Hook", &deleted, json!({})), "");
        assert_eq!(
            check(
                "Pipeline Hook",
                "{\"object_kind\": \"pipeline\"}",
                json!({})
            ),
            ""
        );
        assert_eq!(
            check(
                "Push Hook",
                "{\"object_kind\": \"push\", \"ref\": []}",
                json!({})
            ),
            "error: field 'ref' must be a string"
        );
    }

    fn token(headers: &[(&str, &str)], body: &str) -> String {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        let req = request(&all, "", body.as_bytes());
        match verify_and_parse(Dialect::GitLab, &req, &json!({"secret": "t0ken"})) {
            Ok(changes) => format!("{} change(s)", changes.len()),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn tokens() {
        // GitLab sends the token itself, not a signature of the body: the "right token for
        // another body" case is accepted, which is why a forge-side secret matters less than
        // change_hook_auth over HTTPS here.
        insta::assert_snapshot!([
            token(&[], PUSH),
            token(&[("x-gitlab-token", "wrong")], PUSH),
            token(&[("x-gitlab-token", "t0ke")], PUSH),
            token(&[("x-gitlab-token", "t0ken")], PUSH),
            token(&[("x-gitlab-token", "t0ken")], TAG_PUSH),
        ].join("\n"), @r"
        error: request has no x-gitlab-token header
        error: x-gitlab-token does not match
        error: x-gitlab-token does not match
        2 change(s)
        1 change(s)
        ");
    }
}
