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
            let rule = collapse_rule(&runtime, builder);
            if *rule != config::Collapse::Bool(false) && !queue.is_empty() {
                // Compatible requests of the same builder ride along with this build.
                let rest = std::mem::take(&mut queue);
                let (same, other) =
                    split_compatible(shared, &runtime, builder, rule, &batch[0], rest.into()).await;
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

/// The collapse rule in force for `builder`: its own setting, else the global one, else on.
fn collapse_rule<'a>(
    runtime: &'a crate::master::Runtime,
    builder: &'a config::BuilderConfig,
) -> &'a config::Collapse {
    match &builder.collapse_requests {
        config::Collapse::Inherit => &runtime.config.collapse_requests,
        own => own,
    }
}

/// Requests whose buildsets have the same source stamps apart from revisions.
async fn split_compatible(
    shared: &Arc<Shared>,
    runtime: &crate::master::Runtime,
    builder: &config::BuilderConfig,
    rule: &config::Collapse,
    first: &store::BuildRequestRecord,
    rest: Vec<store::BuildRequestRecord>,
) -> (
    Vec<store::BuildRequestRecord>,
    Vec<store::BuildRequestRecord>,
) {
    let mut ids: Vec<i64> = rest.iter().map(|r| r.buildsetid.0).collect();
    ids.push(first.buildsetid.0);
    // One query for the source stamps of every pending buildset, not one per request.
    let Ok(mut stamps) = shared.store.buildsets_sourcestamps(&ids).await else {
        return (Vec::new(), rest);
    };
    let first_key = key(stamps.remove(&first.buildsetid.0).unwrap_or_default());
    let mut same = Vec::new();
    let mut other = Vec::new();
    for r in rest {
        let compatible = match rule {
            // The user's collapseRequests(master, builder, req1, req2) replaces the default test.
            config::Collapse::Function(f) => {
                let args = [
                    serde_json::Value::Null,
                    serde_json::json!(builder.name),
                    data::json::buildrequest(first, None),
                    data::json::buildrequest(&r, None),
                ];
                runtime
                    .functions
                    .call(*f, &args)
                    .map(|v| v.as_bool().unwrap_or(!v.is_null()))
                    .unwrap_or(false)
            }
            _ => {
                let k = key(stamps.get(&r.buildsetid.0).cloned().unwrap_or_default());
                first_key.is_some() && k == first_key && r.buildsetid != first.buildsetid
            }
        };
        if compatible {
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
    let mut candidates = free_workers(shared, runtime, builder);
    if candidates.is_empty() {
        return None;
    }
    let name = match builder.next_worker {
        // The user's nextWorker(builder, workers, request) picks by name; None means wait.
        Some(f) => {
            let names = serde_json::json!(candidates);
            let args = [
                serde_json::json!(builder.name),
                names,
                serde_json::Value::Null,
            ];
            match runtime.functions.call(f, &args) {
                Ok(serde_json::Value::String(choice)) if candidates.contains(&choice) => choice,
                Ok(serde_json::Value::Null) => return None,
                Ok(other) => {
                    tracing::warn!(builder = %builder.name, answer = %other, "nextWorker returned no free worker's name");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(builder = %builder.name, error = %e, "nextWorker failed");
                    return None;
                }
            }
        }
        None => candidates.swap_remove(0),
    };
    shared.workers.with(|slots| {
        let slot = slots.get_mut(&name)?;
        let conn = slot.conn.clone().filter(|c| !c.is_closed())?;
        slot.running += 1;
        Some((name, conn, slot.info.clone()))
    })
}

/// Workers that may take a build of `builder` now, least busy first, then in config order.
fn free_workers(
    shared: &Arc<Shared>,
    runtime: &crate::master::Runtime,
    builder: &config::BuilderConfig,
) -> Vec<String> {
    shared.workers.with(|slots| {
        let mut free: Vec<(u32, String)> = builder
            .workernames
            .iter()
            .filter_map(|name| {
                let slot = slots.get(name)?;
                let conn = slot.conn.as_ref()?;
                let max = runtime
                    .config
                    .workers
                    .iter()
                    .find(|w| &w.name == name)
                    .and_then(|w| w.max_builds);
                let ok = !conn.is_closed()
                    && !slot.paused
                    && !slot.graceful
                    && max.is_none_or(|m| slot.running < m);
                ok.then(|| (slot.running, name.clone()))
            })
            .collect();
        free.sort_by_key(|(running, _)| *running);
        free.into_iter().map(|(_, name)| name).collect()
    })
}

fn unreserve(shared: &Arc<Shared>, worker: &str) {
    shared.workers.with(|slots| {
        if let Some(slot) = slots.get_mut(worker) {
            slot.running = slot.running.saturating_sub(1);
        }
    });
}
