//! Worker protocol features end-to-end, with real master and worker processes: commands on a
//! pseudo-terminal (`usePTY`), TLS on the worker port (our worker and the stock one), and the
//! cap on worker connections.

mod harness;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::{run_ok, stock_worker_bin, wait_for, Db, TestMaster, TestWorker};
use serde_json::json;

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

/// A CA and a server certificate for 127.0.0.1 it signs, made with the `openssl` tool, plus a
/// second CA that signs nothing of ours (for the wrong-certificate case).
struct TestCerts {
    dir: tempfile::TempDir,
}

impl TestCerts {
    fn new() -> TestCerts {
        let dir = tempfile::tempdir().expect("temp dir");
        let openssl = |args: &[&str]| {
            run_ok(Command::new("openssl").current_dir(dir.path()).args(args));
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=Signalbox test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.path().join("server.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("write extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        TestCerts { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The master's worker port spec, serving this certificate.
    fn strport(&self) -> String {
        format!(
            "ssl:@WORKER_PORT@:privateKey={}:certKey={}:interface=127.0.0.1",
            self.path("server.key").display(),
            self.path("server.pem").display()
        )
    }
}

const TLS: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': "@PORT_SPEC@"}}
c['workers'] = [Worker("w1", "pw1"), Worker("w2", "pw2")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="hello", command=Interpolate("echo hello from %(prop:workername)s")))
c['builders'] = [BuilderConfig(name="b1", workernames=["w1"], factory=f),
                 BuilderConfig(name="b2", workernames=["w2"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b1", "b2"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

/// Creates our worker with extra `worker create` flags and starts it.
fn our_worker(port: u16, name: &str, password: &str, flags: &[&str]) -> TestWorker {
    let dir = tempfile::tempdir().expect("temp dir");
    run_ok(
        Command::new(harness::bin())
            .args(["worker", "create"])
            .args(flags)
            .arg(dir.path())
            .arg(format!("127.0.0.1:{port}"))
            .arg(name)
            .arg(password),
    );
    let mut worker = TestWorker { dir, child: None };
    worker.spawn();
    worker
}

/// A stock `buildbot-worker` created with `--use-tls`, trusting `ca` through `SSL_CERT_FILE`
/// (Twisted's `tls:` endpoint checks the master with OpenSSL's default paths, which honour it).
struct StockTlsWorker {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl StockTlsWorker {
    fn start(exe: &Path, port: u16, name: &str, password: &str, ca: &Path) -> StockTlsWorker {
        let dir = tempfile::tempdir().expect("temp dir");
        let basedir = dir.path().join("worker");
        run_ok(
            Command::new(exe)
                .args([
                    "create-worker",
                    "-q",
                    "--use-tls",
                    "--protocol=msgpack_experimental_v7",
                ])
                .arg(&basedir)
                .arg(format!("127.0.0.1:{port}"))
                .arg(name)
                .arg(password),
        );
        let log = std::fs::File::create(dir.path().join("stdout.log")).expect("log");
        let child = Command::new(exe)
            .args(["start", "--nodaemon"])
            .arg(&basedir)
            .env("SSL_CERT_FILE", ca)
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start buildbot-worker");
        StockTlsWorker { dir, child }
    }

    fn log(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "{}\n{}",
            read(self.dir.path().join("stdout.log")),
            read(self.dir.path().join("worker/twistd.log"))
        )
    }
}

impl Drop for StockTlsWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn workers_attach_and_build_over_tls() {
    let certs = TestCerts::new();
    let master = TestMaster::start(
        Db::Sqlite,
        "tls",
        &TLS.replace("@PORT_SPEC@", &certs.strport()),
    );
    let ours = our_worker(
        master.worker_port,
        "w1",
        "pw1",
        &[
            "--use-tls",
            "--tls-ca",
            &certs.path("ca.pem").display().to_string(),
        ],
    );
    master.wait_attached("w1", Duration::from_secs(60));
    let stock = stock_worker_bin().map(|exe| {
        let w = StockTlsWorker::start(&exe, master.worker_port, "w2", "pw2", &certs.path("ca.pem"));
        wait_for(Duration::from_secs(60), "the stock worker over TLS", || {
            master
                .log()
                .lines()
                .any(|l| l.contains("worker attached") && l.contains("worker=w2"))
                .then_some(())
        });
        w
    });
    let builders: &[&str] = if stock.is_some() {
        &["b1", "b2"]
    } else {
        &["b1"]
    };
    master.force("force", builders);
    let builds = master.wait_finished_builds(builders.len(), Duration::from_secs(120));
    let context = || {
        format!(
            "builds: {builds:?}\nmaster log:\n{}\nour worker:\n{}\nstock worker:\n{}",
            master.log(),
            ours.log(),
            stock.as_ref().map(StockTlsWorker::log).unwrap_or_default()
        )
    };
    for build in &builds {
        assert_eq!(build["results"], 0, "{}", context());
        let id = build["buildid"].as_i64().expect("buildid");
        let log = master.step_log(id, "hello");
        assert!(log.contains("hello from w"), "{log}\n{}", context());
    }
}

/// Waits until `log()` contains `needle`, then checks that no process panicked.
fn wait_log(what: &str, log: impl Fn() -> String, needle: &str) {
    wait_for(Duration::from_secs(60), what, || {
        log().contains(needle).then_some(())
    });
    assert!(!log().contains("panicked"), "{what}:\n{}", log());
}

#[test]
fn tls_mismatches_are_reported_not_fatal() {
    let certs = TestCerts::new();
    let tls_master = TestMaster::start(
        Db::Sqlite,
        "tlsbad",
        &TLS.replace("@PORT_SPEC@", &certs.strport()),
    );
    // A worker without TLS, against the TLS port.
    let plain = our_worker(tls_master.worker_port, "w1", "pw1", &[]);
    wait_log(
        "the master's handshake error",
        || tls_master.log(),
        "TLS handshake failed",
    );
    wait_log("the plain worker's error", || plain.log(), "use-tls");
    drop(plain);
    // A worker that trusts another CA.
    let other = certs.path("other-ca.pem").display().to_string();
    let wrong = our_worker(
        tls_master.worker_port,
        "w1",
        "pw1",
        &["--use-tls", "--tls-ca", &other],
    );
    wait_log(
        "the wrong-certificate error",
        || wrong.log(),
        "TLS handshake failed: invalid peer certificate",
    );
    drop(wrong);
    // A TLS worker against a plain port.
    let plain_master = TestMaster::start(
        Db::Sqlite,
        "tlsbad",
        &TLS.replace("@PORT_SPEC@", "tcp:@WORKER_PORT@:interface=127.0.0.1"),
    );
    let ca = certs.path("ca.pem").display().to_string();
    let tls = our_worker(
        plain_master.worker_port,
        "w1",
        "pw1",
        &["--use-tls", "--tls-ca", &ca],
    );
    wait_log(
        "the TLS-to-plain error",
        || tls.log(),
        "TLS handshake failed",
    );
    assert!(!tls_master.log().contains("panicked") && !plain_master.log().contains("panicked"));
}

const CAPPED: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@, 'max_connections': 1}}
c['workers'] = [Worker("w1", "pw1"), Worker("w2", "pw2")]
c['db'] = {'db_url': "@DB_URL@"}
c['builders'] = []
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1")]
"#;

/// The status line the worker port answers to an upgrade request from `w2`.
fn upgrade_status(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    // "w2:pw2" in Basic auth.
    let request =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Authorization: Basic dzI6cHcy\r\n\r\n";
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).expect("read status");
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn worker_connections_beyond_the_cap_are_refused_with_503() {
    let master = TestMaster::start(Db::Sqlite, "cap", CAPPED);
    let mut w1 = TestWorker::start(&master, "w1", "pw1");
    master.wait_attached("w1", Duration::from_secs(60));
    assert_eq!(
        upgrade_status(master.worker_port),
        "HTTP/1.1 503",
        "{}",
        master.log()
    );
    assert!(
        master.log().contains("too many worker connections"),
        "{}",
        master.log()
    );
    // The slot is given back when w1 goes away.
    w1.kill9();
    wait_for(Duration::from_secs(60), "the slot to be free again", || {
        (upgrade_status(master.worker_port) == "HTTP/1.1 101").then_some(())
    });
}

const MISSING: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1", missing_timeout=1, notify_on_missing=["ops@example.org"]),
                Worker("w2", "pw2", missing_timeout=600), Worker("w3", "pw3", missing_timeout=1)]
c['db'] = {'db_url': "@DB_URL@"}
c['builders'] = []
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1")]
"#;

/// `curl -N` on an SSE path, its output collected in a file until dropped.
struct SseListener {
    child: std::process::Child,
    out: tempfile::NamedTempFile,
}

impl SseListener {
    fn start(master: &TestMaster, path: &str) -> SseListener {
        let out = tempfile::NamedTempFile::new().expect("temp file");
        let child = Command::new("curl")
            .args(["-sS", "-N", &master.url(path)])
            .stdout(out.reopen().expect("reopen"))
            .spawn()
            .expect("run curl");
        let listener = SseListener { child, out };
        wait_for(Duration::from_secs(30), "the SSE handshake", || {
            listener.text().contains("event: handshake").then_some(())
        });
        listener
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.out.path()).unwrap_or_default()
    }

    /// The `message` of every event received so far.
    fn messages(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .filter_map(|event| event.get("message").cloned())
            .collect()
    }
}

impl Drop for SseListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_worker_not_back_within_missing_timeout_is_announced() {
    let master = TestMaster::start(Db::Sqlite, "missing", MISSING);
    let events = SseListener::start(&master, "sse/listen/workers/*/missing");
    let mut w1 = TestWorker::start(&master, "w1", "pw1");
    let mut w2 = TestWorker::start(&master, "w2", "pw2");
    master.wait_attached("w1", Duration::from_secs(60));
    master.wait_attached("w2", Duration::from_secs(60));
    // w2 comes back well within its 600 s: its timer is cancelled.
    w2.kill9();
    wait_for(Duration::from_secs(60), "w2 to detach", || {
        let log = master.log();
        log.lines()
            .any(|l| l.contains("worker detached") && l.contains("worker=w2"))
            .then_some(())
    });
    w2.spawn();
    wait_for(Duration::from_secs(60), "w2 to be back", || {
        master
            .log()
            .contains("worker is back before its missing_timeout")
            .then_some(())
    });
    // w1 stays away longer than its 1 s.
    w1.kill9();
    let missing = wait_for(Duration::from_secs(60), "the missing event of w1", || {
        events.messages().into_iter().find(|m| m["name"] == "w1")
    });
    assert_eq!(
        missing["notify"],
        serde_json::json!(["ops@example.org"]),
        "{missing}"
    );
    assert!(missing["last_connection"].is_string(), "{missing}");
    assert!(missing["workerid"].is_i64(), "{missing}");
    let log = master.log();
    assert!(
        log.lines()
            .any(|l| l.contains("worker missing") && l.contains("worker=w1")),
        "{log}"
    );
    // w3 never attaches: its timer ran from the master's start (seen in the log, since the
    // event may come before the listener is connected).
    wait_for(Duration::from_secs(60), "w3 to be reported missing", || {
        master
            .log()
            .lines()
            .any(|l| l.contains("worker missing") && l.contains("worker=w3"))
            .then_some(())
    });
    assert!(
        events.messages().iter().all(|m| m["name"] != "w2"),
        "w2 came back in time: {}",
        events.text()
    );
}

const PING: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("ours", "pw1"), Worker("stock", "pw2"), Worker("never", "pw3")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(command="true"))
c['builders'] = [BuilderConfig(name="b", workernames=["ours", "stock", "never"], factory=f)]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(pingBuilder=True))]
"#;

