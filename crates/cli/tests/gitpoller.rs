//! A commit to a watched git repository triggers a build whose got_revision is the commit.

mod harness;

use std::time::Duration;

use harness::{databases, git, wait_for, Db, TestMaster, TestWorker};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
c['change_source'] = [GitPoller(repourl="@REPO@", branches=["master"], pollInterval=1, pollAtLaunch=True)]
f = BuildFactory()
f.addStep(Git(repourl="@REPO@", mode="full", method="clobber"))
f.addStep(ShellCommand(name="cat", command=["cat", "file.txt"]))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [SingleBranchScheduler(name="sbs", branch="master", treeStableTimer=None, builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1")]
"#;

fn commit_triggers_build(db: Db) {
    let repo = tempfile::tempdir().expect("repo dir");
    git(repo.path(), &["init", "-q", "-b", "master"]);
    std::fs::write(repo.path().join("file.txt"), "one\n").unwrap();
    git(repo.path(), &["add", "file.txt"]);
    git(repo.path(), &["commit", "-q", "-m", "first"]);
    let cfg = CFG.replace("@REPO@", &repo.path().display().to_string());
    let master = TestMaster::start(db, "git", &cfg);
    let _worker = TestWorker::start(&master, "w1", "pw1");
    // The first poll records the existing head without building it.
    wait_for(Duration::from_secs(30), "the first poll", || {
        master.log().contains("worker attached").then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(repo.path().join("file.txt"), "two\n").unwrap();
    git(repo.path(), &["commit", "-q", "-am", "second commit"]);
    let sha = git(repo.path(), &["rev-parse", "HEAD"]).trim().to_string();
    let builds = master.wait_finished_builds(1, Duration::from_secs(120));
    assert_eq!(builds[0]["results"], 0, "{builds:?}\n{}", master.log());
    let props = master.get(&format!(
        "api/v2/builds?buildid={}&property=got_revision&property=revision",
        builds[0]["buildid"]
    ));
    assert_eq!(
        props["builds"][0]["properties"]["got_revision"][0],
        sha.as_str()
    );
    assert_eq!(
        props["builds"][0]["properties"]["revision"][0],
        sha.as_str()
    );
    let changes = master.get("api/v2/changes");
    assert_eq!(changes["changes"][0]["revision"], sha.as_str());
    assert_eq!(changes["changes"][0]["comments"], "second commit");
    assert_eq!(changes["changes"][0]["author"], "Alice <alice@example.org>");
}

#[test]
fn git_commit_triggers_build() {
    for db in databases() {
        commit_triggers_build(db);
    }
}
