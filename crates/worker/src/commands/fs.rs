//! The filesystem commands (spec §6.3): `mkdir`, `rmdir`, `cpdir`, `rmfile`, `stat`, `glob`,
//! `listdir`, done natively on a blocking thread. Failures of the OS call give `rc` = errno
//! and a header `<cmd>: <strerror>: <path>`.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use protocol::{args, Value};

use super::{arg_error, os_error, Interrupt, INTERRUPTED_HEADER};
use crate::output::Stream;
use crate::reporter::Reporter;

/// A filesystem command with its arguments.
pub(crate) enum FsCommand {
    /// Create directories with parents.
    Mkdir(Vec<PathBuf>),
    /// Remove trees (like `rm -rf`).
    Rmdir(Vec<PathBuf>),
    /// Copy a tree (like `cp -R -P -p`).
    Cpdir { from: PathBuf, to: PathBuf },
    /// Remove one file.
    Rmfile(PathBuf),
    /// `os.stat` as 10 ints.
    Stat(PathBuf),
    /// Recursive glob.
    Glob(String),
    /// Directory entry names.
    Listdir(PathBuf),
}

impl FsCommand {
    /// Reads the args of a filesystem command; `Ok(None)` if `name` is not one.
    pub(crate) fn parse(name: &str, value: &Value) -> Result<Option<FsCommand>, String> {
        let path = |key: &str| {
            args::require_str(value, key)
                .map(PathBuf::from)
                .map_err(arg_error)
        };
        let paths = || -> Result<Vec<PathBuf>, String> {
            let list = args::get_str_list(value, "paths").map_err(arg_error)?;
            let list = list.ok_or_else(|| format!("{name} is missing args: paths"))?;
            Ok(list.into_iter().map(PathBuf::from).collect())
        };
        Ok(Some(match name {
            "mkdir" => FsCommand::Mkdir(paths()?),
            "rmdir" => FsCommand::Rmdir(paths()?),
            "cpdir" => FsCommand::Cpdir {
                from: path("from_path")?,
                to: path("to_path")?,
            },
            "rmfile" => FsCommand::Rmfile(path("path")?),
            "stat" => FsCommand::Stat(path("path")?),
            "glob" => FsCommand::Glob(
                args::require_str(value, "path")
                    .map_err(arg_error)?
                    .to_owned(),
            ),
            "listdir" => FsCommand::Listdir(path("path")?),
            _ => return Ok(None),
        }))
    }
}

/// What a filesystem command reports, in order.
enum Report {
    Header(String),
    Key(&'static str, Value),
}

/// Runs a filesystem command on a blocking thread; an interrupt asks long walks to stop.
pub(crate) async fn run(command: FsCommand, mut reporter: Reporter, mut interrupt: Interrupt) {
    let started = Instant::now();
    let cancel = Arc::new(AtomicBool::new(false));
    let job_cancel = cancel.clone();
    let mut job = tokio::task::spawn_blocking(move || execute(command, &job_cancel));
    let (reports, interrupted) = tokio::select! {
        done = &mut job => (done, false),
        _ = interrupt.wait() => {
            cancel.store(true, Ordering::Relaxed);
            reporter.flush().await;
            reporter.text(Stream::Header, INTERRUPTED_HEADER).await;
            (job.await, true)
        }
    };
    let reports = match reports {
        Ok(reports) => reports,
        Err(err) => {
            return reporter
                .complete(Some(format!("internal error: {err}")))
                .await
        }
    };
    if interrupted {
        reporter.update("rc", Value::from(-1)).await;
        return reporter.complete(None).await;
    }
    for report in reports {
        match report {
            Report::Header(text) => reporter.text(Stream::Header, &text).await,
            Report::Key(key, value) => reporter.update(key, value).await,
        }
    }
    reporter
        .update("elapsed", Value::F64(started.elapsed().as_secs_f64()))
        .await;
    reporter.complete(None).await;
}

fn failure(name: &str, err: &io::Error, path: &Path) -> (i64, Report) {
    let (errno, text) = os_error(err);
    (
        errno,
        Report::Header(format!("{name}: {text}: {}\n", path.display())),
    )
}

fn execute(command: FsCommand, cancel: &AtomicBool) -> Vec<Report> {
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    let mut rc = 0;
    match command {
        FsCommand::Mkdir(paths) => {
            for path in paths {
                if let Err(err) = std::fs::create_dir_all(&path) {
                    let (errno, report) = failure("mkdir", &err, &path);
                    (rc, errors) = (errno, vec![report]);
                    break;
                }
            }
        }
        FsCommand::Rmdir(paths) => {
            for path in paths {
                if let Err(err) = remove_tree(&path, cancel) {
                    let (errno, report) = failure("rmdir", &err, &path);
                    rc = errno;
                    errors.push(report);
                }
            }
        }
        FsCommand::Cpdir { from, to } => {
            if let Err((err, path)) = copy_dir(&from, &to, cancel) {
                let (errno, report) = failure("cpdir", &err, &path);
                (rc, errors) = (errno, vec![report]);
            }
        }
        FsCommand::Rmfile(path) => {
            if let Err(err) = std::fs::remove_file(&path) {
                let (errno, report) = failure("rmfile", &err, &path);
                (rc, errors) = (errno, vec![report]);
            }
        }
        FsCommand::Stat(path) => match std::fs::metadata(&path) {
            Ok(meta) => {
                let fields = [
                    i64::from(meta.mode()),
                    meta.ino() as i64,
                    meta.dev() as i64,
                    meta.nlink() as i64,
                    i64::from(meta.uid()),
                    i64::from(meta.gid()),
                    meta.size() as i64,
                    meta.atime(),
                    meta.mtime(),
                    meta.ctime(),
                ];
                reports.push(Report::Key(
                    "stat",
                    Value::Array(fields.into_iter().map(Value::from).collect()),
                ));
            }
            Err(err) => {
                let (errno, report) = failure("stat", &err, &path);
                (rc, errors) = (errno, vec![report]);
            }
        },
        FsCommand::Glob(pattern) => {
            let options = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: true,
            };
            match glob::glob_with(&pattern, options) {
                Ok(paths) => {
                    let files = paths
                        .flatten()
                        .map(|p| Value::from(p.to_string_lossy().into_owned()))
                        .collect();
                    reports.push(Report::Key("files", Value::Array(files)));
                }
                Err(err) => {
                    rc = 1;
                    errors.push(Report::Header(format!("glob: {err}: {pattern}\n")));
                }
            }
        }
        FsCommand::Listdir(path) => match list_dir(&path) {
            Ok(names) => reports.push(Report::Key("files", Value::Array(names))),
            Err(err) => {
                let (errno, report) = failure("listdir", &err, &path);
                (rc, errors) = (errno, vec![report]);
            }
        },
    }
    reports.push(Report::Key("rc", Value::from(rc)));
    reports.extend(errors);
    reports
}

