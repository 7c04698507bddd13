//! The `github` dialect: `push` (branches and tags; deletions ignored), `pull_request` and
//! `ping`, as JSON or as the form field `payload`.
//!
//! Options, as in Buildbot: `secret`, `strict` (default True here: no secret, no hook),
//! `codebase`, `skips` (regular expressions; a push whose head commit message matches one is
//! ignored; default `[ci skip]` and `[skip ci]`) and `pullrequest_ref` (default `merge`).
//! Buildbot asks the GitHub API for a pull request's files and head commit message; this
//! dialect makes no outgoing call, so a pull request's change lists no files.

use serde_json::Value;
use store::NewChange;

use super::fields::{git_ref, json_body, person, Field, GitRef};
use super::{HookError, HookRequest};

/// The events GitHub sends that this dialect tells apart (`X-GitHub-Event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Commits pushed to a branch or tag.
    Push,
    /// A pull request opened, updated, closed…
    PullRequest,
    /// The hook was created.
    Ping,
    /// Anything else: accepted, no change.
    Other,
}

impl Event {
    fn from_header(name: &str) -> Event {
        match name {
            "push" => Event::Push,
            "pull_request" => Event::PullRequest,
            "ping" => Event::Ping,
            _ => Event::Other,
        }
    }
}

struct Options<'a> {
    codebase: Option<&'a str>,
    skips: Skips,
    pullrequest_ref: &'a str,
}

enum Skips {
    /// Buildbot's defaults, `\[ *skip *ci *\]` and `\[ *ci *skip *\]`, matched by hand.
    Default,
    Patterns(Vec<regex::Regex>),
}

impl Skips {
    fn matches(&self, message: &str) -> bool {
        match self {
            Skips::Default => default_skip(message),
            Skips::Patterns(patterns) => patterns.iter().any(|p| p.is_match(message)),
        }
    }
}

/// True when `message` holds `[skip ci]` or `[ci skip]`, with any spaces around the words,
/// as Buildbot's `\[ *skip *ci *\]` and `\[ *ci *skip *\]` match.
fn default_skip(message: &str) -> bool {
    message.split('[').skip(1).any(|rest| {
        let Some((inside, _)) = rest.split_once(']') else {
            return false;
        };
        let inside = inside.trim_matches(' ');
        let pair = |first: &str, second: &str| {
            inside
                .strip_prefix(first)
                .is_some_and(|tail| tail.trim_start_matches(' ') == second)
        };
        pair("skip", "ci") || pair("ci", "skip")
    })
}

fn options(options: &Value) -> Result<Options<'_>, HookError> {
    let text = |name: &str| match options.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(HookError::Options(format!(
            "github: '{name}' must be a string"
        ))),
    };
    let skips = match options.get("skips") {
        None | Some(Value::Null) => Skips::Default,
        Some(Value::Array(items)) => {
            let mut patterns = Vec::new();
            for item in items {
                let Some(pattern) = item.as_str() else {
                    return Err(HookError::Options(
                        "github: 'skips' must list strings".into(),
                    ));
                };
                let regex = regex::Regex::new(pattern).map_err(|e| {
                    HookError::Options(format!("github: bad 'skips' pattern {pattern:?}: {e}"))
                })?;
                patterns.push(regex);
            }
            Skips::Patterns(patterns)
        }
        Some(_) => return Err(HookError::Options("github: 'skips' must be a list".into())),
    };
    Ok(Options {
        codebase: text("codebase")?,
        skips,
        pullrequest_ref: text("pullrequest_ref")?.unwrap_or("merge"),
    })
}

/// Turns a GitHub delivery into changes.
pub fn parse(request: &HookRequest, options: &Value) -> Result<Vec<NewChange>, HookError> {
    let options = self::options(options)?;
    let event = match request.header("x-github-event") {
        Some(name) => Event::from_header(name),
        None => {
            return Err(HookError::BadPayload(
                "missing X-GitHub-Event header".into(),
            ))
        }
    };
    let payload = payload(request)?;
    let root = Field::root(&payload)?;
    match event {
        Event::Push => push(request, &root, &options),
        Event::PullRequest => pull_request(request, &root, &options),
        Event::Ping | Event::Other => Ok(Vec::new()),
    }
}

