//! The `shell` command (spec §6.2): a process in its own process group, its output streamed,
//! with the no-output timeout, `maxTime`, `max_lines`, interrupts and kill escalation.
//!
//! It ends when the process has exited and its pipes are closed (or have stayed open for
//! [`DRAIN_GRACE`] after the exit, e.g. held by a background grandchild), or when a kill did not
//! take effect within [`KILL_GRACE`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use protocol::{args, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command as Process;

use super::pty::Pty;
use super::{arg_error, Interrupt, INTERRUPTED_HEADER};
use crate::output::Stream;
use crate::reporter::Reporter;

/// How long a killed process may take to die before we report a fake rc of -1.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How long output pipes are still read after the process exited.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// How often watched logfiles are polled (stock: 2 s).
const LOGFILE_POLL: Duration = Duration::from_secs(2);
/// Most bytes read from a logfile per poll.
const LOGFILE_READ_MAX: u64 = 16 << 20;

/// The arguments of `shell`.
pub(crate) struct ShellArgs {
    workdir: PathBuf,
    command: ShellCommand,
    env: Result<Vec<(String, Option<String>)>, String>,
    want_stdout: bool,
    want_stderr: bool,
    logfiles: Vec<LogfileSpec>,
    timeout: Option<f64>,
    max_time: Option<f64>,
    max_lines: Option<u64>,
    sigterm_time: Option<f64>,
    interrupt_signal: Signal,
    use_pty: bool,
    log_environ: bool,
    initial_stdin: Option<String>,
}

enum ShellCommand {
    /// Executed directly; each element is `(real, shown)` (they differ for obfuscated words).
    Argv(Vec<(String, String)>),
    /// Run through `/bin/sh -c`.
    Script(String),
}

struct LogfileSpec {
    name: String,
    filename: String,
    follow: bool,
}

impl ShellArgs {
    /// Reads the `start_command` args of `shell`.
    pub(crate) fn parse(value: &Value) -> Result<ShellArgs, String> {
        let missing = |key: &str| format!("WorkerShellCommand is missing args: {key}");
        let workdir = args::get_str(value, "workdir")
            .map_err(arg_error)?
            .ok_or_else(|| missing("workdir"))?;
        let command = match args::get(value, "command") {
            None => return Err(missing("command")),
            Some(Value::String(s)) => ShellCommand::Script(
                s.as_str()
                    .ok_or("argument \"command\" is not valid utf-8")?
                    .to_owned(),
            ),
            Some(Value::Array(items)) => {
                ShellCommand::Argv(items.iter().map(argv_word).collect::<Result<_, _>>()?)
            }
            Some(_) => return Err("argument \"command\" must be a string or an array".to_owned()),
        };
        if matches!(&command, ShellCommand::Argv(argv) if argv.is_empty()) {
            return Err("argument \"command\" is empty".to_owned());
        }
        let bool_or = |key: &str, default: bool| {
            args::get_bool(value, key)
                .map(|b| b.unwrap_or(default))
                .map_err(arg_error)
        };
        let number = |key: &str| args::get_f64(value, key).map_err(arg_error);
        let interrupt_signal = match args::get_str(value, "interruptSignal").map_err(arg_error)? {
            None => Signal::SIGKILL,
            Some(name) => {
                parse_signal(name).ok_or_else(|| format!("unknown interruptSignal '{name}'"))?
            }
        };
        Ok(ShellArgs {
            workdir: PathBuf::from(workdir),
            command,
            env: parse_env(value),
            want_stdout: bool_or("want_stdout", true)?,
            want_stderr: bool_or("want_stderr", true)?,
            logfiles: parse_logfiles(value)?,
            timeout: number("timeout")?,
            max_time: number("maxTime")?,
            max_lines: args::get_u64(value, "max_lines").map_err(arg_error)?,
            sigterm_time: number("sigtermTime")?,
            interrupt_signal,
            use_pty: bool_or("usePTY", false)?,
            log_environ: bool_or("logEnviron", true)?,
            initial_stdin: args::get_str(value, "initial_stdin")
                .map_err(arg_error)?
                .map(str::to_owned),
        })
    }
}

