//! Worker commands (spec §6): parsing `start_command` args into a typed command, and running it
//! with a reporter and an interrupt signal. One module per command family.

mod download;
mod fs;
mod pty;
mod shell;
mod upload;

use std::io;

use protocol::Value;
use tokio::sync::watch;

use crate::reporter::Reporter;

/// A command, built from `start_command` and ready to run.
pub(crate) enum Command {
    /// `shell`.
    Shell(shell::ShellArgs),
    /// `mkdir`, `rmdir`, `cpdir`, `rmfile`, `stat`, `glob`, `listdir`.
    Fs(fs::FsCommand),
    /// `upload_file` / `uploadFile`.
    UploadFile(upload::UploadFileArgs),
    /// `upload_directory` / `uploadDirectory`.
    UploadDirectory(upload::UploadDirectoryArgs),
    /// `download_file` / `downloadFile`.
    DownloadFile(download::DownloadArgs),
}

/// Builds a command; the error text becomes the `start_command` exception.
pub(crate) fn parse(command_id: &str, name: &str, args: &Value) -> Result<Command, String> {
    let command = match name {
        "shell" => Command::Shell(shell::ShellArgs::parse(args)?),
        "upload_file" | "uploadFile" => Command::UploadFile(upload::UploadFileArgs::parse(args)?),
        "upload_directory" | "uploadDirectory" => {
            Command::UploadDirectory(upload::UploadDirectoryArgs::parse(args)?)
        }
        "download_file" | "downloadFile" => {
            Command::DownloadFile(download::DownloadArgs::parse(args)?)
        }
        other => match fs::FsCommand::parse(other, args)? {
            Some(command) => Command::Fs(command),
            None => {
                return Err(format!(
                    "(command {command_id}): unrecognized WorkerCommand '{name}'"
                ))
            }
        },
    };
    Ok(command)
}

/// Runs a command to its end: every path finishes with `complete` (or a lost connection).
pub(crate) async fn run(command: Command, reporter: Reporter, interrupt: Interrupt) {
    match command {
        Command::Shell(args) => shell::run(args, reporter, interrupt).await,
        Command::Fs(command) => fs::run(command, reporter, interrupt).await,
        Command::UploadFile(args) => upload::run_file(args, reporter, interrupt).await,
        Command::UploadDirectory(args) => upload::run_directory(args, reporter, interrupt).await,
        Command::DownloadFile(args) => download::run(args, reporter, interrupt).await,
    }
}

/// The receiving end of `interrupt_command` for one command. Dropping the sender (the
/// connection went away) counts as an interrupt too.
pub(crate) struct Interrupt {
    rx: watch::Receiver<Option<String>>,
}

impl Interrupt {
    /// A pair: the sender kept in the command registry, the receiver given to the command.
    pub(crate) fn channel() -> (watch::Sender<Option<String>>, Interrupt) {
        let (tx, rx) = watch::channel(None);
        (tx, Interrupt { rx })
    }

    /// Waits for the interrupt and returns its reason. Cancel-safe.
    pub(crate) async fn wait(&mut self) -> String {
        loop {
            if let Some(why) = self.rx.borrow_and_update().clone() {
                return why;
            }
            if self.rx.changed().await.is_err() {
                return "connection lost".to_owned();
            }
        }
    }

    /// Whether the interrupt has arrived.
    pub(crate) fn is_set(&self) -> bool {
        self.rx.borrow().is_some() || self.rx.has_changed().is_err()
    }
}

/// The header line every interrupted command writes (spec §6.5).
pub(crate) const INTERRUPTED_HEADER: &str = "\ncommand interrupted, attempting to kill\n";

/// `(errno, strerror)` of an I/O error, like Python's `OSError` fields (errno 1 if unknown).
pub(crate) fn os_error(err: &io::Error) -> (i64, String) {
    match err.raw_os_error() {
        Some(code) => (
            i64::from(code),
            nix::errno::Errno::from_raw(code).desc().to_owned(),
        ),
        None => (1, err.to_string()),
    }
}

/// Maps an argument error to the `start_command` exception text.
pub(crate) fn arg_error(err: protocol::ProtocolError) -> String {
    err.to_string()
}
