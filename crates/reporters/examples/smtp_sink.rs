//! A fast SMTP sink for `bench/mail.sh`, so the benchmark measures the master rather than
//! the sink. The single-process Python `aiosmtpd` sink (`tests/smtp_sink.py`) spent more CPU
//! per mail than the master did (1.2 s against 0.9 s for 2,000 mails) and set the p99.
//!
//! It speaks real SMTP on 127.0.0.1 (greeting, EHLO/HELO, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT; PIPELINING advertised, replies in command order) and
//! writes each message as `smtp_sink.py --raw` does: `DIR/NAME.eml` and `DIR/NAME.json`
//! with the envelope, the time the DATA command arrived and the time the message was
//! complete, both before answering 250. No TLS and no AUTH: the tests use the Python sink.
//!
//!     cargo run --release -p reporters --example smtp_sink -- --dir DIR --port PORT
//!
//! It runs until SIGTERM or SIGINT.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Longest command line accepted (RFC 5321 allows 512 octets; extensions add a little).
const MAX_COMMAND: usize = 4096;
/// Longest line inside DATA (RFC 5321: 1000 octets; be lenient with senders).
const MAX_DATA_LINE: usize = 1 << 20;
/// Largest message kept; a bigger one is read to its end and refused with 552.
const MAX_MESSAGE: usize = 64 << 20;

const USAGE: &str = "usage: smtp_sink --dir DIR --port PORT [--raw]";

/// Where to listen and write.
struct Args {
    dir: PathBuf,
    port: u16,
}

impl Args {
    /// `--dir DIR --port PORT`; `--raw` is accepted (and implied) for `smtp_sink.py`'s
    /// command line.
    fn parse(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
        let (mut dir, mut port) = (None, None);
        while let Some(word) = words.next() {
            match word.as_str() {
                "--dir" => dir = words.next().map(PathBuf::from),
                "--port" => {
                    let value = words.next().unwrap_or_default();
                    port = Some(value.parse().map_err(|_| format!("bad port {value:?}"))?);
                }
                "--raw" => {}
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        match (dir, port) {
            (Some(dir), Some(port)) => Ok(Args { dir, port }),
            _ => Err("--dir and --port are required".into()),
        }
    }
}

/// One SMTP transaction's envelope.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(it) => it,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("cannot create {}: {e}", args.dir.display());
        return ExitCode::FAILURE;
    }
    let listener = match TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(it) => it,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{}: {e}", args.port);
            return ExitCode::FAILURE;
        }
    };
    println!("smtp sink listening on 127.0.0.1:{}", args.port);
    let dir: Arc<Path> = Arc::from(args.dir.as_path());
    let count = Arc::new(AtomicU64::new(0));
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(it) => it,
            Err(e) => {
                eprintln!("cannot watch SIGTERM: {e}");
                return ExitCode::FAILURE;
            }
        };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (dir, count) = (dir.clone(), count.clone());
                    tokio::spawn(async move {
                        if let Err(e) = session(stream, &dir, &count).await {
                            eprintln!("session ended: {e}");
                        }
                    });
                }
                Err(e) => eprintln!("accept failed: {e}"),
            },
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    ExitCode::SUCCESS
}

