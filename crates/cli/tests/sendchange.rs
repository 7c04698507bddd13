//! `signalbox sendchange` posts to the `base` hook; the change triggers a build.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{bin, Db, TestMaster, TestWorker};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="rev", command=Interpolate("echo %(prop:branch)s@%(prop:revision)s")))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [AnyBranchScheduler(name="any", builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", change_hook_dialects={'base': True}, change_hook_auth=["file:changehook.passwd"])]
"#;

#[test]
fn sendchange_records_change_and_builds() {
    // change_hook_auth names a file relative to the master directory.
    let master = TestMaster::start_with_files(
        Db::Sqlite,
        "sendchange",
        CFG,
        &[("changehook.passwd", "hooker:s3cret\n")],
    );
    let _worker = TestWorker::start(&master, "w1", "pw1");
    let send = |auth: &str| {
        Command::new(bin())
            .args([
                "sendchange",
                "--master",
                &master.url(""),
                "--who",
                "Carol <carol@example.org>",
                "--branch",
                "feature",
                "--revision",
                "abc123",
            ])
            .args([
                "-m",
                "add <b>things</b>",
                "--repository",
                "https://example.org/repo.git",
                "--project",
                "proj",
                "--property",
                "ticket:42",
            ])
            .args(["--auth", auth, "src/a.rs", "README"])
            .output()
            .expect("run sendchange")
    };
    let refused = send("hooker:wrong");
    assert!(!refused.status.success(), "wrong password must be refused");
    assert_eq!(
        master.get("api/v2/changes")["meta"]["total"],
        0,
        "a refused request records nothing"
    );
    let out = send("hooker:s3cret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changes = master.get("api/v2/changes");
    let c = &changes["changes"][0];
    assert_eq!(c["author"], "Carol <carol@example.org>");
    assert_eq!(c["branch"], "feature");
    assert_eq!(c["revision"], "abc123");
    assert_eq!(c["comments"], "add <b>things</b>");
    assert_eq!(c["files"], serde_json::json!(["src/a.rs", "README"]));
    assert_eq!(c["project"], "proj");
    assert_eq!(c["properties"]["ticket"][0], "42");
    let builds = master.wait_finished_builds(1, Duration::from_secs(60));
    assert_eq!(builds[0]["results"], 0, "{}", master.log());
}

#[test]
fn hooks_are_off_unless_enabled() {
    let cfg = CFG.replace(
        "change_hook_dialects={'base': True}, change_hook_auth=[\"file:changehook.passwd\"]",
        "",
    );
    let master = TestMaster::start(Db::Sqlite, "nohook", &cfg);
    let out = Command::new(bin())
        .args(["sendchange", "--master", &master.url(""), "--who", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not enabled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
