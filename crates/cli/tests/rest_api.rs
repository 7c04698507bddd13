//! Conformance of the REST API v2, JSON-RPC control and `/ws` against a real master and
//! worker, on SQLite and PostgreSQL: the requests of spec §13, the result-spec rules of §5
//! and the error shapes of §6.

mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use harness::{databases, wait_for, Db, TestMaster, TestWorker};
use serde_json::{json, Value};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['title'] = "rest"
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}

ok = BuildFactory()
ok.addStep(ShellCommand(name="greet", command=["echo", "hello world"]))
slow = BuildFactory()
slow.addStep(ShellCommand(name="wait", command=["sleep", "60"]))

c['builders'] = [
    BuilderConfig(name="ok", workernames=["w1"], factory=ok, tags=["fast"]),
    BuilderConfig(name="slow", workernames=["w1"], factory=slow),
]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["ok", "slow"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
    authz=Authz(forceBuild=True, stopBuild=True, cancelPendingBuild=True, pauseSlave=True,
                gracefulShutdown=True, forceAllBuilds=True))]
"#;

/// `curl` a URL; returns (status, content type, body).
fn http(master: &TestMaster, method: &str, path: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-X",
            method,
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{content_type}",
        ])
        .arg(master.url(path))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').expect("status line");
    let (status, content_type) = tail.split_once(' ').unwrap_or((tail, ""));
    (
        status.parse().expect("status code"),
        content_type.to_string(),
        body.to_string(),
    )
}

/// Status and body text of a GET.
fn get_status(master: &TestMaster, path: &str) -> (u16, String) {
    let (status, _, body) = http(master, "GET", path);
    (status, body)
}

fn ids(v: &Value, plural: &str, id: &str) -> Vec<i64> {
    v[plural]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|item| item[id].as_i64())
        .collect()
}

