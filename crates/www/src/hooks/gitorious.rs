//! The `gitorious` dialect: Gitorious web hooks, a form with one field, `payload`.
//!
//! No options. Unlike Buildbot, which keeps `refs/heads/master` as the branch, the branch is
//! the plain name, as every other dialect gives it; a deleted branch makes no change.

use serde_json::Value;
use store::NewChange;

use super::fields::{is_zero_sha, json_body, person, Field};
use super::{HookError, HookRequest};

/// Turns a Gitorious push into one change per commit.
pub fn parse(request: &HookRequest, _options: &Value) -> Result<Vec<NewChange>, HookError> {
    let payload = match request.arg("payload") {
        Some(payload) => serde_json::from_str(payload).map_err(|e| {
            HookError::BadPayload(format!("form field 'payload' is not valid JSON: {e}"))
        })?,
        None if request.is_json() => json_body(&request.body)?,
        None => return Err(HookError::BadPayload("form has no 'payload' field".into())),
    };
    let root = Field::root(&payload)?;
    if is_zero_sha(root.get("after").str()?) {
        return Ok(Vec::new());
    }
    let refname = root.get("ref").str()?;
    let branch = refname.strip_prefix("refs/heads/").unwrap_or(refname);
    let repository = root.get("repository").get("url").str()?;
    let project = root.get("project").get("name").str()?;
    let mut changes = Vec::new();
    for commit in root.get("commits").items()? {
        let author = commit.get("author");
        changes.push(NewChange {
            author: person(author.get("name").str()?, author.get("email").opt_str()?),
            committer: None,
            comments: commit.get("message").opt_str()?.unwrap_or("").to_string(),
            branch: Some(branch.to_string()),
            revision: Some(commit.get("id").str()?.to_string()),
            revlink: commit.get("url").opt_str()?.map(str::to_string),
            when_timestamp: commit.get("timestamp").timestamp()?,
            category: None,
            repository: repository.to_string(),
            codebase: String::new(),
            project: project.to_string(),
            files: Vec::new(),
            properties: model::Properties::new(),
            created_at: request.received_at,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::hooks::testing::{describe, request};
    use crate::hooks::{parse, Dialect};

    const PUSH: &str = include_str!("../../tests/fixtures/gitorious/push.json");

    /// The one caller of `parse`: the form Gitorious posts.
    fn check(payload: &str) -> String {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", payload)
            .finish();
        let req = request(
            &[("content-type", "application/x-www-form-urlencoded")],
            "",
            body.as_bytes(),
        );
        match parse(Dialect::Gitorious, &req, &json!({})) {
            Ok(changes) => describe(&changes),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn push_two_commits() {
        insta::assert_snapshot!(check(PUSH), @r"
        author: Marius Mathiesen <marius@shortcut.no>
        revision: 34f5a766e48bd270037350961d79fa59f9b746d7
        branch: master
        comments: Must be
        repository: http://gitorious.here/web-hooks/web-hooks
        project: web-hooks
        revlink: http://gitorious.here/web-hooks/web-hooks/commit/34f5a766e48bd270037350961d79fa59f9b746d7
        when: 1281431168
        --
        author: Marius Mathiesen <marius@shortcut.no>
        revision: 0ceada81a4300abdf703724ea045d15055943c6b
        branch: master
        comments: Are we having fun yet?
        repository: http://gitorious.here/web-hooks/web-hooks
        project: web-hooks
        revlink: http://gitorious.here/web-hooks/web-hooks/commit/0ceada81a4300abdf703724ea045d15055943c6b
        when: 1281431156
        --
        ");
    }

    #[test]
    fn deleted_branch_and_missing_payload() {
        let deleted = PUSH.replace(
            "\"after\": \"34f5a766e48bd270037350961d79fa59f9b746d7\"",
            "\"after\": \"0000000000000000000000000000000000000000\"",
        );
        assert_eq!(check(&deleted), "");
        let req = request(
            &[("content-type", "application/x-www-form-urlencoded")],
            "",
            b"x=1",
        );
        assert_eq!(
            parse(Dialect::Gitorious, &req, &json!({}))
                .unwrap_err()
                .to_string(),
            "form has no 'payload' field"
        );
    }
}
