//! A commit to a watched Subversion repository becomes a change and a build.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{run_ok, wait_for, Db, TestMaster, TestWorker};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
c['change_source'] = SVNPoller(svnurl="@REPO@", split_file=split_file_branches, pollInterval=1, pollAtLaunch=True)
f = BuildFactory()
f.addStep(ShellCommand(name="rev", command=Interpolate("echo building r%(prop:revision)s")))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [SingleBranchScheduler(name="trunk", branch=None, builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1")]
"#;

#[test]
fn svn_commit_triggers_build() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = tmp.path().join("repo");
    run_ok(Command::new("svnadmin").arg("create").arg(&repo));
    let url = format!("file://{}", repo.display());
    let wc = tmp.path().join("wc");
    run_ok(Command::new("svn").args(["checkout", "-q", &url]).arg(&wc));
    std::fs::create_dir_all(wc.join("trunk")).unwrap();
    std::fs::write(wc.join("trunk/a.txt"), "one\n").unwrap();
    run_ok(
        Command::new("svn")
            .arg("add")
            .arg("-q")
            .arg(wc.join("trunk")),
    );
    run_ok(
        Command::new("svn")
            .args(["commit", "-q", "--username", "bob", "-m", "first"])
            .arg(&wc),
    );

    let master = TestMaster::start(Db::Sqlite, "svn", &CFG.replace("@REPO@", &url));
    let _worker = TestWorker::start(&master, "w1", "pw1");
    wait_for(Duration::from_secs(30), "the worker", || {
        master.log().contains("worker attached").then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(wc.join("trunk/a.txt"), "two\n").unwrap();
    run_ok(
        Command::new("svn")
            .args(["commit", "-q", "--username", "bob", "-m", "second <change>"])
            .arg(&wc),
    );

    let builds = master.wait_finished_builds(1, Duration::from_secs(60));
    assert_eq!(builds[0]["results"], 0, "{}", master.log());
    let changes = master.get("api/v2/changes");
    assert_eq!(
        changes["meta"]["total"], 1,
        "only the new revision is a change: {changes}"
    );
    let change = &changes["changes"][0];
    assert_eq!(change["revision"], "2");
    assert_eq!(change["author"], "bob");
    assert_eq!(change["comments"], "second <change>");
    assert_eq!(change["files"][0], "a.txt");
    assert_eq!(change["branch"], serde_json::Value::Null);
    let steps = master.get(&format!("api/v2/builds/{}/steps", builds[0]["buildid"]));
    let rev = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "rev")
        .unwrap()
        .clone();
    let logs = master.get(&format!("api/v2/steps/{}/logs", rev["stepid"]));
    let raw = master.get_text(&format!("api/v2/logs/{}/raw", logs["logs"][0]["logid"]));
    assert!(raw.contains("building r2"), "{raw}");
}
