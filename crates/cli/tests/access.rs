//! Access control against a real master: every route under a restricted `view`, the
//! seed-002 actions under False/True/'auth'/function through JSON-RPC and the page forms,
//! logins (BasicAuth, htpasswd files made by Apache's `htpasswd`, the users table),
//! sessions, CSRF, `useHttpHeader`, the audit log and `http.log`.

mod harness;

use std::process::Command;

use harness::{bin, run_ok, Db, TestMaster};
use serde_json::{json, Value};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="s", command="true"))
c['builders'] = [BuilderConfig(name="b1", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b1"])]
def only_bob(user, *args):
    return user == "bob"
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
                         authz=Authz(@AUTHZ@))]
"#;

fn master(tag: &str, authz: &str, files: &[(&str, &str)]) -> TestMaster {
    TestMaster::start_with_files(Db::Sqlite, tag, &CFG.replace("@AUTHZ@", authz), files)
}

/// Runs curl with `args` on `path`; returns (status, headers, body).
fn curl(master: &TestMaster, path: &str, args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "-", "--max-time", "5"])
        .args(args)
        .arg(master.url(path))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn rpc(master: &TestMaster, path: &str, method: &str, extra: &[&str]) -> u16 {
    let body =
        json!({"jsonrpc": "2.0", "method": method, "id": 1, "params": {"builderNames": ["b1"]}})
            .to_string();
    let mut args = vec!["-H", "Content-Type: application/json", "-d", &body];
    args.extend_from_slice(extra);
    curl(master, path, &args).0
}

fn buildsets(master: &TestMaster) -> usize {
    master.get("api/v2/buildsets")["buildsets"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Logs in through `auth/login` with Basic credentials; returns the session cookie jar.
fn login(master: &TestMaster, user: &str, password: &str) -> (u16, tempfile::NamedTempFile) {
    let jar = tempfile::NamedTempFile::new().expect("jar");
    let jar_path = jar.path().display().to_string();
    let credentials = format!("{user}:{password}");
    let (status, _, _) = curl(
        master,
        "auth/login",
        &["-u", &credentials, "-c", &jar_path, "-b", &jar_path],
    );
    (status, jar)
}

#[test]
fn every_route_hides_builds_when_view_is_denied() {
    // The ROUTES table must list every route the source registers.
    let src = harness::crate_dir().join("../www/src");
    let mut found = Vec::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read www/src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let build = text
                .split("const BUILD: &str = \"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .unwrap_or("")
                .to_string();
            for piece in text.split(".route(").skip(1) {
                let piece = piece.trim_start();
                let pattern = if let Some(rest) = piece.strip_prefix('"') {
                    rest.split('"').next().unwrap_or("").to_string()
                } else if let Some(rest) = piece.strip_prefix("&format!(\"") {
                    rest.split('"')
                        .next()
                        .unwrap_or("")
                        .replace("{BUILD}", &build)
                        .replace("{{", "{")
                        .replace("}}", "}")
                } else if piece.starts_with("BUILD") {
                    build.clone()
                } else {
                    continue;
                };
                found.push(pattern);
            }
        }
    }
    let listed: Vec<&str> = www::ROUTES.iter().map(|r| r.pattern).collect();
    for pattern in &found {
        let hit = listed
            .iter()
            .any(|l| l == pattern || l.ends_with(pattern.as_str()) && l.starts_with("/api/"));
        assert!(hit, "route {pattern} is not in www::ROUTES");
    }

    let m = master("view", "view=False, forceBuild=True", &[]);
    m.force("force", &["b1"]);
    for route in www::ROUTES {
        let (status, _, body) = curl(&m, route.example, &[]);
        match route.policy {
            www::Policy::Public | www::Policy::Hook => {}
            _ => assert!(
                status == 403 || status == 404 || status == 302 || status == 303,
                "{} answered {status}: {body}",
                route.example
            ),
        }
        assert!(
            !body.contains("\"buildid\""),
            "{} leaked builds: {body}",
            route.example
        );
    }
    // Unknown paths (public_html) and the event streams too.
    assert_eq!(curl(&m, "/no/such/file", &[]).0, 403);
    let (status, _, body) = curl(&m, "/sse/listen", &[]);
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = curl(&m, "/ws", &WS_UPGRADE);
    assert_eq!(status, 403);
}

/// curl arguments for a WebSocket handshake.
const WS_UPGRADE: [&str; 8] = [
    "-H",
    "Connection: Upgrade",
    "-H",
    "Upgrade: websocket",
    "-H",
    "Sec-WebSocket-Version: 13",
    "-H",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
];

/// Another site cannot open `/ws` with a visitor's cookie: a WebSocket handshake from a
/// foreign `Origin` is refused even though it is a GET and `view` is allowed.
#[test]
fn cross_site_websocket_handshakes_are_refused() {
    let m = master("wsorigin", "view=True", &[]);
    let handshake = |origin: &str| curl(&m, "/ws", &[&WS_UPGRADE[..], &["-H", origin]].concat());
    let (status, _, body) = handshake("Origin: https://evil.example");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("cross-origin"), "{body}");
    let (status, _, body) = handshake("Sec-Fetch-Site: cross-site");
    assert_eq!(status, 403, "{body}");
}

