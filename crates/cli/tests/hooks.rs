//! Change hooks over real HTTP against a real master, on SQLite and PostgreSQL: refused
//! requests record nothing, a delivery is accepted once, a change answered with 200
//! survives `kill -9`, and the `poller` hook makes a GitPoller poll.

mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use harness::{databases, git, wait_for, Db, TestMaster};
use serde_json::{json, Value};
use www::hooks::signature::hmac_sha256_hex;

const SECRET: &str = "s3cret-for-hooks";

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = []
c['db'] = {'db_url': "@DB_URL@"}
c['builders'] = []
c['schedulers'] = []
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
    change_hook_dialects={
        'base': True,
        'github': {'secret': 's3cret-for-hooks'},
        'gitlab': {'secret': 's3cret-for-hooks'},
        'gitea': {'secret': 's3cret-for-hooks'},
        'googlecode': {'secret_key': 's3cret-for-hooks'},
        'bitbucket': True,
        'gitorious': True,
    })]
"#;

const PUSH: &str = include_str!("../../www/tests/fixtures/github/push-branch.json");

/// How a raw request's body ends.
#[derive(Clone, Copy)]
enum Ending {
    /// `Content-Length` is the body's length.
    Complete,
    /// `Content-Length` announces more than is sent, then the client stops writing.
    Cut(usize),
}

/// One raw HTTP/1.1 request; returns (status, body), status 0 when the server closed the
/// connection without an answer. Raw, so that a test can lie about the length.
fn http(
    master: &TestMaster,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    ending: Ending,
) -> (u16, String) {
    let length = match ending {
        Ending::Complete => body.len(),
        Ending::Cut(n) => n,
    };
    let mut stream = TcpStream::connect(("127.0.0.1", master.web_port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut head = format!(
        "{method} /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {length}\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // The server may answer and close before reading everything (a cap): ignore write errors.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    if let Ending::Cut(_) = ending {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn post(
    master: &TestMaster,
    dialect: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    http(
        master,
        "POST",
        &format!("change_hook/{dialect}"),
        headers,
        body,
        Ending::Complete,
    )
}

/// A signed GitHub push delivery of `body` with delivery id `delivery`.
fn github_push(master: &TestMaster, body: &str, delivery: &str) -> (u16, String) {
    let signature = format!(
        "sha256={}",
        hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes())
    );
    post(
        master,
        "github",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &signature),
        ],
        body.as_bytes(),
    )
}

fn total_changes(master: &TestMaster) -> i64 {
    master.get("api/v2/changes")["meta"]["total"]
        .as_i64()
        .expect("meta.total")
}

