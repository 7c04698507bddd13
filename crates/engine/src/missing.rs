//! The missing-worker timer: a worker that disconnects and is not back within its
//! `missing_timeout` (Buildbot's default: 3600 s; 0 turns it off) is announced as missing.
//!
//! The announcement is Buildbot 4's event: routing key `workers/{id}/missing`, payload the
//! worker's REST object plus `last_connection` (when it went away; null when it has not
//! attached since the master started) and `notify` (its `notify_on_missing` addresses), so
//! that status targets subscribed to the bus can tell someone. A worker that attaches before
//! the timer fires cancels it. As in Buildbot, the timer also runs from the master's start
//! (or the reconfig that adds a worker) until the worker first attaches.

use std::sync::Arc;
use std::time::Duration;

use model::WorkerId;

use crate::master::Shared;

/// Buildbot's `missing_timeout` default, in seconds.
pub const DEFAULT_MISSING_TIMEOUT: u64 = 3600;

/// Why a worker's timer starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Away {
    /// Its connection just ended.
    Disconnected,
    /// The master just started, or a reconfig added it, and it has not attached yet (as
    /// Buildbot, whose workers start their timer when their service starts).
    NotYetAttached,
}

/// Starts (or restarts) the timer of worker `name`. The task ends when it fires or when
/// [`cancel`] aborts it; at most one runs per worker.
pub(crate) fn start(shared: &Arc<Shared>, name: &str, workerid: WorkerId, away: Away) {
    let runtime = shared.runtime();
    let Some(config) = runtime.config.workers.iter().find(|w| w.name == name) else {
        return;
    };
    let timeout = config.missing_timeout.unwrap_or(DEFAULT_MISSING_TIMEOUT);
    if timeout == 0 {
        return;
    }
    let notify = config.notify_on_missing.clone();
    let last_connection = match away {
        Away::Disconnected => Some(chrono::Utc::now().to_rfc3339()),
        Away::NotYetAttached => None,
    };
    let task = tokio::spawn(fire_after(
        shared.clone(),
        name.to_owned(),
        workerid,
        timeout,
        Missing {
            last_connection,
            notify,
        },
    ));
    let previous = shared.workers.with(|slots| {
        let slot = slots.get_mut(name)?;
        slot.missing.replace(task.abort_handle())
    });
    if let Some(previous) = previous {
        previous.abort();
    }
}

/// Cancels the timer of worker `name`, which has just attached; returns whether one was
/// still waiting.
pub(crate) fn cancel(shared: &Shared, name: &str) -> bool {
    let pending = shared
        .workers
        .with(|slots| slots.get_mut(name).and_then(|slot| slot.missing.take()));
    match pending {
        Some(handle) if !handle.is_finished() => {
            handle.abort();
            true
        }
        _ => false,
    }
}

/// What the event adds to the worker's REST object.
struct Missing {
    /// When it disconnected; `None` when it has not attached since the master started.
    last_connection: Option<String>,
    notify: Vec<String>,
}

async fn fire_after(
    shared: Arc<Shared>,
    name: String,
    workerid: WorkerId,
    timeout: u64,
    missing: Missing,
) {
    tokio::time::sleep(Duration::from_secs(timeout)).await;
    // The worker may be back on a connection whose attach has not cancelled us yet.
    let still_gone = shared
        .workers
        .with(|slots| slots.get(&name).is_some_and(|slot| slot.conn.is_none()));
    if !still_gone {
        return;
    }
    let worker = match shared.store.worker_get(workerid).await {
        Ok(Some(worker)) => worker,
        Ok(None) => return, // removed from the database meanwhile
        Err(err) => {
            tracing::error!(worker = %name, error = %err, "cannot read the missing worker");
            return;
        }
    };
    let mut payload = data::json::worker(&worker);
    if let Some(object) = payload.as_object_mut() {
        object.insert("last_connection".into(), missing.last_connection.into());
        object.insert("notify".into(), missing.notify.into());
    }
    tracing::warn!(
        worker = %name,
        missing_timeout = timeout,
        "worker missing: not back within its missing_timeout"
    );
    shared
        .bus
        .publish(&crate::bus::keys::worker(workerid.0, "missing"), payload);
    crate::events::master_event(&shared, Some(workerid), "missing").await;
}
