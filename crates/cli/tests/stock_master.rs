//! Interop: our worker (`signalbox worker`) attaches to the stock Buildbot 4.3.0 master over
//! `msgpack_experimental_v7` and runs a build there. This proves that our worker talks the real
//! protocol, not only our own dialect of it.
//!
//! The stock master has no web here; a Periodic scheduler starts builds, and the test reads the
//! master's `state.sqlite` with Python's sqlite3 module.

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harness::{bin, free_port, run_ok, wait_for};

/// The stock master's config. Its msgpack listener only takes an integer port and binds every
/// interface; the patch below makes it listen on 127.0.0.1 only (spec §11).
const STOCK_CFG: &str = r#"
from buildbot.plugins import schedulers, steps, util, worker
from buildbot.worker.protocols.manager import msgpack as msgpack_manager
from twisted.application import strports


def listen_on_loopback(self):
    return strports.listen(self.portstr + ":interface=127.0.0.1", self.serverFactory)


msgpack_manager.Dispatcher.start_listening_port = listen_on_loopback

c = BuildmasterConfig = {}
c['title'] = "stock"
c['buildbotNetUsageData'] = None
c['protocols'] = {'msgpack_experimental_v7': {'port': @PORT@}}
c['workers'] = [worker.Worker("ours", "pass-ours")]
c['db'] = {'db_url': "sqlite:///state.sqlite"}
c['logCompressionMethod'] = 'raw'

f = util.BuildFactory()
f.addStep(steps.ShellCommand(name="hello", command=["sh", "-c", "echo stock-master-says-hi; echo on-stderr >&2"]))
f.addStep(steps.ShellCommand(name="write", command=["sh", "-c", "printf 'uploaded by ours\\n' > out.txt"]))
f.addStep(steps.FileUpload(workersrc="out.txt", masterdest="up.txt"))
c['builders'] = [util.BuilderConfig(name="b1", workernames=["ours"], factory=f)]
c['schedulers'] = [schedulers.Periodic(name="every-second", builderNames=["b1"], periodicBuildTimer=1)]
"#;

/// Python that prints `results` of finished builds, one per line, then the stdio log text of
/// the first successful build's `hello` step after a `---` line.
const QUERY: &str = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (results,) in db.execute("select results from builds where complete_at is not null order by id"):
    print(results)
print("---")
row = db.execute(
    "select b.id from builds b where b.results = 0 order by b.id limit 1").fetchone()
if row:
    for (content,) in db.execute(
            "select lc.content from logchunks lc join logs l on l.id = lc.logid "
            "join steps s on s.id = l.stepid where s.buildid = ? and s.name = 'hello' "
            "and l.name = 'stdio' order by lc.first_line", (row[0],)):
        sys.stdout.write(content if isinstance(content, str) else content.decode("utf-8", "replace"))
"#;

/// The stock `buildbot` executable from `scripts/test`'s venv, or `None` with a skip line.
fn stock_master_bin() -> Option<PathBuf> {
    match std::env::var_os("SIGNALBOX_BUILDBOT") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!(
                "SIGNALBOX_BUILDBOT not set: runs against the stock Buildbot master skipped (scripts/test sets it)"
            );
            None
        }
    }
}

/// A process killed when the test ends, whatever happens.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Process {
    let file = std::fs::File::create(log).expect("create log");
    let child = cmd
        .stdout(file.try_clone().expect("dup log"))
        .stderr(file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Process(child)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn our_worker_runs_a_build_on_the_stock_master() {
    let Some(buildbot) = stock_master_bin() else {
        return;
    };
    let python = buildbot.with_file_name("python");
    let tmp = tempfile::tempdir().expect("temp dir");
    let master_dir = tmp.path().join("master");
    let port = free_port();
    run_ok(
        Command::new(&buildbot)
            .args(["create-master", "-q", "-r"])
            .arg(&master_dir),
    );
    std::fs::write(
        master_dir.join("master.cfg"),
        STOCK_CFG.replace("@PORT@", &port.to_string()),
    )
    .expect("write master.cfg");
    let master_log = tmp.path().join("master.out");
    let _master = spawn_logged(
        Command::new(&buildbot)
            .args(["start", "--nodaemon"])
            .arg(&master_dir),
        &master_log,
    );
    let twistd_log = master_dir.join("twistd.log");
    wait_for(
        Duration::from_secs(120),
        "the stock master to listen",
        || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()
                .then_some(())
        },
    );

    let worker_dir = tmp.path().join("worker");
    run_ok(
        Command::new(bin())
            .args(["worker", "create"])
            .arg(&worker_dir)
            .arg(format!("127.0.0.1:{port}"))
            .args(["ours", "pass-ours"]),
    );
    let worker_log = tmp.path().join("worker.out");
    let _worker = spawn_logged(
        Command::new(bin())
            .args(["worker", "start", "--nodaemon"])
            .arg(&worker_dir),
        &worker_log,
    );

    let context = || {
        format!(
            "stock master log:\n{}\n{}\nour worker log:\n{}\n{}",
            read(&master_log),
            read(&twistd_log),
            read(&worker_log),
            read(&worker_dir.join("worker.log")),
        )
    };
    let db = master_dir.join("state.sqlite");
    let query = || {
        let out = Command::new(&python)
            .arg("-c")
            .arg(QUERY)
            .arg(&db)
            .output()
            .expect("run python");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let report = loop {
        let report = query();
        let (results, _) = report.split_once("---").unwrap_or((&report, ""));
        if results.lines().any(|r| r.trim() == "0") {
            break report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no successful build on the stock master; results so far: {results:?}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let (results, log) = report.split_once("---").unwrap_or((&report, ""));
    let first = results.lines().next().unwrap_or_default().trim();
    assert_eq!(
        first,
        "0",
        "the first build passes: {results:?}\n{}",
        context()
    );
    assert!(
        log.contains("stock-master-says-hi") && log.contains("on-stderr"),
        "step log: {log:?}\n{}",
        context()
    );
    assert_eq!(
        read(&master_dir.join("up.txt")),
        "uploaded by ours\n",
        "{}",
        context()
    );
}
