//! The control actions of seed 002 behind one entry: the status object a policy function
//! sees ([`check_for`]), and the actions upstream's REST API lacks ([`run`]): ping a
//! builder, stop or cancel everything (of a builder or of the master), stop a change's
//! builds, force every builder, list the users, and shut the master down cleanly.
//!
//! JSON-RPC (`rest.rs`) and the page forms (`pages/actions.rs`) both resolve an entity,
//! ask [`check_for`] for the check, pass it to [`crate::authz::authorize`] (which also
//! writes the audit log), and only then act.

use model::{BuildId, BuilderId, ChangeId};
use serde_json::{json, Map, Value as Json};

use crate::authz::{self, Check};
use crate::{AppState, WebError};

/// The policy check for `method` on the entity `value` of type `plural`, with the status
/// object a seed-002 function receives and the builder names the modern matchers glob.
pub async fn check_for(
    state: &AppState,
    plural: &str,
    method: &str,
    value: &Json,
) -> Option<Check> {
    let action = authz::action_for(plural, method)?;
    let int = |name: &str| value.get(name).and_then(Json::as_i64);
    let runtime = state.shared.runtime();
    let builder_name = |id: Option<i64>| {
        id.and_then(|id| runtime.builder_by_id(BuilderId(id)))
            .map(|b| b.name.clone())
    };
    let mut builders = Vec::new();
    let object = match plural {
        "builders" => {
            let name = value.get("name").and_then(Json::as_str).unwrap_or("");
            builders.push(name.to_string());
            Some(builder_status(state, name))
        }
        "forceschedulers" => {
            let names: Vec<String> = value
                .get("builder_names")
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            builders.extend(names.iter().cloned());
            names.first().map(|n| builder_status(state, n))
        }
        "builds" => {
            let name = builder_name(int("builderid"));
            builders.extend(name.iter().cloned());
            if method == "rebuild" {
                name.as_deref().map(|n| builder_status(state, n))
            } else {
                Some(json!({
                    "buildid": int("buildid"),
                    "number": int("number"),
                    "builder": name,
                    "builderid": int("builderid"),
                    "results": value.get("results"),
                    "complete": value.get("complete"),
                    "state_string": value.get("state_string"),
                }))
            }
        }
        "buildrequests" => {
            let name = builder_name(int("builderid"));
            builders.extend(name.iter().cloned());
            Some(json!({
                "buildrequestid": int("buildrequestid"),
                "builderid": int("builderid"),
                "builder": name,
                "buildsetid": int("buildsetid"),
                "priority": value.get("priority"),
                "submitted_at": value.get("submitted_at"),
            }))
        }
        _ => None,
    };
    Some(Check {
        action,
        method: method.to_string(),
        builders,
        object,
    })
}

/// The check for forcing `builder` from its page's force form.
pub fn force_check(state: &AppState, builder: &str) -> Check {
    Check {
        action: authz::Action("forceBuild"),
        method: "force".to_string(),
        builders: vec![builder.to_string()],
        object: Some(builder_status(state, builder)),
    }
}

/// The seed's builder status, as a policy function receives it.
fn builder_status(state: &AppState, name: &str) -> Json {
    let runtime = state.shared.runtime();
    let builder = runtime.builder(name);
    json!({
        "name": name,
        "builderid": runtime.builder_ids.get(name).map(|id| id.0),
        "description": builder.and_then(|b| b.description.clone()),
        "tags": builder.map(|b| b.tags.clone()).unwrap_or_default(),
        "workernames": builder.map(|b| b.workernames.clone()).unwrap_or_default(),
    })
}