/// The JSON document: the body, or its form field `payload`.
fn payload(request: &HookRequest) -> Result<Value, HookError> {
    if request.is_json() {
        return json_body(&request.body);
    }
    if request.is_form() {
        let Some(payload) = request.arg("payload") else {
            return Err(HookError::BadPayload("form has no 'payload' field".into()));
        };
        return serde_json::from_str(payload).map_err(|e| {
            HookError::BadPayload(format!("form field 'payload' is not valid JSON: {e}"))
        });
    }
    Err(HookError::BadPayload(
        "content type must be application/json or application/x-www-form-urlencoded".into(),
    ))
}

fn push(
    request: &HookRequest,
    root: &Field<'_>,
    options: &Options<'_>,
) -> Result<Vec<NewChange>, HookError> {
    let refname = root.get("ref").str()?;
    let Some(git_ref) = git_ref(refname) else {
        return Ok(Vec::new());
    };
    if root.get("deleted").bool_or(false)? {
        return Ok(Vec::new());
    }
    let head = root.get("head_commit");
    let head_message = head.get("message").opt_str()?.unwrap_or("");
    if options.skips.matches(head_message) {
        return Ok(Vec::new());
    }
    let repository = root.get("repository");
    let repo_url = repository.get("html_url").str()?;
    let project = repository.get("full_name").str()?;
    // A new branch or tag lists no commit of its own (or every commit of its history):
    // Buildbot builds its head commit only.
    let commits = match root.get("created").bool_or(false)? {
        true if head.is_null() => Vec::new(),
        true => vec![head],
        false => root.get("commits").opt_items()?,
    };
    let target = PushTarget {
        git_ref,
        repository: repo_url,
        codebase: options.codebase.unwrap_or(""),
        project,
        received_at: request.received_at,
    };
    let mut changes = Vec::new();
    for commit in &commits {
        let mut properties = model::Properties::new();
        let distinct = commit.get("distinct").bool_or(true)?;
        properties.set("github_distinct", Value::Bool(distinct), "Change");
        changes.push(commit_change(commit, &target, properties)?);
    }
    Ok(changes)
}

/// Where the commits of one push go.
pub(super) struct PushTarget<'a> {
    /// The pushed branch or tag.
    pub git_ref: GitRef<'a>,
    /// The change's `repository`.
    pub repository: &'a str,
    /// The change's `codebase`.
    pub codebase: &'a str,
    /// The change's `project`.
    pub project: &'a str,
    /// When the delivery arrived.
    pub received_at: model::Timestamp,
}

/// The change of one commit of a push payload in GitHub's shape (Gitea, Forgejo and Gogs
/// send the same): people, message, files added, modified and removed, id, url and time.
/// `properties` gets `event: push`.
pub(super) fn commit_change(
    commit: &Field<'_>,
    target: &PushTarget<'_>,
    mut properties: model::Properties,
) -> Result<NewChange, HookError> {
    let author = commit.get("author");
    let committer = commit.get("committer");
    let mut files = commit.get("added").strings()?;
    files.extend(commit.get("modified").strings()?);
    files.extend(commit.get("removed").strings()?);
    properties.set("event", Value::from("push"), "Change");
    Ok(NewChange {
        author: person(author.get("name").str()?, author.get("email").opt_str()?),
        committer: match committer.is_null() {
            true => None,
            false => Some(person(
                committer.get("name").str()?,
                committer.get("email").opt_str()?,
            )),
        },
        comments: commit.get("message").opt_str()?.unwrap_or("").to_string(),
        branch: Some(target.git_ref.name().to_string()),
        revision: Some(commit.get("id").str()?.to_string()),
        revlink: commit.get("url").opt_str()?.map(str::to_string),
        when_timestamp: commit.get("timestamp").timestamp()?,
        category: match target.git_ref {
            GitRef::Branch(_) => None,
            GitRef::Tag(_) => Some("tag".to_string()),
        },
        repository: target.repository.to_string(),
        codebase: target.codebase.to_string(),
        project: target.project.to_string(),
        files,
        properties,
        created_at: target.received_at,
    })
}