fn list_dir(path: &Path) -> io::Result<Vec<Value>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path)? {
        names.push(Value::from(
            entry?.file_name().to_string_lossy().into_owned(),
        ));
    }
    Ok(names)
}

fn interrupted() -> io::Error {
    io::Error::from_raw_os_error(libc::EINTR)
}

/// Removes a file or tree like `rm -rf` (a missing path is fine), making directories writable
/// when a removal is refused, as the stock worker's `chmod -Rf u+rwx` retry does.
fn remove_tree(path: &Path, cancel: &AtomicBool) -> io::Result<()> {
    if cancel.load(Ordering::Relaxed) {
        return Err(interrupted());
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if !meta.is_dir() {
        return match std::fs::remove_file(path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path)?;
            std::fs::read_dir(path)?
        }
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry_path = entry?.path();
        if let Err(err) = remove_tree(&entry_path, cancel) {
            if err.kind() != io::ErrorKind::PermissionDenied {
                return Err(err);
            }
            make_writable(path)?;
            remove_tree(&entry_path, cancel)?;
        }
    }
    match std::fs::remove_dir(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn make_writable(path: &Path) -> io::Result<()> {
    let mode = std::fs::metadata(path)?.permissions().mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o700))
}

/// Copies `from` to `to` like `cp -R -P -p from to` (into `to/<name>` when `to` is a
/// directory), creating `to`'s parent; the error comes with the path it concerns.
fn copy_dir(from: &Path, to: &Path, cancel: &AtomicBool) -> Result<(), (io::Error, PathBuf)> {
    let dest = match (to.is_dir(), from.file_name()) {
        (true, Some(name)) => to.join(name),
        _ => to.to_path_buf(),
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| (e, parent.to_path_buf()))?;
    }
    copy_tree(from, &dest, cancel)
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> (io::Error, PathBuf) + '_ {
    move |err| (err, path.to_path_buf())
}

fn copy_tree(from: &Path, to: &Path, cancel: &AtomicBool) -> Result<(), (io::Error, PathBuf)> {
    if cancel.load(Ordering::Relaxed) {
        return Err((interrupted(), from.to_path_buf()));
    }
    let meta = std::fs::symlink_metadata(from).map_err(at(from))?;
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        let target = std::fs::read_link(from).map_err(at(from))?;
        return std::os::unix::fs::symlink(target, to).map_err(at(to));
    }
    if file_type.is_dir() {
        match std::fs::create_dir(to) {
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                return Err((err, to.to_path_buf()))
            }
            _ => {}
        }
        for entry in std::fs::read_dir(from).map_err(at(from))? {
            let entry = entry.map_err(at(from))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()), cancel)?;
        }
    } else {
        std::fs::copy(from, to).map_err(at(to))?;
    }
    std::fs::set_permissions(to, meta.permissions()).map_err(at(to))?;
    let times = std::fs::FileTimes::new()
        .set_accessed(meta.accessed().map_err(at(from))?)
        .set_modified(meta.modified().map_err(at(from))?);
    if let Ok(file) = std::fs::File::open(to) {
        let _ = file.set_times(times);
    }
    Ok(())
}
