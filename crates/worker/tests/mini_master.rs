//! End-to-end tests: a tiny in-test master (WebSocket server on 127.0.0.1 checking Basic auth)
//! drives the real worker through attach, shell, fs and transfer commands.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use protocol::{args, decode, encode, LineChunk, Message, Op, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

const NAME: &str = "wname";
const PASSWORD: &str = "wp:ss";

/// The master's end of one worker connection, answering the worker's requests as it goes.
struct Master {
    ws: WebSocketStream<TcpStream>,
    seq: i64,
    /// Data served to `update_read_file`, by command id.
    downloads: HashMap<String, Vec<u8>>,
    /// Blocks received by upload writes, by command id.
    uploads: HashMap<String, Vec<u8>>,
    /// Transfer ops seen, by command id, in order.
    transfer_ops: HashMap<String, Vec<String>>,
    /// Update pairs received, by command id.
    updates: HashMap<String, Vec<(String, Value)>>,
    /// Number of update messages received, by command id.
    update_messages: HashMap<String, usize>,
    /// Completed commands and their failure.
    completed: HashMap<String, Option<String>>,
}

/// A started worker and the master connected to it.
struct Setup {
    master: Master,
    basedir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    worker: tokio::task::JoinHandle<Result<(), worker::WorkerError>>,
}

async fn setup(reject_first: bool) -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let basedir = tempfile::tempdir().unwrap();
    worker::create(basedir.path(), &addr.to_string(), NAME, PASSWORD).unwrap();
    let options = worker::load_options(basedir.path()).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(worker::run(options, async move {
        let _ = stopped.await;
    }));
    let attempts = Arc::new(AtomicUsize::new(0));
    let ws = loop {
        let (tcp, _) = listener.accept().await.unwrap();
        let attempt = attempts.fetch_add(1, Ordering::SeqCst);
        // The callback's error type is tungstenite's.
        #[allow(clippy::result_large_err)]
        let check =
            move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{NAME}:{PASSWORD}"))
                );
                let given = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok());
                if given != Some(expected.as_str()) || (reject_first && attempt == 0) {
                    let mut refusal = ErrorResponse::new(Some("unauthorized".into()));
                    *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                    return Err(refusal);
                }
                Ok(response)
            };
        match tokio_tungstenite::accept_hdr_async(tcp, check).await {
            Ok(ws) => break ws,
            Err(_) => continue,
        }
    };
    if reject_first {
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            2,
            "the worker retries after a 401"
        );
    }
    let master = Master {
        ws,
        seq: 0,
        downloads: HashMap::new(),
        uploads: HashMap::new(),
        transfer_ops: HashMap::new(),
        updates: HashMap::new(),
        update_messages: HashMap::new(),
        completed: HashMap::new(),
    };
    Setup {
        master,
        basedir,
        stop: Some(stop),
        worker,
    }
}

/// What one command reported.
struct Outcome {
    updates: Vec<(String, Value)>,
    failure: Option<String>,
    messages: usize,
}

impl Outcome {
    fn text(&self, key: &str) -> String {
        self.updates
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| LineChunk::from_value(v).unwrap().text)
            .collect()
    }

    fn value(&self, key: &str) -> Option<&Value> {
        self.updates
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn rc(&self) -> i64 {
        self.value("rc")
            .and_then(Value::as_i64)
            .expect("an rc update")
    }

    fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = match self.value("files") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
            _ => panic!("no files update"),
        };
        files.sort();
        files
    }
}

impl Master {
    async fn send(&mut self, msg: &Message) {
        self.ws
            .send(WsMessage::Binary(encode(msg).into()))
            .await
            .unwrap();
    }

    /// Sends a request and returns its seq.
    async fn request(&mut self, op: Op) -> i64 {
        let seq = self.seq;
        self.seq += 1;
        self.send(&Message::Request { seq, op }).await;
        seq
    }

    /// Handles incoming frames until the response to `seq` arrives.
    async fn call(&mut self, op: Op) -> Result<Value, String> {
        let seq = self.request(op).await;
        loop {
            if let Some(Message::Response {
                seq: got,
                result,
                is_exception,
            }) = self.step().await
            {
                assert_eq!(got, seq, "unexpected response");
                return if is_exception {
                    Err(result.as_str().unwrap().to_owned())
                } else {
                    Ok(result)
                };
            }
        }
    }