/// One client connection, until QUIT or end of input.
async fn session(stream: TcpStream, dir: &Path, count: &AtomicU64) -> io::Result<()> {
    // Mail is small and latency is what is measured: no Nagle delay on replies.
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut writer = BufWriter::new(write);
    writer
        .write_all(b"220 signalbox-sink ESMTP ready\r\n")
        .await?;
    writer.flush().await?;
    let mut envelope = Envelope::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read_line(&mut reader, &mut line, MAX_COMMAND).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, argument) = text.split_once(' ').unwrap_or((text, ""));
        let reply: &[u8] = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                b"250-signalbox-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 67108864\r\n"
            }
            "HELO" => b"250 signalbox-sink\r\n",
            "MAIL" => match path(argument, "FROM:") {
                Some(from) => {
                    envelope = Envelope {
                        from: Some(from),
                        to: Vec::new(),
                    };
                    b"250 OK\r\n"
                }
                None => b"501 Syntax: MAIL FROM:<address>\r\n",
            },
            "RCPT" => match (envelope.from.is_some(), path(argument, "TO:")) {
                (false, _) => b"503 MAIL first\r\n",
                (true, Some(to)) => {
                    envelope.to.push(to);
                    b"250 OK\r\n"
                }
                (true, None) => b"501 Syntax: RCPT TO:<address>\r\n",
            },
            "DATA" if envelope.to.is_empty() => b"503 RCPT first\r\n",
            "DATA" => {
                let data_command_at = now();
                writer
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                writer.flush().await?;
                let message = read_data(&mut reader).await?;
                let reply: &[u8] = match message {
                    Some(message) => {
                        let meta = json!({
                            "mail_from": envelope.from,
                            "rcpt_tos": envelope.to,
                            "tls": false,
                            "auth_user": null,
                            "data_command_at": data_command_at,
                            "received_at": now(),
                        });
                        store(dir, count, &message, &meta).await?;
                        b"250 Message accepted for delivery\r\n"
                    }
                    None => b"552 Message too big\r\n",
                };
                envelope = Envelope::default();
                reply
            }
            "RSET" => {
                envelope = Envelope::default();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                writer.write_all(b"221 Bye\r\n").await?;
                writer.flush().await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        send(&mut writer, &reader, reply).await?;
    }
}

/// Writes a reply; flushes only when no further pipelined command is already buffered, so
/// a pipelined group gets its replies in one write, in order (RFC 2920).
async fn send(
    writer: &mut BufWriter<OwnedWriteHalf>,
    reader: &BufReader<OwnedReadHalf>,
    reply: &[u8],
) -> io::Result<()> {
    writer.write_all(reply).await?;
    if reader.buffer().is_empty() {
        writer.flush().await?;
    }
    Ok(())
}

/// The address of `FROM:<a@b> SIZE=…` / `TO:<a@b>` (angle brackets optional).
fn path(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument.get(keyword.len()..)?.trim_start();
    let address = match rest.strip_prefix('<') {
        Some(inner) => inner.split_once('>')?.0,
        None => rest.split_whitespace().next().unwrap_or(""),
    };
    Some(address.to_string())
}

/// Reads the message after 354 up to the line `.`, undoing dot-stuffing; `None` when it
/// was larger than [`MAX_MESSAGE`] (it is still read to its end).
async fn read_data<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if read_line(reader, &mut line, MAX_DATA_LINE).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_big).then_some(message));
        }
        let content = match line.first() {
            Some(b'.') => &line[1..],
            _ => &line[..],
        };
        too_big = too_big || message.len() + content.len() > MAX_MESSAGE;
        if !too_big {
            message.extend_from_slice(content);
        }
    }
}

/// Appends one line, with its `\n`, to `line`; returns its length (0 at end of input).
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(line.len());
        }
        let (taken, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if line.len() > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        if done {
            return Ok(line.len());
        }
    }
}

/// Writes `NAME.eml` and then `NAME.json` (each through a temporary name), so a reader that
/// sees the JSON file finds the whole message.
async fn store(
    dir: &Path,
    count: &AtomicU64,
    message: &[u8],
    meta: &serde_json::Value,
) -> io::Result<()> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!(
        "{nanos}-{}-{}",
        std::process::id(),
        count.fetch_add(1, Ordering::Relaxed) + 1
    );
    for (extension, bytes) in [
        ("eml", message.to_vec()),
        ("json", meta.to_string().into_bytes()),
    ] {
        let temporary = dir.join(format!("{name}.{extension}.tmp"));
        tokio::fs::write(&temporary, bytes).await?;
        tokio::fs::rename(&temporary, dir.join(format!("{name}.{extension}"))).await?;
    }
    Ok(())
}

/// Seconds since the epoch, as Python's `time.time()`.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
