//! Control actions the web and chat call: force, stop and rebuild builds, cancel and
//! reprioritise build requests, pause, stop and kill workers, enable schedulers.
//!
//! Authorization happens before these are called (in `www`); they only validate input.

use std::collections::BTreeMap;
use std::sync::Arc;

use config::SchedulerKind;
use model::{BuildId, BuildRequestId, BuilderId, BuildsetId, Properties, Results, WorkerId};
use serde_json::Value as Json;

use crate::master::Shared;
use crate::schedulers::{add_buildset, BuildsetRequest};
use crate::EngineError;

/// Why a force request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ForceError {
    /// No ForceScheduler of that name.
    #[error("no force scheduler named {0:?}")]
    UnknownScheduler(String),
    /// Field-level validation errors, keyed by field name.
    #[error("invalid force parameters")]
    Fields(BTreeMap<String, String>),
    /// Storing the buildset failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Forces a build through the ForceScheduler `scheduler`. `params` are the form or JSON-RPC
/// fields; `owner` is who asked.
pub async fn force(
    shared: &Arc<Shared>,
    scheduler: &str,
    builder_names: Option<Vec<String>>,
    params: &serde_json::Map<String, Json>,
    owner: &str,
) -> Result<(BuildsetId, Vec<(BuilderId, BuildRequestId)>), ForceError> {
    let runtime = shared.runtime();
    let Some(s) = runtime
        .config
        .schedulers
        .iter()
        .find(|s| s.name == scheduler)
    else {
        return Err(ForceError::UnknownScheduler(scheduler.to_string()));
    };
    let SchedulerKind::Force {
        reason,
        username,
        codebase_fields,
        properties,
        ..
    } = &s.kind
    else {
        return Err(ForceError::UnknownScheduler(scheduler.to_string()));
    };
    let mut errors = BTreeMap::new();
    let text = |name: &str, default: &Json| -> String {
        match params.get(name) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => match default {
                Json::String(s) => s.clone(),
                Json::Null => String::new(),
                other => other.to_string(),
            },
            Some(other) => other.to_string(),
        }
    };
    let reason_text = text(&reason.name, &reason.default);
    let user = text(&username.name, &username.default);
    let owner = if user.is_empty() {
        owner.to_string()
    } else {
        user
    };
    let mut ss = store::NewSourceStamp::default();
    for field in codebase_fields {
        let value = text(&field.name, &field.default);
        if let Some(re) = &field.regex {
            if let Ok(re) = regex::Regex::new(re) {
                if !re.is_match(&value) {
                    errors.insert(
                        field.name.clone(),
                        format!("value {value:?} does not match pattern {re}"),
                    );
                }
            }
        }
        if field.required && value.is_empty() {
            errors.insert(field.name.clone(), "this field is required".to_string());
        }
        let opt = if value.is_empty() {
            None
        } else {
            Some(value.clone())
        };
        match field.name.as_str() {
            "branch" => ss.branch = opt,
            "revision" => ss.revision = opt,
            "repository" => ss.repository = value,
            "project" => ss.project = value,
            _ => {}
        }
    }
    let mut props = Properties::new();
    for p in properties {
        let raw = params
            .get(&p.name)
            .cloned()
            .unwrap_or_else(|| p.default.clone());
        let value = match p.kind.as_str() {
            "int" => match &raw {
                Json::Number(_) => raw.clone(),
                Json::String(s) => match s.trim().parse::<i64>() {
                    Ok(n) => Json::from(n),
                    Err(_) => {
                        errors.insert(p.name.clone(), format!("invalid literal for int(): {s:?}"));
                        continue;
                    }
                },
                _ => Json::Null,
            },
            "bool" => Json::Bool(
                matches!(&raw, Json::Bool(true))
                    || matches!(&raw, Json::String(s) if s == "true" || s == "on" || s == "1"),
            ),
            _ => match &raw {
                Json::String(_) => raw.clone(),
                Json::Null => Json::String(String::new()),
                other => Json::String(other.to_string()),
            },
        };
        if p.kind == "list" && !p.choices.is_empty() {
            if let Json::String(s) = &value {
                if !p.choices.contains(s) {
                    errors.insert(p.name.clone(), format!("{s:?} is not one of the choices"));
                }
            }
        }
        if p.required && (value.is_null() || value == Json::String(String::new())) {
            errors.insert(p.name.clone(), "this field is required".to_string());
        }
        props.set(&p.name, value, "Force Build Form");
    }
    let priority = match params.get("priority") {
        None | Some(Json::Null) => 0,
        Some(Json::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Json::String(s)) if s.is_empty() => 0,
        Some(Json::String(s)) => match s.trim().parse() {
            Ok(n) => n,
            Err(_) => {
                errors.insert(
                    "priority".to_string(),
                    format!("invalid literal for int() with base 10: {s:?}"),
                );
                0
            }
        },
        Some(_) => 0,
    };
    if !errors.is_empty() {
        return Err(ForceError::Fields(errors));
    }
    props.set(
        "reason",
        Json::String(reason_text.clone()),
        "Force Build Form",
    );
    props.set("owner", Json::String(owner.clone()), "Force Build Form");
    let builders = match builder_names {
        Some(names) => {
            for n in &names {
                if !s.builder_names.contains(n) {
                    return Err(ForceError::Fields(BTreeMap::from([(
                        "builderNames".to_string(),
                        format!("builder {n:?} is not in scheduler {scheduler:?}"),
                    )])));
                }
            }
            names
        }
        None => s.builder_names.clone(),
    };
    let req = BuildsetRequest {
        scheduler,
        builder_names: &builders,
        reason: format!("A build was forced by '{owner}': {reason_text}"),
        properties: props,
        sourcestamps: vec![ss],
        parent_buildid: None,
        priority,
    };
    Ok(add_buildset(shared, req).await?)
}

