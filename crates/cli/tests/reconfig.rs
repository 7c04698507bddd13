//! `signalbox reconfig`: running builds continue; added and removed builders take effect.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{bin, run_ok, wait_for, Db, TestMaster, TestWorker};
use serde_json::json;

const BEFORE: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1", max_builds=2)]
c['db'] = {'db_url': "@DB_URL@"}
slow = BuildFactory()
slow.addStep(ShellCommand(name="slow", command="sleep 4; echo slow done"))
c['builders'] = [BuilderConfig(name="old", workernames=["w1"], factory=slow)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["old"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

const AFTER: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1", max_builds=2)]
c['db'] = {'db_url': "@DB_URL@"}
quick = BuildFactory()
quick.addStep(ShellCommand(name="quick", command=["echo", "new builder"]))
c['builders'] = [BuilderConfig(name="new", workernames=["w1"], factory=quick)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["new"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

#[test]
fn reconfig_keeps_running_builds() {
    let master = TestMaster::start(Db::Sqlite, "reconfig", BEFORE);
    let _worker = TestWorker::start(&master, "w1", "pw1");
    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderNames": ["old"]}),
    );
    assert_eq!(status, 200, "{reply}");
    wait_for(Duration::from_secs(30), "the slow build to start", || {
        let b = master.get("api/v2/builds");
        (b["meta"]["total"] == 1).then_some(())
    });
    let cfg = AFTER
        .replace("@WORKER_PORT@", &master.worker_port.to_string())
        .replace("@WEB_PORT@", &master.web_port.to_string())
        .replace("@DB_URL@", &master.db_url);
    std::fs::write(master.dir.path().join("master.cfg"), cfg).unwrap();
    run_ok(Command::new(bin()).arg("reconfig").arg(master.dir.path()));
    wait_for(Duration::from_secs(30), "the reconfig", || {
        master
            .log()
            .contains("configuration reloaded")
            .then_some(())
    });

    let builders = master.get("api/v2/builders");
    let by_name = |name: &str| {
        builders["builders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        by_name("old")["masterids"],
        json!([]),
        "removed builder is no longer on this master"
    );
    assert_eq!(by_name("new")["masterids"].as_array().unwrap().len(), 1);

    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"builderNames": ["new"]}),
    );
    assert_eq!(status, 200, "{reply}");
    let builds = master.wait_finished_builds(2, Duration::from_secs(60));
    assert!(
        builds.iter().all(|b| b["results"] == 0),
        "the running build finished and the new builder built: {builds:?}\n{}",
        master.log()
    );
}
