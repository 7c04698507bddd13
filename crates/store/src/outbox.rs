//! The notification outbox (`outbox`): every outgoing message is a row, recorded before any
//! network I/O, then claimed, sent and marked by the reporters' delivery loop.
//!
//! A row is `pending` until it is `sent`, or `failed` once its target gives up on it.
//! `dedup_key` is unique, so recording the same (target, build, event) twice keeps the first.
//! A claim pushes `next_attempt_at` forward (a lease): a claimed row is not due again until
//! the lease runs out, so two masters, or a loop that wakes twice, never send it twice at once;
//! a master killed while sending lets the lease expire and the row is sent after restart.

use model::{BuildId, BuildsetId, Timestamp};
use sqlx::any::AnyRow;
use sqlx::AssertSqlSafe;

use crate::decode::{int, opt_int, opt_text, text};
use crate::error::{Context, StoreError};
use crate::{placeholders, Store};

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Waiting for its (next) attempt.
    Pending,
    /// Delivered.
    Sent,
    /// Given up on; `last_error` says why.
    Failed,
}

impl OutboxState {
    /// The value stored in `outbox.state`.
    pub fn code(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
        }
    }

    /// The state stored as `code`.
    pub fn from_code(code: &str) -> Option<OutboxState> {
        match code {
            "pending" => Some(OutboxState::Pending),
            "sent" => Some(OutboxState::Sent),
            "failed" => Some(OutboxState::Failed),
            _ => None,
        }
    }
}

/// A message to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxMessage {
    /// The status target's name (`MailNotifier#1`).
    pub target: String,
    /// The build the message is about, if any.
    pub buildid: Option<BuildId>,
    /// The buildset the message is about, if any.
    pub buildsetid: Option<BuildsetId>,
    /// The event that caused it (`finished`, `complete`).
    pub event: String,
    /// Unique per (target, build or buildset, event).
    pub dedup_key: String,
    /// The rendered message, in the target's own format.
    pub content: String,
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// Row id.
    pub id: i64,
    /// The status target's name.
    pub target: String,
    /// The build the message is about, if any.
    pub buildid: Option<BuildId>,
    /// The buildset the message is about, if any.
    pub buildsetid: Option<BuildsetId>,
    /// The event that caused it.
    pub event: String,
    /// Unique per (target, build or buildset, event).
    pub dedup_key: String,
    /// The rendered message.
    pub content: String,
    /// Where it stands.
    pub state: OutboxState,
    /// Attempts made so far.
    pub attempts: i64,
    /// When it is due (or when its lease ends).
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// When it was delivered.
    pub sent_at: Option<Timestamp>,
}

/// Columns decoded by [`outbox_record`].
const OUTBOX_COLUMNS: &str = "id, target, buildid, buildsetid, event, dedup_key, content, state, \
     attempts, next_attempt_at, last_error, created_at, sent_at";

impl Store {
    /// Records `messages` in one transaction, due at `now`; a message whose `dedup_key` is
    /// already recorded is skipped. Returns the ids of the new rows.
    pub async fn outbox_record(
        &self,
        messages: &[NewOutboxMessage],
        now: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        const OP: &str = "outbox_record";
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx(OP).await?;
        let mut ids = Vec::with_capacity(messages.len());
        for m in messages {
            let row = sqlx::query(
                "INSERT INTO outbox (target, buildid, buildsetid, event, dedup_key, content, \
                 state, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) \
                 ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            )
            .bind(m.target.as_str())
            .bind(m.buildid.map(|b| b.0))
            .bind(m.buildsetid.map(|b| b.0))
            .bind(m.event.as_str())
            .bind(m.dedup_key.as_str())
            .bind(m.content.as_str())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .ctx(OP)?;
            if let Some(row) = row {
                ids.push(int(&row, 0)?);
            }
        }
        tx.commit().await.ctx(OP)?;
        Ok(ids)
    }

    /// Claims up to `limit` pending rows due at `now`, oldest first, leasing them until
    /// `lease_until`; returns them.
    pub async fn outbox_claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        // The outer conditions repeat the inner ones so that PostgreSQL re-checks them on a
        // row another master has just leased, and skips it.
        let sql = format!(
            "UPDATE outbox SET next_attempt_at = $1 \
             WHERE state = 'pending' AND next_attempt_at <= $2 AND id IN \
             (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $2 \
              ORDER BY id LIMIT $3) \
             RETURNING {OUTBOX_COLUMNS}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.writer)
            .await
            .ctx("outbox_claim_due")?;
        let mut records = rows
            .iter()
            .map(outbox_record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| r.id);
        Ok(records)
    }

    /// When the next pending row is due, if any is pending.
    pub async fn outbox_next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await
            .ctx("outbox_next_due")?;
        opt_int(&row, 0)
    }

    /// Marks rows delivered at `now` (one statement), counting the attempt.
    pub async fn outbox_mark_sent(&self, ids: &[i64], now: Timestamp) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1, \
             last_error = NULL WHERE id IN ({})",
            placeholders(2, ids.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
        for id in ids {
            query = query.bind(*id);
        }
        query.execute(&self.writer).await.ctx("outbox_mark_sent")?;
        Ok(())
    }

