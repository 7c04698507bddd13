//! The status-target service: builds targets from the config in force, turns bus events into
//! outbox rows, and runs the delivery loop.

use std::sync::{Arc, Mutex};

use engine::bus::Event;
use engine::master::Runtime;
use engine::Shared;
use model::{BuildId, BuildsetId};
use store::{FilterOp, FilterSpec, ListQuery, SqlValue};
use tokio::sync::{broadcast, Notify, Semaphore};

use crate::build_status::BuildSnapshot;
use crate::targets::mail::MailNotifier;
use crate::{BuildEvent, LogNeeds, StatusTarget};

/// Events rendered at once: enough to keep the database busy when many builds finish
/// together, few enough that a slow user function cannot pile up work.
const CONCURRENT_EVENTS: usize = 16;

/// The targets built from one runtime.
type TargetList = Arc<Vec<Arc<dyn StatusTarget>>>;

/// The targets of the config in force, rebuilt when a reconfig replaces the runtime.
pub(crate) struct Targets {
    current: Mutex<(Arc<Runtime>, TargetList)>,
    shared: Arc<Shared>,
}

impl Targets {
    fn new(shared: Arc<Shared>) -> Targets {
        let runtime = shared.runtime();
        let targets = Arc::new(build_targets(&runtime));
        Targets {
            current: Mutex::new((runtime, targets)),
            shared,
        }
    }

    /// The targets and the runtime they were built from.
    pub(crate) fn current(&self) -> (Arc<Runtime>, TargetList) {
        let runtime = self.shared.runtime();
        let mut current = self.current.lock().expect("targets lock poisoned");
        if !Arc::ptr_eq(&current.0, &runtime) {
            let targets = Arc::new(build_targets(&runtime));
            *current = (runtime, targets);
        }
        (current.0.clone(), current.1.clone())
    }

    /// The target named `name` in the config in force.
    pub(crate) fn by_name(&self, name: &str) -> Option<Arc<dyn StatusTarget>> {
        self.current().1.iter().find(|t| t.name() == name).cloned()
    }
}

/// One target per implemented entry of `c['status']`/`c['services']`; entries that are not
/// usable are logged with their location and left out.
fn build_targets(runtime: &Arc<Runtime>) -> Vec<Arc<dyn StatusTarget>> {
    let mut targets: Vec<Arc<dyn StatusTarget>> = Vec::new();
    let mut mail_count = 0;
    for entry in &runtime.config.status {
        match entry.kind.as_str() {
            "MailNotifier" => {
                mail_count += 1;
                let name = format!("MailNotifier#{mail_count}");
                match MailNotifier::new(name, entry, runtime) {
                    Ok(target) => targets.push(Arc::new(target)),
                    Err(e) => tracing::error!(error = %e, "status target not started"),
                }
            }
            "WebStatus" | "Waterfall" => {}
            _ => {}
        }
    }
    targets
}

/// Starts the recorder and the delivery loop.
pub(crate) fn start(shared: Arc<Shared>) -> Vec<tokio::task::JoinHandle<()>> {
    announce_inactive(&shared.runtime());
    let targets = Arc::new(Targets::new(shared.clone()));
    let wake = Arc::new(Notify::new());
    let events = shared.bus.subscribe();
    vec![
        tokio::spawn(record_loop(
            shared.clone(),
            targets.clone(),
            wake.clone(),
            events,
        )),
        tokio::spawn(crate::outbox::deliver_loop(
            shared.store.clone(),
            targets,
            wake,
        )),
    ]
}

/// Says once which configured targets this version does not run, so none is silently
/// ignored.
fn announce_inactive(runtime: &Runtime) {
    for target in &runtime.config.status {
        if crate::IMPLEMENTED.contains(&target.kind.as_str()) {
            continue;
        }
        tracing::warn!(target = %target.kind, at = %target.location, "status target is configured but not active yet in this version of signalbox");
    }
}

