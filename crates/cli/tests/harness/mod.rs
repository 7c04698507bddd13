//! Test harness: real `signalbox` processes (master and worker) on loopback, on SQLite or on
//! PostgreSQL, driven over HTTP as a user would.
#![allow(dead_code)]

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Which database a test master uses.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    /// `state.sqlite` in the master directory.
    Sqlite,
    /// A fresh PostgreSQL database (needs `SIGNALBOX_TEST_PG_ADMIN_URL`).
    Postgres,
}

/// The databases to run on: SQLite always, PostgreSQL when the test script provides one.
pub fn databases() -> Vec<Db> {
    let mut dbs = vec![Db::Sqlite];
    if std::env::var("SIGNALBOX_TEST_PG_ADMIN_URL").is_ok() {
        dbs.push(Db::Postgres);
    } else {
        eprintln!(
            "SIGNALBOX_TEST_PG_ADMIN_URL not set: PostgreSQL runs skipped (scripts/test sets it)"
        );
    }
    dbs
}

/// This crate's directory, read at run time rather than with `env!`: a test binary that cargo
/// reuses from another clone of the repository (one shared target directory) must still read
/// this clone's files.
pub fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_signalbox"))
}

/// Runs `signalbox sendchange --master <master> ARGS…` and asserts that it succeeded.
pub fn send_change(master: &TestMaster, args: &[&str]) {
    let sent = Command::new(bin())
        .args(["sendchange", "--master", &master.url("")])
        .args(args)
        .output()
        .expect("run sendchange");
    assert!(sent.status.success(), "{sent:?}");
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub fn fresh_pg_database(tag: &str) -> String {
    let admin = std::env::var("SIGNALBOX_TEST_PG_ADMIN_URL").expect("SIGNALBOX_TEST_PG_ADMIN_URL");
    let name = format!(
        "sbx_{}_{}_{}",
        tag,
        std::process::id(),
        Instant::now().elapsed().as_nanos() % 100000 + rand_suffix()
    );
    let status = Command::new("psql")
        .arg(&admin)
        .args(["-q", "-c", &format!("create database {name}")])
        .status()
        .expect("run psql");
    assert!(status.success(), "could not create database {name}");
    let base = admin.rsplit_once('/').expect("admin url has a database").0;
    format!("{base}/{name}")
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000)
        .unwrap_or(0)
}

/// A master directory with a running master process.
pub struct TestMaster {
    pub dir: tempfile::TempDir,
    pub web_port: u16,
    pub worker_port: u16,
    pub child: Option<Child>,
    pub db_url: String,
}

impl TestMaster {
    /// Writes `master.cfg` from `body` (which may use `@WORKER_PORT@`, `@WEB_PORT@`,
    /// `@DB_URL@`, `@DIR@`), upgrades the database, and starts the master.
    pub fn start(db: Db, tag: &str, body: &str) -> TestMaster {
        TestMaster::start_with_files(db, tag, body, &[])
    }