/// Sends SIGSTOP or SIGCONT to a process.
fn signal(pid: u32, name: &str) {
    run_ok(Command::new("kill").args([&format!("-{name}"), &pid.to_string()]));
}

#[test]
fn ping_builder_makes_a_round_trip_to_each_worker() {
    let master = TestMaster::start(Db::Sqlite, "ping", PING);
    let ours = TestWorker::start(&master, "ours", "pw1");
    master.wait_attached("ours", Duration::from_secs(60));
    let stock = stock_worker_bin().map(|exe| {
        let w = harness::StockWorker::start(&exe, &master, "stock", "pw2");
        master.wait_attached("stock", Duration::from_secs(60));
        w
    });
    let builders = master.get("api/v2/builders?name=b");
    let id = builders["builders"][0]["builderid"]
        .as_i64()
        .expect("builderid");
    let ping = || {
        let (status, reply) = master.rpc(
            &format!("api/v2/builders/{id}"),
            "ping",
            json!({"timeout": 2}),
        );
        assert_eq!(status, 200, "{reply}\n{}", master.log());
        reply["result"].clone()
    };
    let result = ping();
    assert_eq!(result["workers"]["ours"], "ok", "{result}");
    assert_eq!(result["workers"]["never"], "offline", "{result}");
    assert!(result["round_trip_ms"]["ours"].is_number(), "{result}");
    if stock.is_some() {
        assert_eq!(result["workers"]["stock"], "ok", "{result}");
    }
    // A frozen worker keeps its TCP connection but cannot answer.
    let pid = ours.pid().expect("worker pid");
    signal(pid, "STOP");
    let result = ping();
    signal(pid, "CONT");
    assert_eq!(
        result["workers"]["ours"], "no answer within 2 s",
        "{result}"
    );
    if stock.is_some() {
        assert_eq!(result["workers"]["stock"], "ok", "{result}");
    }
    let log = master.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ping") && l.contains("worker=ours") && l.contains("no answer")),
        "{log}"
    );
}

