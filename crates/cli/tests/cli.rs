//! The command line: checkconfig exit codes, create-master, and daemon start/stop.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{bin, free_port, run_ok, wait_for};

#[test]
fn checkconfig_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("master.cfg");
    std::fs::write(&cfg, "c = BuildmasterConfig = {}\nc['workers'] = [Worker('w', 'p')]\nc['builders'] = [BuilderConfig(name='b', workernames=['nobody'], factory=BuildFactory())]\n").unwrap();
    let out = Command::new(bin())
        .arg("checkconfig")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("master.cfg:3"), "names the line: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one message: {err}");

    std::fs::write(
        &cfg,
        "c = BuildmasterConfig = {}\nc['workers'] = [Worker('w', 'p')]\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("checkconfig")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn create_start_stop_as_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let out = run_ok(Command::new(bin()).arg("create-master").arg(&dir));
    assert!(
        out.contains("schema is at version"),
        "upgrade progress is shown: {out}"
    );
    assert!(dir.join("public_html/robots.txt").exists());
    let web = free_port();
    let workers = free_port();
    let cfg = std::fs::read_to_string(dir.join("master.cfg"))
        .unwrap()
        .replace("8010", &web.to_string())
        .replace("9989", &workers.to_string());
    std::fs::write(dir.join("master.cfg"), cfg).unwrap();
    run_ok(Command::new(bin()).arg("start").arg(&dir));
    let pid: i32 = std::fs::read_to_string(dir.join("signalbox.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for(Duration::from_secs(30), "the web port", || {
        std::net::TcpStream::connect(("127.0.0.1", web)).ok()
    });
    let again = Command::new(bin()).arg("start").arg(&dir).output().unwrap();
    assert!(!again.status.success(), "a second start is refused");
    run_ok(Command::new(bin()).arg("stop").arg(&dir));
    assert!(!dir.join("signalbox.pid").exists());
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(),
        "the master process is gone"
    );
    let log = std::fs::read_to_string(dir.join("master.log")).unwrap();
    assert!(log.contains("master stopped"), "{log}");
}

#[test]
fn start_refuses_an_empty_database() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("master.cfg"),
        format!(
            "c = BuildmasterConfig = {{}}\nc['protocols'] = {{'pb': {{'port': {}}}}}\n",
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("start")
        .arg(tmp.path())
        .arg("--nodaemon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("upgrade-master"), "tells what to do: {err}");
}
