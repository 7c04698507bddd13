//! `upload_file` and `upload_directory` (spec §6.4): the worker pushes blocks to the master,
//! one request at a time, each awaited before the next.

use std::path::{Path, PathBuf};
use std::time::Instant;

use protocol::{args, Op, Value};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{arg_error, Interrupt};
use crate::output::Stream;
use crate::reporter::Reporter;

/// Largest block we send, whatever `blocksize` the master asks for.
pub(crate) const MAX_BLOCKSIZE: u64 = 16 << 20;

/// The arguments of `upload_file`.
pub(crate) struct UploadFileArgs {
    path: PathBuf,
    blocksize: usize,
    maxsize: Option<u64>,
    keepstamp: bool,
}

/// The arguments of `upload_directory`.
pub(crate) struct UploadDirectoryArgs {
    path: PathBuf,
    blocksize: usize,
    maxsize: Option<u64>,
    compress: Compress,
}

/// Reads the keys every transfer has: `path`, `blocksize` and the `maxsize` key (which must be
/// present, possibly nil, as in stock).
pub(crate) fn transfer_args(value: &Value) -> Result<(PathBuf, usize, Option<u64>), String> {
    let path = args::get_str(value, "path")
        .map_err(arg_error)?
        .ok_or("'path'")?;
    let blocksize = args::get_u64(value, "blocksize")
        .map_err(arg_error)?
        .ok_or("'blocksize'")?;
    if !args::has_key(value, "maxsize") {
        return Err("'maxsize'".to_owned());
    }
    let maxsize = args::get_u64(value, "maxsize").map_err(arg_error)?;
    Ok((
        PathBuf::from(path),
        blocksize.clamp(1, MAX_BLOCKSIZE) as usize,
        maxsize,
    ))
}

impl UploadFileArgs {
    /// Reads the `start_command` args of `upload_file`.
    pub(crate) fn parse(value: &Value) -> Result<UploadFileArgs, String> {
        let (path, blocksize, maxsize) = transfer_args(value)?;
        let keepstamp = args::get_bool(value, "keepstamp")
            .map_err(arg_error)?
            .unwrap_or(false);
        Ok(UploadFileArgs {
            path,
            blocksize,
            maxsize,
            keepstamp,
        })
    }
}

impl UploadDirectoryArgs {
    /// Reads the `start_command` args of `upload_directory`.
    pub(crate) fn parse(value: &Value) -> Result<UploadDirectoryArgs, String> {
        let (path, blocksize, maxsize) = transfer_args(value)?;
        if !args::has_key(value, "compress") {
            return Err("'compress'".to_owned());
        }
        let compress = match args::get_str(value, "compress").map_err(arg_error)? {
            None => Compress::None,
            Some("gz") => Compress::Gzip,
            Some("bz2") => Compress::Bzip2,
            Some(other) => return Err(format!("unsupported compression '{other}'")),
        };
        Ok(UploadDirectoryArgs {
            path,
            blocksize,
            maxsize,
            compress,
        })
    }
}

/// How a transfer loop ended (shared with `download`).
pub(crate) struct TransferOutcome {
    /// 0, or 1 when the transfer was cut short.
    pub(crate) rc: i64,
    /// A message for the `stderr` stream.
    pub(crate) stderr: Option<String>,
    /// A refused or failed request: the command completes with this failure.
    pub(crate) failure: Option<String>,
    /// Stopped by `interrupt_command`: no `elapsed` is sent.
    pub(crate) interrupted: bool,
}

/// Sends `reader` in blocks made into requests by `op`, until EOF, `maxsize`, an interrupt or a
/// refused request.
async fn send_blocks<R: AsyncRead + Unpin>(
    reader: &mut R,
    blocksize: usize,
    maxsize: Option<u64>,
    path: &Path,
    reporter: &mut Reporter,
    interrupt: &Interrupt,
    op: impl Fn(Vec<u8>) -> Op,
) -> TransferOutcome {
    let mut sent = TransferOutcome {
        rc: 0,
        stderr: None,
        failure: None,
        interrupted: false,
    };
    let mut total: u64 = 0;
    loop {
        if interrupt.is_set() {
            sent.rc = 1;
            sent.interrupted = true;
            return sent;
        }
        let mut want = blocksize;
        if let Some(maxsize) = maxsize {
            let remaining = maxsize.saturating_sub(total);
            if remaining == 0 {
                let mut probe = [0u8; 1];
                if matches!(reader.read(&mut probe).await, Ok(n) if n > 0) {
                    sent.rc = 1;
                    sent.stderr = Some(format!(
                        "Maximum filesize reached, truncating file '{}'\n",
                        path.display()
                    ));
                }
                return sent;
            }
            want = want.min(usize::try_from(remaining).unwrap_or(usize::MAX));
        }
        let block = match read_block(reader, want).await {
            Ok(block) => block,
            Err(err) => {
                sent.rc = 1;
                sent.stderr = Some(format!("Cannot read '{}': {err}\n", path.display()));
                return sent;
            }
        };
        if block.is_empty() {
            return sent;
        }
        total += block.len() as u64;
        if let Err(err) = reporter.call(op(block)).await {
            sent.failure = Some(err.to_string());
            return sent;
        }
    }
}

/// Reads up to `want` bytes, fewer only at EOF.
async fn read_block<R: AsyncRead + Unpin>(reader: &mut R, want: usize) -> std::io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(want);
    let mut limited = reader.take(want as u64);
    limited.read_to_end(&mut block).await?;
    Ok(block)
}

