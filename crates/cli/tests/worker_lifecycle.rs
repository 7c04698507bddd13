//! Worker lifecycle end-to-end: a worker killed or cut off mid-build loses no build request, a
//! duplicate name is refused or replaces a dead connection, a stopped build kills its whole
//! process tree, and a wrong password is refused without being logged.

mod harness;

use std::io::{Read, Write};
use std::time::Duration;

use harness::{wait_for, worker_kinds, AnyWorker, Db, Relay, TestMaster, TestWorker, WorkerKind};

/// Two workers on one builder. The build never ends on w1 and passes at once on w2, so a
/// build that was running on w1 can only pass by running again on w2.
const TWO_WORKERS: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1", keepalive_interval=5), Worker("w2", "pw2")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="work", command=Interpolate(
    "echo on=%(prop:workername)s; if [ %(prop:workername)s = w1 ]; then sleep 60; fi; echo done")))
c['builders'] = [BuilderConfig(name="slow", workernames=["w1", "w2"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["slow"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
                         authz=Authz(forceBuild=True, stopBuild=True))]
"#;

/// How w1 goes away in the middle of its build.
enum Failure {
    Kill9,
    CutConnection,
}

/// Runs a build on w1, makes w1 fail, and checks that the build ended in RETRY and that the
/// same request then passed on w2.
fn lose_w1_mid_build(kind: &WorkerKind, failure: Failure) {
    let master = TestMaster::start(Db::Sqlite, "lose", TWO_WORKERS);
    let relay = Relay::start(master.worker_port);
    let port = match failure {
        Failure::Kill9 => master.worker_port,
        Failure::CutConnection => relay.port,
    };
    let mut w1 = AnyWorker::start_at(kind, port, "w1", "pw1");
    master.wait_attached("w1", Duration::from_secs(60));
    master.force("force", &["slow"]);
    wait_for(Duration::from_secs(60), "the build to run on w1", || {
        let builds = master.get("api/v2/builds");
        let id = builds["builds"][0]["buildid"].as_i64()?;
        master.step_log(id, "work").contains("on=w1").then_some(())
    });
    let w2 = AnyWorker::start_at(kind, master.worker_port, "w2", "pw2");
    master.wait_attached("w2", Duration::from_secs(60));
    match failure {
        Failure::Kill9 => w1.kill9(),
        Failure::CutConnection => relay.cut(),
    }
    let builds = master.wait_finished_builds(2, Duration::from_secs(120));
    let context = || {
        format!(
            "builds: {builds:?}\nmaster log:\n{}\nw1 log:\n{}\nw2 log:\n{}",
            master.log(),
            w1.log(),
            w2.log()
        )
    };
    assert_eq!(
        builds[0]["results"],
        5,
        "the lost build is RETRY; {}",
        context()
    );
    assert_eq!(builds[1]["results"], 0, "the retry passed; {}", context());
    assert_eq!(
        builds[0]["buildrequestid"],
        builds[1]["buildrequestid"],
        "the same request ran again; {}",
        context()
    );
    let second = builds[1]["buildid"].as_i64().expect("buildid");
    assert!(
        master.step_log(second, "work").contains("on=w2"),
        "{}",
        context()
    );
    if let Failure::CutConnection = failure {
        assert!(
            master.log().contains("did not answer a keepalive"),
            "{}",
            context()
        );
    }
}

#[test]
fn worker_killed_mid_build_retries_on_another_worker() {
    for kind in worker_kinds() {
        lose_w1_mid_build(&kind, Failure::Kill9);
    }
}

#[test]
fn connection_cut_mid_build_retries_on_another_worker() {
    for kind in worker_kinds() {
        lose_w1_mid_build(&kind, Failure::CutConnection);
    }
}

const ONE_WORKER: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1-secret-Xq7")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="where", command=Interpolate("echo basedir=%(prop:basedir)s")))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

/// Forces a build and returns the `basedir` it ran in.
fn basedir_of_next_build(master: &TestMaster, n: usize) -> String {
    master.force("force", &["b"]);
    let builds = master.wait_finished_builds(n, Duration::from_secs(60));
    let last = builds.last().expect("a build");
    assert_eq!(last["results"], 0, "{builds:?}\n{}", master.log());
    let log = master.step_log(last["buildid"].as_i64().expect("buildid"), "where");
    log.lines()
        .find_map(|l| l.split_once("basedir=").map(|(_, d)| d.trim().to_string()))
        .unwrap_or_else(|| panic!("no basedir in {log:?}"))
}

#[test]
fn duplicate_name_live_connection_wins() {
    let master = TestMaster::start(Db::Sqlite, "dup", ONE_WORKER);
    let first = TestWorker::start(&master, "w1", "pw1-secret-Xq7");
    master.wait_attached("w1", Duration::from_secs(60));
    let second = TestWorker::start(&master, "w1", "pw1-secret-Xq7");
    wait_for(
        Duration::from_secs(60),
        "the duplicate to be refused",
        || {
            master
                .log()
                .contains("refused a second connection")
                .then_some(())
        },
    );
    let basedir = basedir_of_next_build(&master, 1);
    let first_dir = std::fs::canonicalize(first.dir.path()).expect("canonical dir");
    assert_eq!(
        basedir,
        first_dir.display().to_string(),
        "the first worker kept its place; second worker log:\n{}",
        second.log()
    );
}

#[test]
fn duplicate_name_replaces_a_dead_connection() {
    let master = TestMaster::start(Db::Sqlite, "dup", ONE_WORKER);
    let relay = Relay::start(master.worker_port);
    let _first = TestWorker::start_at(relay.port, "w1", "pw1-secret-Xq7");
    master.wait_attached("w1", Duration::from_secs(60));
    relay.cut();
    let second = TestWorker::start(&master, "w1", "pw1-secret-Xq7");
    wait_for(
        Duration::from_secs(60),
        "the dead connection to be replaced",
        || {
            master
                .log()
                .contains("replacing a dead connection")
                .then_some(())
        },
    );
    master.wait_attached("w1", Duration::from_secs(60));
    let basedir = basedir_of_next_build(&master, 1);
    let second_dir = std::fs::canonicalize(second.dir.path()).expect("canonical dir");
    assert_eq!(
        basedir,
        second_dir.display().to_string(),
        "{}",
        master.log()
    );
}

const STOPPABLE: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="tree", command="sh -c 'sleep @SLEEP@ & sleep @SLEEP@'"))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
                         authz=Authz(forceBuild=True, stopBuild=True))]
