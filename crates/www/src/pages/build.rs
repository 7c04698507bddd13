//! `/builders/$B/builds/$N` (steps with names and results in plain sight, properties,
//! changes and blamelist, log links) and `.../steps/$S`.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::response::Response;
use model::{BuildId, BuilderId};
use serde_json::{json, Value as Json};
use store::{BuildRecord, LogRecord};

use super::view::{self, internal, seg, Catalog};
use super::Pages;
use crate::{AppState, WebError};

/// The build `number` of the builder named `name`, or a 404.
pub(crate) async fn find_build(
    state: &AppState,
    catalog: &Catalog,
    name: &str,
    number: &str,
) -> Result<(BuilderId, BuildRecord), WebError> {
    let builder = catalog.require(name)?;
    let number: i64 = number
        .parse()
        .map_err(|_| WebError::NotFound(format!("no build {number:?}")))?;
    let build = state
        .shared
        .store
        .build_by_number(builder.id, number)
        .await
        .map_err(internal)?
        .ok_or_else(|| WebError::NotFound(format!("no build {number} of {name:?}")))?;
    Ok((builder.id, build))
}

fn log_json(step_url: &str, l: &LogRecord) -> Json {
    let url = format!("{step_url}/logs/{}", seg(&l.slug));
    json!({
        "id": l.id.0,
        "name": l.name,
        "slug": l.slug,
        "lines": l.num_lines,
        "complete": l.complete,
        "text_url": format!("{url}/text"),
        "url": url,
    })
}

/// `/builders/$B/builds/$N`.
pub(crate) async fn page(
    State(state): State<AppState>,
    Path((name, number)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let catalog = Catalog::of(&state);
    let (_, build) = find_build(&state, &catalog, &name, &number).await?;
    let store = &state.shared.store;
    let steps = store.steps_for_build(build.id).await.map_err(internal)?;
    let step_ids: Vec<_> = steps.iter().map(|s| s.id).collect();
    let logs = store.logs_for_steps(&step_ids).await.map_err(internal)?;
    let properties = store.build_properties(build.id).await.map_err(internal)?;
    let (changes, sourcestamps) = build_changes(&state, build.id, &build).await?;
    let build_json = view::build(&catalog, &build);
    let build_url = build_json["url"].as_str().unwrap_or_default().to_string();
    let steps_json: Vec<Json> = steps
        .iter()
        .map(|s| {
            let mut j = view::step(&build_url, s);
            let step_url = j["url"].as_str().unwrap_or_default().to_string();
            j["logs"] = logs
                .iter()
                .filter(|l| l.stepid == s.id)
                .map(|l| log_json(&step_url, l))
                .collect();
            j
        })
        .collect();
    let blamelist: BTreeSet<&str> = changes
        .iter()
        .filter_map(|c| c["author"].as_str())
        .collect();
    let worker = build.workerid.and_then(|w| {
        state
            .shared
            .runtime()
            .worker_ids
            .iter()
            .find(|(_, id)| **id == w)
            .map(|(n, _)| n.clone())
    });
    Pages::of(&state).page(
        &state,
        "build.html",
        json!({
            "build": build_json,
            "builder_url": format!("/builders/{}", seg(&name)),
            "steps": steps_json,
            "properties": properties.iter().map(|(n, v, s)| json!({"name": n, "value": view::display(v), "source": s})).collect::<Vec<_>>(),
            "changes": changes,
            "sourcestamps": sourcestamps,
            "blamelist": blamelist,
            "worker": worker,
            "live_builders": [build.builderid.0],
        }),
    )
}

/// The changes and source stamps of a build (through its request's buildset).
async fn build_changes(
    state: &AppState,
    _id: BuildId,
    build: &BuildRecord,
) -> Result<(Vec<Json>, Vec<Json>), WebError> {
    let store = &state.shared.store;
    let Some(request) = store
        .buildrequest_get(build.buildrequestid)
        .await
        .map_err(internal)?
    else {
        return Ok((Vec::new(), Vec::new()));
    };
    let stamps = store
        .buildset_sourcestamps(request.buildsetid)
        .await
        .map_err(internal)?;
    let mut changes = Vec::new();
    for ss in &stamps {
        // A buildset has one source stamp per codebase: a handful at most.
        for c in store
            .changes_for_sourcestamp(ss.id)
            .await
            .map_err(internal)?
        {
            changes.push(view::change(state, &c));
        }
    }
    let stamps = stamps
        .iter()
        .map(|ss| {
            json!({
                "codebase": ss.codebase, "repository": ss.repository, "branch": ss.branch,
                "revision": ss.revision, "project": ss.project,
            })
        })
        .collect();
    Ok((changes, stamps))
}

/// `/builders/$B/builds/$N/steps/$S`.
pub(crate) async fn step(
    State(state): State<AppState>,
    Path((name, number, step_name)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let catalog = Catalog::of(&state);
    let (_, build) = find_build(&state, &catalog, &name, &number).await?;
    let store = &state.shared.store;
    let steps = store.steps_for_build(build.id).await.map_err(internal)?;
    let step = steps
        .iter()
        .find(|s| s.name == step_name)
        .ok_or_else(|| WebError::NotFound(format!("no step {step_name:?}")))?;
    let logs = store.logs_for_step(step.id).await.map_err(internal)?;
    let build_json = view::build(&catalog, &build);
    let build_url = build_json["url"].as_str().unwrap_or_default().to_string();
    let mut step_json = view::step(&build_url, step);
    let step_url = step_json["url"].as_str().unwrap_or_default().to_string();
    step_json["logs"] = logs.iter().map(|l| log_json(&step_url, l)).collect();
    Pages::of(&state).page(
        &state,
        "step.html",
        json!({
            "build": build_json,
            "builder_url": format!("/builders/{}", seg(&name)),
            "step": step_json,
            "live_builders": [build.builderid.0],
        }),
    )
}