fn refused_requests_record_nothing(db: Db) {
    let master = TestMaster::start(db, "hooks", CFG);
    let unsigned = post(
        &master,
        "github",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
        ],
        PUSH.as_bytes(),
    );
    let wrong = post(
        &master,
        "github",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", "sha256=00"),
        ],
        PUSH.as_bytes(),
    );
    let truncated = github_push(&master, &PUSH[..PUSH.len() / 2], "t-1");
    let wrong_type = github_push(&master, "{\"ref\": 42}", "t-2");
    let not_enabled = post(&master, "poller", &[], b"");
    let oversized = http(
        &master,
        "POST",
        "change_hook/base",
        &[("Content-Type", "application/json")],
        &vec![b' '; 5 * 1024 * 1024],
        Ending::Complete,
    );
    let short_body = http(
        &master,
        "POST",
        "change_hook/base",
        &[("Content-Type", "application/json")],
        b"{\"author\": \"x\"",
        Ending::Cut(1000),
    );
    let statuses: Vec<(u16, &str)> = [
        (&unsigned, "unsigned"),
        (&wrong, "wrong signature"),
        (&truncated, "truncated"),
        (&wrong_type, "wrong type"),
        (&not_enabled, "not enabled"),
        (&oversized, "oversized"),
    ]
    .iter()
    .map(|((status, _), what)| (*status, *what))
    .collect();
    for (status, what) in &statuses {
        assert!(
            (400..500).contains(status),
            "{what}: {status}\n{}",
            master.log()
        );
    }
    assert_eq!(unsigned.0, 403, "{}", unsigned.1);
    assert_eq!(truncated.0, 400, "{}", truncated.1);
    assert_eq!(wrong_type.1.trim(), "field 'ref' must be a string");
    assert_eq!(oversized.0, 413);
    // The server may drop a connection whose body ends early rather than answer it.
    assert!(matches!(short_body.0, 0 | 400), "{short_body:?}");
    assert_eq!(
        total_changes(&master),
        0,
        "a refused request records nothing"
    );

    // Generated garbage at every dialect: only 200 or 4xx, and exactly the changes the 200s
    // announced are recorded.
    let mut announced = 0;
    let dialects = [
        "base",
        "github",
        "gitlab",
        "gitea",
        "googlecode",
        "bitbucket",
        "gitorious",
    ];
    for i in 0..210usize {
        let dialect = dialects[i % dialects.len()];
        let body = match i % 5 {
            0 => PUSH[..(i * 37) % PUSH.len()].to_string(),
            1 => PUSH.replace("\"Initial commit\"", &format!("{i}")),
            2 => json!({"ref": "refs/heads/x", "commits": [{"id": i}]}).to_string(),
            3 => json!({"author": "a", "files": i, "when": "x"}).to_string(),
            _ => json!({"author": format!("fuzz {i}"), "revision": format!("r{i}")}).to_string(),
        };
        let signature = hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
        let hub = format!("sha256={signature}");
        let (status, answer) = post(
            &master,
            dialect,
            &[
                ("Content-Type", "application/json"),
                ("X-GitHub-Event", "push"),
                ("X-Gitea-Event", "push"),
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Event-Key", "repo:push"),
                ("X-Hub-Signature-256", &hub),
                ("X-Gitea-Signature", &signature),
                ("X-Gitlab-Token", SECRET),
            ],
            body.as_bytes(),
        );
        assert!(
            status == 200 || (400..500).contains(&status),
            "{dialect} {i}: {status} {answer}"
        );
        if status == 200 {
            let n: i64 = answer
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(-1);
            assert!(n >= 0, "{answer}");
            announced += n;
        }
    }
    assert_eq!(total_changes(&master), announced, "{}", master.log());
    assert!(!master.log().contains("panicked"), "{}", master.log());
}

#[test]
fn refused_requests_record_nothing_on_every_database() {
    for db in databases() {
        refused_requests_record_nothing(db);
    }
}

fn delivery_accepted_once_and_kept_after_kill9(db: Db) {
    let mut master = TestMaster::start(db, "hookkill", CFG);
    let (status, answer) = github_push(&master, PUSH, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!((status, answer.trim()), (200, "1 change(s) recorded"));
    // SIGKILL right after the 200: nothing had time to flush but what was committed.
    master.kill9();
    master.spawn();
    let changes = master.get("api/v2/changes");
    assert_eq!(changes["meta"]["total"], 1, "{changes}");
    let change = &changes["changes"][0];
    let expected = json!({
        "author": "Codertocat <21031067+Codertocat@users.noreply.github.com>",
        "revision": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "branch": "master",
        "files": ["README.md"],
        "comments": "Initial commit",
        "repository": "https://github.com/Codertocat/Hello-World",
        "project": "Codertocat/Hello-World",
        "codebase": "",
        "category": null,
        "when_timestamp": 1557933565,
    });
    for (field, value) in expected.as_object().expect("object") {
        assert_eq!(&change[field], value, "{field} of {change}");
    }
    // The same delivery again, even after the restart, is refused and records nothing.
    let (status, answer) = github_push(&master, PUSH, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(status, 409, "{answer}");
    // A new delivery id with ?project= and ?codebase= records a second change.
    let (status, answer) = post(
        &master,
        "gitlab?project=diaspora-ci&codebase=main",
        &[
            ("Content-Type", "application/json"),
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", SECRET),
        ],
        include_str!("../../www/tests/fixtures/gitlab/push.json").as_bytes(),
    );
    assert_eq!((status, answer.trim()), (200, "2 change(s) recorded"));
    let changes = master.get("api/v2/changes?order=-changeid&limit=1");
    let newest: &Value = &changes["changes"][0];
    assert_eq!(newest["project"], "diaspora-ci");
    assert_eq!(newest["codebase"], "main");
    assert_eq!(total_changes(&master), 3);
}

#[test]
fn delivery_accepted_once_and_kept_after_kill9_on_every_database() {
    for db in databases() {
        delivery_accepted_once_and_kept_after_kill9(db);
    }
}

/// Eight copies of one delivery at once, with eight other deliveries beside them: the copies
/// share the writer's transactions with the others, and exactly one of them is recorded.
fn concurrent_copies_are_accepted_once(db: Db) {
    let master = TestMaster::start(db, "hookcopies", CFG);
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let master = &master;
        let copies: Vec<_> = (0..8)
            .map(|_| scope.spawn(move || github_push(master, PUSH, "copy-of-one-delivery")))
            .collect();
        let others: Vec<_> = (0..8)
            .map(|i| scope.spawn(move || github_push(master, PUSH, &format!("other-{i}"))))
            .collect();
        let others: Vec<u16> = others
            .into_iter()
            .map(|t| t.join().expect("post").0)
            .collect();
        assert_eq!(others, [200; 8]);
        copies
            .into_iter()
            .map(|t| t.join().expect("post"))
            .collect()
    });
    let accepted = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused = answers.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!((accepted, refused), (1, 7), "{answers:?}");
    assert_eq!(total_changes(&master), 9, "{}", master.log());
}