    /// Like [`TestMaster::start`], with extra files written into the master directory first.
    pub fn start_with_files(db: Db, tag: &str, body: &str, files: &[(&str, &str)]) -> TestMaster {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, contents) in files {
            std::fs::write(dir.path().join(name), contents).expect("write master file");
        }
        let web_port = free_port();
        let worker_port = free_port();
        let db_url = match db {
            Db::Sqlite => "sqlite:///state.sqlite".to_string(),
            Db::Postgres => fresh_pg_database(tag),
        };
        let cfg = body
            .replace("@WORKER_PORT@", &worker_port.to_string())
            .replace("@WEB_PORT@", &web_port.to_string())
            .replace("@DB_URL@", &db_url)
            .replace("@DIR@", &dir.path().display().to_string());
        std::fs::write(dir.path().join("master.cfg"), cfg).expect("write master.cfg");
        run_ok(Command::new(bin()).arg("upgrade-master").arg(dir.path()));
        let mut m = TestMaster {
            dir,
            web_port,
            worker_port,
            child: None,
            db_url,
        };
        m.spawn();
        m
    }

    /// Starts (or restarts) the master process.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("master.log"))
            .expect("open log");
        let child = Command::new(bin())
            .arg("start")
            .arg(self.dir.path())
            .arg("--nodaemon")
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start master");
        self.child = Some(child);
        wait_for(Duration::from_secs(60), "the web port", || {
            std::net::TcpStream::connect(("127.0.0.1", self.web_port))
                .is_ok()
                .then_some(())
        });
    }

    /// Kills the master with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.web_port,
            path.trim_start_matches('/')
        )
    }

    /// GETs a REST path and returns the JSON.
    pub fn get(&self, path: &str) -> Value {
        let url = self.url(path);
        let out = Command::new("curl")
            .args(["-sS", "-H", "Accept: application/json", &url])
            .output()
            .expect("run curl");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "GET {url}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// GETs a path and returns the body text.
    pub fn get_text(&self, path: &str) -> String {
        let out = Command::new("curl")
            .args(["-sS", &self.url(path)])
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// POSTs a JSON-RPC call; returns (HTTP status, body).
    pub fn rpc(&self, path: &str, method: &str, params: Value) -> (u16, Value) {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "method": method, "id": 1, "params": params})
                .to_string();
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "-H",
                "Content-Type: application/json",
                "-d",
                &body,
                &self.url(path),
            ])
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (json, code) = text.rsplit_once('\n').expect("status line");
        (
            code.trim().parse().unwrap_or(0),
            serde_json::from_str(json).unwrap_or(Value::Null),
        )
    }

    /// The master log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("master.log")).unwrap_or_default()
    }

    /// Waits until `builds` (REST) holds `n` finished builds; returns them.
    pub fn wait_finished_builds(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let builds = self.get("api/v2/builds?complete=true&order=buildid");
            let list = builds["builds"].as_array().cloned().unwrap_or_default();
            if list.len() >= n {
                return list;
            }
            if Instant::now() > deadline {
                panic!(
                    "only {} of {n} builds finished; master log:\n{}",
                    list.len(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for TestMaster {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_child(c, Duration::from_secs(10));
        }
        drop_pg_database(&self.db_url);
    }
}

/// SIGTERM, then SIGKILL after `grace`.
fn stop_child(mut c: Child, grace: Duration) {
    let _ = Command::new("kill").arg(c.id().to_string()).status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Drops the database [`fresh_pg_database`] made for a test, so runs leave none behind.
fn drop_pg_database(url: &str) {
    let (Ok(admin), Some((_, name))) = (
        std::env::var("SIGNALBOX_TEST_PG_ADMIN_URL"),
        url.rsplit_once('/'),
    ) else {
        return;
    };
    if !url.starts_with("postgres") || !name.starts_with("sbx_") {
        return;
    }
    let _ = Command::new("psql")
        .arg(&admin)
        .args([
            "-q",
            "-c",
            &format!("drop database if exists {name} with (force)"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A running `signalbox worker`.
pub struct TestWorker {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

impl TestWorker {
    pub fn start(master: &TestMaster, name: &str, password: &str) -> TestWorker {
        let dir = tempfile::tempdir().expect("temp dir");
        run_ok(
            Command::new(bin())
                .args(["worker", "create"])
                .arg(dir.path())
                .arg(format!("127.0.0.1:{}", master.worker_port))
                .arg(name)
                .arg(password),
        );
        let mut w = TestWorker { dir, child: None };
        w.spawn();
        w
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("worker.log"))
            .expect("open log");
        let child = Command::new(bin())
            .args(["worker", "start"])
            .arg(self.dir.path())
            .arg("--nodaemon")
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start worker");
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            std::thread::sleep(Duration::from_millis(200));
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it returns Some, or panics after `within`.
pub fn wait_for<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    run_ok(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "Alice")
            .env("GIT_AUTHOR_EMAIL", "alice@example.org")
            .env("GIT_COMMITTER_NAME", "Alice")
            .env("GIT_COMMITTER_EMAIL", "alice@example.org"),
    )
}

impl TestWorker {
    /// The worker's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("worker.log")).unwrap_or_default()
    }

    /// The worker process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// The stock `buildbot-worker` executable that `scripts/test` installs in a venv
/// (`SIGNALBOX_BUILDBOT_WORKER`); `None`, with a skip line on stderr, when it is not set.
pub fn stock_worker_bin() -> Option<PathBuf> {
    match std::env::var_os("SIGNALBOX_BUILDBOT_WORKER") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!(
                "SIGNALBOX_BUILDBOT_WORKER not set: stock buildbot-worker runs skipped (scripts/test sets it)"
            );
            None
        }
    }
}

/// A running stock `buildbot-worker` 4.3.0 (`start --nodaemon`), attached over
/// `msgpack_experimental_v7`.
pub struct StockWorker {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    exe: PathBuf,
}

impl StockWorker {
    /// Creates the worker directory (`create-worker`) and starts the worker.
    pub fn start(exe: &Path, master: &TestMaster, name: &str, password: &str) -> StockWorker {
        StockWorker::start_at(exe, master.worker_port, name, password)
    }

    /// Like [`StockWorker::start`], for any port on 127.0.0.1 (a relay, a stock master).
    pub fn start_at(exe: &Path, port: u16, name: &str, password: &str) -> StockWorker {
        let dir = tempfile::tempdir().expect("temp dir");
        let basedir = dir.path().join("worker");
        run_ok(
            Command::new(exe)
                .args(["create-worker", "-q", "--protocol=msgpack_experimental_v7"])
                .arg(&basedir)
                .arg(format!("127.0.0.1:{port}"))
                .arg(name)
                .arg(password),
        );
        let mut w = StockWorker {
            dir,
            child: None,
            exe: exe.to_path_buf(),
        };
        w.spawn();
        w
    }

    /// The worker's base directory.
    pub fn basedir(&self) -> PathBuf {
        self.dir.path().join("worker")
    }

    /// Starts the worker process in the foreground (its output goes to `stdout.log`).
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("stdout.log"))
            .expect("open log");
        let child = Command::new(&self.exe)
            .args(["start", "--nodaemon"])
            .arg(self.basedir())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start buildbot-worker");
        self.child = Some(child);
    }

    /// The worker's `twistd.log`, which records every message in both directions.
    pub fn log(&self) -> String {
        let twistd = std::fs::read_to_string(self.basedir().join("twistd.log")).unwrap_or_default();
        let stdout =
            std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default();
        format!("{stdout}\n{twistd}")
    }

    /// The worker process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the worker with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for StockWorker {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_child(c, Duration::from_secs(5));
        }
    }
}

impl TestMaster {
    /// Steps of a build as (name, results) pairs, in order.
    pub fn step_results(&self, buildid: i64) -> Vec<(String, i64)> {
        let steps = self.get(&format!("api/v2/builds/{buildid}/steps"));
        steps["steps"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|s| {
                        (
                            s["name"].as_str().unwrap_or_default().to_string(),
                            s["results"].as_i64().unwrap_or(-1),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The raw text of a step's first log (empty when the step or log does not exist).
    pub fn step_log(&self, buildid: i64, step_name: &str) -> String {
        let steps = self.get(&format!("api/v2/builds/{buildid}/steps"));
        let Some(step) = steps["steps"]
            .as_array()
            .and_then(|list| list.iter().find(|s| s["name"] == step_name))
        else {
            return String::new();
        };
        let logs = self.get(&format!("api/v2/steps/{}/logs", step["stepid"]));
        let Some(logid) = logs["logs"][0]["logid"].as_i64() else {
            return String::new();
        };
        self.get_text(&format!("api/v2/logs/{logid}/raw"))
    }

    /// A build's properties as `{name: value}`.
    pub fn build_properties(&self, buildid: i64) -> serde_json::Map<String, Value> {
        let props = self.get(&format!("api/v2/builds/{buildid}/properties"));
        let mut out = serde_json::Map::new();
        if let Some(map) = props["properties"][0].as_object() {
            for (k, v) in map {
                out.insert(k.clone(), v[0].clone());
            }
        }
        out
    }

    /// Forces a build of `builders` through the force scheduler named `scheduler`.
    pub fn force(&self, scheduler: &str, builders: &[&str]) {
        let (status, reply) = self.rpc(
            &format!("api/v2/forceschedulers/{scheduler}"),
            "force",
            serde_json::json!({"builderNames": builders, "reason": "test"}),
        );
        assert_eq!(status, 200, "force failed: {reply}\n{}", self.log());
    }

    /// Waits until `worker` is attached (the master log says so).
    pub fn wait_attached(&self, worker: &str, within: Duration) {
        let needle = format!("worker={worker}");
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            let attached = log
                .lines()
                .filter(|l| l.contains("worker attached") && l.contains(&needle))
                .count();
            let detached = log
                .lines()
                .filter(|l| l.contains("worker detached") && l.contains(&needle))
                .count();
            if attached > detached {
                return;
            }
            if Instant::now() > deadline {
                panic!("worker {worker} did not attach; master log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl TestWorker {
    /// Creates and starts our worker against any port on 127.0.0.1 (a relay, a stock master).
    pub fn start_at(port: u16, name: &str, password: &str) -> TestWorker {
        let dir = tempfile::tempdir().expect("temp dir");
        run_ok(
            Command::new(bin())
                .args(["worker", "create"])
                .arg(dir.path())
                .arg(format!("127.0.0.1:{port}"))
                .arg(name)
                .arg(password),
        );
        let mut w = TestWorker { dir, child: None };
        w.spawn();
        w
    }
}

/// Which worker implementation a test runs.
#[derive(Clone, Debug)]
pub enum WorkerKind {
    /// `signalbox worker`.
    Ours,
    /// The stock `buildbot-worker` at this path.
    Stock(PathBuf),
}

/// Our worker always; the stock worker too when `scripts/test` installed it.
pub fn worker_kinds() -> Vec<WorkerKind> {
    let mut kinds = vec![WorkerKind::Ours];
    if let Some(exe) = stock_worker_bin() {
        kinds.push(WorkerKind::Stock(exe));
    }
    kinds
}

/// A running worker of either kind.
pub enum AnyWorker {
    Ours(TestWorker),
    Stock(StockWorker),
}

impl AnyWorker {
    /// Starts a worker of `kind` that connects to 127.0.0.1:`port`.
    pub fn start_at(kind: &WorkerKind, port: u16, name: &str, password: &str) -> AnyWorker {
        match kind {
            WorkerKind::Ours => AnyWorker::Ours(TestWorker::start_at(port, name, password)),
            WorkerKind::Stock(exe) => {
                AnyWorker::Stock(StockWorker::start_at(exe, port, name, password))
            }
        }
    }

    /// Its base directory (what the master sees as `basedir`).
    pub fn basedir(&self) -> PathBuf {
        match self {
            AnyWorker::Ours(w) => w.dir.path().to_path_buf(),
            AnyWorker::Stock(w) => w.basedir(),
        }
    }

    pub fn log(&self) -> String {
        match self {
            AnyWorker::Ours(w) => w.log(),
            AnyWorker::Stock(w) => w.log(),
        }
    }

    pub fn kill9(&mut self) {
        match self {
            AnyWorker::Ours(w) => w.kill9(),
            AnyWorker::Stock(w) => w.kill9(),
        }
    }
}

/// A TCP relay on 127.0.0.1 between workers and a master. [`Relay::cut`] makes it a black hole:
/// sockets stay open but nothing more is forwarded, as when a cable is cut, so only the
/// master's keepalive can tell that the peer is gone.
pub struct Relay {
    pub port: u16,
    state: std::sync::Arc<RelayState>,
}

#[derive(Default)]
struct RelayState {
    cut: std::sync::atomic::AtomicBool,
    closing: std::sync::atomic::AtomicBool,
    sockets: std::sync::Mutex<Vec<std::net::TcpStream>>,
}

impl Relay {
    /// Starts relaying connections on a fresh port to 127.0.0.1:`target`.
    pub fn start(target: u16) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("relay addr").port();
        let state = std::sync::Arc::new(RelayState::default());
        let accept_state = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_state.closing.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let keep = |s: &std::net::TcpStream| s.try_clone().expect("clone socket");
                {
                    let mut sockets = accept_state.sockets.lock().expect("relay lock");
                    sockets.push(keep(&client));
                    sockets.push(keep(&upstream));
                }
                for (from, to) in [(keep(&client), keep(&upstream)), (upstream, client)] {
                    let state = accept_state.clone();
                    std::thread::spawn(move || pump(from, to, &state));
                }
            }
        });
        Relay { port, state }
    }

    /// Stops forwarding, keeping every socket open.
    pub fn cut(&self) {
        self.state
            .cut
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn pump(mut from: std::net::TcpStream, mut to: std::net::TcpStream, state: &RelayState) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let mut buf = [0u8; 16384];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if state.cut.load(Ordering::SeqCst) {
            continue; // swallowed, like packets into a cut cable
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    if !state.cut.load(Ordering::SeqCst) {
        let _ = to.shutdown(std::net::Shutdown::Write);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.state.closing.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        for s in self.state.sockets.lock().expect("relay lock").drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Forces builder `b` through scheduler `force`, waits until two processes matching
/// `needle` run, stops the build over JSON-RPC, and waits for it to finish. Returns the
/// finished builds, the stopped build's id, and the `needle` processes still alive after
/// 20 s (killed, so a failing test leaves none behind).
pub fn stop_build_of_two(master: &TestMaster, needle: &str) -> (Vec<Value>, i64, Vec<u32>) {
    master.force("force", &["b"]);
    wait_for(Duration::from_secs(60), "both processes to run", || {
        (pids_matching(needle).len() >= 2).then_some(())
    });
    let builds = master.get("api/v2/builds");
    let buildid = builds["builds"][0]["buildid"].as_i64().expect("buildid");
    let (status, reply) = master.rpc(
        &format!("api/v2/builds/{buildid}"),
        "stop",
        serde_json::json!({"reason": "stopped by the test"}),
    );
    assert_eq!(status, 200, "stop: {reply}");
    let builds = master.wait_finished_builds(1, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut left = pids_matching(needle);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        left = pids_matching(needle);
    }
    for pid in &left {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    (builds, buildid, left)
}

/// Pids of processes whose command line contains `needle` (via `pgrep -f`).
pub fn pids_matching(needle: &str) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-f", needle])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}
