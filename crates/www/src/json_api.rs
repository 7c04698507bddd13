//! The seed's `/json` status API, in the shapes of Buildbot 0.8's `WebStatus` JSON, read
//! through the Data API like every other page.
//!
//! Scripts written for 0.8 read `/json/builders`, `/json/builders/NAME/builds/-1`,
//! `/json/slaves` and friends; they keep working. `/json/help` documents the paths and the
//! flags: `as_text=1` (indented `text/plain`, and implies `filter=1`), `filter=1` (drops
//! null, false, empty strings, lists and objects), `compact=0`, `callback=NAME` (JSONP) and
//! `select=SUBPATH` (repeatable: several subtrees in one answer). Builds and builders are
//! addressed by name and number as 0.8 did; a negative number counts from the last build,
//! and `<N` is the last N builds.
//!
//! Names from the URL never become Data API paths: they are looked up in a listing and the
//! Data API is then asked by id, so a builder called `a/b` cannot reach another resource.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::authz::{self, VIEW};
use crate::rest::{data_get, query_pairs};
use crate::{AppState, WebError};

/// How many builds a builder's `builds` node lists without `select`: Buildbot 0.8's default
/// build cache, which is what its `/json/builders/NAME/builds` showed.
const RECENT_BUILDS: i64 = 15;

/// How many changes `/json/changes` lists (newest first).
const RECENT_CHANGES: i64 = 50;

/// The largest `<N` a request may ask for.
const MAX_PAST_BUILDS: i64 = 200;

/// `/json`, `/json/`, `/json/help` and everything below.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/json", get(root))
        .route("/json/", get(root))
        .route("/json/{*path}", get(at_path))
}

async fn root(state: State<AppState>, query: RawQuery) -> Response {
    answer(state, String::new(), query).await
}

async fn at_path(state: State<AppState>, Path(path): Path<String>, query: RawQuery) -> Response {
    answer(state, path, query).await
}

/// The output flags of 0.8's JSON resources.
struct Flags {
    as_text: bool,
    filter: bool,
    compact: bool,
    callback: Option<String>,
    select: Vec<String>,
}

impl Flags {
    fn parse(pairs: &[(String, String)]) -> Flags {
        let flag = |name: &str| {
            pairs.iter().find(|(k, _)| k == name).and_then(|(_, v)| {
                match v.to_ascii_lowercase().as_str() {
                    "1" | "true" => Some(true),
                    "0" | "false" => Some(false),
                    _ => None,
                }
            })
        };
        let as_text = flag("as_text").unwrap_or(false);
        // Only identifiers are echoed back as a JSONP callback, as 0.8 did.
        let callback = pairs
            .iter()
            .find(|(k, _)| k == "callback")
            .map(|(_, v)| v.clone())
            .filter(|c| is_callback_name(c));
        Flags {
            as_text,
            filter: flag("filter").unwrap_or(as_text),
            compact: flag("compact").unwrap_or(!as_text),
            callback,
            select: pairs
                .iter()
                .filter(|(k, _)| k == "select")
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }
}

fn is_callback_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$' || c == '_');
    first_ok
        && name.len() <= 100
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '$' | '_' | '.'))
}

