//! Logs as compressed chunks with a line index (DESIGN decision 3).
//!
//! Each `log_append` stores one `logchunks` row holding whole lines `first_line..=last_line`
//! (0-based), without the final `\n`, gzip-compressed at the fast level when that makes it
//! smaller. Reading a line range is one indexed query over the chunks that overlap it, and
//! a whole log streams page by page, so memory stays constant whatever the log's size.

use std::collections::VecDeque;
use std::io::Read;

use flate2::read::GzDecoder;
use futures::Stream;
use model::{LogId, StepId};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe};

use crate::decode::{blob, flag, int, text, Columns};
use crate::error::{Context, StoreError};
use crate::{
    expect_row, identifier, is_unique_violation, lock_row, LogAppend, LogKind, LogRecord, Store,
};

/// Columns decoded by [`log_record`]; needs `logs l`.
pub(crate) const LOG_COLUMNS: &str =
    "l.id, l.name, l.slug, l.stepid, l.complete, l.num_lines, l.type";

/// Chunks fetched per query while streaming a whole log.
const STREAM_PAGE: i64 = 16;

/// `logchunks.compressed` codes, as Buildbot numbers them.
const RAW: i64 = 0;
/// Gzip.
const GZIP: i64 = 1;
/// Zstandard, Buildbot's code 4: what new chunks use.
const ZSTD: i64 = 4;

impl Store {
    /// Adds a log to a step; its slug is derived from `name` and unique within the step.
    /// Returns (id, slug).
    pub async fn log_add(
        &self,
        step: StepId,
        name: &str,
        kind: LogKind,
    ) -> Result<(LogId, String), StoreError> {
        const OP: &str = "log_add";
        let base = identifier::force(name);
        for _attempt in 0..5 {
            let mut tx = self.write_tx(OP).await?;
            lock_row(
                &mut tx,
                self.backend,
                "SELECT id FROM steps WHERE id = $1 FOR UPDATE",
                step.0,
                OP,
            )
            .await?;
            let rows = sqlx::query("SELECT slug FROM logs WHERE stepid = $1")
                .bind(step.0)
                .fetch_all(&mut *tx)
                .await
                .ctx(OP)?;
            let taken = rows
                .iter()
                .map(|r| text(r, 0))
                .collect::<Result<Vec<_>, _>>()?;
            let slug = identifier::first_free(&base, identifier::MAX_LEN, &taken);
            let inserted = sqlx::query(
                "INSERT INTO logs (name, slug, stepid, complete, num_lines, type) VALUES ($1, $2, $3, 0, 0, $4) RETURNING id",
            )
            .bind(name)
            .bind(slug.as_str())
            .bind(step.0)
            .bind(kind.code())
            .fetch_one(&mut *tx)
            .await;
            match inserted {
                Ok(row) => {
                    tx.commit().await.ctx(OP)?;
                    return Ok((LogId(int(&row, 0)?), slug));
                }
                Err(err) if is_unique_violation(&err) => tx.rollback().await.ctx(OP)?,
                Err(err) => {
                    return Err(StoreError::Database {
                        operation: OP,
                        source: err,
                    })
                }
            }
        }
        Err(StoreError::Conflict { operation: OP })
    }

    /// Appends whole lines (each ending in `\n`; a missing final `\n` is implied) as one
    /// chunk and bumps the log's line count, in one transaction. Callers batch about 64 KiB
    /// per call; stdio lines already carry their `o`/`e`/`h` marker.
    pub async fn log_append(&self, id: LogId, lines: &str) -> Result<LogAppend, StoreError> {
        self.log_append_chunk(id, &LogChunk::prepare(lines)).await
    }