    /// Records a failed attempt: the row stays pending and is due again at `next_attempt_at`.
    pub async fn outbox_mark_retry(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 \
             WHERE id = $3 AND state = 'pending'",
        )
        .bind(error)
        .bind(next_attempt_at)
        .bind(id)
        .execute(&self.writer)
        .await
        .ctx("outbox_mark_retry")?;
        Ok(())
    }

    /// Gives up on a row: it becomes `failed` with `error`.
    pub async fn outbox_mark_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $1 \
             WHERE id = $2 AND state = 'pending'",
        )
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await
        .ctx("outbox_mark_failed")?;
        Ok(())
    }

    /// One row.
    pub async fn outbox_get(&self, id: i64) -> Result<Option<OutboxRecord>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ctx("outbox_get")?;
        row.as_ref().map(outbox_record).transpose()
    }

    /// Rows in any of `states`, newest first, at most `limit` (served by the `(state, …)`
    /// index), and how many rows are in those states in all.
    pub async fn outbox_list(
        &self,
        states: &[OutboxState],
        limit: i64,
    ) -> Result<(Vec<OutboxRecord>, i64), StoreError> {
        if states.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state IN ({}) ORDER BY id DESC LIMIT ${}",
            placeholders(1, states.len()),
            states.len() + 1
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for s in states {
            query = query.bind(s.code());
        }
        let rows = query
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .ctx("outbox_list")?;
        let records = rows
            .iter()
            .map(outbox_record)
            .collect::<Result<Vec<_>, _>>()?;
        let sql = format!(
            "SELECT COUNT(*) FROM outbox WHERE state IN ({})",
            placeholders(1, states.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for s in states {
            query = query.bind(s.code());
        }
        let row = query.fetch_one(&self.pool).await.ctx("outbox_list")?;
        Ok((records, int(&row, 0)?))
    }
}

/// Decodes [`OUTBOX_COLUMNS`].
fn outbox_record(row: &AnyRow) -> Result<OutboxRecord, StoreError> {
    let state = text(row, 7)?;
    Ok(OutboxRecord {
        id: int(row, 0)?,
        target: text(row, 1)?,
        buildid: opt_int(row, 2)?.map(BuildId),
        buildsetid: opt_int(row, 3)?.map(BuildsetId),
        event: text(row, 4)?,
        dedup_key: text(row, 5)?,
        content: text(row, 6)?,
        state: OutboxState::from_code(&state).ok_or_else(|| StoreError::Corrupt {
            table: "outbox",
            column: "state",
            reason: format!("unknown state {state:?}"),
        })?,
        attempts: int(row, 8)?,
        next_attempt_at: int(row, 9)?,
        last_error: opt_text(row, 10)?,
        created_at: int(row, 11)?,
        sent_at: opt_int(row, 12)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> Store {
        let store = Store::connect("sqlite::memory:").await.expect("connect");
        store.upgrade(&mut |_| {}).await.expect("upgrade");
        store
    }

    fn message(key: &str) -> NewOutboxMessage {
        NewOutboxMessage {
            target: "MailNotifier#1".into(),
            buildid: Some(BuildId(7)),
            buildsetid: None,
            event: "finished".into(),
            dedup_key: key.into(),
            content: "{}".into(),
        }
    }

    #[tokio::test]
    async fn records_once_claims_once_and_marks() {
        let store = store().await;
        let ids = store
            .outbox_record(&[message("a"), message("b"), message("a")], 100)
            .await
            .expect("record");
        assert_eq!(ids.len(), 2, "the duplicate key is skipped");
        let again = store
            .outbox_record(&[message("a")], 101)
            .await
            .expect("record");
        assert!(again.is_empty(), "recorded once, ever");

        let claimed = store.outbox_claim_due(100, 160, 10).await.expect("claim");
        assert_eq!(claimed.len(), 2);
        let twice = store.outbox_claim_due(100, 160, 10).await.expect("claim");
        assert!(twice.is_empty(), "a leased row is not due");

        store.outbox_mark_sent(&[ids[0]], 105).await.expect("sent");
        store
            .outbox_mark_retry(ids[1], "connection refused", 200)
            .await
            .expect("retry");
        assert_eq!(store.outbox_next_due().await.expect("next"), Some(200));
        let row = store.outbox_get(ids[1]).await.expect("get").expect("row");
        assert_eq!(
            (row.state, row.attempts, row.last_error.as_deref()),
            (OutboxState::Pending, 1, Some("connection refused"))
        );
        store
            .outbox_mark_failed(ids[1], "550 no")
            .await
            .expect("failed");
        let (unsent, total) = store
            .outbox_list(&[OutboxState::Pending, OutboxState::Failed], 10)
            .await
            .expect("list");
        assert_eq!((unsent.len(), total), (1, 1));
        assert_eq!(unsent[0].state, OutboxState::Failed);
        assert_eq!(store.outbox_next_due().await.expect("next"), None);
    }
}
