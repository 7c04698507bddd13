//! `signalbox worker create|start|stop`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

/// Worker subcommands.
#[derive(Subcommand)]
pub enum WorkerCommand {
    /// Create a worker directory that connects to MASTER (host:port) as NAME.
    Create {
        /// Directory to create.
        dir: PathBuf,
        /// Master address, host:port (port 9989 by default).
        master: String,
        /// Worker name, as in the master's config.
        name: String,
        /// Worker password, as in the master's config.
        password: String,
        /// Connect with TLS (the master's worker port is `ssl:…`).
        #[arg(long)]
        use_tls: bool,
        /// PEM file of the CA that signs the master's certificate, or the master's self-signed
        /// certificate itself (default: $SSL_CERT_FILE, else the Mozilla roots).
        #[arg(long, value_name = "FILE", requires = "use_tls")]
        tls_ca: Option<PathBuf>,
    },
    /// Start a worker (in the background unless --nodaemon).
    Start {
        /// Worker directory.
        dir: PathBuf,
        /// Stay in the foreground.
        #[arg(long)]
        nodaemon: bool,
    },
    /// Stop a running worker; its running commands are killed.
    Stop {
        /// Worker directory.
        dir: PathBuf,
    },
}

/// Runs a worker subcommand.
pub fn run(command: WorkerCommand) -> Result<ExitCode> {
    match command {
        WorkerCommand::Create {
            dir,
            master,
            name,
            password,
            use_tls,
            tls_ca,
        } => {
            let master = if master.contains(':') {
                master
            } else {
                format!("{master}:9989")
            };
            let tls = worker::TlsOptions {
                use_tls,
                ca_file: tls_ca,
            };
            worker::create_with_tls(&dir, &master, &name, &password, &tls)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "created worker {name} in {}; start it with `signalbox worker start {}`",
                dir.display(),
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        WorkerCommand::Start { dir, nodaemon } => start(&dir, nodaemon),
        WorkerCommand::Stop { dir } => stop(&dir),
    }
}

fn pid_file(dir: &Path) -> PathBuf {
    dir.join("worker.pid")
}

fn start(dir: &Path, nodaemon: bool) -> Result<ExitCode> {
    let dir =
        std::fs::canonicalize(dir).with_context(|| format!("{} does not exist", dir.display()))?;
    let opts = worker::load_options(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !nodaemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("worker.log"))?;
        let exe = std::env::current_exe()?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["worker", "start"])
            .arg(&dir)
            .arg("--nodaemon")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and runs in the child before exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().context("cannot start the worker process")?;
        println!(
            "worker started (pid {}); log: {}",
            child.id(),
            dir.join("worker.log").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    crate::init_logging();
    std::fs::write(pid_file(&dir), format!("{}\n", std::process::id()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let stop = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
        };
        worker::run(opts, stop).await
    });
    let _ = std::fs::remove_file(pid_file(&dir));
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(ExitCode::SUCCESS)
}

fn stop(dir: &Path) -> Result<ExitCode> {
    let Some(pid) = std::fs::read_to_string(pid_file(dir))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        println!("no worker is running in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
        let _ = std::fs::remove_file(pid_file(dir));
        println!(
            "no worker is running in {} (removed a stale pid file)",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for _ in 0..300 {
        if nix::sys::signal::kill(pid, None).is_err() {
            println!("worker stopped");
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("worker {pid} did not stop within 30 s")
}
