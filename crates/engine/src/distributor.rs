//! Matching pending build requests to free workers.
//!
//! One task wakes whenever a request is added, a worker attaches or a build ends. It reads
//! the unclaimed requests in one query, and for each builder with work picks a worker that
//! is attached, configured for it, not paused, and under `max_builds`. Claims are rows in
//! the database (unique per request), so two masters never run the same request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use model::BuilderId;

use crate::build::{self, BuildStart};
use crate::master::Shared;

/// Runs until the master stops.
pub async fn run(shared: Arc<Shared>) {
    let mut stopping = shared.stopping();
    loop {
        if shared.is_stopping() {
            break;
        }
        if let Err(e) = distribute(&shared).await {
            tracing::error!(error = %e, "distributing build requests failed; retrying soon");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            _ = stopping.changed() => {}
        }
    }
}

async fn distribute(shared: &Arc<Shared>) -> Result<(), store::StoreError> {
    let runtime = shared.runtime();
    let ids: Vec<BuilderId> = runtime.builder_ids.values().copied().collect();
    let pending = shared.store.buildrequests_unclaimed(Some(&ids)).await?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut by_builder: BTreeMap<BuilderId, Vec<store::BuildRequestRecord>> = BTreeMap::new();
    for r in pending {
        by_builder.entry(r.builderid).or_default().push(r);
    }
    let names: HashMap<BuilderId, &String> =
        runtime.builder_ids.iter().map(|(k, v)| (*v, k)).collect();
    for (builderid, requests) in by_builder {
        let Some(name) = names.get(&builderid) else {
            continue;
        };
        let Some(builder) = runtime.builder(name) else {
            continue;
        };
        let mut queue: VecDeque<_> = requests.into();
        while let Some(first) = queue.pop_front() {
            if shared.is_stopping() {
                return Ok(());
            }
            let Some(worker) = reserve_worker(shared, &runtime, builder) else {
                break;
            };
            let mut batch = vec![first];
            if collapses(&runtime, builder) {
                // Compatible requests of the same builder ride along with this build.
                let rest = std::mem::take(&mut queue);
                let (same, other) = split_compatible(shared, &batch[0], rest.into()).await;
                batch.extend(same);
                queue = other.into();
            }
            let ids: Vec<_> = batch.iter().map(|r| r.id).collect();
            if !shared
                .store
                .buildrequests_claim(&ids, shared.masterid, model::now())
                .await?
            {
                unreserve(shared, &worker.0);
                continue;
            }
            for r in &batch {
                crate::events::buildrequest(shared, r.id, "claimed").await;
            }
            let start = BuildStart {
                builderid,
                builder_name: builder.name.clone(),
                requests: batch,
                worker: worker.0,
                conn: worker.1,
                info: worker.2,
            };
            tokio::spawn(build::run(shared.clone(), start));
        }
    }
    Ok(())
}

fn collapses(runtime: &crate::master::Runtime, builder: &config::BuilderConfig) -> bool {
    match (
        &builder.collapse_requests,
        &runtime.config.collapse_requests,
    ) {
        (config::Collapse::Bool(b), _) => *b,
        (config::Collapse::Inherit, config::Collapse::Bool(b)) => *b,
        (config::Collapse::Inherit, config::Collapse::Inherit) => true,
        // Function-valued collapseRequests are not evaluated yet: be conservative.
        _ => false,
    }
}

/// Requests whose buildsets have the same source stamps apart from revisions.
async fn split_compatible(
    shared: &Arc<Shared>,
    first: &store::BuildRequestRecord,
    rest: Vec<store::BuildRequestRecord>,
) -> (
    Vec<store::BuildRequestRecord>,
    Vec<store::BuildRequestRecord>,
) {
    let Ok(first_ss) = shared.store.buildset_sourcestamps(first.buildsetid).await else {
        return (Vec::new(), rest);
    };
    let Some(first_key) = key(first_ss) else {
        return (Vec::new(), rest);
    };
    let mut same = Vec::new();
    let mut other = Vec::new();
    for r in rest {
        let k = match shared.store.buildset_sourcestamps(r.buildsetid).await {
            Ok(ss) => key(ss),
            Err(_) => None,
        };
        if k.as_ref() == Some(&first_key) && r.buildsetid != first.buildsetid {
            same.push(r);
        } else {
            other.push(r);
        }
    }
    (same, other)
}

/// What must match for two requests to share a build: codebase, repository, branch and
/// project of every source stamp (revisions may differ). Patched stamps never collapse.
type CollapseKey = Vec<(String, String, Option<String>, String)>;

fn key(ss: Vec<store::SourceStampRecord>) -> Option<CollapseKey> {
    if ss.iter().any(|s| s.patch.is_some()) {
        return None;
    }
    let mut k: Vec<_> = ss
        .into_iter()
        .map(|s| (s.codebase, s.repository, s.branch, s.project))
        .collect();
    k.sort();
    Some(k)
}

type Reserved = (
    String,
    Arc<crate::workers::WorkerConnection>,
    crate::workers::WorkerInfo,
);

/// Picks a free worker for `builder` and counts the build against it.
fn reserve_worker(
    shared: &Arc<Shared>,
    runtime: &crate::master::Runtime,
    builder: &config::BuilderConfig,
) -> Option<Reserved> {
    shared.workers.with(|slots| {
        let mut candidates: Vec<&String> = builder
            .workernames
            .iter()
            .filter(|name| {
                let Some(slot) = slots.get(*name) else {
                    return false;
                };
                let Some(conn) = &slot.conn else { return false };
                let max = runtime
                    .config
                    .workers
                    .iter()
                    .find(|w| &w.name == *name)
                    .and_then(|w| w.max_builds);
                !conn.is_closed()
                    && !slot.paused
                    && !slot.graceful
                    && max.is_none_or(|m| slot.running < m)
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        // Least busy first, then config order: spreads builds without randomness in tests.
        candidates.sort_by_key(|name| slots.get(*name).map(|s| s.running).unwrap_or(0));
        let name = candidates[0].clone();
        let slot = slots.get_mut(&name)?;
        slot.running += 1;
        let conn = slot.conn.clone()?;
        Some((name, conn, slot.info.clone()))
    })
}

fn unreserve(shared: &Arc<Shared>, worker: &str) {
    shared.workers.with(|slots| {
        if let Some(slot) = slots.get_mut(worker) {
            slot.running = slot.running.saturating_sub(1);
        }
    });
}