/// Stops a running build; it ends CANCELLED. False if it is not running here.
pub fn stop_build(shared: &Arc<Shared>, id: BuildId, reason: &str) -> bool {
    let builds = shared.builds.lock().expect("builds lock poisoned");
    match builds.get(&id) {
        Some(b) => {
            b.stop
                .send_replace(Some((Results::Cancelled, reason.to_string())));
            true
        }
        None => false,
    }
}

/// Why a control action other than force was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The entity does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request cannot apply (e.g. a build request that already completed).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<store::StoreError> for ControlError {
    fn from(e: store::StoreError) -> Self {
        ControlError::Engine(EngineError::from(e))
    }
}

/// Rebuilds a build: a new buildset with the sourcestamps and properties of the build's
/// buildset, reason `rebuild`, and `rebuilt_buildid` set to the first build of the chain.
pub async fn rebuild(
    shared: &Arc<Shared>,
    id: BuildId,
) -> Result<(BuildsetId, Vec<(BuilderId, BuildRequestId)>), ControlError> {
    let store = &shared.store;
    let missing = || ControlError::NotFound(format!("builds/{}", id.0));
    let build = store.build_get(id).await?.ok_or_else(missing)?;
    let request = store
        .buildrequest_get(build.buildrequestid)
        .await?
        .ok_or_else(missing)?;
    let buildset = store
        .buildset_get(request.buildsetid)
        .await?
        .ok_or_else(missing)?;
    let properties = store.buildset_properties(buildset.id).await?;
    let sourcestamps = buildset
        .sourcestamps
        .iter()
        .map(|s| store::NewSourceStamp {
            branch: s.branch.clone(),
            revision: s.revision.clone(),
            repository: s.repository.clone(),
            codebase: s.codebase.clone(),
            project: s.project.clone(),
            patch: None,
        })
        .collect();
    let new = store::NewBuildset {
        reason: "rebuild".to_string(),
        external_idstring: None,
        properties,
        sourcestamps,
        builders: vec![build.builderid],
        priority: request.priority,
        parent_buildid: None,
        parent_relationship: None,
        rebuilt_buildid: Some(buildset.rebuilt_buildid.unwrap_or(id)),
        waited_for: false,
        submitted_at: model::now(),
    };
    let (bsid, requests) = store.buildset_add(&new).await?;
    crate::events::buildset(shared, bsid, "new").await;
    for (_, brid) in &requests {
        crate::events::buildrequest(shared, *brid, "new").await;
    }
    shared.wake.notify_one();
    Ok((bsid, requests))
}

