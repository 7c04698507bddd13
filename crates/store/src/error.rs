//! The one error type of the store crate.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one we can use.
    #[error("unsupported database url {url:?}: {reason}")]
    BadUrl {
        /// The URL as given (passwords included; callers must not log it).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A row that must exist does not.
    #[error("no row in {table} with id {id}")]
    NotFound {
        /// Table name.
        table: &'static str,
        /// The id looked up.
        id: i64,
    },
    /// A query built from a list request is not valid (unknown column, wrong value type).
    #[error("bad list query on {table}: {reason}")]
    BadQuery {
        /// Resource table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The database schema is not at the version this build expects.
    #[error(
        "database schema is at version {found}, this build needs {expected}; run upgrade-master"
    )]
    SchemaMismatch {
        /// Version found in `schema_version`.
        found: i64,
        /// Version this build's migrations reach.
        expected: i64,
    },
    /// A migration failed.
    #[error("migration {version} failed: {source}")]
    Migration {
        /// Migration number.
        version: i64,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored value could not be decoded (bad JSON, unknown result code, bad gzip).
    #[error("corrupt value in {table}.{column}: {reason}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// Column name.
        column: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A result value is not of the type its column should hold (or NULL where it cannot be).
    #[error("cannot read result column {column}: {reason}")]
    Decode {
        /// Position in the result row.
        column: usize,
        /// What was found instead.
        reason: String,
    },
    /// A write kept conflicting with concurrent writers.
    #[error("gave up on {operation} after repeated conflicts")]
    Conflict {
        /// What was attempted.
        operation: &'static str,
    },
    /// The task that writes changes has stopped: the master is shutting down.
    #[error(
        "the change writer has stopped; the master is shutting down, try again after it restarts"
    )]
    WriterStopped,
    /// SQLite reported an error to the reader that runs on the calling thread.
    #[error("database error during {operation}: {source}")]
    SqliteRead {
        /// What was attempted.
        operation: &'static str,
        /// The driver error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database reported an error.
    #[error("database error during {operation}: {source}")]
    Database {
        /// What was attempted.
        operation: &'static str,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
}

/// Adds the operation name to a driver error.
pub(crate) trait Context<T> {
    /// Wraps the error as [`StoreError::Database`] for `operation`.
    fn ctx(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn ctx(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { operation, source })
    }
}