const DIRECTORY_UPLOAD: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="make", command="mkdir -p out/sub bad && echo one > out/a.txt && seq 1 20000 > out/sub/big.txt && ln -s a.txt out/link && echo x > bad/ok.txt && ln -s /etc/passwd bad/evil"))
f.addStep(steps.DirectoryUpload(name="plain", workersrc="out", masterdest="uploads/plain"))
f.addStep(steps.DirectoryUpload(name="gz", workersrc="out", masterdest="uploads/gz", compress="gz"))
f.addStep(steps.DirectoryUpload(name="bz2", workersrc="out", masterdest="uploads/bz2", compress="bz2"))
f.addStep(steps.DirectoryUpload(name="too-big", workersrc="out", masterdest="uploads/big", maxsize=50000, flunkOnFailure=False))
f.addStep(steps.DirectoryUpload(name="hostile", workersrc="bad", masterdest="uploads/bad", flunkOnFailure=False))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

#[test]
fn directory_upload_extracts_safely_from_both_workers() {
    for kind in harness::worker_kinds() {
        let master = TestMaster::start(Db::Sqlite, "dirup", DIRECTORY_UPLOAD);
        let worker = harness::AnyWorker::start_at(&kind, master.worker_port, "w1", "pw1");
        master.wait_attached("w1", Duration::from_secs(60));
        master.force("force", &["b"]);
        let builds = master.wait_finished_builds(1, Duration::from_secs(120));
        let buildid = builds[0]["buildid"].as_i64().expect("buildid");
        let steps = master.step_results(buildid);
        let context = || {
            format!(
                "{kind:?} steps: {steps:?}\nmaster log:\n{}\nworker log:\n{}",
                master.log(),
                worker.log()
            )
        };
        let uploads = master.dir.path().join("uploads");
        let expected_big: String = (1..=20000).map(|i| format!("{i}\n")).collect();
        for name in ["plain", "gz", "bz2"] {
            assert!(
                steps.contains(&(name.to_string(), 0)),
                "{name}: {}\n{}",
                master.step_log(buildid, name),
                context()
            );
            let dir = uploads.join(name);
            let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap_or_default();
            assert_eq!(read("a.txt"), "one\n", "{name}: {}", context());
            assert_eq!(read("sub/big.txt"), expected_big, "{name}");
            let link = std::fs::read_link(dir.join("link")).expect("the link is kept as a link");
            assert_eq!(link, Path::new("a.txt"));
        }
        // maxsize: refused by the worker (stream) or the master (stream or contents).
        assert!(
            steps.contains(&("too-big".to_string(), 2))
                || steps.contains(&("too-big".to_string(), 4)),
            "{}",
            context()
        );
        assert!(!uploads.join("big/sub/big.txt").exists(), "{}", context());
        // A link to /etc/passwd: refused, nothing extracted, a clear message in the log.
        assert!(steps.contains(&("hostile".to_string(), 2)), "{}", context());
        assert!(!uploads.join("bad/ok.txt").exists(), "{}", context());
        let log = master.step_log(buildid, "hostile");
        assert!(
            log.contains("refused entry 'evil'") && log.contains("/etc/passwd"),
            "{log}\n{}",
            context()
        );
    }
}

const PTY_STOP: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="tree", usePTY=True, command="sh -c 'sleep @SLEEP@ & sleep @SLEEP@'"))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
                         authz=Authz(forceBuild=True, stopBuild=True))]
"#;

#[test]
fn stopping_a_pty_command_kills_its_whole_process_group() {
    // A duration no other process uses, so that pgrep finds only this build's sleeps.
    let sleep = format!("301.{}", std::process::id());
    let master = TestMaster::start(Db::Sqlite, "ptystop", &PTY_STOP.replace("@SLEEP@", &sleep));
    let worker = TestWorker::start(&master, "w1", "pw1");
    master.wait_attached("w1", Duration::from_secs(60));
    let needle = format!("sleep {sleep}");
    let (builds, _, left) = harness::stop_build_of_two(&master, &needle);
    assert!(left.is_empty(), "processes left after stop: {left:?}");
    assert_eq!(
        builds[0]["results"],
        6,
        "CANCELLED: {builds:?}\n{}",
        worker.log()
    );
}