/// Cancels a build request: an unclaimed one completes CANCELLED (claimed first, so the
/// distributor cannot take it meanwhile, as upstream does); a claimed one has its running
/// builds stopped.
pub async fn cancel_buildrequest(
    shared: &Arc<Shared>,
    id: BuildRequestId,
    reason: &str,
) -> Result<(), ControlError> {
    let store = &shared.store;
    let request = store
        .buildrequest_get(id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("buildrequests/{}", id.0)))?;
    if request.complete {
        return Ok(());
    }
    let now = model::now();
    if store
        .buildrequests_claim(&[id], shared.masterid, now)
        .await?
    {
        let completed = store
            .buildrequests_complete(&[id], Results::Cancelled, now)
            .await?;
        shared
            .bus
            .publish(&[format!("buildrequests/{}/cancel", id.0)], Json::Null);
        crate::events::buildrequest(shared, id, "complete").await;
        for bsid in completed {
            crate::events::buildset(shared, bsid, "complete").await;
        }
        return Ok(());
    }
    let q = store::ListQuery::filtered(vec![store::FilterSpec::new(
        "buildrequestid",
        store::FilterOp::Eq,
        vec![store::SqlValue::Int(id.0)],
    )]);
    let (builds, _) = store.builds_list(&q).await?;
    for build in builds.iter().filter(|b| b.complete_at.is_none()) {
        stop_build(shared, build.id, reason);
    }
    Ok(())
}

/// Sets a pending build request's priority.
pub async fn set_priority(
    shared: &Arc<Shared>,
    id: BuildRequestId,
    priority: i64,
) -> Result<(), ControlError> {
    if !shared.store.buildrequest_set_priority(id, priority).await? {
        return Err(ControlError::NotFound(format!("buildrequests/{}", id.0)));
    }
    crate::events::buildrequest(shared, id, "update").await;
    shared.wake.notify_one();
    Ok(())
}

/// What to do to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerAction {
    /// No new builds.
    Pause,
    /// Builds again.
    Unpause,
    /// No new builds; disconnect once the running builds finish.
    Stop,
    /// Disconnect now; running builds end RETRY.
    Kill,
}

/// Applies `action` to the worker `id`, records the new state and announces it.
pub async fn worker_action(
    shared: &Arc<Shared>,
    id: WorkerId,
    action: WorkerAction,
    reason: &str,
) -> Result<(), ControlError> {
    let store = &shared.store;
    let record = store
        .worker_get(id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("workers/{}", id.0)))?;
    let (mut paused, mut pause_reason, mut graceful) =
        (record.paused, record.pause_reason.clone(), record.graceful);
    match action {
        WorkerAction::Pause => (paused, pause_reason) = (true, Some(reason.to_string())),
        WorkerAction::Unpause => (paused, pause_reason) = (false, None),
        WorkerAction::Stop => graceful = true,
        WorkerAction::Kill => {}
    }
    // The registry first, so the distributor stops handing out builds before we return.
    let conn = shared.workers.with(|slots| {
        let slot = slots.get_mut(&record.name)?;
        slot.paused = paused;
        slot.graceful = graceful;
        slot.conn.clone()
    });
    store
        .worker_set_state(id, paused, pause_reason.as_deref(), graceful)
        .await?;
    crate::events::worker(shared, id, "state_updated").await;
    match (action, conn) {
        (WorkerAction::Kill, Some(conn)) => conn.shut(),
        (WorkerAction::Stop, Some(conn)) => {
            let shared = shared.clone();
            let name = record.name.clone();
            tokio::spawn(async move { disconnect_when_idle(shared, name, conn).await });
        }
        _ => {}
    }
    if action == WorkerAction::Unpause {
        shared.wake.notify_one();
    }
    Ok(())
}