    /// Starts a command and handles frames until it completes.
    async fn command(&mut self, id: &str, name: &str, command_args: Value) -> Outcome {
        let start = Op::StartCommand {
            command_id: id.into(),
            command_name: name.into(),
            args: command_args,
            builder_name: None,
        };
        let reply = self.call(start).await;
        assert_eq!(reply, Ok(Value::Nil), "start_command {name}");
        self.until_complete(id).await
    }

    async fn until_complete(&mut self, id: &str) -> Outcome {
        while !self.completed.contains_key(id) {
            if let Some(other) = self.step().await {
                panic!("unexpected response {other:?}");
            }
        }
        Outcome {
            updates: self.updates.remove(id).unwrap_or_default(),
            failure: self.completed.remove(id).flatten(),
            messages: self.update_messages.remove(id).unwrap_or_default(),
        }
    }

    /// Reads one frame: answers a worker request (returns None) or returns a response.
    async fn step(&mut self) -> Option<Message> {
        let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
            .await
            .expect("worker silent for 30 s");
        let bytes = match frame {
            Some(Ok(WsMessage::Binary(bytes))) => bytes,
            other => panic!("unexpected frame {other:?}"),
        };
        let (seq, op) = match decode(&bytes).unwrap() {
            Message::Request { seq, op } => (seq, op),
            response => return Some(response),
        };
        let mut result = Value::Nil;
        let id = op.command_id().unwrap_or_default().to_owned();
        match op {
            Op::Update { updates, .. } => {
                *self.update_messages.entry(id.clone()).or_default() += 1;
                self.updates.entry(id).or_default().extend(updates);
            }
            Op::Complete { failure, .. } => {
                self.completed.insert(id, failure);
            }
            Op::UploadFileWrite { data, .. } | Op::UploadDirectoryWrite { data, .. } => {
                self.transfer_ops
                    .entry(id.clone())
                    .or_default()
                    .push("write".into());
                self.uploads.entry(id).or_default().extend(data);
            }
            Op::ReadFile { length, .. } => {
                let source = self.downloads.entry(id.clone()).or_default();
                let n = source.len().min(length as usize);
                result = Value::Binary(source.drain(..n).collect());
                self.transfer_ops.entry(id).or_default().push("read".into());
            }
            other => {
                self.transfer_ops
                    .entry(id)
                    .or_default()
                    .push(other.name().to_owned());
            }
        }
        self.send(&Message::ok(seq, result)).await;
        None
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    args::make_map(entries)
}

fn argv(words: &[&str]) -> Value {
    Value::Array(words.iter().map(|w| Value::from(*w)).collect())
}

fn shell(workdir: &Path, command: Value, extra: Vec<(&str, Value)>) -> Value {
    let mut entries = vec![
        ("workdir", Value::from(workdir.to_str().unwrap())),
        ("command", command),
    ];
    entries.extend(extra);
    map(entries)
}

fn path_value(path: &Path) -> Value {
    Value::from(path.to_str().unwrap())
}

async fn shutdown(mut setup: Setup) {
    let reply = setup.master.call(Op::Shutdown).await;
    assert_eq!(reply, Ok(Value::Nil));
    let result = tokio::time::timeout(Duration::from_secs(10), &mut setup.worker)
        .await
        .expect("worker exits on shutdown");
    assert!(result.unwrap().is_ok());
    drop(setup.stop.take());
}

#[tokio::test]
async fn attach_info_and_shell() {
    let mut setup = setup(true).await;
    let base = setup.basedir.path().to_path_buf();
    let master = &mut setup.master;
    assert_eq!(
        master
            .call(Op::Print {
                message: Value::from("attached")
            })
            .await,
        Ok(Value::Nil)
    );
    let info = master.call(Op::GetWorkerInfo).await.unwrap();
    assert_eq!(args::get_str(&info, "basedir").unwrap(), base.to_str());
    assert_eq!(args::get_str(&info, "system").unwrap(), Some("posix"));
    assert!(args::get_str(&info, "admin").unwrap().is_some());
    assert!(args::get_map(&info, "environ").unwrap().is_some());
    assert!(args::get_i64(&info, "numcpus").unwrap().unwrap() >= 1);
    let commands = args::get_map(&info, "worker_commands").unwrap().unwrap();
    assert_eq!(commands.len(), 14);
    assert!(commands.iter().all(|(_, v)| v.as_str() == Some("3.3")));
    let settings = map(vec![
        ("buffer_size", Value::from(65536)),
        ("buffer_timeout", Value::from(5)),
        (
            "newline_re",
            Value::from(r"(\r\n|\r(?=.)|\033\[u|\033\[[0-9]+;[0-9]+[Hf]|\033\[2J|\x08+)"),
        ),
        ("max_line_length", Value::from(4096)),
    ]);
    assert_eq!(
        master.call(Op::SetWorkerSettings { args: settings }).await,
        Ok(Value::Nil)
    );
    assert!(master
        .call(Op::SetWorkerSettings { args: map(vec![]) })
        .await
        .is_err());
    assert_eq!(master.call(Op::Keepalive).await, Ok(Value::Nil));
    let unknown = master
        .call(Op::Unknown {
            op: "frobnicate".into(),
            fields: map(vec![]),
        })
        .await;
    assert_eq!(unknown, Err("Command frobnicate does not exist.".into()));
    let start = Op::StartCommand {
        command_id: "x".into(),
        command_name: "nope".into(),
        args: map(vec![]),
        builder_name: None,
    };
    assert!(master
        .call(start)
        .await
        .unwrap_err()
        .contains("unrecognized WorkerCommand 'nope'"));

    let script = "echo out; echo err >&2; printf 'a\\r\\nb'; exit 3";
    let outcome = master
        .command(
            "1",
            "shell",
            shell(&base.join("build"), argv(&["sh", "-c", script]), vec![]),
        )
        .await;
    assert_eq!(outcome.text("stdout"), "out\na\nb\n");
    assert_eq!(outcome.text("stderr"), "err\n");
    assert_eq!(outcome.rc(), 3);
    assert!(outcome.value("elapsed").is_some());
    assert!(outcome.text("header").contains("elapsedTime="));
    assert_eq!(outcome.failure, None);

    let env = map(vec![
        ("FOO", Value::from("x${SIGNALBOX_UNSET}y")),
        ("HOME", Value::Nil),
        ("P", argv(&["a", "b"])),
    ]);
    let command = Value::from("echo \"$FOO $P ${HOME-none} $PWD\"");
    let outcome = master
        .command(
            "2",
            "shell",
            shell(
                &base,
                command,
                vec![("env", env), ("want_stderr", Value::from(0))],
            ),
        )
        .await;
    assert_eq!(
        outcome.text("stdout"),
        format!("xy a:b none {}\n", base.display())
    );
    assert_eq!(outcome.rc(), 0);

    let outcome = master
        .command(
            "3",
            "shell",
            shell(&base, argv(&["/nonexistent/program"]), vec![]),
        )
        .await;
    assert_eq!(outcome.rc(), 1);
    assert!(outcome.text("stderr").contains("cannot run"));

    let bad_env = map(vec![("FOO", Value::from(1))]);
    let outcome = master
        .command(
            "4",
            "shell",
            shell(&base, argv(&["true"]), vec![("env", bad_env)]),
        )
        .await;
    assert!(outcome.failure.unwrap().contains("'env' values"));

    let logfiles = map(vec![("mylog", Value::from("log.txt"))]);
    let script = "echo one > log.txt; sleep 0.2; printf 'two' >> log.txt";
    let outcome = master
        .command(
            "6",
            "shell",
            shell(&base, Value::from(script), vec![("logfiles", logfiles)]),
        )
        .await;
    let logs: Vec<(String, LineChunk)> = outcome
        .updates
        .iter()
        .filter(|(k, _)| k == "log")
        .map(|(_, v)| protocol::parse_log_update(v).unwrap())
        .collect();
    let text: String = logs.iter().map(|(_, chunk)| chunk.text.as_str()).collect();
    assert!(logs.iter().all(|(name, _)| name == "mylog"));
    assert_eq!(text, "one\ntwo\n");

    let stdin = vec![("initial_stdin", Value::from("fed\n"))];
    let outcome = master
        .command("5", "shell", shell(&base, argv(&["cat"]), stdin))
        .await;
    assert_eq!(outcome.text("stdout"), "fed\n");
    shutdown(setup).await;
}

#[tokio::test]
async fn heavy_output_is_batched() {
    let mut setup = setup(false).await;
    let base = setup.basedir.path().to_path_buf();
    // 20 MB in 200,000 lines of 100 bytes.
    let script = format!("yes '{}' | head -n 200000", "x".repeat(99));
    let started = Instant::now();
    let outcome = setup
        .master
        .command(
            "big",
            "shell",
            shell(&base, Value::from(script.as_str()), vec![]),
        )
        .await;
    let elapsed = started.elapsed();
    let stdout = outcome.text("stdout");
    assert_eq!(stdout.len(), 20_000_000);
    assert_eq!(outcome.rc(), 0);
    // Batches of ~64 KiB: about 20e6 / 65536 ≈ 305 messages, not one per line.
    assert!(
        outcome.messages < 1000,
        "{} update messages",
        outcome.messages
    );
    eprintln!("20 MB in {} messages, {elapsed:?}", outcome.messages);
    shutdown(setup).await;
}

/// Processes (not zombies) whose process group is `pgid`.
fn live_group_members(pgid: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            members.push(pid);
        }
    }
    members
}