/// Runs one of the actions only Signalbox's JSON-RPC and pages offer, after the policy
/// allowed it. `value` is the REST object of the entity.
pub async fn run(
    state: &AppState,
    plural: &str,
    method: &str,
    value: &Json,
    params: &Map<String, Json>,
) -> Result<Json, WebError> {
    let shared = &state.shared;
    let reason = params
        .get("reason")
        .and_then(Json::as_str)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("by {} from the web", crate::auth::current_name()));
    let builder = value.get("builderid").and_then(Json::as_i64).map(BuilderId);
    match (plural, method) {
        ("builders", "ping") => {
            let name = value.get("name").and_then(Json::as_str).unwrap_or("");
            ping(state, name, params).await
        }
        ("builders", "stopall") => {
            Ok(json!({ "stopped": stop_all(state, builder, &reason).await? }))
        }
        ("masters", "stopall") => Ok(json!({ "stopped": stop_all(state, None, &reason).await? })),
        ("builders", "cancelall") => {
            Ok(json!({ "cancelled": cancel_all(state, builder, &reason).await? }))
        }
        ("masters", "cancelall") => {
            Ok(json!({ "cancelled": cancel_all(state, None, &reason).await? }))
        }
        ("changes", "stop") => {
            let change = ChangeId(value.get("changeid").and_then(Json::as_i64).unwrap_or(0));
            stop_change(state, change, &reason).await
        }
        ("masters", "forceall") => force_all(state, params).await,
        ("masters", "users") => {
            let users = shared.store.users_list().await.map_err(internal)?;
            let rows: Vec<Json> = users
                .iter()
                .map(|u| json!({ "uid": u.uid.0, "identifier": u.identifier }))
                .collect();
            Ok(json!({ "users": rows }))
        }
        ("masters", "shutdown") => {
            tracing::warn!(by = %crate::auth::current_name(), "clean shutdown asked from the web");
            shared.begin_stop();
            Ok(Json::Null)
        }
        _ => Err(WebError::BadRequest(format!(
            "action: {method} is not supported"
        ))),
    }
}

/// Time a worker gets to answer a ping, unless the call gives `timeout` (seconds, 1 to 60).
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Pings each worker of the builder with a real round trip: `workers` maps each name to "ok",
/// "no answer within N s", "offline" or "failed: …"; `round_trip_ms` holds the answered ones.
async fn ping(
    state: &AppState,
    builder: &str,
    params: &Map<String, Json>,
) -> Result<Json, WebError> {
    let timeout = match params.get("timeout") {
        None => PING_TIMEOUT,
        Some(value) => {
            let seconds = value
                .as_f64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|s| (1.0..=60.0).contains(s))
                .ok_or_else(|| {
                    WebError::BadRequest(
                        "ping: timeout must be a number of seconds from 1 to 60".into(),
                    )
                })?;
            std::time::Duration::from_secs_f64(seconds)
        }
    };
    let results = engine::control::ping_builder(&state.shared, builder, timeout).await;
    let mut workers = Map::new();
    let mut round_trips = Map::new();
    for (name, result) in results {
        if let engine::control::PingResult::Answered(rtt) = &result {
            round_trips.insert(name.clone(), json!(rtt.as_secs_f64() * 1000.0));
        }
        workers.insert(name, json!(result.to_string()));
    }
    Ok(json!({ "workers": workers, "round_trip_ms": round_trips }))
}

/// Stops the running builds of this master (of one builder, if given).
async fn stop_all(
    state: &AppState,
    builder: Option<BuilderId>,
    reason: &str,
) -> Result<usize, WebError> {
    let running: Vec<BuildId> = state
        .shared
        .builds
        .lock()
        .expect("builds lock poisoned")
        .keys()
        .copied()
        .collect();
    let mut stopped = 0;
    for id in running {
        if let Some(wanted) = builder {
            let record = state.shared.store.build_get(id).await.map_err(internal)?;
            if record.map(|b| b.builderid) != Some(wanted) {
                continue;
            }
        }
        if engine::control::stop_build(&state.shared, id, reason) {
            stopped += 1;
        }
    }
    Ok(stopped)
}