/// Ends a gracefully stopping worker's connection once it runs no build. Ends when it did,
/// when the worker went away by itself, or when the master stops.
async fn disconnect_when_idle(
    shared: Arc<Shared>,
    name: String,
    conn: Arc<crate::workers::WorkerConnection>,
) {
    loop {
        if conn.is_closed() || shared.is_stopping() {
            return;
        }
        let running = shared
            .workers
            .with(|slots| slots.get(&name).map(|s| s.running));
        if running.unwrap_or(0) == 0 {
            conn.shut();
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Enables or disables a scheduler and announces it (`schedulers/{id}/updated`).
pub async fn scheduler_enable(
    shared: &Arc<Shared>,
    id: model::SchedulerId,
    enabled: bool,
) -> Result<(), ControlError> {
    match shared.store.scheduler_set_enabled(id, enabled).await {
        Ok(()) => {}
        Err(store::StoreError::NotFound { .. }) => {
            return Err(ControlError::NotFound(format!("schedulers/{}", id.0)))
        }
        Err(e) => return Err(e.into()),
    }
    crate::events::scheduler(shared, id).await;
    Ok(())
}

/// What pinging one worker found.
#[derive(Debug, Clone, PartialEq)]
pub enum PingResult {
    /// It answered `print "ping"`, after this long.
    Answered(std::time::Duration),
    /// It is attached but did not answer within the timeout (frozen host, dead link).
    NoAnswer(std::time::Duration),
    /// It is not attached.
    Offline,
    /// The connection failed while waiting, or the worker answered with an error.
    Failed(String),
}

impl std::fmt::Display for PingResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PingResult::Answered(_) => write!(f, "ok"),
            PingResult::NoAnswer(timeout) => {
                write!(f, "no answer within {} s", timeout.as_secs_f64())
            }
            PingResult::Offline => write!(f, "offline"),
            PingResult::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// Pings every worker of `builder` at once, as Buildbot does before a build: a `print`
/// request with the message "ping", which the worker must answer (spec §4.1). Each result is
/// logged; the call ends within `timeout`, whatever the workers do.
pub async fn ping_builder(
    shared: &Arc<Shared>,
    builder: &str,
    timeout: std::time::Duration,
) -> Vec<(String, PingResult)> {
    let names = shared
        .runtime()
        .builder(builder)
        .map(|b| b.workernames.clone())
        .unwrap_or_default();
    let pings = names.into_iter().map(|name| async move {
        let conn = shared.workers.get(&name).and_then(|slot| slot.conn);
        let result = match conn {
            Some(conn) => ping_worker(&conn, timeout).await,
            None => PingResult::Offline,
        };
        tracing::info!(builder, worker = %name, result = %result, "ping");
        (name, result)
    });
    futures::future::join_all(pings).await
}

async fn ping_worker(
    conn: &crate::workers::WorkerConnection,
    timeout: std::time::Duration,
) -> PingResult {
    let started = std::time::Instant::now();
    let print = protocol::Op::Print {
        message: protocol::Value::from("ping"),
    };
    let answer = match conn.send_request(print).await {
        Ok(answer) => answer,
        Err(err) => return PingResult::Failed(err.to_string()),
    };
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(Ok(_))) => PingResult::Answered(started.elapsed()),
        Ok(Ok(Err(err))) => PingResult::Failed(err.to_string()),
        Ok(Err(_)) => PingResult::Failed(crate::workers::RemoteError::Lost.to_string()),
        Err(_) => PingResult::NoAnswer(timeout),
    }
}
