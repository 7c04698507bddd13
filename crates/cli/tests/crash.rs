//! Crash safety: `kill -9` of the master during a build loses nothing.

mod harness;

use std::time::Duration;

use harness::{databases, wait_for, Db, TestMaster, TestWorker};
use serde_json::json;

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
# The first run waits until killed; the retry finds the marker and finishes at once.
f.addStep(ShellCommand(name="slow", command="echo start; if [ -f ../marker ]; then echo retried; else touch ../marker; sleep 120; fi"))
c['builders'] = [BuilderConfig(name="slow", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["slow"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

fn kill9_during_build(db: Db) {
    let mut master = TestMaster::start(db, "crash", CFG);
    let _worker = TestWorker::start(&master, "w1", "pw1");
    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderNames": ["slow"], "reason": "crash test"}),
    );
    assert_eq!(status, 200, "{reply}");
    // Wait until the step has written its first line, so the log exists before the crash.
    wait_for(Duration::from_secs(60), "the build to start", || {
        let builds = master.get("api/v2/builds");
        let b = builds["builds"].as_array()?.first()?.clone();
        let steps = master.get(&format!("api/v2/builds/{}/steps", b["buildid"]));
        let slow = steps["steps"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "slow")?
            .clone();
        let logs = master.get(&format!("api/v2/steps/{}/logs", slow["stepid"]));
        let log = logs["logs"].as_array()?.first()?.clone();
        (log["num_lines"].as_i64()? > 0).then_some(())
    });
    master.kill9();
    master.spawn();
    let builds = master.wait_finished_builds(2, Duration::from_secs(120));
    assert_eq!(
        builds[0]["results"], 5,
        "the interrupted build is RETRY: {builds:?}"
    );
    assert_eq!(
        builds[1]["results"], 0,
        "the request ran again and passed: {builds:?}"
    );
    assert_eq!(
        builds[0]["buildrequestid"], builds[1]["buildrequestid"],
        "same request"
    );
    // The log written before the crash is still there.
    let steps = master.get(&format!("api/v2/builds/{}/steps", builds[0]["buildid"]));
    let slow = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "slow")
        .unwrap()
        .clone();
    let logs = master.get(&format!("api/v2/steps/{}/logs", slow["stepid"]));
    let raw = master.get_text(&format!("api/v2/logs/{}/raw", logs["logs"][0]["logid"]));
    assert!(raw.contains("start"), "log before the crash: {raw:?}");
}

#[test]
fn kill9_loses_nothing() {
    for db in databases() {
        kill9_during_build(db);
    }
}