"#;

fn stop_kills_the_tree(kind: &WorkerKind, sleep: &str) {
    let master = TestMaster::start(Db::Sqlite, "stop", &STOPPABLE.replace("@SLEEP@", sleep));
    let worker = AnyWorker::start_at(kind, master.worker_port, "w1", "pw1");
    master.wait_attached("w1", Duration::from_secs(60));
    let needle = format!("sleep {sleep}");
    let (builds, buildid, left) = harness::stop_build_of_two(&master, &needle);
    assert!(
        left.is_empty(),
        "processes left after stop: {left:?}\nworker log:\n{}",
        worker.log()
    );
    assert_eq!(builds[0]["results"], 6, "CANCELLED: {builds:?}");
    assert_eq!(
        master.step_results(buildid).last().map(|(_, r)| *r),
        Some(6),
        "the step is CANCELLED"
    );
}

#[test]
fn stop_build_cancels_and_kills_the_process_tree() {
    for (i, kind) in worker_kinds().iter().enumerate() {
        // A duration no other process uses, so that pgrep finds only this build's sleeps.
        let sleep = format!("300.{}{i}", std::process::id());
        stop_kills_the_tree(kind, &sleep);
    }
}

#[test]
fn wrong_password_is_refused_and_not_logged() {
    let master = TestMaster::start(Db::Sqlite, "pw", ONE_WORKER);
    // "w1:wrong-pw-Zz9" in Basic auth.
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", master.worker_port)).expect("connect");
    let request =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Authorization: Basic dzE6d3JvbmctcHctWno5\r\n\r\n";
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).expect("read status");
    assert_eq!(&answer, b"HTTP/1.1 401");

    let worker = TestWorker::start(&master, "w1", "wrong-pw-Zz9");
    wait_for(Duration::from_secs(60), "two refusals", || {
        let log = master.log();
        let refusals: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("worker refused"))
            .collect();
        (refusals.len() >= 2 && refusals.iter().all(|l| l.contains("w1"))).then_some(())
    });
    let log = master.log();
    assert!(
        !log.contains("wrong-pw-Zz9"),
        "password in master.log:\n{log}"
    );
    assert!(
        !log.contains("pw1-secret-Xq7"),
        "password in master.log:\n{log}"
    );
    assert!(
        !worker.log().contains("wrong-pw-Zz9"),
        "password in worker.log"
    );
}
