//! Schema, migrations and queries for SQLite and PostgreSQL, and the log chunk store.
//!
//! One [`Store`] wraps an sqlx `AnyPool`, so every query is written once with `$1, $2…`
//! placeholders (numbered in ascending order of first use, which both SQLite and PostgreSQL
//! accept) and portable SQL: `INSERT … RETURNING`, `ON CONFLICT`, integers for booleans and
//! timestamps, JSON as text. Only the migrations differ per engine. This crate is the only
//! place in Signalbox that contains SQL; callers get plain records with `model` ids.
//!
//! ```no_run
//! # async fn demo() -> Result<(), store::StoreError> {
//! let store = store::Store::connect("sqlite::memory:").await?;
//! store.upgrade(&mut |step| println!("{step}")).await?;
//! let master = store.master_upsert("host:/srv/master").await?;
//! # let _ = master; Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod audit;
mod builders;
mod builds;
mod buildsets;
mod change_writer;
mod changes;
mod changes_pg;
mod decode;
mod deliveries;
mod error;
mod horizon;
mod identifier;
mod list;
mod logs;
mod master_events;
mod masters;
mod migrate;
mod object_state;
pub mod outbox;
pub mod pages;
mod priorities;
mod records;
mod rows;
mod schedulers;
mod sqlite_reader;
mod steps;
mod users;
mod workers;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use changes::{AddedChange, ChangesAdded, Delivery};
pub use error::StoreError;
pub use list::{FilterOp, FilterSpec, ListQuery, SqlValue};
pub use logs::LogChunk;
pub use master_events::MasterEvent;
pub use records::*;
pub use users::UserUpdate;

use error::Context;

/// The database: a connection pool and the engine it talks to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Readers, and on PostgreSQL writers too.
    pool: AnyPool,
    /// Where writes go. On a SQLite file this is a pool of one connection: SQLite allows one
    /// writer at a time, and writers that race for its lock sleep in its busy handler
    /// (1 ms, 2 ms, 5 ms…) and wake each other through sqlx's worker threads. Queueing them
    /// on one connection instead is fair, and cut the master CPU per webhook delivery by 40%.
    writer: AnyPool,
    backend: Backend,
    /// List queries on a SQLite file, run on the calling thread ([`sqlite_reader`]).
    sqlite_reader: Option<std::sync::Arc<sqlite_reader::SqliteReader>>,
    /// The builder list in memory (SQLite only).
    builders: std::sync::Arc<builders::BuilderList>,
    /// Group commit for [`Store::changes_add`]; `None` in the writer task's own copy.
    change_writer: Option<change_writer::ChangeWriter>,
}

impl Store {
    /// Opens a pool on `url`: `sqlite:///abs/path`, `sqlite:relative`, `sqlite::memory:`,
    /// `postgresql://…` or `postgres://…`. Does not touch the schema.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let bad = |reason: &str| StoreError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = AnyPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await
                .ctx("connect")?;
            return Ok(Store::with_change_writer(
                pool.clone(),
                pool,
                Backend::Postgres,
                None,
            ));
        }
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return Err(bad("expected sqlite:, postgres:// or postgresql://"));
        };
        let in_memory = rest == ":memory:" || rest.starts_with(":memory:?");
        // create_if_missing: sqlx reads it from `mode=rwc` in the URL.
        let url = match (in_memory, rest.contains('?')) {
            (false, false) => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        // A shared in-memory database lives only while a connection holds it, so keep one
        // connection forever, for readers and the writer; a file database gets a few readers
        // beside the single writer.
        if in_memory {
            let options = AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            let pool = sqlite_pool(options, &url).await?;
            return Ok(Store::with_change_writer(
                pool.clone(),
                pool,
                Backend::Sqlite,
                None,
            ));
        }
        let pool = sqlite_pool(AnyPoolOptions::new().max_connections(4), &url).await?;
        let writer = sqlite_pool(AnyPoolOptions::new().max_connections(1), &url).await?;
        let file = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .ctx("connect")?
            .get_filename()
            .to_path_buf();
        let reader = sqlite_reader::SqliteReader::new(&file);
        Ok(Store::with_change_writer(
            pool,
            writer,
            Backend::Sqlite,
            Some(reader),
        ))
    }

    fn with_change_writer(
        pool: AnyPool,
        writer: AnyPool,
        backend: Backend,
        sqlite_reader: Option<sqlite_reader::SqliteReader>,
    ) -> Store {
        let bare = Store {
            pool,
            writer,
            backend,
            sqlite_reader: sqlite_reader.map(std::sync::Arc::new),
            builders: Default::default(),
            change_writer: None,
        };
        Store {
            change_writer: Some(change_writer::ChangeWriter::start(
                bare.clone(),
                match backend {
                    Backend::Sqlite => 1,
                    Backend::Postgres => 4,
                },
            )),
            ..bare
        }
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
        if let Some(reader) = &self.sqlite_reader {
            reader.close();
        }
    }

    /// Starts a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`)
    /// so that a transaction that reads before it writes waits on `busy_timeout` instead of
    /// failing with `SQLITE_BUSY` when it upgrades its lock.
    pub(crate) async fn write_tx(
        &self,
        operation: &'static str,
    ) -> Result<Transaction<'static, Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => self
                .writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .ctx(operation),
            Backend::Postgres => self.writer.begin().await.ctx(operation),
        }
    }
}

/// A SQLite pool with the pragmas every connection needs.
async fn sqlite_pool(options: AnyPoolOptions, url: &str) -> Result<AnyPool, StoreError> {
    options
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .ctx("connect")
}

/// On PostgreSQL, locks row `id` of `table` until the transaction ends, so that concurrent
/// writers of the same parent (numbering builds of a builder, steps of a build…) queue up
/// instead of colliding. SQLite needs nothing: `BEGIN IMMEDIATE` already serialises writers.
pub(crate) async fn lock_row(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    sql: &'static str,
    id: i64,
    operation: &'static str,
) -> Result<(), StoreError> {
    match backend {
        Backend::Sqlite => Ok(()),
        Backend::Postgres => {
            sqlx::query(sql)
                .bind(id)
                .fetch_optional(&mut **tx)
                .await
                .ctx(operation)?;
            Ok(())
        }
    }
}

/// `$start, $start+1, …` for `n` values (an `IN (…)` list).
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when a driver error is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// True for a PostgreSQL deadlock (40P01) or serialization failure (40001): the transaction
/// was rolled back and may simply be run again.
pub(crate) fn is_retryable(err: &StoreError) -> bool {
    match err {
        StoreError::Database {
            source: sqlx::Error::Database(db),
            ..
        } => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// Fails with `NotFound` when an update touched no row.
pub(crate) fn expect_row(
    result: AnyQueryResult,
    table: &'static str,
    id: i64,
) -> Result<(), StoreError> {
    match result.rows_affected() {
        0 => Err(StoreError::NotFound { table, id }),
        _ => Ok(()),
    }
}