/// One argv element: a string, or `["obfuscated", real, shown]` (spec Q11).
fn argv_word(value: &Value) -> Result<(String, String), String> {
    if let Some(word) = value.as_str() {
        return Ok((word.to_owned(), word.to_owned()));
    }
    if let Value::Array(items) = value {
        if let [tag, real, shown] = items.as_slice() {
            if let (Some("obfuscated"), Some(real), Some(shown)) =
                (tag.as_str(), real.as_str(), shown.as_str())
            {
                return Ok((real.to_owned(), shown.to_owned()));
            }
        }
    }
    Err("argument \"command\" must contain only strings".to_owned())
}

fn parse_signal(name: &str) -> Option<Signal> {
    let name = name.trim().to_ascii_uppercase();
    let full = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    full.parse().ok()
}

/// The `env` arg; a bad value fails the command when it runs, not at start (as in stock).
fn parse_env(value: &Value) -> Result<Vec<(String, Option<String>)>, String> {
    let Some(entries) = args::get_map(value, "env").map_err(arg_error)? else {
        return Ok(Vec::new());
    };
    let mut env = Vec::with_capacity(entries.len());
    for (key, val) in entries {
        let Some(key) = key.as_str() else {
            return Err("'env' keys must be strings".to_owned());
        };
        let bad = || format!("'env' values must be strings or lists; key '{key}' is incorrect");
        let val = match val {
            Value::Nil => None,
            Value::String(s) => Some(s.as_str().ok_or_else(bad)?.to_owned()),
            Value::Array(items) => {
                let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                Some(parts.ok_or_else(bad)?.join(":"))
            }
            _ => return Err(bad()),
        };
        env.push((key.to_owned(), val));
    }
    Ok(env)
}

fn parse_logfiles(value: &Value) -> Result<Vec<LogfileSpec>, String> {
    let Some(entries) = args::get_map(value, "logfiles").map_err(arg_error)? else {
        return Ok(Vec::new());
    };
    let mut logfiles = Vec::new();
    for (name, spec) in entries {
        let Some(name) = name.as_str() else {
            return Err("'logfiles' keys must be strings".to_owned());
        };
        let (filename, follow) = match spec.as_str() {
            Some(filename) => (filename, false),
            None => {
                let filename = args::require_str(spec, "filename").map_err(arg_error)?;
                (
                    filename,
                    args::get_bool(spec, "follow")
                        .map_err(arg_error)?
                        .unwrap_or(false),
                )
            }
        };
        logfiles.push(LogfileSpec {
            name: name.to_owned(),
            filename: filename.to_owned(),
            follow,
        });
    }
    Ok(logfiles)
}

/// The child's environment: the worker's own, changed by `env` (nil removes, `${NAME}` expands
/// to the worker's value of NAME, `PYTHONPATH` gets the worker's appended), and `PWD`.
fn build_env(changes: &[(String, Option<String>)], workdir: &Path) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    for (key, value) in changes {
        match value {
            None => {
                env.remove(&OsString::from(key));
            }
            Some(value) => {
                let value = if key == "PYTHONPATH" {
                    format!("{value}:${{PYTHONPATH}}")
                } else {
                    value.clone()
                };
                env.insert(key.into(), expand_vars(&value).into());
            }
        }
    }
    env.insert("PWD".into(), workdir.as_os_str().to_owned());
    env
}

/// Replaces `${NAME}` (NAME of `[0-9a-zA-Z_]*`) with the worker's value of NAME, or nothing.
fn expand_vars(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if after.as_bytes().get(name_len) == Some(&b'}') {
            out.push_str(&std::env::var(&after[..name_len]).unwrap_or_default());
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Quotes a word for display the way Python's `shlex.quote` does.
fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\"'\"'"))
    }
}

