//! `download_file` (spec §6.4): the worker pulls blocks with `update_read_file` until the master
//! answers with an empty block, awaiting each answer before asking for the next.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Instant;

use protocol::{args, read_file_data, Op, Value};
use tokio::io::AsyncWriteExt;

use super::upload::{finish, transfer_args, TransferOutcome};
use super::{arg_error, Interrupt};
use crate::reporter::Reporter;

/// The arguments of `download_file`.
pub(crate) struct DownloadArgs {
    path: PathBuf,
    blocksize: usize,
    maxsize: Option<u64>,
    mode: Option<u32>,
}

impl DownloadArgs {
    /// Reads the `start_command` args of `download_file`; `mode` must be present (maybe nil).
    pub(crate) fn parse(value: &Value) -> Result<DownloadArgs, String> {
        let (path, blocksize, maxsize) = transfer_args(value)?;
        if !args::has_key(value, "mode") {
            return Err("'mode'".to_owned());
        }
        let mode = args::get_u64(value, "mode")
            .map_err(arg_error)?
            .map(|m| (m & 0o7777) as u32);
        Ok(DownloadArgs {
            path,
            blocksize,
            maxsize,
            mode,
        })
    }
}

/// Runs `download_file`.
pub(crate) async fn run(args: DownloadArgs, mut reporter: Reporter, interrupt: Interrupt) {
    let started = Instant::now();
    let command_id = reporter.command_id().to_owned();
    let mut outcome = TransferOutcome {
        rc: 0,
        stderr: None,
        failure: None,
        interrupted: false,
    };
    match open(&args).await {
        Err(_) => {
            outcome.rc = 1;
            outcome.stderr = Some(format!(
                "Cannot open file '{}' for download\n",
                args.path.display()
            ));
        }
        Ok(mut file) => {
            let mut written: u64 = 0;
            loop {
                if interrupt.is_set() {
                    outcome.rc = 1;
                    outcome.interrupted = true;
                    break;
                }
                let mut length = args.blocksize as u64;
                if let Some(maxsize) = args.maxsize {
                    let remaining = maxsize.saturating_sub(written);
                    if remaining == 0 {
                        outcome.rc = 1;
                        outcome.stderr = Some(format!(
                            "Maximum filesize reached, truncating file '{}'\n",
                            args.path.display()
                        ));
                        break;
                    }
                    length = length.min(remaining);
                }
                let answer = match reporter
                    .call(Op::ReadFile {
                        command_id: command_id.clone(),
                        length,
                    })
                    .await
                {
                    Ok(answer) => answer,
                    Err(err) => {
                        outcome.failure = Some(err.to_string());
                        break;
                    }
                };
                let data = match read_file_data(&answer) {
                    Ok(data) => data,
                    Err(err) => {
                        outcome.failure = Some(err.to_string());
                        break;
                    }
                };
                if data.is_empty() {
                    break;
                }
                // A master sending more than asked for is cut to what was asked.
                let data = &data[..data.len().min(length as usize)];
                if let Err(err) = file.write_all(data).await {
                    outcome.rc = 1;
                    outcome.stderr = Some(format!(
                        "Cannot write file '{}': {err}\n",
                        args.path.display()
                    ));
                    break;
                }
                written += data.len() as u64;
            }
            if let Err(err) = file.flush().await {
                outcome.rc = 1;
                outcome.stderr = Some(format!(
                    "Cannot write file '{}': {err}\n",
                    args.path.display()
                ));
            }
        }
    }
    if let Err(err) = reporter.call(Op::ReadFileClose { command_id }).await {
        outcome.failure.get_or_insert(err.to_string());
    }
    finish(reporter, outcome, started).await;
}

async fn open(args: &DownloadArgs) -> std::io::Result<tokio::fs::File> {
    if let Some(parent) = args.path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let file = tokio::fs::File::create(&args.path).await?;
    if let Some(mode) = args.mode {
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .await?;
    }
    Ok(file)
}
