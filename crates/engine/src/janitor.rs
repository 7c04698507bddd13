//! Housekeeping: expires builds past `buildHorizon` and log contents past `logHorizon`, for
//! every builder at start and for a builder each time one of its builds finishes; forgets
//! webhook delivery ids after a month (forges retry for hours, not weeks).

use std::sync::Arc;

use model::BuilderId;

use crate::master::Shared;

/// How long a webhook delivery id is remembered.
const DELIVERY_MEMORY_SECS: i64 = 30 * 24 * 3600;

/// How long worker and master events are kept for the waterfall's `show_events`.
const EVENT_MEMORY_SECS: i64 = 90 * 24 * 3600;

/// The pass at start, over every builder, and the daily pass over delivery ids and events.
pub async fn run(shared: Arc<Shared>) {
    let ids: Vec<BuilderId> = shared.runtime().builder_ids.values().copied().collect();
    for id in ids {
        expire_builder(&shared, id).await;
    }
    let mut stopping = shared.stopping();
    loop {
        let before = model::now() - DELIVERY_MEMORY_SECS;
        if let Err(e) = shared.store.webhook_deliveries_expire(before).await {
            tracing::warn!(error = %e, "could not expire old webhook delivery ids");
        }
        let before = model::now() - EVENT_MEMORY_SECS;
        if let Err(e) = shared.store.master_events_expire(before).await {
            tracing::warn!(error = %e, "could not expire old waterfall events");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(24 * 3600)) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// Applies both horizons to one builder.
pub async fn expire_builder(shared: &Arc<Shared>, id: BuilderId) {
    let runtime = shared.runtime();
    if let Some(keep) = runtime.config.build_horizon {
        match shared.store.builds_expire(id, keep as i64).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(builder = %id, builds = n, "expired builds past buildHorizon"),
            Err(e) => tracing::warn!(builder = %id, error = %e, "could not expire old builds"),
        }
    }
    if let Some(keep) = runtime.config.log_horizon {
        if let Err(e) = shared.store.logs_expire(id, keep as i64).await {
            tracing::warn!(builder = %id, error = %e, "could not expire old logs");
        }
    }
}