/// Cancels every unclaimed build request (of one builder, if given).
async fn cancel_all(
    state: &AppState,
    builder: Option<BuilderId>,
    reason: &str,
) -> Result<usize, WebError> {
    let only = builder.map(|b| vec![b]);
    let requests = state
        .shared
        .store
        .buildrequests_unclaimed(only.as_deref())
        .await
        .map_err(internal)?;
    let mut cancelled = 0;
    for request in requests {
        match engine::control::cancel_buildrequest(&state.shared, request.id, reason).await {
            Ok(()) => cancelled += 1,
            Err(engine::control::ControlError::Engine(e)) => return Err(internal(e)),
            Err(_) => {}
        }
    }
    Ok(cancelled)
}

/// Stops the running builds and cancels the pending requests whose source stamps include
/// `change`. Running builds and pending requests are few, so each is looked at in turn.
async fn stop_change(state: &AppState, change: ChangeId, reason: &str) -> Result<Json, WebError> {
    let store = &state.shared.store;
    let includes = |buildset| async move {
        let stamps = store.buildset_sourcestamps(buildset).await?;
        for stamp in stamps {
            let changes = store.changes_for_sourcestamp(stamp.id).await?;
            if changes.iter().any(|c| c.id == change) {
                return Ok::<bool, store::StoreError>(true);
            }
        }
        Ok(false)
    };
    let running: Vec<BuildId> = state
        .shared
        .builds
        .lock()
        .expect("builds lock poisoned")
        .keys()
        .copied()
        .collect();
    let mut stopped = 0;
    for id in running {
        let Some(build) = store.build_get(id).await.map_err(internal)? else {
            continue;
        };
        let Some(request) = store
            .buildrequest_get(build.buildrequestid)
            .await
            .map_err(internal)?
        else {
            continue;
        };
        if includes(request.buildsetid).await.map_err(internal)?
            && engine::control::stop_build(&state.shared, id, reason)
        {
            stopped += 1;
        }
    }
    let mut cancelled = 0;
    for request in store
        .buildrequests_unclaimed(None)
        .await
        .map_err(internal)?
    {
        if includes(request.buildsetid).await.map_err(internal)?
            && engine::control::cancel_buildrequest(&state.shared, request.id, reason)
                .await
                .is_ok()
        {
            cancelled += 1;
        }
    }
    Ok(json!({ "stopped": stopped, "cancelled": cancelled }))
}

/// Forces every builder that a ForceScheduler can build, each through the first such
/// scheduler, with its default fields.
async fn force_all(state: &AppState, params: &Map<String, Json>) -> Result<Json, WebError> {
    let runtime = state.shared.runtime();
    let mut plan: Vec<(String, Vec<String>)> = Vec::new();
    for builder in &runtime.config.builders {
        let scheduler = runtime.config.schedulers.iter().find(|s| {
            matches!(s.kind, config::SchedulerKind::Force { .. })
                && s.builder_names.iter().any(|b| b == &builder.name)
        });
        let Some(scheduler) = scheduler else {
            continue;
        };
        match plan.iter_mut().find(|(s, _)| s == &scheduler.name) {
            Some((_, builders)) => builders.push(builder.name.clone()),
            None => plan.push((scheduler.name.clone(), vec![builder.name.clone()])),
        }
    }
    drop(runtime);
    let owner = crate::auth::current_name();
    let mut buildsets = Vec::new();
    for (scheduler, builders) in plan {
        match engine::control::force(&state.shared, &scheduler, Some(builders), params, &owner)
            .await
        {
            Ok((bsid, _)) => buildsets.push(bsid.0),
            Err(engine::control::ForceError::Fields(fields)) => {
                return Err(WebError::BadRequest(format!("{scheduler}: {fields:?}")))
            }
            Err(e) => return Err(WebError::Internal(e.to_string())),
        }
    }
    Ok(json!({ "buildsets": buildsets }))
}

fn internal(e: impl std::fmt::Display) -> WebError {
    WebError::Internal(e.to_string())
}
