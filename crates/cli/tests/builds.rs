//! End-to-end: real master and worker processes run builds that the REST API reports, on
//! SQLite and on PostgreSQL.

mod harness;

use std::time::Duration;

use harness::{databases, Db, TestMaster, TestWorker};
use serde_json::json;

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['title'] = "test"
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}

ok = BuildFactory()
ok.addStep(ShellCommand(name="greet", command=["echo", "hello world"]))
ok.addStep(SetProperty(property="color", value=Interpolate("blue-%(prop:buildnumber)s")))
ok.addStep(ShellCommand(name="show", command=Interpolate("echo color is %(prop:color)s")))

bad = BuildFactory()
bad.addStep(ShellCommand(name="fails", command="echo oops >&2; exit 3", haltOnFailure=True))
bad.addStep(ShellCommand(name="skipped", command=["echo", "never"]))
bad.addStep(ShellCommand(name="cleanup", command=["echo", "always"], alwaysRun=True))

c['builders'] = [
    BuilderConfig(name="ok", workernames=["w1"], factory=ok),
    BuilderConfig(name="bad", workernames=["w1"], factory=bad),
]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["ok", "bad"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

fn passing_and_failing(db: Db) {
    let master = TestMaster::start(db, "pf", CFG);
    let _worker = TestWorker::start(&master, "w1", "pw1");
    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderNames": ["ok", "bad"], "reason": "testing"}),
    );
    assert_eq!(status, 200, "force failed: {reply}");
    let builds = master.wait_finished_builds(2, Duration::from_secs(120));
    let results: Vec<i64> = {
        let mut r: Vec<i64> = builds
            .iter()
            .map(|b| b["results"].as_i64().unwrap_or(-1))
            .collect();
        r.sort();
        r
    };
    assert_eq!(results, vec![0, 2], "builds: {builds:?}");

    let builders = master.get("api/v2/builders");
    assert_eq!(builders["meta"]["total"], 2);
    let ok_id = builders["builders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "ok")
        .unwrap()["builderid"]
        .as_i64()
        .unwrap();
    let ok_builds = master.get(&format!("api/v2/builders/{ok_id}/builds"));
    let ok_build = &ok_builds["builds"][0];
    assert_eq!(ok_build["number"], 1);
    assert_eq!(ok_build["results"], 0);

    let steps = master.get(&format!("api/v2/builds/{}/steps", ok_build["buildid"]));
    let names: Vec<&str> = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["worker_preparation", "greet", "SetProperty", "show"]
    );
    let show = &steps["steps"][3];
    let logs = master.get(&format!("api/v2/steps/{}/logs", show["stepid"]));
    let log_id = logs["logs"][0]["logid"].as_i64().unwrap();
    let raw = master.get_text(&format!("api/v2/logs/{log_id}/raw"));
    assert!(raw.contains("color is blue-1"), "raw log: {raw}");

    let bad_build = builds.iter().find(|b| b["results"] == 2).unwrap();
    let steps = master.get(&format!("api/v2/builds/{}/steps", bad_build["buildid"]));
    let names: Vec<(&str, i64)> = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["results"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("worker_preparation", 0), ("fails", 2), ("cleanup", 0)]
    );
}

#[test]
fn passing_and_failing_builds() {
    for db in databases() {
        passing_and_failing(db);
    }
}

#[test]
fn force_is_refused_without_authz() {
    let cfg = CFG.replace("authz=Authz(forceBuild=True)", "authz=Authz()");
    let master = TestMaster::start(Db::Sqlite, "deny", &cfg);
    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderNames": ["ok"]}),
    );
    assert_eq!(status, 403, "{reply}");
    let requests = master.get("api/v2/builds");
    assert_eq!(requests["meta"]["total"], 0);
}
