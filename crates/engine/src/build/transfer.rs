//! Master-side ends of file transfers: uploads written to the master directory, downloads
//! read from a file or a string. Unlike the stock 4.3.0 master, downloads really send data
//! and `keepstamp` uploads really set the file times (spec §12, Q1 and Q2).

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

use protocol::{Op, Value};

use super::command::Transfer;

/// Receives an uploaded file into `dest` (written to a temporary name, renamed on close).
pub struct Upload {
    dest: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    mode: Option<u32>,
    /// Set once the worker closed the file.
    pub done: bool,
}

impl Upload {
    /// Prepares to receive into `dest`.
    pub fn new(dest: PathBuf, mode: Option<u32>) -> Upload {
        let tmp = dest.with_extension("signalbox-upload");
        Upload {
            dest,
            tmp,
            file: None,
            mode,
            done: false,
        }
    }

    fn file(&mut self) -> Result<&mut File, String> {
        if self.file.is_none() {
            if let Some(parent) = self.tmp.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            let f = File::create(&self.tmp)
                .map_err(|e| format!("cannot write {}: {e}", self.tmp.display()))?;
            self.file = Some(f);
        }
        self.file
            .as_mut()
            .ok_or_else(|| "upload file not open".to_string())
    }
}

impl Transfer for Upload {
    fn handle(&mut self, op: &Op) -> Result<Value, String> {
        match op {
            Op::UploadFileWrite { data, .. } | Op::UploadDirectoryWrite { data, .. } => {
                self.file()?.write_all(data).map_err(|e| e.to_string())?;
                Ok(Value::Nil)
            }
            Op::UploadFileClose { .. } | Op::UploadDirectoryUnpack { .. } => {
                self.file()?;
                if let Some(f) = self.file.take() {
                    f.sync_all().map_err(|e| e.to_string())?;
                }
                std::fs::rename(&self.tmp, &self.dest)
                    .map_err(|e| format!("cannot move upload into place: {e}"))?;
                if let Some(mode) = self.mode {
                    use std::os::unix::fs::PermissionsExt;
                    let _ =
                        std::fs::set_permissions(&self.dest, std::fs::Permissions::from_mode(mode));
                }
                self.done = true;
                Ok(Value::Nil)
            }
            Op::UploadFileUtime {
                access_time,
                modified_time,
                ..
            } => {
                let to_time = |secs: f64| {
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs.max(0.0))
                };
                let times = std::fs::FileTimes::new()
                    .set_accessed(to_time(*access_time))
                    .set_modified(to_time(*modified_time));
                let f = File::options()
                    .write(true)
                    .open(&self.dest)
                    .map_err(|e| e.to_string())?;
                f.set_times(times).map_err(|e| e.to_string())?;
                Ok(Value::Nil)
            }
            _ => Err("unexpected transfer request for an upload".to_string()),
        }
    }
}

/// Receives a `DirectoryUpload` tar stream into a temporary file, at most `max_bytes` of it;
/// [`super::untar::extract`] unpacks it once the command has finished.
pub struct DirectoryUpload {
    archive: tempfile::NamedTempFile,
    received: u64,
    max_bytes: u64,
    /// Set once the worker asked for the unpack.
    pub done: bool,
}

impl DirectoryUpload {
    /// A temporary file in `dir` (on the master's disk, beside the destination).
    pub fn new(dir: &std::path::Path, max_bytes: u64) -> Result<DirectoryUpload, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let archive = tempfile::Builder::new()
            .prefix(".signalbox-upload-")
            .suffix(".tar")
            .tempfile_in(dir)
            .map_err(|e| format!("cannot create a temporary file in {}: {e}", dir.display()))?;
        Ok(DirectoryUpload {
            archive,
            received: 0,
            max_bytes,
            done: false,
        })
    }

    /// The received archive (deleted when this value is dropped).
    pub fn path(&self) -> &std::path::Path {
        self.archive.path()
    }
}

impl Transfer for DirectoryUpload {
    fn handle(&mut self, op: &Op) -> Result<Value, String> {
        match op {
            Op::UploadDirectoryWrite { data, .. } => {
                self.received += data.len() as u64;
                if self.received > self.max_bytes {
                    // The worker turns a refused write into a failed command.
                    return Err(format!(
                        "the directory archive is larger than {} bytes (raise maxsize to allow more)",
                        self.max_bytes
                    ));
                }
                self.archive
                    .as_file_mut()
                    .write_all(data)
                    .map_err(|e| e.to_string())?;
                Ok(Value::Nil)
            }
            Op::UploadDirectoryUnpack { .. } => {
                self.archive
                    .as_file_mut()
                    .sync_all()
                    .map_err(|e| e.to_string())?;
                self.done = true;
                Ok(Value::Nil)
            }
            _ => Err("unexpected transfer request for a directory upload".to_string()),
        }
    }
}

/// Sends bytes to the worker, block by block.
pub struct Download {
    source: Box<dyn Read + Send>,
}

impl Download {
    /// Sends the contents of a file.
    pub fn file(path: PathBuf) -> Result<Download, String> {
        let f = File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Download {
            source: Box::new(f),
        })
    }

    /// Sends a string.
    pub fn string(contents: String) -> Download {
        Download {
            source: Box::new(std::io::Cursor::new(contents.into_bytes())),
        }
    }
}

impl Transfer for Download {
    fn handle(&mut self, op: &Op) -> Result<Value, String> {
        match op {
            Op::ReadFile { length, .. } => {
                let len = (*length).min(16 * 1024 * 1024) as usize;
                let mut buf = vec![0u8; len];
                let mut filled = 0;
                while filled < len {
                    let n = self
                        .source
                        .read(&mut buf[filled..])
                        .map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                buf.truncate(filled);
                Ok(Value::Binary(buf))
            }
            Op::ReadFileClose { .. } => Ok(Value::Nil),
            _ => Err("unexpected transfer request for a download".to_string()),
        }
    }
}
