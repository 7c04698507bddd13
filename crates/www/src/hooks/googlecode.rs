//! The `googlecode` dialect: Google Code's post-commit web hook.
//!
//! Options, as in Buildbot 0.8: `secret_key` (the project's "Post-Commit Authentication
//! Key"; the body's HMAC-MD5 must match `Google-Code-Project-Hosting-Hook-Hmac`, see
//! [`super::signature`]) and `branch`, since Google Code never says which branch changed
//! (default `default`).

use serde_json::Value;
use store::NewChange;

use super::fields::{json_body, Field};
use super::{HookError, HookRequest};

/// Turns a Google Code post-commit request into one change per revision.
pub fn parse(request: &HookRequest, options: &Value) -> Result<Vec<NewChange>, HookError> {
    let default_branch = match options.get("branch") {
        None | Some(Value::Null) => "default",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(HookError::Options(
                "googlecode: 'branch' must be a string".into(),
            ))
        }
    };
    let payload = json_body(&request.body)?;
    let root = Field::root(&payload)?;
    let project = root.get("project_name").str()?;
    let repository = root.get("repository_path").str()?;
    let mut changes = Vec::new();
    for revision in root.get("revisions").items()? {
        // Buildbot keeps a set of paths; keep their order and drop repeats.
        let mut files: Vec<String> = Vec::new();
        for kind in ["added", "modified", "removed"] {
            for file in revision.get(kind).strings()? {
                if !files.contains(&file) {
                    files.push(file);
                }
            }
        }
        changes.push(NewChange {
            author: revision.get("author").str()?.to_string(),
            committer: None,
            comments: revision.get("message").opt_str()?.unwrap_or("").to_string(),
            branch: Some(
                revision
                    .get("branch")
                    .opt_str()?
                    .unwrap_or(default_branch)
                    .to_string(),
            ),
            revision: Some(revision.get("revision").id()?),
            revlink: revision.get("url").opt_str()?.map(str::to_string),
            when_timestamp: revision.get("timestamp").timestamp()?,
            category: None,
            repository: repository.to_string(),
            codebase: String::new(),
            project: project.to_string(),
            files,
            properties: model::Properties::new(),
            created_at: request.received_at,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::hooks::signature::hmac_md5_hex;
    use crate::hooks::testing::{describe, request};
    use crate::hooks::{parse as verify_and_parse, Dialect};

    const PUSH: &str = include_str!("../../tests/fixtures/googlecode/push.json");
    const KEY: &str = "FSP3p-Ghdn4T0oqX";

    /// The one caller of `parse`: a request signed as Google Code signed it.
    fn check(body: &str, options: Value) -> String {
        let hmac = hmac_md5_hex(KEY.as_bytes(), body.as_bytes());
        let req = request(
            &[("google-code-project-hosting-hook-hmac", &hmac)],
            "",
            body.as_bytes(),
        );
        let mut options = options;
        options["secret_key"] = json!(KEY);
        match verify_and_parse(Dialect::GoogleCode, &req, &options) {
            Ok(changes) => describe(&changes),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn one_revision() {
        insta::assert_snapshot!(check(PUSH, json!({})), @r"
        author: mparent61
        revision: 33
        branch: default
        files: /trunk/atlas_main.py /trunk/Makefile /trunk/constants.py /trunk/atlas.py
        comments: working on easy_install
        repository: http://atlas-build-tool.googlecode.com/svn/
        project: atlas-build-tool
        revlink: http://atlas-build-tool.googlecode.com/svn-history/r33/
        when: 1229470699
        --
        ");
        let master = check(PUSH, json!({"branch": "master"}));
        assert!(master.contains("branch: master\n"), "{master}");
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            check("{\"project_name\": \"p\", \"repository_path\": \"r\", \"revisions\": [{\"author\": \"a\", \"revision\": 1.5}]}", json!({})),
            "error: field 'revisions[0].revision' must be a string or an integer"
        );
    }

    #[test]
    fn signatures() {
        let with = |hmac: Option<&str>| {
            let headers: Vec<(&str, &str)> = hmac
                .map(|h| vec![("google-code-project-hosting-hook-hmac", h)])
                .unwrap_or_default();
            let req = request(&headers, "", PUSH.as_bytes());
            match verify_and_parse(Dialect::GoogleCode, &req, &json!({"secret_key": KEY})) {
                Ok(changes) => format!("{} change(s)", changes.len()),
                Err(err) => format!("error: {err}"),
            }
        };
        let right = hmac_md5_hex(KEY.as_bytes(), PUSH.as_bytes());
        let wrong = hmac_md5_hex(b"not the key", PUSH.as_bytes());
        let other_body = hmac_md5_hex(KEY.as_bytes(), b"{}");
        insta::assert_snapshot!([with(None), with(Some(&wrong)), with(Some(&right)), with(Some(&other_body))].join("\n"), @r"
        error: request has no google-code-project-hosting-hook-hmac header
        error: signature does not match the body
        1 change(s)
        error: signature does not match the body
        ");
    }
}
