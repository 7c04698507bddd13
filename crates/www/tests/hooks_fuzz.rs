//! Throws generated payloads at every change hook dialect: mutated real payloads (bytes and
//! JSON structure), random JSON, random forms and headers. Parsing must never panic; a
//! refusal must be a one-line 4xx reason, never an options error.
//!
//! `SIGNALBOX_FUZZ_CASES` (default 100000 per dialect) and `SIGNALBOX_FUZZ_SEED` change the
//! run; a failure prints the seed and case to replay it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{json, Map, Value};
use www::hooks::signature::{hmac_md5_hex, hmac_sha256_hex};
use www::hooks::{parse, poller, Dialect, HookError, HookRequest};

const SECRET: &str = "fuzz-secret";

fn cases() -> u64 {
    std::env::var("SIGNALBOX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn seed() -> u64 {
    std::env::var("SIGNALBOX_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5167_6e61_6c62_6f78)
}

/// splitmix64: small, fast and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Field names the dialects read, so that random objects often hit them.
const KEYS: &[&str] = &[
    "ref",
    "after",
    "before",
    "created",
    "deleted",
    "commits",
    "head_commit",
    "repository",
    "html_url",
    "full_name",
    "name",
    "email",
    "author",
    "committer",
    "id",
    "message",
    "timestamp",
    "url",
    "added",
    "modified",
    "removed",
    "distinct",
    "action",
    "number",
    "pull_request",
    "title",
    "body",
    "head",
    "base",
    "sha",
    "repo",
    "_links",
    "html",
    "href",
    "created_at",
    "sender",
    "login",
    "object_kind",
    "object_attributes",
    "state",
    "last_commit",
    "target",
    "source",
    "git_http_url",
    "git_ssh_url",
    "iid",
    "target_branch",
    "source_branch",
    "source_project_id",
    "target_project_id",
    "checkout_sha",
    "user_name",
    "user_email",
    "canon_url",
    "absolute_url",
    "raw_author",
    "raw_node",
    "utctimestamp",
    "branch",
    "files",
    "file",
    "push",
    "changes",
    "new",
    "old",
    "type",
    "links",
    "raw",
    "date",
    "hash",
    "actor",
    "displayName",
    "emailAddress",
    "displayId",
    "toHash",
    "project",
    "key",
    "slug",
    "clone",
    "project_name",
    "repository_path",
    "revisions",
    "revision",
    "clone_url",
    "oldrev",
    "description",
    "commits_url",
    "who",
    "comments",
    "properties",
    "when",
    "category",
];

const STRINGS: &[&str] = &[
    "",
    "refs/heads/main",
    "refs/tags/v1.0",
    "refs/heads/",
    "refs/pull/1/merge",
    "0000000000000000000000000000000000000000",
    "2019-05-15T15:20:41Z",
    "2012-05-30 03:58:56+00:00",
    "2017-09-19T09:45:32+1000",
    "+275760-09-13T00:00:00Z",
    "9999-99-99T99:99:99Z",
    "opened",
    "synchronize",
    "open",
    "update",
    "merged",
    "BRANCH",
    "TAG",
    "DELETE",
    "branch",
    "tag",
    "http",
    "[skip ci]",
    "ünïcödé ☃ \u{0} \u{7f}",
    "a\nmultiline\r\nvalue",
    "<script>alert(1)</script>",
];

fn random_string(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => rng.pick(STRINGS).to_string(),
        1 => rng.pick(KEYS).to_string(),
        2 => "x".repeat(rng.below(3000)),
        _ => (0..rng.below(20))
            .map(|_| char::from_u32(rng.below(0x800) as u32).unwrap_or('?'))
            .collect(),
    }
}

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth == 0 { 5 } else { 8 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => match rng.below(5) {
            0 => json!(rng.next() as i64),
            1 => json!(rng.below(100)),
            2 => json!(f64::from_bits(rng.next()).clamp(-1e300, 1e300)),
            3 => json!(-1.5),
            _ => json!(u64::MAX),
        },
        3 | 4 => Value::String(random_string(rng)),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(6) {
                map.insert(rng.pick(KEYS).to_string(), random_json(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

/// Changes one random node of `value`: replaced, removed, emptied or retyped.
fn mutate(rng: &mut Rng, value: &mut Value) {
    let descend = rng.chance(80);
    match value {
        Value::Object(map) if descend && !map.is_empty() => {
            let key = map
                .keys()
                .nth(rng.below(map.len()))
                .cloned()
                .unwrap_or_default();
            match rng.below(10) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(key, random_json(rng, 3));
                }
                _ => {
                    if let Some(child) = map.get_mut(&key) {
                        mutate(rng, child);
                    }
                }
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = rng.below(items.len());
            match rng.below(8) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let copy = items[i].clone();
                    items.push(copy);
                }
                _ => mutate(rng, &mut items[i]),
            }
        }
        _ => *value = random_json(rng, 3),
    }
}

/// Byte-level damage: truncation, flipped or inserted bytes.
fn damage(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..=rng.below(3) {
        match rng.below(3) {
            0 => bytes.truncate(rng.below(bytes.len() + 1)),
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
            _ => {
                let i = rng.below(bytes.len() + 1);
                bytes.insert(i, *rng.pick(b"{}[]\",:0\\\x00\xff"));
            }
        }
    }
}

/// Drops the many `*_url` API links of GitHub payloads that no dialect reads, so that each
/// case spends its time on the fields that matter.
fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| {
                !k.ends_with("_url")
                    || matches!(
                        k.as_str(),
                        "html_url" | "clone_url" | "git_http_url" | "git_ssh_url"
                    )
            });
            map.values_mut().for_each(prune);
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

struct Target {
    dialect: Dialect,
    options: Value,
    fixtures: Vec<Value>,
    /// Header sets to pick from (event names); the signature is added per case.
    headers: Vec<Vec<(&'static str, &'static str)>>,
    /// Whether the body may also be sent as the form field `payload`.
    form: bool,
}

fn fixture(text: &str) -> Value {
    let mut value: Value = serde_json::from_str(text).expect("fixture is JSON");
    prune(&mut value);
    value
}

fn sign(dialect: Dialect, body: &[u8], headers: &mut Vec<(String, String)>) {
    let secret = SECRET.as_bytes();
    match dialect {
        Dialect::GitHub => headers.push((
            "x-hub-signature-256".into(),
            format!("sha256={}", hmac_sha256_hex(secret, body)),
        )),
        Dialect::Gitea => headers.push(("x-gitea-signature".into(), hmac_sha256_hex(secret, body))),
        Dialect::GitLab => headers.push(("x-gitlab-token".into(), SECRET.into())),
        Dialect::GoogleCode => headers.push((
            "google-code-project-hosting-hook-hmac".into(),
            hmac_md5_hex(secret, body),
        )),
        Dialect::Bitbucket => headers.push((
            "x-hub-signature".into(),
            format!("sha256={}", hmac_sha256_hex(secret, body)),
        )),
        Dialect::Base | Dialect::Gitorious | Dialect::Poller => {}
    }
}

fn request(headers: &[(String, String)], query: &str, body: Vec<u8>) -> HookRequest {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    HookRequest::from_parts(Method::POST, map, query, body.into(), 1_700_000_000)
}

/// One generated request for `target`.
fn generate(rng: &mut Rng, target: &Target) -> HookRequest {
    let as_form = target.form && rng.chance(30);
    let json_bytes = match rng.below(100) {
        0..15 => {
            let base = rng.pick(&target.fixtures);
            let mut bytes = serde_json::to_vec(base).expect("serialize");
            damage(rng, &mut bytes);
            bytes
        }
        15..75 => {
            let mut value = rng.pick(&target.fixtures).clone();
            for _ in 0..=rng.below(4) {
                mutate(rng, &mut value);
            }
            serde_json::to_vec(&value).expect("serialize")
        }
        _ => serde_json::to_vec(&random_json(rng, 4)).expect("serialize"),
    };
    let mut headers: Vec<(String, String)> = rng
        .pick(&target.headers)
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = match as_form {
        true => {
            headers.push((
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
            let text = String::from_utf8_lossy(&json_bytes).into_owned();
            form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", &text)
                .finish()
                .into_bytes()
        }
        false => {
            if rng.chance(95) {
                headers.push(("content-type".into(), "application/json".into()));
            }
            json_bytes
        }
    };
    // Most cases are signed so that they reach the dialect; some are not.
    if rng.chance(95) {
        sign(target.dialect, &body, &mut headers);
    }
    let query = match rng.below(10) {
        0 => "project=p&codebase=c",
        1 => "payload=%7B%7D",
        _ => "",
    };
    request(&headers, query, body)
}

fn run(target: Target) {
    let dialect_seed = seed() ^ (target.dialect as u64).wrapping_mul(0x1000_0000_01b3);
    let mut rng = Rng(dialect_seed);
    let mut accepted = 0u64;
    let mut refused = 0u64;
    for case in 0..cases() {
        let request = generate(&mut rng, &target);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            parse(target.dialect, &request, &target.options)
        }));
        let describe = || {
            format!(
                "{:?} case {case} (SIGNALBOX_FUZZ_SEED={}): body {:?}",
                target.dialect,
                seed(),
                String::from_utf8_lossy(&request.body)
            )
        };
        match outcome {
            Err(_) => panic!("parse panicked: {}", describe()),
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(HookError::Options(reason))) => {
                panic!("options error {reason:?} for a payload: {}", describe())
            }
            Ok(Err(err)) => {
                let reason = err.to_string();
                assert!(
                    !reason.is_empty() && !reason.contains('\n'),
                    "reason must be one line, got {reason:?}: {}",
                    describe()
                );
                refused += 1;
            }
        }
    }
    // Both outcomes must be exercised, or the generator is not reaching the dialect.
    assert!(
        accepted > 0 && refused > 0,
        "{:?}: {accepted} accepted, {refused} refused",
        target.dialect
    );
    eprintln!(
        "{:?}: {accepted} accepted, {refused} refused",
        target.dialect
    );
}

