//! The `gitea` dialect (also `forgejo`): Gitea and Forgejo push webhooks, signed with
//! HMAC-SHA256 (`X-Gitea-Signature`, `X-Forgejo-Signature`; see [`super::signature`]).
//!
//! Options: `secret` and `codebase`. A push makes one change per commit; a pushed tag that
//! lists no commit makes one change for its head commit; a deleted ref makes none.

use serde_json::Value;
use store::NewChange;

use super::fields::{git_ref, is_zero_sha, json_body, Field};
use super::github::{commit_change, PushTarget};
use super::{HookError, HookRequest};

/// The events this dialect tells apart (`X-Gitea-Event`, `X-Forgejo-Event`, `X-Gogs-Event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Commits pushed to a branch or tag.
    Push,
    /// Anything else: accepted, no change.
    Other,
}

/// Turns a Gitea or Forgejo delivery into changes.
pub fn parse(request: &HookRequest, options: &Value) -> Result<Vec<NewChange>, HookError> {
    let codebase = match options.get("codebase") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(HookError::Options(
                "gitea: 'codebase' must be a string".into(),
            ))
        }
    };
    let event = ["x-gitea-event", "x-forgejo-event", "x-gogs-event"]
        .iter()
        .find_map(|name| request.header(name));
    let event = match event {
        Some("push") => Event::Push,
        Some(_) => Event::Other,
        None => return Err(HookError::BadPayload("missing X-Gitea-Event header".into())),
    };
    if event == Event::Other {
        return Ok(Vec::new());
    }
    let payload = json_body(&request.body)?;
    let root = Field::root(&payload)?;
    let Some(git_ref) = git_ref(root.get("ref").str()?) else {
        return Ok(Vec::new());
    };
    if root.get("after").opt_str()?.is_some_and(is_zero_sha) {
        return Ok(Vec::new());
    }
    let repository = root.get("repository");
    let repo_url = repository.get("clone_url").str()?;
    let project = repository.get("full_name").str()?;
    let mut commits = root.get("commits").opt_items()?;
    if commits.is_empty() && !root.get("head_commit").is_null() {
        commits.push(root.get("head_commit"));
    }
    let target = PushTarget {
        git_ref,
        repository: repo_url,
        codebase,
        project,
        received_at: request.received_at,
    };
    commits
        .iter()
        .map(|commit| commit_change(commit, &target, model::Properties::new()))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::hooks::signature::hmac_sha256_hex;
    use crate::hooks::testing::{describe, request};
    use crate::hooks::{parse as verify_and_parse, Dialect};

    const PUSH: &str = include_str!("../../tests/fixtures/gitea/push.json");
    const SECRET: &str = "gitea-secret";

    /// The one caller of `parse`: a signed delivery.
    fn check(body: &str, options: Value) -> String {
        let signature = hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
        let req = request(
            &[
                ("content-type", "application/json"),
                ("x-gitea-event", "push"),
                ("x-gitea-signature", &signature),
            ],
            "",
            body.as_bytes(),
        );
        let mut options = options;
        options["secret"] = json!(SECRET);
        match verify_and_parse(Dialect::Gitea, &req, &options) {
            Ok(changes) => describe(&changes),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn push_one_commit() {
        insta::assert_snapshot!(check(PUSH, json!({"codebase": "webhooks"})), @r"
        author: Gitea <someone@gitea.io>
        committer: Gitea <someone@gitea.io>
        revision: bffeb74224043ba2feb48d137756c8a9331c449a
        branch: develop
        comments: Webhooks Yay!
        repository: http://localhost:3000/gitea/webhooks.git
        project: gitea/webhooks
        codebase: webhooks
        revlink: http://localhost:3000/gitea/webhooks/commit/bffeb74224043ba2feb48d137756c8a9331c449a
        when: 1489427531
        properties: event=push
        --
        ");
    }

    #[test]
    fn deleted_refs_and_other_events() {
        let deleted = PUSH.replace(
            "\"after\": \"bffeb74224043ba2feb48d137756c8a9331c449a\"",
            "\"after\": \"0000000000000000000000000000000000000000\"",
        );
        assert_eq!(check(&deleted, json!({})), "");
        let tag = PUSH.replace("refs/heads/develop", "refs/tags/v1");
        assert!(check(&tag, json!({})).contains("category: tag\n"));
    }

    fn signed(headers: &[(&str, &str)]) -> String {
        let mut all = vec![
            ("content-type", "application/json"),
            ("x-forgejo-event", "push"),
        ];
        all.extend_from_slice(headers);
        let req = request(&all, "", PUSH.as_bytes());
        match verify_and_parse(Dialect::Gitea, &req, &json!({"secret": SECRET})) {
            Ok(changes) => format!("{} change(s)", changes.len()),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn signatures() {
        let right = hmac_sha256_hex(SECRET.as_bytes(), PUSH.as_bytes());
        let wrong = hmac_sha256_hex(b"nope", PUSH.as_bytes());
        let other_body = hmac_sha256_hex(SECRET.as_bytes(), b"{}");
        let hub = format!("sha256={right}");
        insta::assert_snapshot!([
            signed(&[]),
            signed(&[("x-gitea-signature", &wrong)]),
            signed(&[("x-gitea-signature", &right)]),
            signed(&[("x-forgejo-signature", &right)]),
            signed(&[("x-hub-signature-256", &hub)]),
            signed(&[("x-gitea-signature", &other_body)]),
        ].join("\n"), @r"
        error: request has no x-hub-signature-256 header
        error: signature does not match the body
        1 change(s)
        1 change(s)
        1 change(s)
        error: signature does not match the body
        ");
    }
}