/// What a `pull_request` delivery's `action` means for builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PullRequestAction {
    /// `opened`, `reopened`, `synchronize`: the head commit is new to us.
    NewHead,
    /// Anything else (labels, reviews, closing…).
    Ignored,
}

fn pull_request(
    request: &HookRequest,
    root: &Field<'_>,
    options: &Options<'_>,
) -> Result<Vec<NewChange>, HookError> {
    let action = match root.get("action").str()? {
        "opened" | "reopened" | "synchronize" => PullRequestAction::NewHead,
        _ => PullRequestAction::Ignored,
    };
    if action == PullRequestAction::Ignored {
        return Ok(Vec::new());
    }
    let number = root.get("number").id()?;
    let pull = root.get("pull_request");
    pull.object()?;
    let title = pull.get("title").str()?;
    let body = pull.get("body").opt_str()?.unwrap_or("");
    let commits = pull.get("commits").id()?;
    let plural = match commits.as_str() {
        "1" => "",
        _ => "s",
    };
    let revlink = pull.get("_links").get("html").get("href").str()?;
    let basename = pull.get("base").get("ref").str()?;
    let mut properties = model::Properties::new();
    properties.set("pullrequesturl", Value::from(revlink), "Change");
    properties.set("event", Value::from("pull_request"), "Change");
    properties.set("basename", Value::from(basename), "Change");
    Ok(vec![NewChange {
        author: root.get("sender").get("login").str()?.to_string(),
        committer: None,
        comments: format!(
            "GitHub Pull Request #{number} ({commits} commit{plural})\n{title}\n{body}"
        ),
        branch: Some(format!("refs/pull/{number}/{}", options.pullrequest_ref)),
        revision: Some(pull.get("head").get("sha").str()?.to_string()),
        revlink: Some(revlink.to_string()),
        when_timestamp: pull.get("created_at").timestamp()?,
        category: Some("pull".to_string()),
        repository: root.get("repository").get("html_url").str()?.to_string(),
        codebase: options.codebase.unwrap_or("").to_string(),
        project: pull
            .get("base")
            .get("repo")
            .get("full_name")
            .str()?
            .to_string(),
        files: Vec::new(),
        properties,
        created_at: request.received_at,
    }])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::hooks::signature::{hmac_sha1_hex, hmac_sha256_hex};
    use crate::hooks::testing::{describe, request};
    use crate::hooks::{parse as verify_and_parse, Dialect};

    const PUSH_BRANCH: &str = include_str!("../../tests/fixtures/github/push-branch.json");
    const PUSH_TAG: &str = include_str!("../../tests/fixtures/github/push-tag-created.json");
    const PUSH_TAG_DELETED: &str =
        include_str!("../../tests/fixtures/github/push-tag-deleted.json");
    const PR_OPENED: &str = include_str!("../../tests/fixtures/github/pull_request-opened.json");
    const PR_SYNC: &str = include_str!("../../tests/fixtures/github/pull_request-synchronize.json");
    const PR_CLOSED: &str = include_str!("../../tests/fixtures/github/pull_request-closed.json");
    const PING: &str = include_str!("../../tests/fixtures/github/ping.json");
    const SECRET: &str = "It's a Secret to Everybody";

    /// The one caller of `parse`: a signed JSON delivery of `event`.
    fn check(event: &str, body: &str, options: Value) -> String {
        let signature = format!(
            "sha256={}",
            hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes())
        );
        let req = request(
            &[
                ("content-type", "application/json"),
                ("x-github-event", event),
                ("x-hub-signature-256", &signature),
            ],
            "",
            body.as_bytes(),
        );
        let mut options = options;
        options["secret"] = json!(SECRET);
        match verify_and_parse(Dialect::GitHub, &req, &options) {
            Ok(changes) => describe(&changes),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn push_to_a_branch() {
        insta::assert_snapshot!(check("push", PUSH_BRANCH, json!({})), @r"
        author: Codertocat <21031067+Codertocat@users.noreply.github.com>
        committer: Codertocat <21031067+Codertocat@users.noreply.github.com>
        revision: 6113728f27ae82c7b1a177c8d03f9e96e0adf246
        branch: master
        files: README.md
        comments: Initial commit
        repository: https://github.com/Codertocat/Hello-World
        project: Codertocat/Hello-World
        revlink: https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246
        when: 1557933565
        properties: event=push github_distinct=true
        --
        ");
    }

    #[test]
    fn push_of_a_new_tag_builds_its_head_commit() {
        insta::assert_snapshot!(check("push", PUSH_TAG, json!({"codebase": "hello"})), @r"
        author: Codertocat <21031067+Codertocat@users.noreply.github.com>
        committer: Codertocat <21031067+Codertocat@users.noreply.github.com>
        revision: 6113728f27ae82c7b1a177c8d03f9e96e0adf246
        branch: simple-tag
        files: .gitignore
        comments: Adding a .gitignore file
        repository: https://github.com/Codertocat/Hello-World
        project: Codertocat/Hello-World
        codebase: hello
        category: tag
        revlink: https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246
        when: 1557933641
        properties: event=push github_distinct=true
        --
        ");
    }

    #[test]
    fn deletions_pings_and_other_events_record_nothing() {
        assert_eq!(check("push", PUSH_TAG_DELETED, json!({})), "");
        assert_eq!(check("ping", PING, json!({})), "");
        assert_eq!(check("pull_request", PR_CLOSED, json!({})), "");
        assert_eq!(check("issues", PING, json!({})), "");
    }

    #[test]
    fn pull_request_opened_and_synchronized() {
        insta::assert_snapshot!(check("pull_request", PR_OPENED, json!({})), @r"
        author: Codertocat
        revision: ec26c3e57ca3a959ca5aad62de7213c562f8c821
        branch: refs/pull/2/merge
        comments: GitHub Pull Request #2 (1 commit)\nUpdate the README with new information.\nThis is a pretty simple change that we need to pull into master.
        repository: https://github.com/Codertocat/Hello-World
        project: Codertocat/Hello-World
        category: pull
        revlink: https://github.com/Codertocat/Hello-World/pull/2
        when: 1557933633
        properties: basename=master event=pull_request pullrequesturl=https://github.com/Codertocat/Hello-World/pull/2
        --
        ");
        let synchronize = check("pull_request", PR_SYNC, json!({"pullrequest_ref": "head"}));
        assert!(
            synchronize.contains("branch: refs/pull/2/head\n"),
            "{synchronize}"
        );
    }

    #[test]
    fn skip_ci_in_the_head_commit_message() {
        let body = PUSH_BRANCH.replace("Initial commit", "Initial commit [ skip  ci ]");
        assert_eq!(check("push", &body, json!({})), "");
        let body = PUSH_BRANCH.replace("Initial commit", "Initial commit [ci skip]");
        assert_eq!(check("push", &body, json!({})), "");
        let body = PUSH_BRANCH.replace("Initial commit", "[skipci] x");
        assert_eq!(check("push", &body, json!({})), "");
        let body = PUSH_BRANCH.replace("Initial commit", "[skip this] ci");
        assert!(check("push", &body, json!({})).contains("revision"));
        let custom = check("push", PUSH_BRANCH, json!({"skips": ["^Initial"]}));
        assert_eq!(custom, "");
    }

    #[test]
    fn form_encoded_delivery() {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", PUSH_BRANCH)
            .finish();
        let signature = format!("sha1={}", hmac_sha1_hex(SECRET.as_bytes(), body.as_bytes()));
        let req = request(
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-github-event", "push"),
                ("x-hub-signature", &signature),
            ],
            "",
            body.as_bytes(),
        );
        let changes = verify_and_parse(Dialect::GitHub, &req, &json!({"secret": SECRET})).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].revision.as_deref(),
            Some("6113728f27ae82c7b1a177c8d03f9e96e0adf246")
        );
    }

    #[test]
    fn two_commits_one_change_each() {
        let body = json!({
            "ref": "refs/heads/main",
            "repository": {"html_url": "https://github.com/o/r", "full_name": "o/r"},
            "head_commit": {"message": "second"},
            "commits": [
                {"id": "1a2b", "message": "first", "timestamp": "2024-01-01T00:00:00Z",
                 "author": {"name": "alice", "email": "a@example.org"}, "modified": ["src/a.rs"]},
                {"id": "3c4d", "message": "second", "timestamp": "2024-01-01T00:01:00Z",
                 "author": {"name": "bob"}, "added": ["README"], "removed": ["old"], "distinct": false}
            ]
        });
        insta::assert_snapshot!(check("push", &body.to_string(), json!({})), @r"
        author: alice <a@example.org>
        revision: 1a2b
        branch: main
        files: src/a.rs
        comments: first
        repository: https://github.com/o/r
        project: o/r
        when: 1704067200
        properties: event=push github_distinct=true
        --
        author: bob
        revision: 3c4d
        branch: main
        files: README old
        comments: second
        repository: https://github.com/o/r
        project: o/r
        when: 1704067260
        properties: event=push github_distinct=false
        --
        ");
    }

    #[test]
    fn wrongly_typed_payloads_say_which_field() {
        let cases = [
            (json!({"ref": 5}), "error: field 'ref' must be a string"),
            (json!([]), "error: payload must be a JSON object"),
            (
                json!({"ref": "refs/heads/x", "repository": {"html_url": "u", "full_name": "f"}, "commits": [{"id": "1"}]}),
                "error: field 'commits[0].author.name' is required",
            ),
            (
                json!({"ref": "refs/heads/x", "repository": {"html_url": "u", "full_name": "f"}, "commits": {}}),
                "error: field 'commits' must be a list",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(check("push", &body.to_string(), json!({})), expected);
        }
        assert!(check("push", "{ref:", json!({})).starts_with("error: body is not valid JSON"));
    }

    /// The signature cases: missing, wrong, right, and right but for another body.
    fn signed(headers: &[(&str, &str)], options: Value) -> String {
        let mut all = vec![
            ("content-type", "application/json"),
            ("x-github-event", "push"),
        ];
        all.extend_from_slice(headers);
        let req = request(&all, "", PUSH_BRANCH.as_bytes());
        match verify_and_parse(Dialect::GitHub, &req, &options) {
            Ok(changes) => format!("{} change(s)", changes.len()),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn signatures() {
        let secret = json!({"secret": SECRET});
        let right256 = format!(
            "sha256={}",
            hmac_sha256_hex(SECRET.as_bytes(), PUSH_BRANCH.as_bytes())
        );
        let right1 = format!(
            "sha1={}",
            hmac_sha1_hex(SECRET.as_bytes(), PUSH_BRANCH.as_bytes())
        );
        let other256 = format!(
            "sha256={}",
            hmac_sha256_hex(SECRET.as_bytes(), PING.as_bytes())
        );
        let other1 = format!("sha1={}", hmac_sha1_hex(SECRET.as_bytes(), PING.as_bytes()));
        let wrong = format!(
            "sha256={}",
            hmac_sha256_hex(b"another secret", PUSH_BRANCH.as_bytes())
        );
        insta::assert_snapshot!([
            signed(&[], secret.clone()),
            signed(&[("x-hub-signature-256", &right256)], secret.clone()),
            signed(&[("x-hub-signature", &right1)], secret.clone()),
            signed(&[("x-hub-signature-256", &wrong)], secret.clone()),
            signed(&[("x-hub-signature-256", &other256)], secret.clone()),
            signed(&[("x-hub-signature", &other1)], secret.clone()),
            signed(&[("x-hub-signature-256", "sha256=zz")], secret.clone()),
            signed(&[("x-hub-signature-256", &right1)], secret.clone()),
            signed(&[("x-hub-signature-256", &right256)], json!({})),
            signed(&[], json!({"strict": false})),
            signed(&[("x-hub-signature-256", &right256)], json!({"secret": SECRET, "strict": false})),
            signed(&[("x-hub-signature-256", &wrong)], json!({"secret": SECRET, "strict": false})),
        ].join("\n"), @r"
        error: request has no x-hub-signature header
        1 change(s)
        1 change(s)
        error: signature does not match the body
        error: signature does not match the body
        error: signature does not match the body
        error: signature is not hexadecimal
        error: x-hub-signature-256 must start with 'sha256='
        error: github hook has no secret: set 'secret', or 'strict': False to accept unsigned requests
        1 change(s)
        1 change(s)
        error: signature does not match the body
        ");
    }
}
