//! Load client of `bench/hooks.sh`: posts signed GitHub push deliveries on keep-alive
//! connections and prints one JSON line (accepted per second, latency percentiles, answers).
//!
//! ```text
//! hook_load PORT N CONCURRENCY SECRET FIXTURE.json
//! ```
//!
//! Every request is built and signed before the clock starts, and the client is a few
//! microseconds of CPU per request, so on a small machine the figure measures the server,
//! not the client. Each delivery is the fixture's push with its own commit id, message and
//! `X-GitHub-Delivery`, signed with `X-Hub-Signature-256` and (for Buildbot, which checks
//! only that) `X-Hub-Signature`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    port: u16,
    n: usize,
    concurrency: usize,
    secret: String,
    fixture: String,
}

fn args() -> Result<Args, String> {
    let v: Vec<String> = std::env::args().skip(1).collect();
    let [port, n, concurrency, secret, fixture] = v.as_slice() else {
        return Err("usage: hook_load PORT N CONCURRENCY SECRET FIXTURE.json".into());
    };
    let number = |s: &str, what: &str| s.parse::<usize>().map_err(|e| format!("{what} {s:?}: {e}"));
    Ok(Args {
        port: number(port, "port")? as u16,
        n: number(n, "N")?,
        concurrency: number(concurrency, "concurrency")?.max(1),
        secret: secret.clone(),
        fixture: fixture.clone(),
    })
}

fn hex_hmac<M: Mac + hmac::digest::KeyInit>(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Delivery `i`: the fixture's push with its own commit, as a complete HTTP request.
fn request(base: &Value, i: usize, port: u16, secret: &[u8]) -> Vec<u8> {
    let mut commit = base["commits"][0].clone();
    commit["id"] = json!(format!("{:040x}", i + 1));
    commit["message"] = json!(format!("bench commit {i}"));
    let mut payload = base.clone();
    payload["commits"] = json!([commit.clone()]);
    payload["head_commit"] = commit.clone();
    payload["after"] = commit["id"].clone();
    payload["created"] = json!(false);
    let body = serde_json::to_vec(&payload).expect("JSON values serialise");
    let sha256 = hex_hmac::<Hmac<sha2::Sha256>>(secret, &body);
    let sha1 = hex_hmac::<Hmac<sha1::Sha1>>(secret, &body);
    let mut request = format!(
        "POST /change_hook/github HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json\r\nX-GitHub-Event: push\r\n\
         X-GitHub-Delivery: bench-{i:08}-{:08x}\r\n\
         X-Hub-Signature-256: sha256={sha256}\r\nX-Hub-Signature: sha1={sha1}\r\n\
         Content-Length: {}\r\n\r\n",
        std::process::id(),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// Reads one HTTP/1.1 response, its body sized by `Content-Length` or chunked (Twisted, so
/// Buildbot, answers chunked); returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let head_end = loop {
        if let Some(end) = find(buf, b"\r\n\r\n", 0) {
            break end + 4;
        }
        fill(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(length) => {
            while buf.len() < head_end + length {
                fill(stream, buf).await?;
            }
        }
        None if head.contains("transfer-encoding: chunked") => {
            read_chunks(stream, buf, head_end).await?
        }
        None => return Err(bad("neither content-length nor chunked")),
    }
    Ok(status)
}

/// Reads chunks from `at` to the last (empty) chunk and its final CRLF.
async fn read_chunks(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut at: usize,
) -> std::io::Result<()> {
    loop {
        let line_end = loop {
            if let Some(end) = find(buf, b"\r\n", at) {
                break end;
            }
            fill(stream, buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        let next = line_end + 2 + size + 2;
        while buf.len() < next {
            fill(stream, buf).await?;
        }
        if size == 0 {
            return Ok(());
        }
        at = next;
    }
}

fn find(buf: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(bad("connection closed"));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    latencies: Vec<Duration>,
}

async fn client(
    port: u16,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
    tally: Arc<Mutex<Tally>>,
) {
    let connect = || async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.set_nodelay(true).ok()?;
        Some(stream)
    };
    let mut stream = connect().await;
    let mut buf = Vec::with_capacity(8192);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(request) = requests.get(i) else {
            return;
        };
        let started = Instant::now();
        let status = match stream.as_mut() {
            None => 0,
            Some(s) => match s.write_all(request).await {
                Ok(()) => read_response(s, &mut buf).await.unwrap_or(0),
                Err(_) => 0,
            },
        };
        if status == 0 {
            stream = connect().await;
        }
        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
        *t.statuses.entry(status).or_default() += 1;
        t.latencies.push(started.elapsed());
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let fixture = std::fs::read(&args.fixture)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()));
    let base = match fixture {
        Ok(base) => base,
        Err(e) => {
            eprintln!("cannot read {}: {e}", args.fixture);
            std::process::exit(2);
        }
    };
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..args.n)
            .map(|i| request(&base, i, args.port, args.secret.as_bytes()))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            tokio::spawn(client(
                args.port,
                requests.clone(),
                next.clone(),
                tally.clone(),
            ))
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let wall = started.elapsed().as_secs_f64();
    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
    t.latencies.sort();
    let pct = |p: f64| {
        let i = ((p * t.latencies.len() as f64) as usize).min(t.latencies.len().saturating_sub(1));
        t.latencies
            .get(i)
            .map_or(0.0, |d| (d.as_secs_f64() * 1e5).round() / 100.0)
    };
    let accepted = t.statuses.get(&200).copied().unwrap_or(0);
    let statuses: BTreeMap<String, usize> = t
        .statuses
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    println!(
        "{}",
        json!({
            "deliveries": args.n, "concurrency": args.concurrency,
            "wall_s": (wall * 1000.0).round() / 1000.0,
            "accepted": accepted, "statuses": statuses,
            "accepted_per_s": ((accepted as f64 / wall) * 10.0).round() / 10.0,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99),
        })
    );
}
