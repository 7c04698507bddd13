//! The one error type of the reporters crate.

/// Why a status target could not be built or a message could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    /// The target's configuration is not usable (`builders` and `categories` both given…).
    #[error("{at}: {kind}: {message}")]
    Config {
        /// Where the target is defined.
        at: String,
        /// The target's class.
        kind: String,
        /// What is wrong.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}
