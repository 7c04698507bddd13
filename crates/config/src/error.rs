//! The one error type of the config crate; every message starts with `file:line: `.

/// Why `master.cfg` could not be loaded, or why a user function failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}:{line}: cannot read file: {message}")]
    Io {
        /// File name.
        file: String,
        /// Always 0: the problem is not on a line.
        line: u32,
        /// The I/O error.
        message: String,
    },
    /// The file is not valid Starlark.
    #[error("{file}:{line}: syntax error: {message}")]
    Syntax {
        /// File name.
        file: String,
        /// 1-based line.
        line: u32,
        /// What the parser said.
        message: String,
    },
    /// An import names something Signalbox does not provide.
    #[error("{file}:{line}: unknown import '{name}'")]
    UnknownImport {
        /// File name.
        file: String,
        /// 1-based line.
        line: u32,
        /// The imported name.
        name: String,
    },
    /// Evaluation failed (unknown name, bad call, failed assertion, …).
    #[error("{file}:{line}: {message}")]
    Eval {
        /// File name.
        file: String,
        /// 1-based line.
        line: u32,
        /// What went wrong.
        message: String,
    },
    /// Evaluation ran past its tick budget or deadline.
    #[error("{file}:{line}: evaluation took too long ({message})")]
    Timeout {
        /// File name.
        file: String,
        /// 1-based line where it was stopped.
        line: u32,
        /// Which limit was hit.
        message: String,
    },
    /// The values are well-formed Starlark but not a valid configuration.
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// File name.
        file: String,
        /// 1-based line of the offending object.
        line: u32,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The 1-based line the error points at (0 when none).
    pub fn line(&self) -> u32 {
        match self {
            ConfigError::Io { line, .. }
            | ConfigError::Syntax { line, .. }
            | ConfigError::UnknownImport { line, .. }
            | ConfigError::Eval { line, .. }
            | ConfigError::Timeout { line, .. }
            | ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// The same error pointing at `fallback` when it had no line.
    pub(crate) fn or_line(mut self, fallback: u32) -> ConfigError {
        match &mut self {
            ConfigError::Io { line, .. }
            | ConfigError::Syntax { line, .. }
            | ConfigError::UnknownImport { line, .. }
            | ConfigError::Eval { line, .. }
            | ConfigError::Timeout { line, .. }
            | ConfigError::Invalid { line, .. } => {
                if *line == 0 {
                    *line = fallback;
                }
            }
        }
        self
    }
}
