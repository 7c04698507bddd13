//! SQLite reads on the calling thread, for the list queries behind every page and REST list.
//!
//! sqlx runs each SQLite connection on a thread of its own: a query is a message to that
//! thread and every result row a message back, each waking a sleeping thread. On this 2-CPU
//! VM that cost about 50 µs per query before any work, and a 50-build page with its COUNT
//! took 150 µs through sqlx against 33 µs here (ARCHITECTURE.md, "Reading SQLite"). So on a
//! SQLite file the list path reads through these connections instead, directly on the task's
//! thread; writes, transactions and every other read stay on sqlx.
//!
//! The queries are indexed pages and counts that take microseconds, and a reader in WAL mode
//! never waits for the writer, so running them inline is cheaper than handing them off. A
//! list without a limit (filtered in memory) may read a whole table; `list.rs` runs that one
//! in `block_in_place`, so the runtime moves the thread's other tasks away first.
//! Connections are taken from an idle list and put back after the query; since a query never
//! awaits, there are never more open than threads running queries at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;
use crate::list::SqlValue;
use crate::rows::{Cell, Table};

/// How long a read waits on a lock (only a WAL recovery or a checkpoint restart takes one).
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Prepared statements kept per connection: the list queries are few shapes, repeated.
const STATEMENT_CACHE: usize = 64;

/// Read connections to one SQLite file.
#[derive(Debug)]
pub(crate) struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl SqliteReader {
    /// Readers of the database file at `path` (opened on first use).
    pub(crate) fn new(path: &Path) -> SqliteReader {
        SqliteReader {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Closes the idle connections; later queries fail, as they do on a closed sqlx pool.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Runs `sql` with `args` bound to `$1`, `$2`…, and returns every row.
    pub(crate) fn query(
        &self,
        operation: &'static str,
        sql: &str,
        args: &[SqlValue],
    ) -> Result<Table, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Database {
                operation,
                source: sqlx::Error::PoolClosed,
            });
        }
        let conn = self.take().map_err(|e| error(operation, e))?;
        let result = run(&conn, sql, args).map_err(|e| error(operation, e));
        if !self.closed.load(Ordering::Acquire) {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
        result
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                // Read-write without create, then query_only: a read-only open cannot
                // recover the WAL index after a crash, and the file must already exist.
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(BUSY_TIMEOUT)?;
                conn.pragma_update(None, "query_only", true)?;
                conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                Ok(conn)
            }
        }
    }
}

fn run(conn: &Connection, sql: &str, args: &[SqlValue]) -> rusqlite::Result<Table> {
    // The same field as sqlx's statement log, so one filter shows every statement
    // (`SIGNALBOX_LOG=info,sqlx::query=debug,store::query=debug`; bench/pages.sh counts them).
    tracing::event!(target: "store::query", tracing::Level::DEBUG, db.statement = %sql);
    let mut statement = conn.prepare_cached(sql)?;
    for (n, arg) in args.iter().enumerate() {
        // `$N` is a named parameter to SQLite; bind by name, whatever order they appear in.
        let Some(index) = statement.parameter_index(&format!("${}", n + 1))? else {
            continue;
        };
        match arg {
            SqlValue::Int(v) => statement.raw_bind_parameter(index, v)?,
            SqlValue::Text(s) => statement.raw_bind_parameter(index, s)?,
            SqlValue::Null => statement.raw_bind_parameter(index, rusqlite::types::Null)?,
        }
    }
    let width = statement.column_count();
    let mut table = Table::new(width);
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        for i in 0..width {
            table.push(match row.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Real(v),
                ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
            });
        }
    }
    Ok(table)
}

fn error(operation: &'static str, source: rusqlite::Error) -> StoreError {
    StoreError::SqliteRead { operation, source }
}
