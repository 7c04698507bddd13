//! Errors of the engine.

/// Why the master could not do something.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The database schema is not what this version expects.
    #[error("{0}")]
    Schema(String),
    /// A request named something that does not exist.
    #[error("{0}")]
    Invalid(String),
    /// A listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
}