/// Turns `builds/N/finished` and `buildsets/N/complete` into outbox rows.
async fn record_loop(
    shared: Arc<Shared>,
    targets: Arc<Targets>,
    wake: Arc<Notify>,
    mut events: broadcast::Receiver<Event>,
) {
    let limit = Arc::new(Semaphore::new(CONCURRENT_EVENTS));
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::error!(
                    missed,
                    "status targets fell behind the event bus; some build events were not seen"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let what = match event.key.as_ref() {
            [kind, id, word] if kind == "builds" && word == "finished" => {
                id.parse().ok().map(|id| (BuildEvent::BuildFinished, id))
            }
            [kind, id, word] if kind == "buildsets" && word == "complete" => {
                id.parse().ok().map(|id| (BuildEvent::BuildsetComplete, id))
            }
            _ => None,
        };
        let Some((kind, id)) = what else {
            continue;
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let shared = shared.clone();
        let targets = targets.clone();
        let wake = wake.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(&shared, &targets, &kind, id).await {
                tracing::error!(error = %e, event = kind.word(), id, "status targets: cannot record messages");
            }
            wake.notify_one();
            drop(permit);
        });
    }
}

/// Loads what the interested targets need, renders, records.
async fn handle(
    shared: &Arc<Shared>,
    targets: &Targets,
    event: &BuildEvent,
    id: i64,
) -> Result<(), crate::ReporterError> {
    let (runtime, all) = targets.current();
    if all.is_empty() {
        return Ok(());
    }
    let store = &shared.store;
    let build_ids: Vec<BuildId> = match event {
        BuildEvent::BuildFinished => vec![BuildId(id)],
        BuildEvent::BuildsetComplete => builds_of_buildset(store, BuildsetId(id)).await?,
    };
    let mut builders = Vec::new();
    for build_id in &build_ids {
        if let Some(build) = store.build_get(*build_id).await? {
            builders
                .push(crate::build_status::builder_info(&runtime, store, build.builderid).await?);
        }
    }
    let interested: Vec<Arc<dyn StatusTarget>> = all
        .iter()
        .filter(|t| builders.iter().any(|b| t.wants(event, b)))
        .cloned()
        .collect();
    if interested.is_empty() {
        return Ok(());
    }
    let needs = interested
        .iter()
        .map(|t| t.log_needs())
        .max()
        .unwrap_or(LogNeeds::default());
    let mut snapshots = Vec::with_capacity(build_ids.len());
    for build_id in build_ids {
        if let Some(s) = BuildSnapshot::load(store, &runtime, build_id, needs).await? {
            snapshots.push(Arc::new(s));
        }
    }
    let event_owned = event.clone();
    // Rendering may run user functions (Starlark, up to their deadline): keep it off the
    // async workers.
    let messages = tokio::task::spawn_blocking(move || {
        interested
            .iter()
            .flat_map(|t| t.render(&event_owned, &snapshots))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering status messages panicked");
        Vec::new()
    });
    crate::outbox::record(store, &messages).await?;
    Ok(())
}

/// The builds that ran for a buildset's requests, by id (two queries).
async fn builds_of_buildset(
    store: &store::Store,
    buildset: BuildsetId,
) -> Result<Vec<BuildId>, crate::ReporterError> {
    let (requests, _) = store
        .buildrequests_list(&ListQuery::filtered(vec![FilterSpec::new(
            "buildsetid",
            FilterOp::Eq,
            vec![SqlValue::Int(buildset.0)],
        )]))
        .await?;
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let ids = requests.iter().map(|r| SqlValue::Int(r.id.0)).collect();
    let (builds, _) = store
        .builds_list(&ListQuery::filtered(vec![FilterSpec::new(
            "buildrequestid",
            FilterOp::In,
            ids,
        )]))
        .await?;
    // The last build of each request is the one that counts (earlier ones were retried).
    let mut last: std::collections::BTreeMap<i64, BuildId> = Default::default();
    for b in builds {
        let entry = last.entry(b.buildrequestid.0).or_insert(b.id);
        if b.id.0 > entry.0 {
            *entry = b.id;
        }
    }
    Ok(last.into_values().collect())
}
