//! End-to-end: one build that uses every kind of step (ShellCommand, Git, FileUpload,
//! FileDownload, StringDownload, Trigger) runs on the stock `buildbot-worker` 4.3.0 and on our
//! own worker, against a real master, on SQLite and on PostgreSQL.
//!
//! The worker-side effects of downloads are checked through the worker itself: a following
//! ShellCommand prints the file (or its checksum), and the test reads that step's log via REST.

mod harness;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::{databases, git, stock_worker_bin, Db, StockWorker, TestMaster, TestWorker};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}

main = BuildFactory()
main.addStep(Git(repourl="@REPO@", mode="full", method="clobber"))
main.addStep(ShellCommand(name="from-git", command=["cat", "hello.txt"]))
main.addStep(ShellCommand(name="exit3", command="echo to-stdout; echo to-stderr >&2; exit 3",
                          flunkOnFailure=False))
main.addStep(ShellCommand(name="make-big", command="seq 1 100000 > big.txt"))
main.addStep(FileUpload(workersrc="big.txt", masterdest="uploads/big.txt"))
main.addStep(FileDownload(mastersrc="tool.bin", workerdest="tools/tool.bin", mode=0o750))
main.addStep(ShellCommand(name="check-download", command="sha256sum tools/tool.bin; stat -c mode=%a tools/tool.bin"))
main.addStep(StringDownload(Interpolate("built on %(prop:workername)s\n"), workerdest="notes/str.txt"))
main.addStep(ShellCommand(name="check-string", command=["cat", "notes/str.txt"]))
main.addStep(Trigger(schedulerNames=["trig"], waitForFinish=True))

child = BuildFactory()
child.addStep(ShellCommand(name="child-step", command=["echo", "child ran"]))

c['builders'] = [
    BuilderConfig(name="main", workernames=["w1"], factory=main),
    BuilderConfig(name="child", workernames=["w1"], factory=child),
]
c['schedulers'] = [
    ForceScheduler(name="force", builderNames=["main"]),
    schedulers.Triggerable(name="trig", builderNames=["child"]),
]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

/// Which worker runs the build.
enum Worker<'a> {
    Stock(&'a Path),
    Ours,
}

/// A running worker of either kind, kept alive for the test's length.
enum Running {
    Stock(StockWorker),
    Ours(TestWorker),
}

impl Running {
    fn log(&self) -> String {
        match self {
            Running::Stock(w) => w.log(),
            Running::Ours(w) => w.log(),
        }
    }
}

/// The contents the master sends with FileDownload: several 16 KiB blocks, not a multiple.
fn tool_contents() -> String {
    (0..40_000).map(|i| format!("tool line {i}\n")).collect()
}

fn sha256_of(path: &Path) -> String {
    let out = harness::run_ok(Command::new("sha256sum").arg(path));
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn all_steps_build(db: Db, worker: &Worker<'_>) {
    let repo = tempfile::tempdir().expect("temp dir");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(repo.path().join("hello.txt"), "hello from git\n").expect("write repo file");
    git(repo.path(), &["add", "hello.txt"]);
    git(repo.path(), &["commit", "-q", "-m", "first"]);
    let head = git(repo.path(), &["rev-parse", "HEAD"]).trim().to_string();

    let cfg = CFG.replace("@REPO@", &repo.path().display().to_string());
    let tool = tool_contents();
    let master = TestMaster::start_with_files(db, "stockw", &cfg, &[("tool.bin", &tool)]);
    let running = match worker {
        Worker::Stock(exe) => Running::Stock(StockWorker::start(exe, &master, "w1", "pw1")),
        Worker::Ours => Running::Ours(TestWorker::start(&master, "w1", "pw1")),
    };
    master.wait_attached("w1", Duration::from_secs(60));
    master.force("force", &["main"]);
    let builds = master.wait_finished_builds(2, Duration::from_secs(180));
    let context = || {
        format!(
            "master log:\n{}\nworker log:\n{}",
            master.log(),
            running.log()
        )
    };

    let main = builds
        .iter()
        .find(|b| b["number"] == 1 && b["buildrequestid"] == 1)
        .unwrap_or_else(|| panic!("no main build in {builds:?}"));
    let buildid = main["buildid"].as_i64().expect("buildid");
    let steps = master.step_results(buildid);
    assert_eq!(
        steps,
        [
            ("worker_preparation", 0),
            ("git", 0),
            ("from-git", 0),
            ("exit3", 2),
            ("make-big", 0),
            ("upload", 0),
            ("download", 0),
            ("check-download", 0),
            ("string_download", 0),
            ("check-string", 0),
            ("trigger", 0),
        ]
        .map(|(n, r)| (n.to_string(), r)),
        "{}",
        context()
    );
    assert_eq!(main["results"], 0, "{}", context());
    for b in &builds {
        assert_eq!(b["results"], 0, "every build passes: {builds:?}");
    }

    // Git: the checkout is the repository's head, and got_revision says so.
    assert!(master
        .step_log(buildid, "from-git")
        .contains("hello from git"));
    let props = master.build_properties(buildid);
    assert_eq!(props.get("got_revision"), Some(&serde_json::json!(head)));

    // ShellCommand: both streams reach the log, and the exit code decides the result.
    let exit3 = master.step_log(buildid, "exit3");
    assert!(exit3.contains("to-stdout"), "{exit3}");
    assert!(exit3.contains("to-stderr"), "{exit3}");

    // FileUpload: every byte arrived in the master directory.
    let expected: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    let uploaded = std::fs::read_to_string(master.dir.path().join("uploads/big.txt"))
        .unwrap_or_else(|e| panic!("upload missing: {e}\n{}", context()));
    assert!(uploaded == expected, "uploaded file differs");

    // FileDownload: the worker-side file has the master file's checksum and mode.
    let check = master.step_log(buildid, "check-download");
    let sha = sha256_of(&master.dir.path().join("tool.bin"));
    assert!(check.contains(&sha), "want {sha} in {check}");
    assert!(check.contains("mode=750"), "{check}");

    // StringDownload: the rendered string, in a directory the download created.
    let check = master.step_log(buildid, "check-string");
    assert!(check.contains("built on w1"), "{check}");

    // Trigger: the child build ran and passed before the parent's step finished.
    let child = builds
        .iter()
        .find(|b| b["buildid"] != main["buildid"])
        .expect("child build");
    let child_id = child["buildid"].as_i64().expect("buildid");
    assert!(master
        .step_log(child_id, "child-step")
        .contains("child ran"));
}

#[test]
fn all_steps_on_the_stock_worker() {
    let Some(exe) = stock_worker_bin() else {
        return;
    };
    for db in databases() {
        all_steps_build(db, &Worker::Stock(&exe));
    }
}

#[test]
fn all_steps_on_our_worker() {
    for db in databases() {
        all_steps_build(db, &Worker::Ours);
    }
}
