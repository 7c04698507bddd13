//! A hostile peer on the worker port: 1,000 malformed or hostile frames (garbage, oversized
//! frames, unknown ops, wrong types, responses to unknown sequence numbers…) while a real worker
//! runs a build. The master keeps serving and the build is unaffected.
//!
//! The hostile side is a hand-written WebSocket client and msgpack writer, so that it can send
//! what no well-behaved library would.

mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use harness::{Db, TestMaster, TestWorker};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'msgpack_experimental_v7': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1"), Worker("hostile", "hpw")]
c['db'] = {'db_url': "@DB_URL@"}
f = BuildFactory()
f.addStep(ShellCommand(name="count", command="for i in $(seq 1 40); do echo line-$i; sleep 0.1; done"))
c['builders'] = [BuilderConfig(name="b", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["b"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

/// A msgpack value, just enough to write hostile messages.
enum Mp {
    Nil,
    Int(i64),
    Str(&'static str),
    Bin(Vec<u8>),
    Arr(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
}

fn write_mp(out: &mut Vec<u8>, v: &Mp) {
    match v {
        Mp::Nil => out.push(0xc0),
        Mp::Int(i) => {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Mp::Str(s) => {
            out.push(0xdb);
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Mp::Bin(b) => {
            out.push(0xc6);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        Mp::Arr(items) => {
            out.push(0xdd);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for item in items {
                write_mp(out, item);
            }
        }
        Mp::Map(entries) => {
            out.push(0xdf);
            out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
            for (k, v) in entries {
                write_mp(out, k);
                write_mp(out, v);
            }
        }
    }
}

fn mp(v: Mp) -> Vec<u8> {
    let mut out = Vec::new();
    write_mp(&mut out, &v);
    out
}

fn map(entries: Vec<(&'static str, Mp)>) -> Mp {
    Mp::Map(entries.into_iter().map(|(k, v)| (Mp::Str(k), v)).collect())
}

/// A tiny xorshift generator, so that the garbage is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The `i`-th hostile frame: (opcode, payload), or a raw frame header claiming a size far
/// beyond the master's limit.
fn hostile_frame(i: usize, rng: &mut Rng) -> Frame {
    let seq = Mp::Int(i as i64);
    // The first half never sends an oversized frame, so that connections live long enough to
    // reach the master's limit on bad frames; the second half sends one in every sixteen.
    let kind = if i < 500 { i % 15 } else { i % 16 };
    let payload = match kind {
        0 => {
            let n = 1 + (rng.next() % 200) as usize;
            rng.bytes(n)
        }
        1 => mp(map(vec![
            ("op", Mp::Str("no_such_op")),
            ("seq_number", seq),
        ])),
        2 => mp(map(vec![
            ("op", Mp::Str("response")),
            ("seq_number", Mp::Int(1_000_000 + i as i64)),
            ("result", Mp::Nil),
        ])),
        3 => mp(map(vec![("op", Mp::Int(5)), ("seq_number", seq)])),
        4 => mp(map(vec![
            ("op", Mp::Str("update")),
            ("seq_number", Mp::Str("x")),
        ])),
        5 => mp(map(vec![
            ("op", Mp::Str("update")),
            ("seq_number", seq),
            ("command_id", Mp::Str("0")),
            ("args", Mp::Str("not a list")),
        ])),
        6 => mp(map(vec![
            ("op", Mp::Str("update")),
            ("seq_number", seq),
            ("command_id", Mp::Str("no-such-command")),
            (
                "args",
                Mp::Arr(vec![Mp::Arr(vec![Mp::Str("rc"), Mp::Int(0)])]),
            ),
        ])),
        7 => mp(map(vec![
            ("op", Mp::Str("complete")),
            ("seq_number", seq),
            ("command_id", Mp::Int(3)),
        ])),
        8 => mp(map(vec![
            ("op", Mp::Str("update_upload_file_write")),
            ("seq_number", seq),
            ("command_id", Mp::Str("1")),
            ("args", Mp::Bin(rng.bytes(1000))),
        ])),
        9 => mp(map(vec![
            ("op", Mp::Str("update_read_file")),
            ("seq_number", seq),
            ("command_id", Mp::Str("1")),
            ("length", Mp::Int(-5)),
        ])),
        10 => mp(Mp::Arr(vec![Mp::Str("op"), Mp::Str("print")])),
        11 => mp(Mp::Map(vec![(Mp::Int(1), Mp::Str("non-string key"))])),
        12 => {
            // A deeply nested value.
            let mut bytes = vec![0x91; 5000];
            bytes.push(0xc0);
            bytes
        }
        13 => {
            // A claimed array of 4 billion entries in a few bytes.
            vec![0x81, 0xa2, b'o', b'p', 0xdd, 0xff, 0xff, 0xff, 0xff]
        }
        14 => return Frame::Data(1, b"text frames carry no protocol".to_vec()),
        _ => return Frame::Oversized,
    };
    Frame::Data(2, payload)
}

enum Frame {
    Data(u8, Vec<u8>),
    Oversized,
}

/// A client connection on the worker port, authenticated as `hostile`.
fn connect(port: u16) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    // "hostile:hpw" in Basic auth.
    let request =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Authorization: Basic aG9zdGlsZTpocHc=\r\n\r\n";
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).ok()?;
        head.push(byte[0]);
        if head.len() > 8192 {
            return None;
        }
    }
    head.starts_with(b"HTTP/1.1 101").then_some(stream)
}

/// Writes one masked client frame (the mask key is zero, which leaves the payload as is).
fn send(stream: &mut TcpStream, frame: &Frame) -> std::io::Result<()> {
    let mut out = Vec::new();
    match frame {
        Frame::Data(opcode, payload) => {
            out.push(0x80 | opcode);
            match payload.len() {
                n if n < 126 => out.push(0x80 | n as u8),
                n if n < 65536 => {
                    out.push(0x80 | 126);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    out.push(0x80 | 127);
                    out.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.extend_from_slice(payload);
        }
        Frame::Oversized => {
            // Claims 1 GiB; the master must refuse it from the header alone.
            out.extend_from_slice(&[0x82, 0x80 | 127]);
            out.extend_from_slice(&(1u64 << 30).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.extend_from_slice(&[0u8; 4096]);
        }
    }
    stream.write_all(&out)
}

#[test]
fn a_thousand_hostile_frames_leave_the_master_serving() {
    let master = TestMaster::start(Db::Sqlite, "hostile", CFG);
    let worker = TestWorker::start(&master, "w1", "pw1");
    master.wait_attached("w1", Duration::from_secs(60));
    master.force("force", &["b"]);

    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut stream = None;
    let mut sent = 0;
    let mut connections = 0;
    let mut attempts = 0;
    while sent < 1000 {
        attempts += 1;
        assert!(
            attempts < 5000,
            "the hostile client could not get its frames through"
        );
        let s = match stream.as_mut() {
            Some(s) => s,
            None => {
                let Some(s) = connect(master.worker_port) else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                connections += 1;
                stream.insert(s)
            }
        };
        let frame = hostile_frame(sent, &mut rng);
        let oversized = matches!(frame, Frame::Oversized);
        match send(s, &frame) {
            Ok(()) => sent += 1,
            Err(_) => {
                // The master dropped this connection (it should, after an oversized frame or
                // too many bad ones): count the frame only if it went out, and reconnect.
                stream = None;
                continue;
            }
        }
        if oversized {
            stream = None;
        }
    }
    drop(stream);

    // The master still serves: the build passes with all its output, and the web answers.
    let builds = master.wait_finished_builds(1, Duration::from_secs(120));
    let context = || {
        format!(
            "master log:\n{}\nworker log:\n{}",
            master.log(),
            worker.log()
        )
    };
    assert_eq!(builds[0]["results"], 0, "{builds:?}\n{}", context());
    let log = master.step_log(builds[0]["buildid"].as_i64().expect("buildid"), "count");
    for i in 1..=40 {
        assert!(
            log.contains(&format!("line-{i}\n")),
            "line-{i} missing: {log}"
        );
    }
    assert!(
        connections >= 30,
        "oversized frames end connections: {connections}"
    );
    master.force("force", &["b"]);
    let builds = master.wait_finished_builds(2, Duration::from_secs(120));
    assert_eq!(builds[1]["results"], 0, "{}", context());
}
