//! Schedulers on a real master: tree-stable timers, fileIsImportant, per-branch builds,
//! Periodic, and collapsing of pending requests.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{bin, run_ok, wait_for, Db, TestMaster, TestWorker};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1", max_builds=1)]
c['db'] = {'db_url': "@DB_URL@"}

def important(change):
    return any([not f.endswith('.md') for f in change['files']])

f = BuildFactory()
f.addStep(ShellCommand(name="rev", command=Interpolate("echo %(prop:branch)s %(prop:revision)s")))
c['builders'] = [
    BuilderConfig(name="stable", workernames=["w1"], factory=f),
    BuilderConfig(name="perbranch", workernames=["w1"], factory=f),
]
c['schedulers'] = [
    SingleBranchScheduler(name="main", change_filter=ChangeFilter(branch="main"), treeStableTimer=2,
                          fileIsImportant=important, builderNames=["stable"]),
    AnyBranchScheduler(name="any", change_filter=ChangeFilter(branch_re="^feat/"), builderNames=["perbranch"]),
]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", change_hook_dialects={'base': True})]
"#;

fn send(master: &TestMaster, branch: &str, revision: &str, files: &[&str]) {
    run_ok(
        Command::new(bin())
            .args([
                "sendchange",
                "--master",
                &master.url(""),
                "--who",
                "dev",
                "--branch",
                branch,
                "--revision",
                revision,
            ])
            .args(files),
    );
}

fn revisions(master: &TestMaster, builder: &str) -> Vec<String> {
    let builds = master.get(&format!(
        "api/v2/builders/{builder}/builds?property=revision&order=number&complete=true"
    ));
    builds["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b["properties"]["revision"][0]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn change_schedulers() {
    let master = TestMaster::start(Db::Sqlite, "sched", CFG);
    let _worker = TestWorker::start(&master, "w1", "pw1");
    wait_for(Duration::from_secs(30), "the worker", || {
        master.log().contains("worker attached").then_some(())
    });
    // Three quick changes on main: one build of the last, after the tree is stable.
    send(&master, "main", "r1", &["a.c"]);
    send(&master, "main", "r2", &["b.c"]);
    send(&master, "main", "r3", &["c.c"]);
    // Unimportant (docs only) and other-branch changes do not build `stable`.
    wait_for(Duration::from_secs(30), "the stable build", || {
        (revisions(&master, "stable") == ["r3"]).then_some(())
    });
    send(&master, "main", "r4", &["README.md"]);
    send(&master, "feat/x", "x1", &["a.c"]);
    send(&master, "feat/y", "y1", &["a.c"]);
    send(&master, "other", "o1", &["a.c"]);
    wait_for(Duration::from_secs(30), "per-branch builds", || {
        let mut revs = revisions(&master, "perbranch");
        revs.sort();
        (revs == ["x1", "y1"]).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        revisions(&master, "stable"),
        ["r3"],
        "docs-only change did not build"
    );
    assert_eq!(
        master.get("api/v2/changes")["meta"]["total"],
        7,
        "every change is recorded"
    );
}

const PERIODIC: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(command=["true"]))
c['builders'] = [BuilderConfig(name="tick", workernames=["w1"], factory=f)]
c['schedulers'] = [Periodic(name="often", builderNames=["tick"], periodicBuildTimer=1)]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1")]
"#;

#[test]
fn periodic_builds_and_collapses_while_no_worker() {
    let master = TestMaster::start(Db::Sqlite, "periodic", PERIODIC);
    // With no worker, requests pile up; when one attaches they collapse into one build.
    wait_for(Duration::from_secs(30), "pending requests", || {
        let r = master.get("api/v2/buildrequests?claimed=false");
        (r["meta"]["total"].as_i64()? >= 3).then_some(())
    });
    let _worker = TestWorker::start(&master, "w1", "pw1");
    let builds = master.wait_finished_builds(1, Duration::from_secs(30));
    assert_eq!(builds[0]["results"], 0);
    let first = master.get("api/v2/buildrequests?complete=true&claimed=true");
    assert!(
        first["meta"]["total"].as_i64().unwrap() >= 3,
        "the collapsed requests completed with the first build: {first}"
    );
}

const NEXT_WORKER: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1"), Worker("w2", "pw2")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(command=["true"]))
def pick(builder, workers, request):
    if 'w2' in workers:
        return 'w2'
    return None
def never_collapse(master, builder, req1, req2):
    return False
c['builders'] = [BuilderConfig(name="b", workernames=["w1", "w2"], factory=f, nextWorker=pick, collapseRequests=never_collapse)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

#[test]
fn next_worker_and_collapse_functions() {
    let master = TestMaster::start(Db::Sqlite, "nextworker", NEXT_WORKER);
    // Three requests before any worker: the function refuses to collapse them.
    for _ in 0..3 {
        let (status, reply) = master.rpc(
            "api/v2/forceschedulers/force",
            "force",
            serde_json::json!({}),
        );
        assert_eq!(status, 200, "{reply}");
    }
    let _w1 = TestWorker::start(&master, "w1", "pw1");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        master.get("api/v2/builds")["meta"]["total"],
        0,
        "nextWorker declined w1"
    );
    let _w2 = TestWorker::start(&master, "w2", "pw2");
    let builds = master.wait_finished_builds(3, Duration::from_secs(60));
    let workers = master.get("api/v2/workers?name=w2");
    let w2 = workers["workers"][0]["workerid"].clone();
    assert!(
        builds.iter().all(|b| b["workerid"] == w2),
        "every build ran on w2: {builds:?}"
    );
}
