//! Publishing entity events: re-read the row, shape it as REST JSON, send it under every key.

use std::sync::Arc;

use model::{BuildId, BuildRequestId, BuildsetId, LogId, StepId, WorkerId};

use crate::bus::keys;
use crate::master::Shared;

/// Announces a build event (`new`, `update`, `finished`).
pub async fn build(shared: &Arc<Shared>, id: BuildId, event: &str) {
    if let Ok(Some(b)) = shared.store.build_get(id).await {
        let keys = keys::build(
            b.builderid.0,
            b.number,
            b.id.0,
            b.workerid.map(|w| w.0),
            event,
        );
        shared.bus.publish(&keys, data::json::build(&b, None));
    }
}

/// Announces a step event.
pub async fn step(shared: &Arc<Shared>, id: StepId, event: &str) {
    if let Ok(Some(s)) = shared.store.step_get(id).await {
        shared.bus.publish(
            &keys::step(s.buildid.0, s.id.0, event),
            data::json::step(&s),
        );
    }
}

/// Announces a log event.
pub async fn log(shared: &Arc<Shared>, id: LogId, event: &str) {
    if let Ok(Some(l)) = shared.store.log_get(id).await {
        shared.bus.publish(
            &keys::log(l.id.0, l.stepid.0, &l.slug, event),
            data::json::log(&l),
        );
    }
}

/// Announces a build request event.
pub async fn buildrequest(shared: &Arc<Shared>, id: BuildRequestId, event: &str) {
    if let Ok(Some(r)) = shared.store.buildrequest_get(id).await {
        let keys = keys::buildrequest(r.buildsetid.0, r.builderid.0, r.id.0, event);
        shared
            .bus
            .publish(&keys, data::json::buildrequest(&r, None));
    }
}

/// Announces a buildset event.
pub async fn buildset(shared: &Arc<Shared>, id: BuildsetId, event: &str) {
    if let Ok(Some(b)) = shared.store.buildset_get(id).await {
        shared
            .bus
            .publish(&keys::buildset(b.id.0, event), data::json::buildset(&b));
    }
}

/// Announces a change just stored, from what was written.
pub fn change_added(shared: &Arc<Shared>, added: &store::AddedChange) {
    let c = &added.change;
    shared.bus.publish(
        &keys::change(c.id.0),
        data::json::change(c, Some(&added.sourcestamp)),
    );
}

/// Records a non-build event (`started`, `reconfig`, or a worker's) for the waterfall. A
/// failure is logged, not returned: losing a waterfall line must not stop the master.
pub async fn master_event(shared: &Arc<Shared>, worker: Option<WorkerId>, event: &str) {
    if let Err(e) = shared
        .store
        .master_event_add(model::now(), worker, event)
        .await
    {
        tracing::warn!(event, error = %e, "could not record a waterfall event");
    }
}

/// Announces a worker event. Attaching, detaching and going missing are also recorded for
/// the waterfall's `show_events`.
pub async fn worker(shared: &Arc<Shared>, id: WorkerId, event: &str) {
    if matches!(event, "connected" | "disconnected" | "missing") {
        master_event(shared, Some(id), event).await;
    }
    if let Ok(Some(w)) = shared.store.worker_get(id).await {
        shared
            .bus
            .publish(&keys::worker(w.id.0, event), data::json::worker(&w));
    }
}

/// Announces a scheduler's new state (`schedulers/{id}/updated`, with its master embedded).
pub async fn scheduler(shared: &Arc<Shared>, id: model::SchedulerId) {
    let q = store::ListQuery::filtered(vec![store::FilterSpec::new(
        "schedulerid",
        store::FilterOp::Eq,
        vec![store::SqlValue::Int(id.0)],
    )]);
    let Ok((rows, _)) = shared.store.schedulers_list(&q).await else {
        return;
    };
    let Some(s) = rows.first() else {
        return;
    };
    let master = match s.masterid {
        Some(m) => shared.store.master_get(m).await.ok().flatten(),
        None => None,
    };
    shared.bus.publish(
        &[format!("schedulers/{}/updated", s.id.0)],
        data::json::scheduler(s, master.as_ref()),
    );
}
