//! Applying a configuration: the first start and every `reconfig` take the same path.
//!
//! Builders, workers and schedulers named in the config get rows (ids are stable across
//! restarts because rows are keyed by name); this master's builder list is replaced, so
//! builders removed from the config stop taking requests while running builds go on.

use std::collections::HashMap;
use std::sync::Arc;

use config::LoadedConfig;
use model::MasterId;
use store::Store;

use crate::master::{Runtime, Shared};
use crate::workers::{WorkerInfo, WorkerSlot};
use crate::EngineError;

/// Writes the config's builders, workers and schedulers to the database.
pub async fn sync(
    store: &Store,
    masterid: MasterId,
    loaded: LoadedConfig,
) -> Result<Runtime, EngineError> {
    let config = loaded.config;
    let mut builder_ids = HashMap::new();
    for b in &config.builders {
        let id = store
            .builder_upsert(
                &b.name,
                b.description.as_deref(),
                b.project.as_deref(),
                &b.tags,
            )
            .await?;
        builder_ids.insert(b.name.clone(), id);
    }
    let active: Vec<_> = builder_ids.values().copied().collect();
    store.builder_set_masters(masterid, &active).await?;
    let mut worker_ids = HashMap::new();
    for w in &config.workers {
        worker_ids.insert(w.name.clone(), store.worker_upsert(&w.name).await?);
    }
    let mut pairs = Vec::new();
    for b in &config.builders {
        for w in &b.workernames {
            if let (Some(&wid), Some(&bid)) = (worker_ids.get(w), builder_ids.get(&b.name)) {
                pairs.push((wid, bid));
            }
        }
    }
    store.worker_set_configured(masterid, &pairs).await?;
    for s in &config.schedulers {
        store.scheduler_upsert(&s.name, masterid).await?;
    }
    Ok(Runtime {
        config,
        functions: loaded.functions,
        builder_ids,
        worker_ids,
    })
}

/// Makes the worker registry match the config: new workers get slots, removed ones lose
/// theirs (their connection is closed), attached ones keep their connection.
pub fn sync_workers(shared: &Arc<Shared>) {
    let runtime = shared.runtime();
    let added: Vec<(String, model::WorkerId)> = shared.workers.with(|slots| {
        slots.retain(|name, slot| {
            let keep = runtime.worker_ids.contains_key(name);
            if !keep {
                if let Some(conn) = &slot.conn {
                    conn.shut();
                }
            }
            keep
        });
        let mut added = Vec::new();
        for (name, id) in &runtime.worker_ids {
            if slots.contains_key(name) {
                continue;
            }
            slots.insert(
                name.clone(),
                WorkerSlot {
                    id: *id,
                    conn: None,
                    info: WorkerInfo::default(),
                    running: 0,
                    paused: false,
                    graceful: false,
                    missing: None,
                },
            );
            added.push((name.clone(), *id));
        }
        added
    });
    for (name, id) in added {
        crate::missing::start(shared, &name, id, crate::missing::Away::NotYetAttached);
    }
}

/// Loads the config again and applies it. Running builds keep the config they started with.
pub async fn reconfig(shared: &Arc<Shared>) -> Result<(), EngineError> {
    let path = shared.basedir.join("master.cfg");
    let loaded = config::load(&path)?;
    let runtime = sync(&shared.store, shared.masterid, loaded).await?;
    shared.set_runtime(runtime);
    sync_workers(shared);
    crate::schedulers::restart(shared);
    shared.wake.notify_one();
    crate::events::master_event(shared, None, "reconfig").await;
    tracing::info!("configuration reloaded");
    Ok(())
}
