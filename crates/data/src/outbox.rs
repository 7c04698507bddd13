//! The outbox resource: notifications not delivered yet (`pending`) and given up on
//! (`failed`), so that no failure is only a log line (DESIGN.md decision 8).
//!
//! `GET outbox` lists them newest first (the 1000 newest; `meta.total` counts all of them
//! when no filter is given);
//! `GET outbox/N` shows one row in any state. The message content stays out: it holds
//! addresses and whole mails; the subject is shown for mail.

use serde_json::{json, Value};
use store::outbox::{OutboxRecord, OutboxState};
use store::Store;

use crate::paths::DataResult;
use crate::spec::{ResultSpec, DEFAULT_MAX_LIMIT};
use crate::DataError;

/// Fields of an outbox entry.
const FIELDS: &[&str] = &[
    "outboxid",
    "target",
    "buildid",
    "buildsetid",
    "event",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "sent_at",
    "subject",
];

/// Answers `outbox` and `outbox/N` (`rest` is what follows `outbox`).
pub(crate) async fn get(
    store: &Store,
    rest: &[&str],
    spec: &ResultSpec,
) -> Result<DataResult, DataError> {
    match rest {
        [] => {
            let (rows, all) = store
                .outbox_list(
                    &[OutboxState::Pending, OutboxState::Failed],
                    DEFAULT_MAX_LIMIT,
                )
                .await?;
            let items = rows.iter().map(entry).collect();
            let (items, matched) = spec.apply(items, FIELDS)?;
            let total = match spec.filters.is_empty() {
                true => all,
                false => matched,
            };
            Ok(DataResult::List {
                plural: "outbox",
                items,
                total,
            })
        }
        [id] => {
            let id: i64 = id
                .parse()
                .map_err(|_| DataError::InvalidPath(format!("outbox/{id}")))?;
            let row = store
                .outbox_get(id)
                .await?
                .ok_or_else(|| DataError::NotFound(format!("outbox/{id}")))?;
            Ok(DataResult::Single {
                plural: "outbox",
                value: spec.select(entry(&row)),
            })
        }
        _ => Err(DataError::InvalidPath(format!("outbox/{}", rest.join("/")))),
    }
}

/// One row as REST JSON.
fn entry(row: &OutboxRecord) -> Value {
    let subject = serde_json::from_str::<Value>(&row.content)
        .ok()
        .and_then(|c| c.get("subject").cloned())
        .unwrap_or(Value::Null);
    json!({
        "outboxid": row.id,
        "target": row.target,
        "buildid": row.buildid.map(|b| b.0),
        "buildsetid": row.buildsetid.map(|b| b.0),
        "event": row.event,
        "state": row.state.code(),
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
        "subject": subject,
    })
}