async fn answer(
    State(state): State<AppState>,
    path: String,
    RawQuery(query): RawQuery,
) -> Response {
    if !authz::allows(&state, VIEW) {
        return WebError::Forbidden("you need to have role 'view'".into()).into_response();
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments == ["help"] {
        return Html(help_page()).into_response();
    }
    let flags = Flags::parse(&query_pairs(query.as_deref()));
    let data = match flags.select.is_empty() {
        true => node(&state, &segments).await,
        false => selection(&state, &segments, &flags.select).await,
    };
    let data = match data {
        Ok(data) => data,
        Err(e) => return e.into_response(),
    };
    render(data, &flags)
}

/// `select=` answers: each subpath's node, nested under its segments; a subpath that does
/// not resolve holds `{"error": "Not available"}`, as 0.8 answered.
async fn selection(state: &AppState, base: &[&str], select: &[String]) -> Result<Value, WebError> {
    let mut data = Value::Object(Map::new());
    for item in select.iter().take(50) {
        let sub: Vec<&str> = item.split('/').filter(|s| !s.is_empty()).collect();
        let full: Vec<&str> = base.iter().chain(sub.iter()).copied().collect();
        let value = match node(state, &full).await {
            Ok(v) => v,
            Err(WebError::NotFound(_)) => json!({"error": "Not available"}),
            Err(e) => return Err(e),
        };
        let mut slot = &mut data;
        for segment in &sub {
            let Value::Object(map) = slot else { break };
            slot = map
                .entry(segment.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        match (slot, value) {
            (Value::Object(into), Value::Object(from)) => into.extend(from),
            (slot, value) => *slot = value,
        }
    }
    Ok(data)
}

fn render(data: Value, flags: &Flags) -> Response {
    let data = match flags.filter {
        true => filter_out(data).unwrap_or(Value::Null),
        false => data,
    };
    let text = match flags.compact {
        true => data.to_string(),
        false => serde_json::to_string_pretty(&data).unwrap_or_default(),
    };
    let body = match &flags.callback {
        Some(callback) => format!("{callback}({text});"),
        None => text,
    };
    let content_type = match (flags.as_text, &flags.callback) {
        (true, _) => "text/plain; charset=utf-8",
        (false, Some(_)) => "application/javascript; charset=utf-8",
        (false, None) => "application/json; charset=utf-8",
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

/// 0.8's `filter=1`: drops object entries that are null, false, "", [] or {} once
/// filtered themselves; a list is dropped only when every item is empty, and otherwise keeps
/// its items in place.
fn filter_out(value: Value) -> Option<Value> {
    let kept = match value {
        Value::Array(items) => {
            let filtered: Vec<Option<Value>> = items.iter().cloned().map(filter_out).collect();
            if filtered.iter().all(Option::is_none) {
                return None;
            }
            let kept = items
                .into_iter()
                .zip(filtered)
                .map(|(item, f)| f.unwrap_or_else(|| emptied(item)))
                .collect();
            return Some(Value::Array(kept));
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| filter_out(v).map(|v| (k, v)))
                .collect(),
        ),
        other => other,
    };
    let empty = match &kept {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    (!empty).then_some(kept)
}

/// What an empty item of a kept list becomes: containers empty, scalars as they were.
fn emptied(item: Value) -> Value {
    match item {
        Value::Object(_) => Value::Object(Map::new()),
        Value::Array(_) => Value::Array(Vec::new()),
        scalar => scalar,
    }
}

/// The JSON of one node of the tree.
async fn node(state: &AppState, segments: &[&str]) -> Result<Value, WebError> {
    let not_found =
        || WebError::NotFound(format!("no such resource: /json/{}", segments.join("/")));
    match segments {
        [] => {
            let mut root = Map::new();
            root.insert("builders".into(), builders(state).await?);
            root.insert("change_sources".into(), change_sources(state).await?);
            root.insert("changes".into(), changes(state).await?);
            root.insert("project".into(), project(state));
            root.insert("slaves".into(), slaves(state).await?);
            Ok(Value::Object(root))
        }
        ["project"] => Ok(project(state)),
        ["builders"] => builders(state).await,
        ["builders", name, rest @ ..] => {
            let builder = builder_named(state, name).await?.ok_or_else(not_found)?;
            builder_node(state, &builder, rest)
                .await?
                .ok_or_else(not_found)
        }
        ["slaves"] => slaves(state).await,
        ["slaves", name] => {
            let worker = worker_named(state, name).await?.ok_or_else(not_found)?;
            slave_dict(state, &worker).await
        }
        ["changes"] => changes(state).await,
        ["changes", id] => {
            let id: i64 = id.parse().map_err(|_| not_found())?;
            let list = items(state, &format!("changes/{id}"), &[]).await?;
            let change = list.first().ok_or_else(not_found)?;
            Ok(change_dict(change))
        }
        ["change_sources"] => change_sources(state).await,
        _ => Err(not_found()),
    }
}

/// Nodes under `/json/builders/NAME`; `None` when the path names nothing.
async fn builder_node(
    state: &AppState,
    builder: &Value,
    rest: &[&str],
) -> Result<Option<Value>, WebError> {
    let id = int(builder, "builderid");
    let name = text(builder, "name");
    match rest {
        [] => Ok(Some(builder_dict(state, builder).await?)),
        ["builds"] => {
            let query = [("order", "-number"), ("limit", &RECENT_BUILDS.to_string())];
            let builds = items(state, &format!("builders/{id}/builds"), &query).await?;
            let mut out = Map::new();
            for build in builds.iter().rev() {
                let number = int(build, "number").to_string();
                out.insert(number, build_dict(state, &name, build).await?);
            }
            Ok(Some(Value::Object(out)))
        }
        ["builds", which, more @ ..] => {
            if let Some(count) = which.strip_prefix('<') {
                if !more.is_empty() {
                    return Ok(None);
                }
                let count = count.parse().unwrap_or(15).clamp(0, MAX_PAST_BUILDS);
                let query = [
                    ("order", "-number"),
                    ("complete", "true"),
                    ("limit", &count.to_string()),
                ];
                let builds = items(state, &format!("builders/{id}/builds"), &query).await?;
                let mut out = Vec::with_capacity(builds.len());
                for build in &builds {
                    out.push(build_dict(state, &name, build).await?);
                }
                return Ok(Some(Value::Array(out)));
            }
            let Some(build) = build_by_number(state, id, which).await? else {
                return Ok(None);
            };
            build_node(state, &name, &build, more).await
        }
        ["slaves"] => {
            let workers = items(state, &format!("builders/{id}/workers"), &[]).await?;
            let mut out = Map::new();
            for worker in &workers {
                out.insert(text(worker, "name"), slave_dict(state, worker).await?);
            }
            Ok(Some(Value::Object(out)))
        }
        _ => Ok(None),
    }
}

/// Nodes under one build: the build, its steps (by index or name) and its source stamp.
async fn build_node(
    state: &AppState,
    builder_name: &str,
    build: &Value,
    rest: &[&str],
) -> Result<Option<Value>, WebError> {
    let whole = build_dict(state, builder_name, build).await?;
    let steps = whole["steps"].as_array().cloned().unwrap_or_default();
    Ok(match rest {
        [] => Some(whole),
        ["steps"] => Some(Value::Object(
            steps
                .into_iter()
                .enumerate()
                .map(|(i, s)| (i.to_string(), s))
                .collect(),
        )),
        ["steps", which] => match which.parse::<usize>() {
            Ok(index) => steps.get(index).cloned(),
            Err(_) => steps.into_iter().find(|s| s["name"] == *which),
        },
        ["source_stamp"] => Some(whole["sourceStamp"].clone()),
        ["source_stamp", "changes"] => Some(whole["sourceStamp"]["changes"].clone()),
        _ => None,
    })
}

/// A build by number; a negative number counts back from the newest build (-1 is the last).
async fn build_by_number(
    state: &AppState,
    builder_id: i64,
    which: &str,
) -> Result<Option<Value>, WebError> {
    let Ok(number) = which.parse::<i64>() else {
        return Ok(None);
    };
    let path = format!("builders/{builder_id}/builds");
    let builds = match number {
        n if n >= 0 => items(state, &path, &[("number", &n.to_string())]).await?,
        n => {
            let offset = n.saturating_add(1).saturating_neg().to_string();
            let query = [("order", "-number"), ("limit", "1"), ("offset", &offset)];
            items(state, &path, &query).await?
        }
    };
    Ok(builds.into_iter().next())
}

fn project(state: &AppState) -> Value {
    let runtime = state.shared.runtime();
    json!({
        "projectName": runtime.config.title,
        "projectURL": runtime.config.title_url,
        "buildbotURL": runtime.config.buildbot_url,
    })
}

async fn builders(state: &AppState) -> Result<Value, WebError> {
    let mut out = Map::new();
    for builder in items(state, "builders", &[]).await? {
        out.insert(text(&builder, "name"), builder_dict(state, &builder).await?);
    }
    Ok(Value::Object(out))
}

/// 0.8's builder status: state, cached and current build numbers, pending count, slaves and
/// schedulers.
async fn builder_dict(state: &AppState, builder: &Value) -> Result<Value, WebError> {
    let id = int(builder, "builderid");
    let name = text(builder, "name");
    let path = format!("builders/{id}/builds");
    let recent_query = [
        ("order", "-number"),
        ("limit", &RECENT_BUILDS.to_string()),
        ("field", "number"),
    ];
    let recent = items(state, &path, &recent_query).await?;
    let running_query = [
        ("complete", "false"),
        ("field", "number"),
        ("field", "complete"),
    ];
    let running = items(state, &path, &running_query).await?;
    let pending = total(
        state,
        &format!("builders/{id}/buildrequests"),
        &[("claimed", "false"), ("complete", "false"), ("limit", "0")],
    )
    .await?;
    let workers = items(state, &format!("builders/{id}/workers"), &[]).await?;
    let connected = workers
        .iter()
        .any(|w| w["connected_to"].as_array().is_some_and(|c| !c.is_empty()));
    let status = match (running.is_empty(), connected) {
        (false, _) => "building",
        (true, true) => "idle",
        (true, false) => "offline",
    };
    let numbers = |list: &[Value]| -> Vec<i64> {
        let mut n: Vec<i64> = list.iter().map(|b| int(b, "number")).collect();
        n.sort_unstable();
        n
    };
    let schedulers: Vec<String> = {
        let runtime = state.shared.runtime();
        runtime
            .config
            .schedulers
            .iter()
            .filter(|s| s.builder_names.contains(&name))
            .map(|s| s.name.clone())
            .collect()
    };
    Ok(json!({
        "basedir": name,
        "category": builder["tags"].get(0).cloned().unwrap_or(Value::Null),
        "slaves": workers.iter().map(|w| text(w, "name")).collect::<Vec<_>>(),
        "schedulers": schedulers,
        "cachedBuilds": numbers(&recent),
        "currentBuilds": numbers(&running),
        "pendingBuilds": pending,
        "state": status,
    }))
}

/// 0.8's build status, with its steps, logs, properties and source stamps.
async fn build_dict(
    state: &AppState,
    builder_name: &str,
    build: &Value,
) -> Result<Value, WebError> {
    let buildid = int(build, "buildid");
    let number = int(build, "number");
    let base = state.shared.runtime().config.buildbot_url.clone();
    let properties =
        match data_get(state, &format!("builds/{buildid}/properties"), &spec(&[])).await? {
            data::DataResult::Single { value, .. } => property_list(&value),
            data::DataResult::List { .. } => Vec::new(),
        };
    let mut steps = Vec::new();
    let mut all_logs = Vec::new();
    let mut current_step = Value::Null;
    for step in items(state, &format!("builds/{buildid}/steps"), &[]).await? {
        let step_name = text(&step, "name");
        let step_path = format!("steps/{}/logs", int(&step, "stepid"));
        let logs: Vec<Value> = items(state, &step_path, &[])
            .await?
            .iter()
            .map(|log| {
                let url = format!(
                    "{base}builders/{}/builds/{number}/steps/{}/logs/{}",
                    url_segment(builder_name),
                    url_segment(&step_name),
                    url_segment(&text(log, "slug"))
                );
                json!([text(log, "name"), url])
            })
            .collect();
        all_logs.extend(logs.iter().cloned());
        let dict = step_dict(&step, logs);
        if current_step.is_null() && dict["isStarted"] == true && dict["isFinished"] == false {
            current_step = dict.clone();
        }
        steps.push(dict);
    }
    let request = items(
        state,
        &format!("buildrequests/{}", int(build, "buildrequestid")),
        &[],
    )
    .await?;
    let buildset = match request.first() {
        Some(r) => items(state, &format!("buildsets/{}", int(r, "buildsetid")), &[])
            .await?
            .into_iter()
            .next(),
        None => None,
    };
    let mut source_stamps = Vec::new();
    let mut blame = Vec::new();
    let stamps = buildset
        .as_ref()
        .and_then(|b| b["sourcestamps"].as_array().cloned())
        .unwrap_or_default();
    for ss in &stamps {
        let changes = items(
            state,
            &format!("sourcestamps/{}/changes", int(ss, "ssid")),
            &[],
        )
        .await?;
        for change in &changes {
            let who = text(change, "author");
            if !blame.contains(&who) {
                blame.push(who);
            }
        }
        source_stamps.push(source_stamp_dict(ss, &changes));
    }
    let slave = match build["workerid"].as_i64() {
        Some(w) => items(state, &format!("workers/{w}"), &[])
            .await?
            .first()
            .map(|w| text(w, "name")),
        None => None,
    };
    let reason = buildset
        .as_ref()
        .map(|b| b["reason"].clone())
        .unwrap_or(Value::Null);
    Ok(json!({
        "builderName": builder_name,
        "number": number,
        "reason": reason,
        "blame": blame,
        "properties": properties,
        "times": [build["started_at"], build["complete_at"]],
        "text": words(&build["state_string"]),
        "results": build["results"],
        "slave": slave,
        "currentStep": current_step,
        "eta": null,
        "steps": steps,
        "logs": all_logs,
        "sourceStamp": source_stamps.first().cloned().unwrap_or(Value::Null),
        "sourceStamps": source_stamps,
    }))
}

fn step_dict(step: &Value, logs: Vec<Value>) -> Value {
    let finished = step["complete"] == true;
    let text = words(&step["state_string"]);
    let results = match finished {
        true => json!([step["results"], text]),
        false => json!([null, []]),
    };
    let urls: Map<String, Value> = step["urls"]
        .as_array()
        .map(|urls| {
            urls.iter()
                .map(|u| (text_of(&u["name"]), u["url"].clone()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": step["name"],
        "text": text,
        "results": results,
        "isStarted": !step["started_at"].is_null(),
        "isFinished": finished,
        "statistics": {},
        "times": [step["started_at"], step["complete_at"]],
        "expectations": [],
        "eta": null,
        "urls": urls,
        "step_number": step["number"],
        "hidden": step["hidden"],
        "logs": logs,
    })
}

fn source_stamp_dict(ss: &Value, changes: &[Value]) -> Value {
    json!({
        "branch": ss["branch"],
        "revision": ss["revision"],
        "patch": null,
        "hasPatch": !ss["patch"].is_null(),
        "project": ss["project"],
        "repository": ss["repository"],
        "codebase": ss["codebase"],
        "changes": changes.iter().map(change_dict).collect::<Vec<_>>(),
    })
}

fn change_dict(change: &Value) -> Value {
    let when = change["when_timestamp"].as_i64().unwrap_or(0);
    let at = chrono::DateTime::from_timestamp(when, 0)
        .map(|t| t.format("%a %d %b %Y %H:%M:%S").to_string())
        .unwrap_or_default();
    let files: Vec<Value> = change["files"]
        .as_array()
        .map(|f| f.iter().map(|n| json!({"name": n, "url": null})).collect())
        .unwrap_or_default();
    json!({
        "number": change["changeid"],
        "branch": change["branch"],
        "category": change["category"],
        "revision": change["revision"],
        "revlink": change["revlink"],
        "who": change["author"],
        "comments": change["comments"],
        "files": files,
        "properties": property_list(&change["properties"]),
        "repository": change["repository"],
        "project": change["project"],
        "codebase": change["codebase"],
        "at": at,
        "when": when,
    })
}

async fn changes(state: &AppState) -> Result<Value, WebError> {
    let query = [
        ("order", "-changeid"),
        ("limit", &RECENT_CHANGES.to_string()),
    ];
    let mut out = Map::new();
    for change in items(state, "changes", &query).await? {
        out.insert(int(&change, "changeid").to_string(), change_dict(&change));
    }
    Ok(Value::Object(out))
}

async fn change_sources(state: &AppState) -> Result<Value, WebError> {
    let sources = items(state, "changesources", &[]).await?;
    Ok(Value::Object(
        sources
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), json!({"description": c["name"]})))
            .collect(),
    ))
}

async fn slaves(state: &AppState) -> Result<Value, WebError> {
    let mut out = Map::new();
    for worker in items(state, "workers", &[]).await? {
        out.insert(text(&worker, "name"), slave_dict(state, &worker).await?);
    }
    Ok(Value::Object(out))
}

/// 0.8's slave status: worker info, connection, running builds and, per builder, the numbers
/// of its recent builds on this slave.
async fn slave_dict(state: &AppState, worker: &Value) -> Result<Value, WebError> {
    let id = int(worker, "workerid");
    let info = &worker["workerinfo"];
    let builders = items(state, "builders", &[]).await?;
    let name_of = |builderid: i64| {
        builders
            .iter()
            .find(|b| int(b, "builderid") == builderid)
            .map(|b| text(b, "name"))
            .unwrap_or_default()
    };
    let mut per_builder = Map::new();
    for on in worker["configured_on"].as_array().into_iter().flatten() {
        per_builder.insert(name_of(int(on, "builderid")), json!([]));
    }
    let recent_query = [
        ("order", "-buildid"),
        ("limit", &(RECENT_BUILDS * 4).to_string()),
    ];
    let recent = items(state, &format!("workers/{id}/builds"), &recent_query).await?;
    let mut running = Vec::new();
    for build in recent.iter().rev() {
        let builder_name = name_of(int(build, "builderid"));
        match per_builder.get_mut(&builder_name) {
            Some(Value::Array(numbers)) => numbers.push(build["number"].clone()),
            _ => {
                per_builder.insert(builder_name.clone(), json!([build["number"]]));
            }
        }
        if build["complete"] == false {
            running.push(build_dict(state, &builder_name, build).await?);
        }
    }
    Ok(json!({
        "name": worker["name"],
        "host": info.get("host").cloned().unwrap_or(Value::Null),
        "admin": info.get("admin").cloned().unwrap_or(Value::Null),
        "version": info.get("version").cloned().unwrap_or(Value::Null),
        "access_uri": info.get("access_uri").cloned().unwrap_or(Value::Null),
        "connected": worker["connected_to"].as_array().is_some_and(|c| !c.is_empty()),
        "paused": worker["paused"],
        "runningBuilds": running,
        "builders": per_builder,
    }))
}

async fn builder_named(state: &AppState, name: &str) -> Result<Option<Value>, WebError> {
    let builders = items(state, "builders", &[]).await?;
    Ok(builders.into_iter().find(|b| b["name"] == name))
}

async fn worker_named(state: &AppState, name: &str) -> Result<Option<Value>, WebError> {
    let workers = items(state, "workers", &[]).await?;
    Ok(workers.into_iter().find(|w| w["name"] == name))
}

/// The entities a Data API path answers with (one for a single item).
async fn items(
    state: &AppState,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Vec<Value>, WebError> {
    Ok(match data_get(state, path, &spec(query)).await? {
        data::DataResult::Single { value, .. } => vec![value],
        data::DataResult::List { items, .. } => items,
    })
}

/// `meta.total` of a collection.
async fn total(state: &AppState, path: &str, query: &[(&str, &str)]) -> Result<i64, WebError> {
    Ok(match data_get(state, path, &spec(query)).await? {
        data::DataResult::List { total, .. } => total,
        data::DataResult::Single { .. } => 1,
    })
}

fn spec(query: &[(&str, &str)]) -> data::ResultSpec {
    let pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // The queries above are fixed and valid; a parse failure would be a bug here, and the
    // empty spec is the safe answer.
    data::ResultSpec::parse(&pairs).unwrap_or_default()
}

/// `{name: [value, source]}` as 0.8's `[[name, value, source], …]`.
fn property_list(props: &Value) -> Vec<Value> {
    props
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(name, pair)| json!([name, pair.get(0), pair.get(1)]))
                .collect()
        })
        .unwrap_or_default()
}

fn words(state_string: &Value) -> Vec<String> {
    state_string
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn int(value: &Value, key: &str) -> i64 {
    value[key].as_i64().unwrap_or(0)
}

fn text(value: &Value, key: &str) -> String {
    text_of(&value[key])
}

fn text_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn url_segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `/json/help`: the paths and flags, as 0.8's help page listed them.
fn help_page() -> String {
    const ROWS: &[(&str, &str)] = &[
        (
            "/json",
            "Everything below at once: builders, change_sources, changes, project, slaves.",
        ),
        ("/json/project", "projectName, projectURL and buildbotURL."),
        ("/json/builders", "All builders, by name."),
        (
            "/json/builders/NAME",
            "One builder: state, cachedBuilds, currentBuilds, pendingBuilds, slaves, schedulers.",
        ),
        (
            "/json/builders/NAME/builds",
            "Its last 15 builds, by number.",
        ),
        (
            "/json/builders/NAME/builds/N",
            "One build; a negative N counts back from the last build (-1 is the last).",
        ),
        (
            "/json/builders/NAME/builds/<N",
            "The last N finished builds, newest first.",
        ),
        (
            "/json/builders/NAME/builds?select=-1&select=-2",
            "Several builds in one answer.",
        ),
        (
            "/json/builders/NAME/builds/N/steps",
            "The build's steps by index; /steps/NAME or /steps/I for one.",
        ),
        (
            "/json/builders/NAME/builds/N/source_stamp",
            "Its source stamp with changes.",
        ),
        ("/json/builders/NAME/slaves", "The builder's slaves."),
        ("/json/slaves", "All slaves, by name."),
        (
            "/json/slaves/NAME",
            "One slave: host, admin, version, connected, runningBuilds, builders.",
        ),
        (
            "/json/changes",
            "The last 50 changes, by number; /json/changes/N for one.",
        ),
        ("/json/change_sources", "The change sources."),
        (
            "/json?select=project&select=builders/NAME/builds/-1",
            "A selection of unrelated nodes.",
        ),
    ];
    const FLAGS: &[(&str, &str)] = &[
        (
            "as_text=1",
            "text/plain, indented; implies compact=0 and filter=1.",
        ),
        ("compact=0", "Indented JSON."),
        (
            "filter=1",
            "Drops null, false, empty strings, lists and objects.",
        ),
        ("callback=NAME", "JSONP: NAME(data); (identifiers only)."),
        (
            "select=SUBPATH",
            "Repeatable: only these subtrees of the node, nested under their paths.",
        ),
    ];
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>JSON API help</title></head>\n\
         <body>\n<h1>JSON API</h1>\n<p>A read-only view of the master in the shapes of Buildbot \
         0.8's JSON status. Names are builder and slave names; times are Unix seconds.</p>\n\
         <h2>Paths</h2>\n<table>\n",
    );
    for (path, what) in ROWS {
        let link = match path.contains('?') {
            true => format!("{path}&as_text=1"),
            false => format!("{path}?as_text=1"),
        };
        // Links are relative to /json/help, so the page works under any base path.
        let rest = link["/json".len()..].trim_start_matches('/');
        let href = match rest.starts_with('?') {
            true => format!("./{rest}"),
            false => rest.to_string(),
        };
        html.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td></tr>\n",
            escape(&href),
            escape(path),
            escape(what)
        ));
    }
    html.push_str("</table>\n<h2>Flags</h2>\n<table>\n");
    for (flag, what) in FLAGS {
        html.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td></tr>\n",
            escape(flag),
            escape(what)
        ));
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(v: Value) -> String {
        filter_out(v).unwrap_or(Value::Null).to_string()
    }

    #[test]
    fn filter_drops_empty_values_at_every_depth() {
        let v = json!({"a": null, "b": false, "c": "", "d": [], "e": {}, "f": 0,
                       "g": {"h": [null, 1, ""], "i": {"j": false}}, "k": true});
        assert_eq!(filtered(v), r#"{"f":0,"g":{"h":[null,1,""]},"k":true}"#);
        assert_eq!(filtered(json!([null, false, {}])), "null");
        assert_eq!(filtered(json!(["x", {"a": null}])), r#"["x",{}]"#);
    }

    #[test]
    fn callback_names_are_identifiers() {
        assert!(is_callback_name("cb"));
        assert!(is_callback_name("$.jsonp_1"));
        assert!(!is_callback_name("1cb"));
        assert!(!is_callback_name("alert(1)"));
        assert!(!is_callback_name(""));
    }

    #[test]
    fn help_links_stay_under_json() {
        let page = help_page();
        assert!(page.contains("href=\"builders?as_text=1\""), "{page}");
        assert!(
            page.contains(
                "href=\"./?select=project&amp;select=builders/NAME/builds/-1&amp;as_text=1\""
            ),
            "{page}"
        );
    }
}
