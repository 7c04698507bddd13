//! Worker protocol features end-to-end, with real master and worker processes: commands on a
//! pseudo-terminal (`usePTY`).

mod harness;

use std::time::Duration;

use harness::{Db, TestMaster, TestWorker};

const PTY: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="pty", usePTY=True,
                       command="if test -t 1; then echo tty; else echo notty; fi; test -t 0 && echo stdin-tty"))
f.addStep(ShellCommand(name="pipes", command="if test -t 1; then echo tty; else echo notty; fi"))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

#[test]
fn use_pty_runs_the_command_on_a_terminal() {
    let master = TestMaster::start(Db::Sqlite, "pty", PTY);
    let worker = TestWorker::start(&master, "w1", "pw1");
    master.wait_attached("w1", Duration::from_secs(60));
    master.force("force", &["b"]);
    let builds = master.wait_finished_builds(1, Duration::from_secs(60));
    let buildid = builds[0]["buildid"].as_i64().expect("buildid");
    let context = || {
        format!(
            "master log:\n{}\nworker log:\n{}",
            master.log(),
            worker.log()
        )
    };
    let pty = master.step_log(buildid, "pty");
    assert_eq!(builds[0]["results"], 0, "{builds:?}\n{pty}\n{}", context());
    assert!(has_line(&pty, "tty"), "pty step log:\n{pty}\n{}", context());
    assert!(has_line(&pty, "stdin-tty"), "pty step log:\n{pty}");
    let pipes = master.step_log(buildid, "pipes");
    assert!(has_line(&pipes, "notty"), "pipes step log:\n{pipes}");
}

/// Whether a raw log has `word` as a whole line of output (with or without its stream letter).
fn has_line(log: &str, word: &str) -> bool {
    log.lines().map(str::trim_end).any(|line| {
        line == word
            || (line.len() == word.len() + 1 && line.starts_with('o') && line.ends_with(word))
    })
}
