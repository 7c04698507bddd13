//! Non-build events (`master_events`): workers attaching, detaching and going missing, and the
//! master starting and reloading its configuration. The waterfall shows them with
//! `show_events`, as Buildbot 0.8 did.

use model::{Timestamp, WorkerId};

use crate::decode::{int, opt_int, opt_text, text};
use crate::error::{Context, StoreError};
use crate::Store;

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterEvent {
    /// When it happened.
    pub at: Timestamp,
    /// The worker it is about; `None` for the master's own events.
    pub workerid: Option<WorkerId>,
    /// The worker's name, when it is about a worker.
    pub worker: Option<String>,
    /// What happened: `connected`, `disconnected`, `missing`, `started`, `reconfig`.
    pub event: String,
}

impl Store {
    /// Records an event at `at`.
    pub async fn master_event_add(
        &self,
        at: Timestamp,
        workerid: Option<WorkerId>,
        event: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO master_events (at, workerid, event) VALUES ($1, $2, $3)")
            .bind(at)
            .bind(workerid.map(|w| w.0))
            .bind(event)
            .execute(&self.writer)
            .await
            .ctx("master_event_add")?;
        Ok(())
    }

    /// The newest `limit` events with `after <= at < before`, newest first.
    pub async fn master_events(
        &self,
        after: Option<Timestamp>,
        before: Option<Timestamp>,
        limit: i64,
    ) -> Result<Vec<MasterEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.at, e.workerid, w.name, e.event FROM master_events e
             LEFT JOIN workers w ON w.id = e.workerid
             WHERE e.at >= $1 AND e.at < $2 ORDER BY e.at DESC, e.id DESC LIMIT $3",
        )
        .bind(after.unwrap_or(i64::MIN))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .ctx("master_events")?;
        rows.iter()
            .map(|row| {
                Ok(MasterEvent {
                    at: int(row, 0)?,
                    workerid: opt_int(row, 1)?.map(WorkerId),
                    worker: opt_text(row, 2)?,
                    event: text(row, 3)?,
                })
            })
            .collect()
    }

    /// Forgets events before `before`; returns how many rows went.
    pub async fn master_events_expire(&self, before: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM master_events WHERE at < $1")
            .bind(before)
            .execute(&self.writer)
            .await
            .ctx("master_events_expire")?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[tokio::test]
    async fn events_come_back_newest_first_within_the_window() {
        let store = Store::connect("sqlite::memory:").await.expect("connect");
        store.upgrade(&mut |_| {}).await.expect("upgrade");
        let w = store.worker_upsert("w1").await.expect("worker");
        store.master_event_add(10, None, "started").await.unwrap();
        store
            .master_event_add(20, Some(w), "connected")
            .await
            .unwrap();
        store
            .master_event_add(30, Some(w), "disconnected")
            .await
            .unwrap();
        let all = store.master_events(None, None, 10).await.unwrap();
        let seen: Vec<_> = all.iter().map(|e| (e.at, e.event.as_str())).collect();
        assert_eq!(
            seen,
            [(30, "disconnected"), (20, "connected"), (10, "started")]
        );
        assert_eq!(all[0].worker.as_deref(), Some("w1"));
        assert_eq!(all[0].workerid, Some(w));
        let window = store.master_events(Some(15), Some(30), 10).await.unwrap();
        assert_eq!(window.len(), 1);
        assert_eq!(store.master_events_expire(25).await.unwrap(), 2);
    }
}
