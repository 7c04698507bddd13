//! A size-rotated log file, as twistd's `LogFile`: past `rotate_length` bytes the file
//! becomes `NAME.1`, `NAME.1` becomes `NAME.2`…, and only `max_rotated_files` old files are
//! kept. Used for `http.log` here and for `master.log` by the daemon.
//!
//! DESIGN §11 lists this as a gap to fill by hand: the crates that rotate by size also
//! bring their own logging framework.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Buildbot's defaults: 1 MB a file, ten old files.
pub const DEFAULT_ROTATE_LENGTH: u64 = 1_000_000;
/// See [`DEFAULT_ROTATE_LENGTH`].
pub const DEFAULT_MAX_ROTATED_FILES: usize = 10;

/// Where and when to rotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The live file; old ones get `.1`, `.2`… appended.
    pub path: PathBuf,
    /// Size in bytes past which the file is rotated.
    pub rotate_length: u64,
    /// How many old files to keep.
    pub max_rotated_files: usize,
}

/// An open, size-rotated log file.
#[derive(Debug)]
pub struct RotatingFile {
    rotation: Rotation,
    file: File,
    size: u64,
}

impl RotatingFile {
    /// Opens (appending to) the live file.
    pub fn open(rotation: Rotation) -> io::Result<RotatingFile> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&rotation.path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            rotation,
            file,
            size,
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: usize| numbered(&self.rotation.path, n);
        let keep = self.rotation.max_rotated_files;
        if keep == 0 {
            self.file = File::create(&self.rotation.path)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(numbered(keep));
        for n in (1..keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.rotation.path, numbered(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.rotation.path)?;
        self.size = 0;
        Ok(())
    }
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.rotation.rotate_length {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A [`RotatingFile`] shared between threads; each `write` call is one unit (a whole log
/// line when the caller writes lines), so lines never straddle two files.
#[derive(Debug, Clone)]
pub struct SharedRotatingFile(Arc<Mutex<RotatingFile>>);

impl SharedRotatingFile {
    /// Opens the live file.
    pub fn open(rotation: Rotation) -> io::Result<SharedRotatingFile> {
        Ok(SharedRotatingFile(Arc::new(Mutex::new(
            RotatingFile::open(rotation)?,
        ))))
    }
}

impl Write for SharedRotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = self.0.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exactly_max_rotated_files() {
        let dir = std::env::temp_dir().join(format!("signalbox-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("http.log");
        let mut file = RotatingFile::open(Rotation {
            path: path.clone(),
            rotate_length: 100,
            max_rotated_files: 3,
        })
        .expect("open");
        for i in 0..100 {
            writeln!(file, "line {i:04} of the log, padded to a good length").expect("write");
        }
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["http.log", "http.log.1", "http.log.2", "http.log.3"]
        );
        for name in &names {
            let size = std::fs::metadata(dir.join(name)).expect("size").len();
            assert!(size <= 100, "{name} has {size} bytes");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
