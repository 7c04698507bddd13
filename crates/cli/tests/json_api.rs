//! The 0.8-style `/json` API against a real master and worker: the paths scripts of that era
//! read, the output flags (`as_text`, `filter`, `callback`, `select`) and `/json/help`.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{databases, send_change, Db, TestMaster, TestWorker};
use serde_json::{json, Value};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['title'] = "Json"
c['titleURL'] = "https://example.org/"
c['buildbotURL'] = "http://127.0.0.1:@WEB_PORT@/"
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="greet", command=["echo", "hello"]))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f, tags=["cat"])]
c['schedulers'] = [
    ForceScheduler(name="force", builderNames=["b"]),
    AnyBranchScheduler(name="any", builderNames=["b"]),
]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
    change_hook_dialects={'base': True}, change_hook_auth=["file:changehook.passwd"],
    authz=Authz(forceBuild=True))]
"#;

/// `curl` a path; returns (status, content type, body).
fn fetch(master: &TestMaster, path: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code} %{content_type}"])
        .arg(master.url(path))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or((&text, ""));
    let (status, content_type) = tail.split_once(' ').unwrap_or((tail, ""));
    (
        status.parse().unwrap_or(0),
        content_type.to_string(),
        body.to_string(),
    )
}

fn json_at(master: &TestMaster, path: &str) -> Value {
    let (status, _, body) = fetch(master, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn check(db: Db) {
    let master = TestMaster::start_with_files(
        db,
        "jsonapi",
        CFG,
        &[("changehook.passwd", "hooker:s3cret\n")],
    );
    let _worker = TestWorker::start(&master, "w1", "pw1");
    send_change(
        &master,
        &[
            "--who",
            "Carol <carol@example.org>",
            "--branch",
            "main",
            "--revision",
            "abc123",
            "-m",
            "a change",
            "--auth",
            "hooker:s3cret",
            "a.rs",
        ],
    );
    master.wait_finished_builds(1, Duration::from_secs(120));
    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderid": 1, "reason": "second"}),
    );
    assert_eq!(status, 200, "{reply}");
    master.wait_finished_builds(2, Duration::from_secs(120));

    let project = json_at(&master, "json/project");
    assert_eq!(project["projectName"], "Json");
    assert_eq!(project["projectURL"], "https://example.org/");

    let builders = json_at(&master, "json/builders");
    let b = &builders["b"];
    assert_eq!(b["cachedBuilds"], json!([1, 2]), "{builders}");
    assert_eq!(b["currentBuilds"], json!([]));
    assert_eq!(b["pendingBuilds"], 0);
    assert_eq!(b["slaves"], json!(["w1"]));
    assert_eq!(b["category"], "cat");
    assert_eq!(b["state"], "idle");
    assert_eq!(b["schedulers"], json!(["force", "any"]));
    assert_eq!(json_at(&master, "json/builders/b"), *b);

    // A build by number, and from the end.
    let first = json_at(&master, "json/builders/b/builds/1");
    assert_eq!(first["builderName"], "b");
    assert_eq!(first["number"], 1);
    assert_eq!(first["results"], 0);
    assert_eq!(first["slave"], "w1");
    assert_eq!(first["blame"], json!(["Carol <carol@example.org>"]));
    assert_eq!(first["sourceStamp"]["revision"], "abc123");
    assert_eq!(
        first["sourceStamp"]["changes"][0]["who"],
        "Carol <carol@example.org>"
    );
    let steps = first["steps"].as_array().cloned().unwrap_or_default();
    let greet = steps
        .iter()
        .find(|s| s["name"] == "greet")
        .unwrap_or_else(|| panic!("{first}"));
    assert_eq!(greet["results"][0], 0);
    assert_eq!(greet["isFinished"], true);
    assert_eq!(greet["logs"][0][0], "stdio");
    assert!(
        greet["logs"][0][1]
            .as_str()
            .is_some_and(|u| u.ends_with("builders/b/builds/1/steps/greet/logs/stdio")),
        "{greet}"
    );
    assert!(first["times"][0].is_i64() && first["times"][1].is_i64());
    let props = first["properties"].as_array().cloned().unwrap_or_default();
    assert!(
        props.contains(&json!(["buildnumber", 1, "Build"])),
        "{props:?}"
    );
    assert_eq!(json_at(&master, "json/builders/b/builds/-1")["number"], 2);
    assert_eq!(json_at(&master, "json/builders/b/builds/-2")["number"], 1);
    assert_eq!(
        json_at(&master, "json/builders/b/builds/1/steps/greet")["name"],
        "greet"
    );
    let last_two = json_at(&master, "json/builders/b/builds/%3C2");
    let numbers: Vec<&Value> = last_two
        .as_array()
        .map(|a| a.iter().map(|b| &b["number"]).collect())
        .unwrap_or_default();
    assert_eq!(numbers, [&json!(2), &json!(1)]);
    let recent = json_at(&master, "json/builders/b/builds");
    assert!(
        recent["2"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("second")),
        "{recent}"
    );
    assert_eq!(recent["1"]["number"], 1);

    // select: several builds, keyed by what was asked.
    let selected = json_at(&master, "json/builders/b/builds?select=1&select=-1");
    assert_eq!(selected["1"]["number"], 1);
    assert_eq!(selected["-1"]["number"], 2);
    let mixed = json_at(
        &master,
        "json?select=project&select=builders/b/builds/-1&select=nope",
    );
    assert_eq!(mixed["project"]["projectName"], "Json");
    assert_eq!(mixed["builders"]["b"]["builds"]["-1"]["number"], 2);
    assert_eq!(mixed["nope"], json!({"error": "Not available"}));

    // Slaves and changes.
    let w1 = json_at(&master, "json/slaves/w1");
    assert_eq!(w1["connected"], true);
    assert_eq!(w1["builders"]["b"], json!([1, 2]));
    assert_eq!(w1["runningBuilds"], json!([]));
    assert_eq!(json_at(&master, "json/slaves")["w1"]["name"], "w1");
    let changes = json_at(&master, "json/changes");
    assert_eq!(changes["1"]["who"], "Carol <carol@example.org>");
    assert_eq!(
        changes["1"]["files"],
        json!([{"name": "a.rs", "url": null}])
    );
    assert_eq!(json_at(&master, "json/changes/1")["revision"], "abc123");
    let root = json_at(&master, "json");
    for key in ["builders", "change_sources", "changes", "project", "slaves"] {
        assert!(root.get(key).is_some(), "{key} missing: {root}");
    }

    // Flags: as_text is indented text/plain and filtered; filter drops empty values;
    // callback wraps JSONP and refuses what is not an identifier.
    let (status, content_type, text) = fetch(&master, "json/builders/b?as_text=1");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(text.contains("\n  \"basedir\": \"b\""), "{text}");
    assert!(
        !text.contains("currentBuilds"),
        "as_text implies filter=1: {text}"
    );
    let filtered = json_at(&master, "json/builders/b?filter=1");
    assert!(filtered.get("currentBuilds").is_none(), "{filtered}");
    assert!(
        filtered.get("pendingBuilds").is_some(),
        "0 is kept: {filtered}"
    );
    let (_, content_type, jsonp) = fetch(&master, "json/project?callback=show");
    assert!(
        jsonp.starts_with("show({") && jsonp.ends_with("});"),
        "{jsonp}"
    );
    assert!(
        content_type.starts_with("application/javascript"),
        "{content_type}"
    );
    let (_, _, refused) = fetch(&master, "json/project?callback=alert(1)");
    assert!(refused.starts_with('{'), "{refused}");

    // Help, and what does not exist.
    let (status, content_type, help) = fetch(&master, "json/help");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    for documented in [
        "/json/builders/NAME/builds/N",
        "as_text=1",
        "callback=NAME",
        "select=SUBPATH",
    ] {
        assert!(help.contains(documented), "{documented} not in help");
    }
    assert_eq!(fetch(&master, "json/builders/nope").0, 404);
    assert_eq!(fetch(&master, "json/builders/b/builds/99").0, 404);
    assert_eq!(fetch(&master, "json/builders/b/builds/x").0, 404);
    assert_eq!(fetch(&master, "json/changes/abc").0, 404);
}

#[test]
fn json_api_serves_the_seed_paths_and_flags() {
    for db in databases() {
        check(db);
    }
}
