//! The durable outbox: record first, then deliver.
//!
//! [`record`] writes rendered messages in one transaction, skipping any whose (target, build
//! or buildset, event) key is already there. [`deliver_loop`] claims due rows (a lease, so a
//! row is never sent by two loops at once), sends them concurrently, and marks each one sent,
//! due again after a backoff, or failed. It starts by claiming whatever is due, which is how
//! mail queued before a restart goes out.
//!
//! Delivery is at least once: a master killed after the SMTP server accepted a message but
//! before the row was marked sent sends it again after the lease (the window is the few
//! milliseconds between the server's `250` and the `UPDATE`). Each message carries a
//! `Message-ID` derived from its key, so a second copy is recognisable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use model::{BuildId, BuildsetId};
use store::outbox::NewOutboxMessage;
use store::Store;
use tokio::sync::{mpsc, Notify, Semaphore};

use crate::retry::Backoff;
use crate::service::Targets;
use crate::{BuildEvent, DeliveryError};

/// A rendered message, ready to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// The target that will deliver it.
    pub target: String,
    /// What caused it.
    pub event: BuildEvent,
    /// The build it is about (build events).
    pub buildid: Option<BuildId>,
    /// The buildset it is about (buildset events).
    pub buildsetid: Option<BuildsetId>,
    /// The target's own serialized form of the message.
    pub content: String,
}

impl OutgoingMessage {
    /// The key that makes a message unique: `target/build-12/finished`.
    pub fn dedup_key(&self) -> String {
        let about = match (self.buildid, self.buildsetid) {
            (Some(b), _) => format!("build-{}", b.0),
            (None, Some(bs)) => format!("buildset-{}", bs.0),
            (None, None) => "none".to_string(),
        };
        format!("{}/{about}/{}", self.target, self.event.word())
    }
}

/// How long a claimed row stays away from other claims: longer than one SMTP attempt
/// (connect and command timeouts are 30 s).
const LEASE_SECS: i64 = 45;
/// Rows claimed per round.
const CLAIM_BATCH: i64 = 256;
/// Sends in flight at once, over all targets.
const MAX_IN_FLIGHT: usize = 256;
/// Longest sleep between looks at the table (a safety net: wakes normally come from
/// [`Notify`] and from the next due time).
const MAX_IDLE: Duration = Duration::from_secs(30);

/// Records `messages` (one transaction); returns how many were new.
pub(crate) async fn record(
    store: &Store,
    messages: &[OutgoingMessage],
) -> Result<usize, store::StoreError> {
    let rows: Vec<NewOutboxMessage> = messages
        .iter()
        .map(|m| NewOutboxMessage {
            target: m.target.clone(),
            buildid: m.buildid,
            buildsetid: m.buildsetid,
            event: m.event.word().to_string(),
            dedup_key: m.dedup_key(),
            content: m.content.clone(),
        })
        .collect();
    Ok(store.outbox_record(&rows, model::now()).await?.len())
}

/// What became of one attempt.
enum Outcome {
    Sent(i64),
    Failed {
        id: i64,
        attempts: i64,
        created_at: i64,
        error: DeliveryError,
    },
}

/// Claims and sends due messages until the task is aborted. `wake` is notified when new
/// rows are recorded.
pub(crate) async fn deliver_loop(store: Store, targets: Arc<Targets>, wake: Arc<Notify>) {
    let backoff = Backoff::from_env();
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel::<Outcome>();
    tokio::spawn(mark_outcomes(
        store.clone(),
        outcomes_rx,
        backoff,
        wake.clone(),
    ));
    loop {
        let now = model::now();
        let claimed = match store
            .outbox_claim_due(now, now + LEASE_SECS, CLAIM_BATCH)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot claim due messages");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let full_batch = claimed.len() as i64 == CLAIM_BATCH;
        for row in claimed {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let targets = targets.clone();
            let outcomes = outcomes_tx.clone();
            tokio::spawn(async move {
                let attempts = row.attempts + 1;
                let result = match targets.by_name(&row.target) {
                    Some(target) => target.deliver(&row.content).await,
                    None => Err(DeliveryError::Retry(format!(
                        "no status target named {} in the config in force",
                        row.target
                    ))),
                };
                let outcome = match result {
                    Ok(()) => Outcome::Sent(row.id),
                    Err(error) => Outcome::Failed {
                        id: row.id,
                        attempts,
                        created_at: row.created_at,
                        error,
                    },
                };
                let _ = outcomes.send(outcome);
                drop(permit);
            });
        }
        if full_batch {
            continue;
        }
        let sleep = match store.outbox_next_due().await {
            Ok(Some(due)) => Duration::from_secs(u64::try_from(due - model::now()).unwrap_or(0)),
            Ok(None) => MAX_IDLE,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot read the next due time");
                Duration::from_secs(1)
            }
        };
        let sleep = match sleep.is_zero() {
            // Due now but not claimed: every due row is leased by a send in flight, or the
            // clock ticked; look again shortly.
            true => Duration::from_millis(200),
            false => sleep.min(MAX_IDLE),
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Writes outcomes back: successes in batches (one `UPDATE` for all that are waiting),
/// failures one by one with their next attempt time.
async fn mark_outcomes(
    store: Store,
    mut outcomes: mpsc::UnboundedReceiver<Outcome>,
    backoff: Backoff,
    wake: Arc<Notify>,
) {
    let mut sent = Vec::new();
    let mut failed: HashMap<i64, (i64, i64, DeliveryError)> = HashMap::new();
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = outcomes.try_recv() {
            batch.push(more);
            if batch.len() >= 512 {
                break;
            }
        }
        for outcome in batch {
            match outcome {
                Outcome::Sent(id) => sent.push(id),
                Outcome::Failed {
                    id,
                    attempts,
                    created_at,
                    error,
                } => {
                    failed.insert(id, (attempts, created_at, error));
                }
            }
        }
        if !sent.is_empty() {
            match store.outbox_mark_sent(&sent, model::now()).await {
                Ok(()) => sent.clear(),
                Err(e) => {
                    // The rows stay leased; try again with the next outcome.
                    tracing::error!(error = %e, "outbox: cannot mark messages sent");
                }
            }
        }
        let mut retried = false;
        for (id, (attempts, created_at, error)) in failed.drain() {
            let result = match &error {
                DeliveryError::Permanent(reason) => {
                    tracing::warn!(outbox_id = id, error = %reason, "outbox: message failed for good");
                    store.outbox_mark_failed(id, reason).await
                }
                DeliveryError::Retry(reason) if backoff.exhausted(created_at, model::now()) => {
                    let days = backoff.give_up_after.as_secs() / 86_400;
                    tracing::warn!(outbox_id = id, attempts, error = %reason, "outbox: giving up on message");
                    store
                        .outbox_mark_failed(
                            id,
                            &format!(
                                "gave up after {attempts} attempts over {days} days: {reason}"
                            ),
                        )
                        .await
                }
                DeliveryError::Retry(reason) => {
                    let delay = backoff.delay(attempts);
                    let due = model::now()
                        + i64::try_from(delay.as_millis().div_ceil(1000)).unwrap_or(i64::MAX / 2);
                    tracing::info!(outbox_id = id, attempts, retry_in_ms = delay.as_millis() as u64, error = %reason, "outbox: delivery failed; will retry");
                    retried = true;
                    store.outbox_mark_retry(id, reason, due).await
                }
            };
            if let Err(e) = result {
                tracing::error!(outbox_id = id, error = %e, "outbox: cannot record a failed attempt");
            }
        }
        if retried {
            wake.notify_one();
        }
    }
}
