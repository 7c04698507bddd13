//! Housekeeping: expires builds past `buildHorizon` and log contents past `logHorizon`, for
//! every builder at start and for a builder each time one of its builds finishes.

use std::sync::Arc;

use model::BuilderId;

use crate::master::Shared;

/// The pass at start, over every builder.
pub async fn run(shared: Arc<Shared>) {
    let ids: Vec<BuilderId> = shared.runtime().builder_ids.values().copied().collect();
    for id in ids {
        expire_builder(&shared, id).await;
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