fn seconds(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Runs `shell`.
pub(crate) async fn run(args: ShellArgs, mut reporter: Reporter, mut interrupt: Interrupt) {
    let started = Instant::now();
    let env = match &args.env {
        Ok(changes) => build_env(changes, &args.workdir),
        Err(failure) => return reporter.complete(Some(failure.clone())).await,
    };
    let (display, argv_shown) = match &args.command {
        ShellCommand::Argv(argv) => {
            let shown: Vec<String> = argv.iter().map(|(_, shown)| shell_quote(shown)).collect();
            (
                shown.join(" "),
                format!(
                    "{:?}",
                    argv.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>()
                ),
            )
        }
        ShellCommand::Script(script) => (
            script.clone(),
            format!("{:?}", ["/bin/sh", "-c", script.as_str()]),
        ),
    };
    reporter
        .text(
            Stream::Header,
            &header_text(&args, &display, &argv_shown, &env),
        )
        .await;

    if let Err(err) = std::fs::create_dir_all(&args.workdir) {
        let text = format!("cannot create workdir {}: {err}\n", args.workdir.display());
        return finish_without_process(reporter, &text, started).await;
    }
    let mut process = match &args.command {
        ShellCommand::Argv(argv) => {
            let mut process = Process::new(&argv[0].0);
            process.args(argv[1..].iter().map(|(real, _)| real));
            process
        }
        ShellCommand::Script(script) => {
            let mut process = Process::new("/bin/sh");
            process.arg("-c").arg(script);
            process
        }
    };
    process
        .current_dir(&args.workdir)
        .env_clear()
        .envs(&env)
        .kill_on_drop(false);
    let pty = match prepare_stdio(&mut process, &args) {
        Ok(pty) => pty,
        Err(err) => {
            let text = format!("error: cannot open a pseudo-terminal for {display}: {err}\n");
            return finish_without_process(reporter, &text, started).await;
        }
    };
    let spawned = process.spawn();
    // The command holds the parent's copies of the child's stdio (the pty slave): close them
    // now, or the end of the output would never be seen.
    drop(process);
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            let text = format!("error: cannot run {display}: {err}\n");
            return finish_without_process(reporter, &text, started).await;
        }
    };
    // The pid is known until the child is reaped, and it is not reaped yet.
    let pgid = child.id().map_or(0, |pid| pid as i32);
    if let (Some(mut stdin), Some(data)) = (child.stdin.take(), args.initial_stdin.clone()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(data.as_bytes()).await;
        });
    }
    let (mut stdout, mut stderr) = match pty.map(Pty::into_reader).transpose() {
        Ok(Some(reader)) => (Some(Box::new(reader) as OutputPipe), None),
        Ok(None) => (
            child.stdout.take().map(|p| Box::new(p) as OutputPipe),
            child.stderr.take().map(|p| Box::new(p) as OutputPipe),
        ),
        Err(err) => {
            tracing::warn!(%err, "cannot read the pseudo-terminal; killing the command");
            signal_group(pgid, Signal::SIGKILL);
            (None, None)
        }
    };
    let mut out_buf = vec![0u8; 64 * 1024];
    let mut err_buf = vec![0u8; 64 * 1024];
    let mut watchers: Vec<LogfileWatcher> = args
        .logfiles
        .iter()
        .map(|spec| LogfileWatcher::new(spec, &args.workdir))
        .collect();

    let mut status: Option<ExitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut last_output = Instant::now();
    let mut kill = Kill {
        pgid,
        sigterm_time: args.sigterm_time,
        signal: args.interrupt_signal,
        killed: false,
        final_at: None,
        give_up_at: None,
    };
    let mut interrupted = false;
    let mut lines_seen: u64 = 0;
    let mut next_poll = Instant::now() + LOGFILE_POLL;

    loop {
        let now = Instant::now();
        if let Some(exited_at) = exited_at {
            if (stdout.is_none() && stderr.is_none()) || now >= exited_at + DRAIN_GRACE {
                break;
            }
        }
        let deadline = [
            args.timeout
                .filter(|_| !kill.killed)
                .map(|t| last_output + secs(t)),
            args.max_time
                .filter(|_| !kill.killed)
                .map(|t| started + secs(t)),
            reporter.deadline(),
            (!watchers.is_empty()).then_some(next_poll),
            kill.final_at,
            kill.give_up_at.filter(|_| status.is_none()),
            exited_at.map(|at| at + DRAIN_GRACE),
        ]
        .into_iter()
        .flatten()
        .min();
        let sleep_until = deadline.unwrap_or(now + Duration::from_secs(3600));

        tokio::select! {
            read = read_pipe(&mut stdout, &mut out_buf) => match read {
                Ok(0) | Err(_) => stdout = None,
                Ok(n) => {
                    last_output = Instant::now();
                    lines_seen += output(&mut reporter, Stream::Stdout, &out_buf[..n], args.want_stdout).await;
                }
            },
            read = read_pipe(&mut stderr, &mut err_buf) => match read {
                Ok(0) | Err(_) => stderr = None,
                Ok(n) => {
                    last_output = Instant::now();
                    lines_seen += output(&mut reporter, Stream::Stderr, &err_buf[..n], args.want_stderr).await;
                }
            },
            exit = child.wait(), if status.is_none() => {
                match exit {
                    Ok(exit) => status = Some(exit),
                    Err(err) => {
                        tracing::warn!(%err, "waiting for a child failed");
                        status = Some(std::os::unix::process::ExitStatusExt::from_raw(0xff00));
                    }
                }
                exited_at = Some(Instant::now());
            },
            why = interrupt.wait(), if !interrupted => {
                interrupted = true;
                tracing::info!(command_id = reporter.command_id(), why, "interrupting command");
                // The master must receive everything buffered before the kill (spec §6.5).
                reporter.flush().await;
                if status.is_none() {
                    reporter.text(Stream::Header, INTERRUPTED_HEADER).await;
                    kill.start();
                }
            },
            _ = tokio::time::sleep_until(sleep_until.into()) => {}
        }

        let now = Instant::now();
        if let Some(max) = args.max_lines {
            if lines_seen > max && !kill.killed && status.is_none() {
                reporter
                    .update("failure_reason", Value::from("max_lines_failure"))
                    .await;
                let text =
                    format!("\ncommand exceeds max lines: {max} lines, attempting to kill\n");
                reporter.text(Stream::Header, &text).await;
                kill.start();
            }
        }
        if status.is_none() && !kill.killed {
            if let Some(timeout) = args.timeout.filter(|t| now >= last_output + secs(*t)) {
                reporter
                    .update("failure_reason", Value::from("timeout_without_output"))
                    .await;
                let text = format!("\ncommand timed out: {} seconds without output running {argv_shown}, attempting to kill\n", seconds(timeout));
                reporter.text(Stream::Header, &text).await;
                kill.start();
            } else if let Some(max_time) = args.max_time.filter(|t| now >= started + secs(*t)) {
                reporter
                    .update("failure_reason", Value::from("timeout"))
                    .await;
                let text = format!("\ncommand timed out: {} seconds elapsed running {argv_shown}, attempting to kill\n", seconds(max_time));
                reporter.text(Stream::Header, &text).await;
                kill.start();
            }
        }
        if kill.final_at.is_some_and(|at| now >= at) {
            kill.final_signal();
        }
        if status.is_none() && kill.give_up_at.is_some_and(|at| now >= at) {
            let name = kill.signal.as_str();
            reporter
                .text(Stream::Header, &format!("{name} failed to kill process\n"))
                .await;
            reporter.text(Stream::Header, "using fake rc=-1\n").await;
            reporter.update("rc", Value::from(-1)).await;
            return reporter
                .complete(Some(format!("{name} failed to kill process")))
                .await;
        }
        if reporter.deadline().is_some_and(|at| now >= at) {
            reporter.flush().await;
        }
        if !watchers.is_empty() && now >= next_poll {
            next_poll = now + LOGFILE_POLL;
            poll_logfiles(&mut watchers, &mut reporter).await;
        }
    }

    poll_logfiles(&mut watchers, &mut reporter).await;
    reporter.finish_streams().await;
    let status = status.unwrap_or_else(|| std::os::unix::process::ExitStatusExt::from_raw(0xff00));
    let rc = match std::os::unix::process::ExitStatusExt::signal(&status) {
        Some(signal) => {
            reporter
                .text(
                    Stream::Header,
                    &format!("process killed by signal {signal}\n"),
                )
                .await;
            -1
        }
        None => match status.code() {
            Some(0) if kill.killed => -1,
            Some(code) => code,
            None => -1,
        },
    };
    reporter.update("rc", Value::from(rc)).await;
    let elapsed = started.elapsed().as_secs_f64();
    reporter
        .text(Stream::Header, &format!("elapsedTime={elapsed:.6}\n"))
        .await;
    if !interrupted {
        reporter.update("elapsed", Value::F64(elapsed)).await;
    }
    reporter.complete(None).await;
}

fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::from_secs(u32::MAX as u64))
}

fn header_text(
    args: &ShellArgs,
    display: &str,
    argv_shown: &str,
    env: &BTreeMap<OsString, OsString>,
) -> String {
    let mut text = format!("{display}\n in dir {}", args.workdir.display());
    if let Some(timeout) = args.timeout {
        text += &format!(" (timeout {} secs)", seconds(timeout));
    }
    if let Some(max_time) = args.max_time {
        text += &format!(" (maxTime {} secs)", seconds(max_time));
    }
    text.push('\n');
    let names: Vec<&str> = args.logfiles.iter().map(|l| l.name.as_str()).collect();
    text += &format!(" watching logfiles {names:?}\n argv: {argv_shown}\n");
    if args.log_environ {
        text += " environment:\n";
        for (key, value) in env {
            text += &format!("  {}={}\n", key.to_string_lossy(), value.to_string_lossy());
        }
    }
    if let Some(stdin) = &args.initial_stdin {
        text += &format!(" writing {} bytes to stdin\n", stdin.len());
    }
    match (args.use_pty, &args.initial_stdin) {
        (true, Some(_)) => text += " using PTY: False (not with initial_stdin)\n",
        (true, None) => text += " using PTY: True\n",
        (false, _) => text += " using PTY: False\n",
    }
    text
}