async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn timeout_and_interrupt_kill_the_process_group() {
    let mut setup = setup(false).await;
    let base = setup.basedir.path().to_path_buf();
    let master = &mut setup.master;

    let outcome = master
        .command(
            "t",
            "shell",
            shell(
                &base,
                argv(&["sleep", "100"]),
                vec![("timeout", Value::from(1))],
            ),
        )
        .await;
    assert_eq!(outcome.rc(), -1);
    assert_eq!(
        outcome.value("failure_reason"),
        Some(&Value::from("timeout_without_output"))
    );
    let header = outcome.text("header");
    assert!(
        header.contains("command timed out: 1 seconds without output"),
        "{header}"
    );
    assert!(header.contains("process killed by signal 9"), "{header}");

    let outcome = master
        .command(
            "m",
            "shell",
            shell(
                &base,
                argv(&["sleep", "100"]),
                vec![("maxTime", Value::F64(0.5))],
            ),
        )
        .await;
    assert_eq!(
        outcome.value("failure_reason"),
        Some(&Value::from("timeout"))
    );
    assert_eq!(outcome.rc(), -1);

    let many = "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; done; sleep 100";
    let outcome = master
        .command(
            "l",
            "shell",
            shell(
                &base,
                Value::from(many),
                vec![("max_lines", Value::from(3))],
            ),
        )
        .await;
    assert_eq!(
        outcome.value("failure_reason"),
        Some(&Value::from("max_lines_failure"))
    );
    assert_eq!(outcome.rc(), -1);

    let pidfile = base.join("pid");
    let script = format!(
        "echo started; echo $$ > {}; sleep 100 & sleep 100",
        pidfile.display()
    );
    let start = Op::StartCommand {
        command_id: "i".into(),
        command_name: "shell".into(),
        args: shell(&base, argv(&["sh", "-c", &script]), vec![]),
        builder_name: None,
    };
    assert_eq!(master.call(start).await, Ok(Value::Nil));
    let pgid: i32 = wait_for_file(&pidfile).await.trim().parse().unwrap();
    assert_eq!(live_group_members(pgid).len(), 3, "sh and two sleeps");
    let interrupt = Op::InterruptCommand {
        command_id: "i".into(),
        why: "stop".into(),
    };
    assert_eq!(master.call(interrupt).await, Ok(Value::Nil));
    let outcome = master.until_complete("i").await;
    assert_eq!(outcome.text("stdout"), "started\n");
    assert!(outcome
        .text("header")
        .contains("command interrupted, attempting to kill"));
    assert_eq!(outcome.rc(), -1);
    assert!(outcome.value("elapsed").is_none());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !live_group_members(pgid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "process group {pgid} survived: {:?}",
            live_group_members(pgid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Interrupting an unknown command is not an error.
    let interrupt = Op::InterruptCommand {
        command_id: "gone".into(),
        why: "stop".into(),
    };
    assert_eq!(master.call(interrupt).await, Ok(Value::Nil));

    // A disconnect kills running commands too.
    let pidfile = base.join("pid2");
    let script = format!("echo $$ > {}; sleep 100", pidfile.display());
    let start = Op::StartCommand {
        command_id: "d".into(),
        command_name: "shell".into(),
        args: shell(&base, argv(&["sh", "-c", &script]), vec![]),
        builder_name: None,
    };
    assert_eq!(master.call(start).await, Ok(Value::Nil));
    let pgid: i32 = wait_for_file(&pidfile).await.trim().parse().unwrap();
    let _ = setup.master.ws.close(None).await;
    drop(setup.master);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !live_group_members(pgid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "process group {pgid} survived the disconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(setup.stop.take());
    let result = tokio::time::timeout(Duration::from_secs(10), setup.worker)
        .await
        .expect("worker exits on local shutdown");
    assert!(result.unwrap().is_ok());
}

#[tokio::test]
async fn filesystem_commands() {
    let mut setup = setup(false).await;
    let base = setup.basedir.path().to_path_buf();
    let master = &mut setup.master;
    let deep = base.join("a/b");
    let outcome = master
        .command(
            "1",
            "mkdir",
            map(vec![("paths", Value::Array(vec![path_value(&deep)]))]),
        )
        .await;
    assert_eq!(outcome.rc(), 0);
    assert!(outcome.value("elapsed").is_some());
    std::fs::write(base.join("a/b/x.txt"), "x").unwrap();
    std::fs::write(base.join("a/y.txt"), "y").unwrap();

    let outcome = master
        .command(
            "2",
            "stat",
            map(vec![("path", path_value(&base.join("a")))]),
        )
        .await;
    let Some(Value::Array(stat)) = outcome.value("stat") else {
        panic!("no stat")
    };
    assert_eq!(stat.len(), 10);
    assert_eq!(
        stat[0].as_u64().unwrap() & 0o170000,
        0o040000,
        "a directory"
    );
    let outcome = master
        .command(
            "3",
            "stat",
            map(vec![("path", path_value(&base.join("missing")))]),
        )
        .await;
    assert_eq!(outcome.rc(), 2);
    assert!(outcome
        .text("header")
        .starts_with("stat: No such file or directory: "));

    let outcome = master
        .command(
            "4",
            "listdir",
            map(vec![("path", path_value(&base.join("a")))]),
        )
        .await;
    assert_eq!(outcome.files(), ["b", "y.txt"]);
    let pattern = format!("{}/a/**/*.txt", base.display());
    let outcome = master
        .command("5", "glob", map(vec![("path", Value::from(pattern))]))
        .await;
    let expected: Vec<String> = ["a/b/x.txt", "a/y.txt"]
        .iter()
        .map(|p| base.join(p).display().to_string())
        .collect();
    assert_eq!(outcome.files(), expected);

    let copy = base.join("copy");
    let outcome = master
        .command(
            "6",
            "cpdir",
            map(vec![
                ("from_path", path_value(&base.join("a"))),
                ("to_path", path_value(&copy)),
            ]),
        )
        .await;
    assert_eq!(outcome.rc(), 0);
    assert_eq!(std::fs::read_to_string(copy.join("b/x.txt")).unwrap(), "x");
    let outcome = master
        .command(
            "7",
            "rmfile",
            map(vec![("path", path_value(&copy.join("y.txt")))]),
        )
        .await;
    assert_eq!(outcome.rc(), 0);
    assert!(!copy.join("y.txt").exists());

    let outcome = master
        .command(
            "8",
            "rmdir",
            map(vec![(
                "paths",
                Value::Array(vec![path_value(&base.join("a")), path_value(&copy)]),
            )]),
        )
        .await;
    assert_eq!(outcome.rc(), 0);
    assert!(!base.join("a").exists() && !copy.exists());
    shutdown(setup).await;
}

fn test_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn transfers() {
    let mut setup = setup(false).await;
    let base = setup.basedir.path().to_path_buf();
    let master = &mut setup.master;

    let data = test_bytes(100_000);
    master.downloads.insert("d".into(), data.clone());
    let dest = base.join("sub/dir/file.bin");
    let download = map(vec![
        ("path", path_value(&dest)),
        ("blocksize", Value::from(16384)),
        ("maxsize", Value::Nil),
        ("mode", Value::from(0o640)),
    ]);
    let outcome = master.command("d", "download_file", download).await;
    assert_eq!(outcome.rc(), 0);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(
        std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let ops = &master.transfer_ops["d"];
    assert_eq!(
        ops.iter().filter(|op| *op == "read").count(),
        8,
        "7 blocks, then the empty answer"
    );
    assert_eq!(
        ops.last().map(String::as_str),
        Some("update_read_file_close")
    );

    master.downloads.insert("dm".into(), data.clone());
    let limited = map(vec![
        ("path", path_value(&base.join("small"))),
        ("blocksize", Value::from(16384)),
        ("maxsize", Value::from(1000)),
        ("mode", Value::Nil),
    ]);
    let outcome = master.command("dm", "download_file", limited).await;
    assert_eq!(outcome.rc(), 1);
    assert_eq!(std::fs::read(base.join("small")).unwrap(), &data[..1000]);
    assert!(outcome.text("stderr").contains("Maximum filesize reached"));

    let missing_key = map(vec![
        ("path", path_value(&dest)),
        ("blocksize", Value::from(16384)),
    ]);
    let start = Op::StartCommand {
        command_id: "bad".into(),
        command_name: "download_file".into(),
        args: missing_key,
        builder_name: None,
    };
    assert_eq!(master.call(start).await, Err("'maxsize'".into()));

    let source = base.join("upload.bin");
    let content = test_bytes(300_000);
    std::fs::write(&source, &content).unwrap();
    let upload = map(vec![
        ("path", path_value(&source)),
        ("blocksize", Value::from(65536)),
        ("maxsize", Value::Nil),
        ("keepstamp", Value::Boolean(true)),
    ]);
    let outcome = master.command("u", "upload_file", upload).await;
    assert_eq!(outcome.rc(), 0);
    assert_eq!(master.uploads["u"], content);
    let ops = &master.transfer_ops["u"];
    assert_eq!(ops.len(), 7, "{ops:?}");
    assert_eq!(
        &ops[5..],
        ["update_upload_file_close", "update_upload_file_utime"]
    );

    let missing = map(vec![
        ("path", path_value(&base.join("nope"))),
        ("blocksize", Value::from(10)),
        ("maxsize", Value::Nil),
    ]);
    let outcome = master.command("un", "upload_file", missing).await;
    assert_eq!(outcome.rc(), 1);
    assert!(outcome.text("stderr").contains("Cannot open file"));
    assert_eq!(master.transfer_ops["un"], ["update_upload_file_close"]);

    let tree = base.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(tree.join("sub/b.bin"), test_bytes(50_000)).unwrap();
    let upload = map(vec![
        ("path", path_value(&tree)),
        ("blocksize", Value::from(16384)),
        ("maxsize", Value::Nil),
        ("compress", Value::from("gz")),
    ]);
    let outcome = master.command("ud", "upload_directory", upload).await;
    assert_eq!(outcome.rc(), 0);
    assert_eq!(
        master.transfer_ops["ud"].last().map(String::as_str),
        Some("update_upload_directory_unpack")
    );
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&master.uploads["ud"][..]));
    let mut files: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        files.insert(entry.path().unwrap().into_owned(), body);
    }
    assert_eq!(files[Path::new("a.txt")], b"alpha\n");
    assert_eq!(files[Path::new("sub/b.bin")], test_bytes(50_000));
    assert!(files.contains_key(Path::new("sub")));
    shutdown(setup).await;
}