macro_rules! fixture_file {
    ($path:literal) => {
        fixture(include_str!(concat!("fixtures/", $path)))
    };
}

#[test]
fn github() {
    run(Target {
        dialect: Dialect::GitHub,
        options: json!({"secret": SECRET}),
        fixtures: vec![
            fixture_file!("github/push-branch.json"),
            fixture_file!("github/push-tag-created.json"),
            fixture_file!("github/push-tag-deleted.json"),
            fixture_file!("github/pull_request-opened.json"),
            fixture_file!("github/pull_request-synchronize.json"),
            fixture_file!("github/ping.json"),
        ],
        headers: vec![
            vec![("x-github-event", "push")],
            vec![("x-github-event", "push")],
            vec![("x-github-event", "pull_request")],
            vec![("x-github-event", "ping")],
            vec![],
        ],
        form: true,
    });
}

#[test]
fn gitlab() {
    run(Target {
        dialect: Dialect::GitLab,
        options: json!({"secret": SECRET, "codebase": "cb"}),
        fixtures: vec![
            fixture_file!("gitlab/push.json"),
            fixture_file!("gitlab/tag_push.json"),
            fixture_file!("gitlab/merge_request.json"),
        ],
        headers: vec![
            vec![("x-gitlab-event", "Push Hook")],
            vec![("x-gitlab-event", "Tag Push Hook")],
            vec![("x-gitlab-event", "Merge Request Hook")],
            vec![],
        ],
        form: false,
    });
}