/// A stream of the child's output: a pipe, or the master side of its pseudo-terminal.
type OutputPipe = Box<dyn AsyncRead + Unpin + Send>;

/// Sets the child's stdio: pipes, or a pseudo-terminal when `usePTY` is asked and no
/// `initial_stdin` is given (the stock worker turns the PTY off then too, because the data
/// would be echoed into the output). Pipes mean a process group of its own; a PTY means a
/// session of its own, which is also a process group.
fn prepare_stdio(process: &mut Process, args: &ShellArgs) -> std::io::Result<Option<Pty>> {
    if args.use_pty && args.initial_stdin.is_none() {
        let pty = Pty::open()?;
        pty.attach(process)?;
        return Ok(Some(pty));
    }
    process
        .stdin(if args.initial_stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so that signals reach every process the command started.
        .process_group(0);
    Ok(None)
}

async fn finish_without_process(mut reporter: Reporter, stderr: &str, started: Instant) {
    reporter.text(Stream::Stderr, stderr).await;
    reporter.update("rc", Value::from(1)).await;
    reporter
        .update("elapsed", Value::F64(started.elapsed().as_secs_f64()))
        .await;
    reporter.complete(None).await;
}

async fn read_pipe<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Sends (or drops, when unwanted) one read of a stream; returns the lines it completed.
async fn output(reporter: &mut Reporter, stream: Stream, bytes: &[u8], wanted: bool) -> u64 {
    if wanted {
        reporter.output(stream, bytes).await as u64
    } else {
        bytes.iter().filter(|&&b| b == b'\n').count() as u64
    }
}

/// The kill procedure: optional SIGTERM first, then `interruptSignal`, to the whole group.
struct Kill {
    pgid: i32,
    sigterm_time: Option<f64>,
    signal: Signal,
    killed: bool,
    final_at: Option<Instant>,
    give_up_at: Option<Instant>,
}

impl Kill {
    fn start(&mut self) {
        if self.killed {
            return;
        }
        self.killed = true;
        match self.sigterm_time {
            Some(wait) => {
                signal_group(self.pgid, Signal::SIGTERM);
                self.final_at = Some(Instant::now() + secs(wait));
            }
            None => self.final_signal(),
        }
    }

    fn final_signal(&mut self) {
        self.final_at = None;
        signal_group(self.pgid, self.signal);
        self.give_up_at = Some(Instant::now() + KILL_GRACE);
    }
}

/// Signals a process group; a group that is already gone is fine.
pub(crate) fn signal_group(pgid: i32, signal: Signal) {
    if pgid <= 1 {
        return;
    }
    if let Err(err) = nix::sys::signal::killpg(Pid::from_raw(pgid), signal) {
        if err != nix::errno::Errno::ESRCH {
            tracing::warn!(pgid, %err, "cannot signal process group");
        }
    }
}

/// Tails one logfile: new bytes since the last poll become `log` updates.
struct LogfileWatcher {
    name: String,
    path: PathBuf,
    follow: bool,
    initial: Option<(u64, Option<SystemTime>)>,
    offset: Option<u64>,
}

impl LogfileWatcher {
    fn new(spec: &LogfileSpec, workdir: &Path) -> LogfileWatcher {
        let path = workdir.join(&spec.filename);
        let initial = std::fs::metadata(&path)
            .ok()
            .map(|m| (m.len(), m.modified().ok()));
        LogfileWatcher {
            name: spec.name.clone(),
            path,
            follow: spec.follow,
            initial,
            offset: None,
        }
    }

    /// New content since the last poll, if any.
    fn poll(&mut self) -> Option<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let meta = std::fs::metadata(&self.path).ok()?;
        let offset = match self.offset {
            Some(offset) if offset <= meta.len() => offset,
            Some(_) => 0,
            None if self.follow => self.initial.map_or(0, |(len, _)| len),
            // Without `follow`, an old file is only read once it has changed.
            None if self.initial == Some((meta.len(), meta.modified().ok())) => return None,
            None => 0,
        };
        self.offset = Some(offset);
        if meta.len() <= offset {
            return None;
        }
        let mut file = std::fs::File::open(&self.path).ok()?;
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut data = Vec::new();
        file.take(LOGFILE_READ_MAX).read_to_end(&mut data).ok()?;
        self.offset = Some(offset + data.len() as u64);
        Some(data)
    }
}

async fn poll_logfiles(watchers: &mut [LogfileWatcher], reporter: &mut Reporter) {
    for watcher in watchers {
        if let Some(data) = watcher.poll() {
            reporter
                .output(Stream::Log(watcher.name.clone()), &data)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion_and_quoting() {
        std::env::set_var("SIGNALBOX_TEST_VAR", "v");
        assert_eq!(
            expand_vars("a${SIGNALBOX_TEST_VAR}b${SIGNALBOX_UNSET_VAR}c${x"),
            "avbc${x"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shell_quote("/bin/ls"), "/bin/ls");
        assert_eq!(parse_signal("KILL"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("TERM"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(seconds(1200.0), "1200");
        assert_eq!(seconds(0.5), "0.5");
    }
}