/// Runs `upload_file`.
pub(crate) async fn run_file(args: UploadFileArgs, mut reporter: Reporter, interrupt: Interrupt) {
    let started = Instant::now();
    let command_id = reporter.command_id().to_owned();
    reporter
        .text(
            Stream::Header,
            &format!("sending {}\n", args.path.display()),
        )
        .await;
    let mut sent = match tokio::fs::File::open(&args.path).await {
        Ok(mut file) => {
            let id = command_id.clone();
            let op = move |data| Op::UploadFileWrite {
                command_id: id.clone(),
                data,
            };
            send_blocks(
                &mut file,
                args.blocksize,
                args.maxsize,
                &args.path,
                &mut reporter,
                &interrupt,
                op,
            )
            .await
        }
        Err(_) => TransferOutcome {
            rc: 1,
            stderr: Some(format!(
                "Cannot open file '{}' for upload\n",
                args.path.display()
            )),
            failure: None,
            interrupted: false,
        },
    };
    if sent.failure.is_none() {
        if let Err(err) = reporter
            .call(Op::UploadFileClose {
                command_id: command_id.clone(),
            })
            .await
        {
            sent.failure = Some(err.to_string());
        }
    }
    if sent.failure.is_none() && args.keepstamp {
        if let Ok(meta) = std::fs::metadata(&args.path) {
            let epoch = |t: std::io::Result<std::time::SystemTime>| {
                t.ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0.0, |d| d.as_secs_f64())
            };
            let op = Op::UploadFileUtime {
                command_id,
                access_time: epoch(meta.accessed()),
                modified_time: epoch(meta.modified()),
            };
            if let Err(err) = reporter.call(op).await {
                sent.failure = Some(err.to_string());
            }
        }
    }
    finish(reporter, sent, started).await;
}

/// Runs `upload_directory`: the tar stream is built in a temporary file, then sent.
pub(crate) async fn run_directory(
    args: UploadDirectoryArgs,
    mut reporter: Reporter,
    interrupt: Interrupt,
) {
    let started = Instant::now();
    let command_id = reporter.command_id().to_owned();
    reporter
        .text(
            Stream::Header,
            &format!("sending {}\n", args.path.display()),
        )
        .await;
    let path = args.path.clone();
    let compress = args.compress;
    let archive = tokio::task::spawn_blocking(move || write_tar(&path, compress)).await;
    let file = match archive {
        Ok(Ok(file)) => file,
        Ok(Err(err)) => {
            tracing::info!(path = %args.path.display(), %err, "cannot archive directory");
            let stderr = Some(format!(
                "Cannot read directory '{}' for upload\n",
                args.path.display()
            ));
            return finish(
                reporter,
                TransferOutcome {
                    rc: 1,
                    stderr,
                    failure: None,
                    interrupted: false,
                },
                started,
            )
            .await;
        }
        Err(err) => {
            return reporter
                .complete(Some(format!("internal error: {err}")))
                .await
        }
    };
    let mut file = tokio::fs::File::from_std(file);
    let id = command_id.clone();
    let op = move |data| Op::UploadDirectoryWrite {
        command_id: id.clone(),
        data,
    };
    let mut sent = send_blocks(
        &mut file,
        args.blocksize,
        args.maxsize,
        &args.path,
        &mut reporter,
        &interrupt,
        op,
    )
    .await;
    if sent.failure.is_none() {
        if let Err(err) = reporter
            .call(Op::UploadDirectoryUnpack { command_id })
            .await
        {
            sent.failure = Some(err.to_string());
        }
    }
    finish(reporter, sent, started).await;
}

/// How `upload_directory` compresses its tar stream (`compress`: nil, "gz" or "bz2").
#[derive(Clone, Copy)]
pub(crate) enum Compress {
    None,
    Gzip,
    Bzip2,
}

/// Writes a tar (optionally compressed) of the directory's contents, members relative to it,
/// symlinks kept as links, into an anonymous temporary file rewound to its start.
fn write_tar(path: &Path, compress: Compress) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, SeekFrom};
    if !std::fs::metadata(path)?.is_dir() {
        return Err(std::io::Error::other("not a directory"));
    }
    let file = tempfile::tempfile()?;
    let mut file = match compress {
        Compress::None => append_dir(file, path)?,
        Compress::Gzip => append_dir(
            flate2::write::GzEncoder::new(file, flate2::Compression::default()),
            path,
        )?
        .finish()?,
        Compress::Bzip2 => append_dir(
            bzip2::write::BzEncoder::new(file, bzip2::Compression::default()),
            path,
        )?
        .finish()?,
    };
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

fn append_dir<W: std::io::Write>(out: W, path: &Path) -> std::io::Result<W> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    builder.append_dir_all("", path)?;
    builder.into_inner()
}

/// Sends the transfer's result keys and completes.
pub(crate) async fn finish(mut reporter: Reporter, sent: TransferOutcome, started: Instant) {
    reporter.update("rc", Value::from(sent.rc)).await;
    if !sent.interrupted {
        reporter
            .update("elapsed", Value::F64(started.elapsed().as_secs_f64()))
            .await;
    }
    if let Some(stderr) = &sent.stderr {
        reporter.text(Stream::Stderr, stderr).await;
    }
    reporter.complete(sent.failure).await;
}