fn conformance(db: Db) {
    let master = TestMaster::start(db, "rest", CFG);
    let _worker = TestWorker::start(&master, "w1", "pw1");
    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderid": 1, "reason": "first"}),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"], json!([1, {"1": 1}]));
    master.wait_finished_builds(1, Duration::from_secs(120));
    master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderNames": ["ok"], "reason": "second"}),
    );
    master.wait_finished_builds(2, Duration::from_secs(120));

    // §13 Home, Builders, Builder, Build, Log, Build request, Workers, Changes, Masters,
    // Schedulers, Projects: every request answers 200 with the envelope.
    let ui_requests = [
        "api/v2/builds?order=-started_at&complete=false",
        "api/v2/builds?order=-buildid&complete=true&limit=5",
        "api/v2/builders",
        "api/v2/masters",
        "api/v2/workers",
        "api/v2/builds?limit=5&order=-started_at&builderid__eq=1&builderid__eq=2&property=branch",
        "api/v2/builders/1",
        "api/v2/builds?builderid=1&property=owners&property=workername&property=branch&property=revision&limit=5&order=-number",
        "api/v2/buildrequests?builderid=1&claimed=false",
        "api/v2/builders/1/forceschedulers?order=name",
        "api/v2/builders/1/workers?order=name",
        "api/v2/builds?builderid=1&number__eq=1&number__eq=2&number__eq=3",
        "api/v2/buildrequests/1",
        "api/v2/buildsets/1",
        "api/v2/builds/1/properties",
        "api/v2/workers/1",
        "api/v2/buildsets?rebuilt_buildid=1&bsid__gt=0&limit=1&order=-bsid",
        "api/v2/buildrequests?buildsetid=1&limit=1&order=-buildsetid",
        "api/v2/builds/1/changes?limit=5",
        "api/v2/builds/1/changes?field=author",
        "api/v2/builds/1/steps",
        "api/v2/steps/2/logs",
        "api/v2/logs/1/contents?offset=0&limit=2",
        "api/v2/builds?builderid=1&workerid=1&number__lt=2&order=-number&limit=5",
        "api/v2/builds/1/steps?number__eq=1",
        "api/v2/steps/2/logs?slug__eq=stdio",
        "api/v2/buildsets/1/properties",
        "api/v2/builds?buildrequestid__eq=1",
        "api/v2/buildrequests?limit=5&order=-priority&order=-submitted_at&claimed=false",
        "api/v2/buildrequests/1/properties",
        "api/v2/workers?order=name",
        "api/v2/builds?property=owners&limit=5&order=-buildid&workerid=1",
        "api/v2/builds?property=owners&workerid__eq=1&limit=5&order=-buildid",
        "api/v2/workers/1/builders?order=name",
        "api/v2/changes?limit=5&order=-changeid",
        "api/v2/builds?limit=100&order=-started_at",
        "api/v2/schedulers?order=name",
        "api/v2/projects?active=true",
        "api/v2/changes?limit=5&project__eq=p&order=-changeid",
    ];
    for path in ui_requests {
        let (status, body) = get_status(&master, path);
        assert_eq!(status, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).expect("JSON");
        assert!(v.get("meta").is_some(), "{path}: {body}");
    }

    // Path forms of §7: locators by name and number.
    let step = master.get("api/v2/builders/ok/builds/1/steps/greet");
    assert_eq!(step["steps"][0]["number"], 1);
    let by_number = master.get("api/v2/builders/1/builds/1/steps/1");
    assert_eq!(by_number["steps"][0]["name"], "greet");
    let log = master.get("api/v2/builders/1/builds/1/steps/greet/logs/stdio");
    assert_eq!(log["logs"][0]["slug"], "stdio");
    let logid = log["logs"][0]["logid"].as_i64().expect("logid");
    let chunk = master.get(&format!("api/v2/logs/{logid}/contents?offset=0&limit=1"));
    assert!(
        chunk["logchunks"][0]["content"]
            .as_str()
            .is_some_and(|c| c.starts_with('h') && c.matches('\n').count() == 1),
        "{chunk}"
    );
    let raw = master.get_text("api/v2/builders/1/builds/1/steps/greet/logs/stdio/raw");
    assert!(
        raw.starts_with("Builder: ok\nBuild number: 1\nWorker name: w1\n"),
        "{raw}"
    );
    assert!(raw.contains("\nhello world\n"), "{raw}");
    let inline = master.get_text(&format!("api/v2/logs/{logid}/raw_inline"));
    assert_eq!(inline, raw);
    assert_eq!(master.get("api/v2/workers/w1")["workers"][0]["name"], "w1");
    assert_eq!(master.get("api/v2/masters/1/builders")["meta"]["total"], 2);
    assert_eq!(master.get("api/v2/builders/1/masters")["meta"]["total"], 1);
    // Both forced builds share one source stamp (deduplicated by hash).
    assert_eq!(master.get("api/v2/sourcestamps")["meta"]["total"], 1);
    assert_eq!(
        master.get("api/v2/buildsets/1/sourcestamps")["meta"]["total"],
        1
    );
    let forced = master.get("api/v2/forceschedulers/force");
    assert_eq!(
        forced["forceschedulers"][0]["builder_names"],
        json!(["ok", "slow"])
    );
    let props = master.get("api/v2/builds?property=owner");
    assert_eq!(
        props["builds"][0]["properties"]["owner"][1],
        "Force Build Form"
    );
    let requests = master.get("api/v2/buildrequests?property=reason&order=buildrequestid");
    assert_eq!(
        requests["buildrequests"][0]["properties"]["reason"][0],
        "first"
    );
    assert_eq!(requests["buildrequests"][0]["results"], 0);

    // §5: field, order with several keys, limit, offset, operators, repeated values.
    let page = master.get("api/v2/builds?order=-buildid&limit=1&offset=1&field=buildid");
    assert_eq!(
        page,
        json!({"builds": [{"buildid": 1}], "meta": {"total": 2}})
    );
    let multi =
        master.get("api/v2/builds?order=builderid&order=-number&field=number&field=builderid");
    assert_eq!(
        multi["builds"],
        json!([{"builderid": 1, "number": 2}, {"builderid": 1, "number": 1}])
    );
    let operators = [
        ("buildid__ne=1", vec![2]),
        ("buildid__lt=2", vec![1]),
        ("buildid__le=2", vec![1, 2]),
        ("buildid__gt=1", vec![2]),
        ("buildid__ge=1", vec![1, 2]),
        ("buildid__in=2", vec![2]),
        ("buildid__notin=2", vec![1]),
        ("buildid=1&buildid=2", vec![1, 2]),
        ("buildid__lt=2&buildid__lt=3", vec![1, 2]),
        ("state_string__contains=success", vec![1, 2]),
        ("complete=yes", vec![1, 2]),
        ("complete=0", vec![]),
        ("number__xx=1", vec![1, 2]),
    ];
    for (query, expected) in operators {
        let v = master.get(&format!("api/v2/builds?{query}&order=buildid"));
        assert_eq!(ids(&v, "builds", "buildid"), expected, "{query}");
    }
    let tagged = master.get("api/v2/builders?tags__contains=fast");
    assert_eq!(ids(&tagged, "builders", "builderid"), vec![1]);
    let builds_total = master.get("api/v2/builds?limit=1");
    assert_eq!(
        builds_total["meta"]["total"], 2,
        "meta.total is the real total"
    );

    // §6 and §4: errors and their exact shapes.
    let errors = [
        ("api/v2/builds?limit=x", 400, r#"{"error":"invalid limit"}"#),
        (
            "api/v2/builds?offset=x",
            400,
            r#"{"error":"invalid offset"}"#,
        ),
        (
            "api/v2/builds?order=nope",
            400,
            r#"{"error":"no such field 'nope'"}"#,
        ),
        (
            "api/v2/builds?field=nope",
            400,
            r#"{"error":"no such field 'nope'"}"#,
        ),
        (
            "api/v2/builds?bogus=1",
            400,
            r#"{"error":"unrecognized query parameter 'bogus'"}"#,
        ),
        (
            "api/v2/builds?complete=maybe",
            400,
            r#"{"error":"invalid filter value for complete"}"#,
        ),
        (
            "api/v2/builds?field=number&order=buildid",
            400,
            r#"{"error":"cannot order on un-selected fields"}"#,
        ),
        (
            "api/v2/builds?field=number&buildid=1",
            400,
            r#"{"error":"cannot filter on un-selected fields"}"#,
        ),
        (
            "api/v2/builds/1?buildid=1",
            400,
            r#"{"error":"this is not a collection"}"#,
        ),
        (
            "api/v2/builds/",
            404,
            r#"{"error":"Invalid path: builds/"}"#,
        ),
        (
            "api/v2/nothing",
            404,
            r#"{"error":"Invalid path: nothing"}"#,
        ),
        (
            "api/v2/builds/999",
            404,
            r#"{"error":"not found while getting from builds/999"}"#,
        ),
        (
            "api/v2/logs/1/contents?offset=100000",
            404,
            r#"{"error":"not found while getting from logs/1/contents"}"#,
        ),
    ];
    for (path, status, body) in errors {
        let (got_status, content_type, got_body) = http(&master, "GET", path);
        let got: Value = serde_json::from_str(&got_body).expect("JSON error");
        assert_eq!(
            (got_status, got.to_string()),
            (status, body.to_string()),
            "{path}"
        );
        assert_eq!(content_type, "text/plain; charset=utf-8", "{path}");
    }
    assert_eq!(http(&master, "DELETE", "api/v2/builds").0, 400);
    assert_eq!(http(&master, "HEAD", "api/v2/builds").0, 200);
    assert_eq!(master.get("api/v2/builds/999/steps")["steps"], json!([]));

    // §8 JSON-RPC: envelope errors.
    let (status, reply) = master.rpc("api/v2/builds/1", "nope", json!({}));
    assert_eq!(
        (status, reply["error"]["code"].clone()),
        (501, json!(-32601))
    );
    let (status, reply) = master.rpc("api/v2/nowhere/1", "stop", json!({}));
    assert_eq!(
        (status, reply["error"]["code"].clone()),
        (404, json!(-32600))
    );
    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderNames": ["ok"], "priority": "high"}),
    );
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], -32602);
    assert!(reply["error"]["message"]["priority"].is_string(), "{reply}");

    // Live events: subscribe before a build starts, then watch it happen.
    let mut ws = WsClient::connect(master.web_port);
    assert_eq!(
        ws.command(r#"{"cmd":"ping","_id":1}"#),
        json!({"msg":"pong","code":200,"_id":1})
    );
    assert_eq!(
        ws.command(r#"{"cmd":"startConsuming","path":"builds/*/*","_id":2}"#),
        json!({"msg":"OK","code":200,"_id":2})
    );
    let (_, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderNames": ["slow"]}),
    );
    let brid = reply["result"][1]["2"].as_i64().expect("request id");
    let new_build = ws.event_until(|k| k.ends_with("/new"));
    let buildid = new_build["m"]["buildid"].as_i64().expect("build id");
    assert_eq!(new_build["k"], format!("builds/{buildid}/new"));

    // Control: stop, rebuild, cancel, priority, workers, schedulers.
    let (status, _) = master.rpc(
        &format!("api/v2/builds/{buildid}"),
        "stop",
        json!({"reason": "t"}),
    );
    assert_eq!(status, 200);
    let finished = ws.event_until(|k| k.ends_with("/finished"));
    assert_eq!(finished["m"]["results"], 6, "{finished}");
    // The request completes after the build's `finished` event (upstream order).
    wait_for(Duration::from_secs(60), "the stopped request", || {
        let request = master.get(&format!("api/v2/buildrequests/{brid}"));
        (request["buildrequests"][0]["results"] == 6).then_some(())
    });
    let (status, reply) = master.rpc("api/v2/builds/1", "rebuild", json!({}));
    assert_eq!(status, 200, "{reply}");
    let bsid = reply["result"][0].as_i64().expect("bsid");
    let rebuilt = master.get(&format!("api/v2/buildsets/{bsid}"));
    assert_eq!(rebuilt["buildsets"][0]["rebuilt_buildid"], 1);
    assert_eq!(rebuilt["buildsets"][0]["reason"], "rebuild");

    let (status, _) = master.rpc(
        "api/v2/workers/w1",
        "pause",
        json!({"reason": "maintenance"}),
    );
    assert_eq!(status, 200);
    let worker = master.get("api/v2/workers/1");
    assert_eq!(worker["workers"][0]["paused"], true);
    assert_eq!(worker["workers"][0]["pause_reason"], "maintenance");
    let (_, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderNames": ["slow"]}),
    );
    let pending = reply["result"][1]["2"].as_i64().expect("request id");
    let (status, _) = master.rpc(
        &format!("api/v2/buildrequests/{pending}"),
        "set_priority",
        json!({"priority": 7}),
    );
    assert_eq!(status, 200);
    let (status, _) = master.rpc(
        &format!("api/v2/buildrequests/{pending}"),
        "cancel",
        json!({}),
    );
    assert_eq!(status, 200);
    let cancelled = master.get(&format!("api/v2/buildrequests/{pending}"));
    assert_eq!(cancelled["buildrequests"][0]["results"], 6, "{cancelled}");
    assert_eq!(cancelled["buildrequests"][0]["priority"], 7, "{cancelled}");
    let (status, _) = master.rpc("api/v2/workers/1", "unpause", json!({}));
    assert_eq!(status, 200);
    assert_eq!(
        master.get("api/v2/workers/1")["workers"][0]["paused"],
        false
    );
    let (status, _) = master.rpc("api/v2/schedulers/1", "enable", json!({"enabled": false}));
    assert_eq!(status, 200);
    assert_eq!(
        master.get("api/v2/schedulers/1")["schedulers"][0]["enabled"],
        false
    );
    let (status, _) = master.rpc("api/v2/schedulers/1", "enable", json!({"enabled": "no"}));
    assert_eq!(status, 400);

    // SSE: the handshake comes first.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-N",
            "--max-time",
            "2",
            &master.url("sse/listen/builds/*/*"),
        ])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("event: handshake\ndata: "), "{text}");

    let openapi = master.get("api/v2/openapi.json");
    assert_eq!(openapi["openapi"], "3.0.3");
}