    /// Appends a chunk prepared (compressed) beforehand, so that callers can compress
    /// several chunks in parallel and still append them in order.
    pub async fn log_append_chunk(
        &self,
        id: LogId,
        chunk: &LogChunk,
    ) -> Result<LogAppend, StoreError> {
        const OP: &str = "log_append";
        if chunk.lines == 0 {
            let Some(log) = self.log_get(id).await? else {
                return Err(StoreError::NotFound {
                    table: "logs",
                    id: id.0,
                });
            };
            return Ok(LogAppend {
                first_line: log.num_lines,
                num_lines: 0,
            });
        }
        let count = chunk.lines;
        let mut tx = self.write_tx(OP).await?;
        // Updating the log row first serialises appenders of the same log.
        let row = sqlx::query(
            "UPDATE logs SET num_lines = num_lines + $1 WHERE id = $2 RETURNING num_lines",
        )
        .bind(count)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .ctx(OP)?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                table: "logs",
                id: id.0,
            });
        };
        let first_line = int(&row, 0)? - count;
        sqlx::query(
            "INSERT INTO logchunks (logid, first_line, last_line, content, compressed) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.0)
        .bind(first_line)
        .bind(first_line + count - 1)
        .bind(chunk.bytes.as_slice())
        .bind(chunk.compressed)
        .execute(&mut *tx)
        .await
        .ctx(OP)?;
        tx.commit().await.ctx(OP)?;
        Ok(LogAppend {
            first_line,
            num_lines: count,
        })
    }

    /// Marks a log complete.
    pub async fn log_finish(&self, id: LogId) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE logs SET complete = 1 WHERE id = $1")
            .bind(id.0)
            .execute(&self.writer)
            .await
            .ctx("log_finish")?;
        expect_row(result, "logs", id.0)
    }

    /// One log.
    pub async fn log_get(&self, id: LogId) -> Result<Option<LogRecord>, StoreError> {
        let sql = format!("SELECT {LOG_COLUMNS} FROM logs l WHERE l.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .ctx("log_get")?;
        row.as_ref().map(log_record).transpose()
    }

    /// The log of `step` with `slug`.
    pub async fn log_get_by_slug(
        &self,
        step: StepId,
        slug: &str,
    ) -> Result<Option<LogRecord>, StoreError> {
        let sql = format!("SELECT {LOG_COLUMNS} FROM logs l WHERE l.stepid = $1 AND l.slug = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(step.0)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .ctx("log_get_by_slug")?;
        row.as_ref().map(log_record).transpose()
    }

    /// The logs of a step, by id.
    pub async fn logs_for_step(&self, step: StepId) -> Result<Vec<LogRecord>, StoreError> {
        let sql = format!("SELECT {LOG_COLUMNS} FROM logs l WHERE l.stepid = $1 ORDER BY l.id");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(step.0)
            .fetch_all(&self.pool)
            .await
            .ctx("logs_for_step")?;
        rows.iter().map(log_record).collect()
    }

    /// Lines `first..=last_inclusive` (0-based), each ending in `\n`; lines past the end
    /// are simply absent.
    pub async fn log_lines(
        &self,
        id: LogId,
        first: i64,
        last_inclusive: i64,
    ) -> Result<String, StoreError> {
        let rows = sqlx::query(
            "SELECT first_line, content, compressed FROM logchunks
             WHERE logid = $1 AND last_line >= $2 AND first_line <= $3 ORDER BY first_line",
        )
        .bind(id.0)
        .bind(first)
        .bind(last_inclusive)
        .fetch_all(&self.pool)
        .await
        .ctx("log_lines")?;
        let mut out = String::new();
        for row in &rows {
            let chunk_first = int(row, 0)?;
            let content = chunk_text(row)?;
            for (i, line) in content.split('\n').enumerate() {
                let number = chunk_first + i as i64;
                if number >= first && number <= last_inclusive {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        Ok(out)
    }

    /// The whole log, one chunk (whole lines, each ending in `\n`) per item, in order. Fetches
    /// a few chunks at a time, so memory stays constant.
    pub fn log_chunks_stream(
        &self,
        id: LogId,
    ) -> impl Stream<Item = Result<String, StoreError>> + Send + 'static {
        struct Cursor {
            pool: AnyPool,
            id: LogId,
            after: i64,
            buffer: VecDeque<String>,
            exhausted: bool,
        }
        let start = Cursor {
            pool: self.pool.clone(),
            id,
            after: -1,
            buffer: VecDeque::new(),
            exhausted: false,
        };
        futures::stream::try_unfold(start, |mut cursor| async move {
            if cursor.buffer.is_empty() && !cursor.exhausted {
                let rows = sqlx::query(
                    "SELECT first_line, content, compressed FROM logchunks
                     WHERE logid = $1 AND first_line > $2 ORDER BY first_line LIMIT $3",
                )
                .bind(cursor.id.0)
                .bind(cursor.after)
                .bind(STREAM_PAGE)
                .fetch_all(&cursor.pool)
                .await
                .ctx("log_chunks_stream")?;
                cursor.exhausted = (rows.len() as i64) < STREAM_PAGE;
                for row in &rows {
                    cursor.after = int(row, 0)?;
                    let mut text = chunk_text(row)?;
                    text.push('\n');
                    cursor.buffer.push_back(text);
                }
            }
            Ok(cursor.buffer.pop_front().map(|chunk| (chunk, cursor)))
        })
    }

    /// Bytes the log's chunks take in the database (after compression).
    pub async fn log_stored_bytes(&self, id: LogId) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT COALESCE(SUM(LENGTH(content)), 0) FROM logchunks WHERE logid = $1")
                .bind(id.0)
                .fetch_one(&self.pool)
                .await
                .ctx("log_stored_bytes")?;
        int(&row, 0)
    }
}

/// Gzip at the fast level when that is smaller, else the raw bytes; with the code to store.
fn compress(raw: &[u8]) -> (Vec<u8>, i64) {
    // zstd level 1 compresses this kind of text better than gzip's fastest level at about
    // twice the speed; compression was the largest cost of log ingest (bench/log_ingest.sh).
    match zstd::bulk::compress(raw, 1) {
        Ok(packed) if packed.len() < raw.len() => (packed, ZSTD),
        _ => (raw.to_vec(), RAW),
    }
}

/// Log lines ready to append: compressed (when that helps) and counted. Preparing is pure
/// CPU work, so callers may do it off the async threads and in parallel.
#[derive(Debug, Clone)]
pub struct LogChunk {
    bytes: Vec<u8>,
    compressed: i64,
    lines: i64,
}

impl LogChunk {
    /// Compresses whole lines (each ending in `\n`; a missing final `\n` is implied).
    pub fn prepare(lines: &str) -> LogChunk {
        if lines.is_empty() {
            return LogChunk {
                bytes: Vec::new(),
                compressed: RAW,
                lines: 0,
            };
        }
        let content = lines.strip_suffix('\n').unwrap_or(lines);
        let count = content.matches('\n').count() as i64 + 1;
        let (bytes, compressed) = compress(content.as_bytes());
        LogChunk {
            bytes,
            compressed,
            lines: count,
        }
    }
}

/// The text of a chunk row `first_line, content, compressed`.
fn chunk_text(row: &AnyRow) -> Result<String, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "logchunks",
        column: "content",
        reason,
    };
    let bytes = blob(row, 1)?;
    let raw = match int(row, 2)? {
        RAW => bytes,
        GZIP => {
            let mut out = Vec::with_capacity(bytes.len() * 4);
            GzDecoder::new(bytes.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| corrupt(e.to_string()))?;
            out
        }
        ZSTD => zstd::stream::decode_all(bytes.as_slice()).map_err(|e| corrupt(e.to_string()))?,
        other => return Err(corrupt(format!("unsupported compression {other}"))),
    };
    String::from_utf8(raw).map_err(|e| corrupt(e.to_string()))
}

/// Decodes [`LOG_COLUMNS`].
pub(crate) fn log_record<R: Columns + ?Sized>(row: &R) -> Result<LogRecord, StoreError> {
    let code = text(row, 6)?;
    let Some(kind) = LogKind::from_code(&code) else {
        return Err(StoreError::Corrupt {
            table: "logs",
            column: "type",
            reason: format!("unknown type {code:?}"),
        });
    };
    Ok(LogRecord {
        id: LogId(int(row, 0)?),
        name: text(row, 1)?,
        slug: text(row, 2)?,
        stepid: StepId(int(row, 3)?),
        complete: flag(row, 4)?,
        num_lines: int(row, 5)?,
        kind,
    })
}
