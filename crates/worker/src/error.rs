//! The worker crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the worker, from its configuration to one request.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A file of the worker's base directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `worker.cfg` is malformed.
    #[error("{path}:{line}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// 1-based line number (0 when the problem is not on one line).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An option value is not acceptable (e.g. a worker name containing ':').
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The master could not be reached `attempts` times in a row and `max_retries` was reached.
    #[error("gave up after {attempts} failed connection attempts")]
    GaveUp {
        /// Consecutive failed attempts.
        attempts: u32,
    },
    /// The connection to the master is gone; pending requests fail with this.
    #[error("connection lost")]
    ConnectionLost,
    /// The master answered one of our requests with an exception.
    #[error("master refused {op}: {message}")]
    Refused {
        /// The op of the refused request.
        op: &'static str,
        /// The master's error text.
        message: String,
    },
}