#[test]
fn actions_under_false_true_auth_and_function() {
    let users = "auth=BasicAuth([('bob', 'bobpw'), ('eve', 'evepw')])";
    for (rule, anonymous, bob, eve) in [
        ("False", false, false, false),
        ("True", true, true, true),
        ("'auth'", false, true, true),
        ("only_bob", false, true, false),
    ] {
        let m = master("rules", &format!("{users}, forceBuild={rule}"), &[]);
        let (status, bob_jar) = login(&m, "bob", "bobpw");
        assert_eq!(status, 303, "bob's login");
        let (_, eve_jar) = login(&m, "eve", "evepw");
        for (who, jar, allowed) in [
            ("anonymous", None, anonymous),
            ("bob", Some(&bob_jar), bob),
            ("eve", Some(&eve_jar), eve),
        ] {
            let before = buildsets(&m);
            let jar_path = jar.map(|j| j.path().display().to_string());
            let mut extra = Vec::new();
            if let Some(p) = &jar_path {
                extra.extend(["-b", p.as_str()]);
            }
            let status = rpc(&m, "api/v2/forceschedulers/force", "force", &extra);
            let expected = if allowed { 200 } else { 403 };
            assert_eq!(status, expected, "JSON-RPC force, forceBuild={rule}, {who}");
            assert_eq!(buildsets(&m), before + usize::from(allowed), "{rule} {who}");
        }
        // The same action through the page form, with its CSRF token.
        let jar = bob_jar.path().display().to_string();
        let (_, _, page) = curl(&m, "builders/b1", &["-b", &jar, "-c", &jar]);
        let token = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap_or("")
            .to_string();
        let before = buildsets(&m);
        let form = format!("csrf={token}&scheduler=force");
        let (status, _, body) = curl(&m, "builders/b1/force", &["-b", &jar, "-d", &form]);
        if bob {
            assert_eq!(status, 303, "page force for bob under {rule}: {body}");
            assert_eq!(buildsets(&m), before + 1);
        } else {
            assert_eq!(status, 403, "page force under {rule}: {body}");
            assert_eq!(buildsets(&m), before);
        }
        // Without the token the form is refused and nothing changes.
        let before = buildsets(&m);
        let (status, _, _) = curl(
            &m,
            "builders/b1/force",
            &["-b", &jar, "-d", "scheduler=force"],
        );
        assert_eq!(status, 403);
        assert_eq!(buildsets(&m), before);
    }
}