#[test]
fn bitbucket() {
    run(Target {
        dialect: Dialect::Bitbucket,
        options: json!({"secret": SECRET}),
        fixtures: vec![
            fixture_file!("bitbucket/post-service.json"),
            fixture_file!("bitbucket/cloud-repo_push.json"),
            fixture_file!("bitbucket/server-refs_changed.json"),
        ],
        headers: vec![
            vec![("x-event-key", "repo:push")],
            vec![("x-event-key", "repo:refs_changed")],
            vec![("x-event-key", "diagnostics:ping")],
            vec![],
        ],
        form: true,
    });
}

#[test]
fn googlecode() {
    run(Target {
        dialect: Dialect::GoogleCode,
        options: json!({"secret_key": SECRET, "branch": "trunk"}),
        fixtures: vec![fixture_file!("googlecode/push.json")],
        headers: vec![vec![]],
        form: false,
    });
}

#[test]
fn gitorious() {
    run(Target {
        dialect: Dialect::Gitorious,
        options: json!({}),
        fixtures: vec![fixture_file!("gitorious/push.json")],
        headers: vec![vec![]],
        form: true,
    });
}

#[test]
fn gitea() {
    run(Target {
        dialect: Dialect::Gitea,
        options: json!({"secret": SECRET}),
        fixtures: vec![fixture_file!("gitea/push.json")],
        headers: vec![
            vec![("x-gitea-event", "push")],
            vec![("x-forgejo-event", "push")],
            vec![("x-gitea-event", "pull_request")],
            vec![],
        ],
        form: false,
    });
}

#[test]
fn base() {
    run(Target {
        dialect: Dialect::Base,
        options: json!({}),
        fixtures: vec![json!({
            "author": "Carol <carol@example.org>", "revision": "abc123", "branch": "feature",
            "comments": "add things", "repository": "https://example.org/repo.git",
            "project": "proj", "codebase": "", "category": "c", "revlink": "https://x/abc123",
            "when": 1700000000, "files": ["src/a.rs", "README"], "properties": {"ticket": "42"}
        })],
        headers: vec![vec![]],
        form: true,
    });
}

#[test]
fn poller() {
    let configured = vec![
        "https://example.org/a.git".to_string(),
        "svn://b".to_string(),
    ];
    let mut rng = Rng(seed());
    for case in 0..cases() {
        let mut query = String::new();
        for _ in 0..rng.below(4) {
            let name = match rng.below(3) {
                0 => configured[rng.below(2)].clone(),
                _ => random_string(&mut rng),
            };
            let pair = form_urlencoded::Serializer::new(String::new())
                .append_pair(if rng.chance(80) { "poller" } else { "other" }, &name)
                .finish();
            query.push_str(&pair);
            query.push('&');
        }
        let options = match rng.below(3) {
            0 => json!({}),
            1 => json!({"allowed": [configured[0]]}),
            _ => json!({"allowed": []}),
        };
        let request = request(&[], &query, Vec::new());
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            poller::select(&request, &options, &configured)
        }));
        match outcome {
            Err(_) => panic!("poller::select panicked on case {case}: {query:?}"),
            Ok(Ok(names)) => assert!(names.iter().all(|n| configured.contains(n)), "{query:?}"),
            Ok(Err(HookError::BadPayload(reason))) => assert!(!reason.contains('\n'), "{reason:?}"),
            Ok(Err(err)) => panic!("unexpected {err} for {query:?}"),
        }
    }
}
