//! The `signalbox` command: create, run and control a build master and its workers.

mod demo;
mod master_cmd;
mod rotating_log;
mod sendchange;
mod user_cmd;
mod worker_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Signalbox: a continuous-integration build master that shows at a glance what is broken.
#[derive(Parser)]
#[command(name = "signalbox", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a master directory with a sample master.cfg and an empty database.
    CreateMaster {
        /// Directory to create.
        dir: PathBuf,
        /// Database URL written into master.cfg (default: SQLite in the directory).
        #[arg(long)]
        db: Option<String>,
    },
    /// Start the master (in the background unless --nodaemon).
    Start {
        /// Master directory.
        dir: PathBuf,
        /// Stay in the foreground and log to the terminal.
        #[arg(long)]
        nodaemon: bool,
    },
    /// Stop a running master, waiting for its builds; run it again to stop at once.
    Stop {
        /// Master directory.
        dir: PathBuf,
    },
    /// Stop, then start a master.
    Restart {
        /// Master directory.
        dir: PathBuf,
    },
    /// Reload master.cfg in a running master; running builds continue.
    Reconfig {
        /// Master directory.
        dir: PathBuf,
    },
    /// Check a master.cfg (or a master directory) and report the first error with file:line.
    Checkconfig {
        /// Master directory or config file (default: the current directory).
        path: Option<PathBuf>,
    },
    /// Create or upgrade the database schema.
    UpgradeMaster {
        /// Master directory.
        dir: PathBuf,
    },
    /// Send a change to a master's `base` change hook (for post-commit scripts).
    Sendchange(Box<sendchange::SendChange>),
    /// Run a self-contained demo: a master, a local worker and a few builders.
    Demo {
        /// Where to keep the demo master (default: ./signalbox-demo).
        dir: Option<PathBuf>,
        /// Web port.
        #[arg(long, default_value_t = 8010)]
        port: u16,
    },
    /// Manage the users table (web logins with UsersAuth, the /users pages).
    User {
        #[command(subcommand)]
        command: user_cmd::UserCommand,
    },
    /// Manage a Signalbox worker.
    Worker {
        #[command(subcommand)]
        command: worker_cmd::WorkerCommand,
    },
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CreateMaster { dir, db } => master_cmd::create_master(&dir, db.as_deref()),
        Command::Start { dir, nodaemon } => master_cmd::start(&dir, nodaemon),
        Command::Stop { dir } => master_cmd::stop(&dir),
        Command::Restart { dir } => {
            master_cmd::stop(&dir).and_then(|_| master_cmd::start(&dir, false))
        }
        Command::Reconfig { dir } => master_cmd::reconfig(&dir),
        Command::Checkconfig { path } => master_cmd::checkconfig(path.as_deref()),
        Command::UpgradeMaster { dir } => master_cmd::upgrade_master(&dir),
        Command::Sendchange(args) => sendchange::run(*args),
        Command::Demo { dir, port } => {
            demo::run(dir.unwrap_or_else(|| PathBuf::from("signalbox-demo")), port)
        }
        Command::User { command } => user_cmd::run(command),
        Command::Worker { command } => worker_cmd::run(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets up logging to stderr (a daemon's stderr is master.log).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNALBOX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