#[test]
fn rest_api_conformance() {
    for db in databases() {
        conformance(db);
    }
}

const DENY_CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(command=["true"]))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(view=False))]
"#;

/// The default policy denies control; `view=False` denies reads, `/ws` and SSE alike.
#[test]
fn default_policy_denies() {
    let master = TestMaster::start(Db::Sqlite, "deny", DENY_CFG);
    let (status, reply) = master.rpc("api/v2/forceschedulers/force", "force", json!({}));
    assert_eq!(status, 403, "{reply}");
    // The access-control work words the denial for people; the upstream phrase stays in it.
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("you need to have role 'forceBuild'")),
        "{reply}"
    );
    assert_eq!(get_status(&master, "api/v2/builders").0, 403);
    assert_eq!(get_status(&master, "sse/listen").0, 403);
    assert_eq!(get_status(&master, "ws").0, 403);
}

/// A minimal WebSocket client (text frames, masked as RFC 6455 requires of clients).
struct WsClient {
    stream: TcpStream,
}

impl WsClient {
    fn connect(port: u16) -> WsClient {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("handshake");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("handshake reply");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        WsClient { stream }
    }

    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        let mask = [1u8, 2, 3, 4];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).expect("send frame");
    }

    fn receive(&mut self) -> Value {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).expect("frame head");
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).expect("len");
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).expect("len");
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).expect("payload");
        serde_json::from_slice(&payload).expect("JSON frame")
    }

    /// Sends a command and returns its reply, skipping events.
    fn command(&mut self, text: &str) -> Value {
        self.send(text);
        loop {
            let frame = self.receive();
            if frame.get("code").is_some() {
                return frame;
            }
        }
    }

    /// The first event whose key satisfies `want`.
    fn event_until(&mut self, want: impl Fn(&str) -> bool) -> Value {
        wait_for(Duration::from_secs(120), "an event", || {
            let frame = self.receive();
            let key = frame["k"].as_str().unwrap_or("").to_string();
            want(&key).then_some(frame)
        })
    }
}