#[test]
fn csrf_sessions_and_headers() {
    let m = master(
        "session",
        "auth=BasicAuth([('bob', 'bobpw')]), forceBuild='auth', showUsersPage='auth'",
        &[],
    );
    // A cross-origin JSON-RPC call is refused even for a logged-in user.
    let (_, jar) = login(&m, "bob", "bobpw");
    let jar_path = jar.path().display().to_string();
    let status = rpc(
        &m,
        "api/v2/forceschedulers/force",
        "force",
        &[
            "-b",
            &jar_path,
            "-H",
            "Origin: http://evil.example",
            "-H",
            "Sec-Fetch-Site: cross-site",
        ],
    );
    assert_eq!(status, 403);
    assert_eq!(buildsets(&m), 0);
    // Session fixation: a cookie planted before login does not authenticate, and login
    // issues a different one.
    let planted = "TWISTED_SESSION=0123.4567";
    let (status, head, _) = curl(&m, "auth/login", &["-u", "bob:bobpw", "-b", planted]);
    assert_eq!(status, 303);
    assert!(head.contains("TWISTED_SESSION="), "{head}");
    assert!(!head.contains("TWISTED_SESSION=0123"), "{head}");
    assert!(
        head.contains("HttpOnly") && head.contains("SameSite"),
        "{head}"
    );
    let session_head = head.clone();
    assert_eq!(
        rpc(
            &m,
            "api/v2/forceschedulers/force",
            "force",
            &["-b", planted]
        ),
        403
    );
    // A wrong password, then throttling after repeated failures.
    assert_eq!(login(&m, "bob", "wrong").0, 401);
    for _ in 0..5 {
        login(&m, "bob", "wrong");
    }
    assert_eq!(login(&m, "bob", "bobpw").0, 429);
    // useHttpHeader is off: proxy headers are ignored.
    let status = rpc(
        &m,
        "api/v2/forceschedulers/force",
        "force",
        &[
            "-H",
            "REMOTE_USER: bob",
            "-H",
            "Authorization: Basic Ym9iOng=",
        ],
    );
    assert_eq!(status, 403);
    // The users page asks for a login; logout ends the session.
    let (status, head, _) = curl(&m, "users", &[]);
    assert_eq!(status, 303);
    assert!(head.contains("location: /login"), "{head}");
    let (status, head, _) = curl(&m, "users", &["-b", &jar_path]);
    assert_eq!(status, 303);
    assert!(head.contains("location: /users/table"), "{head}");
    curl(&m, "logout", &["-b", &jar_path, "-c", &jar_path]);
    let (_, head, _) = curl(&m, "users", &["-b", &jar_path]);
    assert!(head.contains("location: /login"), "{head}");
    // Path traversal on public_html and templates.
    for path in [
        "/..%2fmaster.cfg",
        "/%2e%2e/master.cfg",
        "/pages/static/..%2f..%2fCargo.toml",
    ] {
        let (status, _, body) = curl(&m, path, &["--path-as-is"]);
        assert_eq!(status, 404, "{path}: {body}");
    }
    // Neither log holds the password, the Authorization header or a session cookie.
    let cookie = session_head
        .split("TWISTED_SESSION=")
        .nth(1)
        .and_then(|c| c.split(';').next())
        .unwrap_or("")
        .to_string();
    let (_, _, body) = curl(&m, "builders", &["-H", "Authorization: Basic Ym9iOmJvYnB3"]);
    assert!(!body.contains("Ym9iOmJvYnB3"));
    let logs = format!(
        "{}{}",
        m.log(),
        std::fs::read_to_string(m.dir.path().join("http.log")).unwrap_or_default()
    );
    assert!(logs.contains("GET /builders"), "http.log: {logs}");
    for secret in ["bobpw", "Ym9iOmJvYnB3", cookie.as_str()] {
        assert!(
            !secret.is_empty() && !logs.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn use_http_header_trusts_the_proxy_only_when_on() {
    let m = master(
        "header",
        "useHttpHeader=True, forceBuild='auth', httpLoginUrl='https://proxy/login'",
        &[],
    );
    let (_, _, page) = curl(&m, "builders", &[]);
    // minijinja escapes the slashes of the URL; the link is there all the same.
    assert!(
        page.contains(">Login</a>") && page.contains("proxy"),
        "{page}"
    );
    assert_eq!(rpc(&m, "api/v2/forceschedulers/force", "force", &[]), 403);
    assert_eq!(
        rpc(
            &m,
            "api/v2/forceschedulers/force",
            "force",
            &["-H", "Authorization: Basic Ym9iOng="]
        ),
        200
    );
    // The audit log has both, with who and from where.
    let rows = audit_rows(&m);
    assert!(
        rows.iter()
            .any(|r| r.contains("anonymous") && r.contains("denied")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("bob") && r.contains("allowed") && r.contains("127.0.0.1")),
        "{rows:?}"
    );
}

fn audit_rows(m: &TestMaster) -> Vec<String> {
    let out = Command::new("sqlite3")
        .arg(m.dir.path().join("state.sqlite"))
        .arg("SELECT username, action, target, remote, CASE allowed WHEN 1 THEN 'allowed' ELSE 'denied' END FROM audit_log")
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        // Without the sqlite3 tool, read the page as an allowed user would.
        _ => vec![m.get_text("audit")],
    }
}

#[test]
fn htpasswd_files_from_apache_and_the_users_table() {
    let Ok(out) = Command::new("sh")
        .arg("-c")
        .arg("htpasswd -nbB bc bcpw && htpasswd -nbm md md5pw && htpasswd -nbs sh shapw && htpasswd -nbd cr cryptpw")
        .output()
    else {
        panic!("htpasswd (apache2-utils) is needed; scripts/test installs it");
    };
    let file = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        file.contains("$2y$") && file.contains("$apr1$") && file.contains("{SHA}"),
        "{file}"
    );
    let m = master(
        "htpasswd",
        "auth=HTPasswdAuth('htpasswd'), forceBuild='auth'",
        &[("htpasswd", &file)],
    );
    for (user, password) in [
        ("bc", "bcpw"),
        ("md", "md5pw"),
        ("sh", "shapw"),
        ("cr", "cryptpw"),
    ] {
        assert_eq!(
            login(&m, user, password).0,
            303,
            "{user} with the right password"
        );
        assert_eq!(
            login(&m, user, "nope").0,
            401,
            "{user} with a wrong password"
        );
    }
    drop(m);
    // UsersAuth: a user made with `signalbox user add`.
    let m = master(
        "usersauth",
        "auth=UsersAuth(), forceBuild='auth', showUsersPage=True",
        &[],
    );
    let dir = m.dir.path().display().to_string();
    let added = run_ok(Command::new(bin()).args([
        "user",
        "add",
        &dir,
        "--identifier",
        "Ann <ann@example.org>",
        "--username",
        "ann",
        "--password",
        "annpw",
        "--attr",
        "email=ann@example.org",
    ]));
    assert!(added.contains("uid"), "{added}");
    let listed = run_ok(Command::new(bin()).args(["user", "list", &dir]));
    assert!(
        listed.contains("ann") && !listed.contains("annpw") && !listed.contains("$2"),
        "{listed}"
    );
    assert_eq!(login(&m, "ann", "annpw").0, 303);
    assert_eq!(login(&m, "ann", "bad").0, 401);
    let table = m.get_text("users/table");
    assert!(table.contains("ann@example.org"), "{table}");
    run_ok(Command::new(bin()).args([
        "user",
        "remove",
        &dir,
        "--identifier",
        "Ann <ann@example.org>",
    ]));
    assert_eq!(login(&m, "ann", "annpw").0, 401);
    let _: Value = Value::Null;
}
