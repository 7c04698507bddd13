//! Crash recovery at start: what a killed master left behind is finished or released.
//!
//! Builds this master was running end as RETRY (their steps too), and every claim it held is
//! released, so the requests run again. Changes, buildsets and requests are rows already;
//! nothing else needs rebuilding.

use std::sync::Arc;

use model::Results;

use crate::master::Shared;
use crate::EngineError;

/// Finishes the builds and releases the claims a previous run of this master left.
pub async fn recover(shared: &Arc<Shared>) -> Result<(), EngineError> {
    let store = &shared.store;
    let now = model::now();
    let builds = store.builds_unfinished_for_master(shared.masterid).await?;
    for build in &builds {
        for step in store.steps_for_build(build.id).await? {
            if step.complete_at.is_none() {
                store
                    .step_finish(step.id, Results::Retry, false, now)
                    .await?;
            }
        }
        store
            .build_set_state_string(build.id, "retry (master restarted)")
            .await?;
        store.build_finish(build.id, Results::Retry, now).await?;
    }
    let claims = store.claims_held_by_master(shared.masterid).await?;
    if !claims.is_empty() {
        store
            .buildrequests_unclaim(&claims, shared.masterid)
            .await?;
    }
    if !builds.is_empty() || !claims.is_empty() {
        tracing::warn!(
            builds = builds.len(),
            requests = claims.len(),
            "recovered from an unclean stop: interrupted builds marked RETRY, their requests will run again"
        );
    }
    Ok(())
}