#[test]
fn concurrent_copies_are_accepted_once_on_every_database() {
    for db in databases() {
        concurrent_copies_are_accepted_once(db);
    }
}

#[test]
fn poller_hook_triggers_a_poll() {
    let repo = tempfile::tempdir().expect("temp dir");
    git(repo.path(), &["init", "-q", "-b", "master"]);
    std::fs::write(repo.path().join("a.txt"), "one\n").expect("write");
    git(repo.path(), &["add", "a.txt"]);
    git(repo.path(), &["commit", "-q", "-m", "first"]);
    let url = repo.path().display().to_string();
    let cfg = format!(
        r#"
c = BuildmasterConfig = {{}}
c['protocols'] = {{'pb': {{'port': @WORKER_PORT@}}}}
c['db'] = {{'db_url': "@DB_URL@"}}
c['change_source'] = [GitPoller(repourl="{url}", branch="master", pollInterval=3600, pollAtLaunch=False)]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
    change_hook_dialects={{'poller': {{'allowed': ["{url}"]}}}})]
"#
    );
    let master = TestMaster::start(Db::Sqlite, "poller", &cfg);
    let encoded: String = form_urlencoded_pair("poller", &url);
    let (status, answer) = http(
        &master,
        "GET",
        &format!("change_hook/poller?{encoded}"),
        &[],
        b"",
        Ending::Complete,
    );
    assert_eq!(
        (status, answer.trim()),
        (200, "polling 1 change source(s)"),
        "{}",
        master.log()
    );
    // The first poll only remembers where the branch is (after fetching it into the
    // poller's bare repository); a commit after it is a change.
    let fetched = master
        .dir
        .path()
        .join("gitpoller-workdir/refs/signalbox/master");
    wait_for(Duration::from_secs(60), "the first poll", || {
        fetched.exists().then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(repo.path().join("a.txt"), "two\n").expect("write");
    git(repo.path(), &["commit", "-q", "-am", "second"]);
    let (status, _) = post(&master, "poller", &[], b"");
    assert_eq!(status, 200);
    let change = wait_for(Duration::from_secs(60), "the change from the poll", || {
        let changes = master.get("api/v2/changes");
        changes["changes"]
            .as_array()?
            .iter()
            .find(|c| c["comments"].as_str().is_some_and(|m| m.contains("second")))
            .cloned()
    });
    assert_eq!(change["branch"], "master");
    assert_eq!(change["files"], json!(["a.txt"]));
    let (status, answer) = http(
        &master,
        "GET",
        "change_hook/poller?poller=svn%3A%2F%2Felsewhere",
        &[],
        b"",
        Ending::Complete,
    );
    assert_eq!(
        (status, answer.trim()),
        (400, "could not find pollers: svn://elsewhere")
    );
}

fn form_urlencoded_pair(name: &str, value: &str) -> String {
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{name}={encoded}")
}
