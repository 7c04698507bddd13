//! REST API v2: GETs through the Data API, JSON-RPC control POSTs (spec §4–§8).
//!
//! Every request under `/api/v2` comes through [`dispatch`]: `GET` and `HEAD` read, `POST`
//! is JSON-RPC, anything else is 400 as upstream. Raw log downloads are streamed chunk by
//! chunk, so a 10 MB log costs the master no more memory than a small one.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Map, Value};

use crate::authz::{self, VIEW};
use crate::{AppState, WebError};

/// Routes under `/api/v2` (and its alias `/api/latest`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/{*path}", any(dispatch))
}

/// The deprecated root listing (spec §7.20).
async fn root(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    check_view(&state)?;
    let names = [
        "builders",
        "builds",
        "buildrequests",
        "buildsets",
        "changes",
        "changesources",
        "forceschedulers",
        "logs",
        "masters",
        "projects",
        "schedulers",
        "sourcestamps",
        "steps",
        "workers",
    ];
    let links: Vec<Value> = names.iter().map(|n| json!({ "name": n })).collect();
    let total = links.len();
    Ok(json_response(
        &headers,
        &json!({"rootlinks": links, "meta": {"total": total}}),
    ))
}

async fn dispatch(
    method: Method,
    state: State<AppState>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match method {
        Method::GET => rest_get(state, &path, query.as_deref(), &headers)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Method::HEAD => {
            let response = rest_get(state, &path, query.as_deref(), &headers)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            let (parts, _) = response.into_parts();
            Response::from_parts(parts, Body::empty())
        }
        Method::POST => rest_post(state, &path, &headers, &body).await,
        _ => WebError::BadRequest("invalid HTTP method".into()).into_response(),
    }
}

fn check_view(state: &AppState) -> Result<(), WebError> {
    match authz::allows(state, VIEW) {
        true => Ok(()),
        false => Err(WebError::Forbidden("you need to have role 'view'".into())),
    }
}

/// The Data API context for the config in force: the store and the force schedulers.
pub(crate) fn forceschedulers(state: &AppState) -> Vec<data::ForceScheduler> {
    let runtime = state.shared.runtime();
    let field = |p: &config::ForceParameter| data::ForceField {
        name: p.name.clone(),
        label: p.label.clone(),
        kind: p.kind.clone(),
        default: p.default.clone(),
        required: p.required,
        choices: p.choices.clone(),
        regex: p.regex.clone(),
    };
    runtime
        .config
        .schedulers
        .iter()
        .filter_map(|s| match &s.kind {
            config::SchedulerKind::Force {
                button_name,
                label,
                reason,
                username,
                codebase_fields,
                properties,
            } => {
                let priority = data::ForceField {
                    name: "priority".into(),
                    label: "Priority".into(),
                    kind: "int".into(),
                    default: json!(0),
                    required: false,
                    choices: Vec::new(),
                    regex: None,
                };
                Some(data::ForceScheduler {
                    name: s.name.clone(),
                    button_name: button_name.clone().unwrap_or_else(|| s.name.clone()),
                    label: label.clone().unwrap_or_else(|| s.name.clone()),
                    builder_names: s.builder_names.clone(),
                    main_fields: vec![field(username), field(reason), priority],
                    codebase_fields: codebase_fields.iter().map(field).collect(),
                    property_fields: properties.iter().map(field).collect(),
                })
            }
            _ => None,
        })
        .collect()
}

/// Runs a Data API read with the config in force.
pub(crate) async fn data_get(
    state: &AppState,
    path: &str,
    spec: &data::ResultSpec,
) -> Result<data::DataResult, data::DataError> {
    // Only force scheduler paths read them: other requests skip copying them out of the config.
    let forceschedulers = match path.contains("forceschedulers") {
        true => forceschedulers(state),
        false => Vec::new(),
    };
    let ctx = data::Context {
        store: &state.shared.store,
        forceschedulers: &forceschedulers,
    };
    data::get_in(&ctx, path, spec).await
}

pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn json_response(headers: &HeaderMap, value: &Value) -> Response {
    let compact = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    // serde_json's Map keeps keys sorted (no preserve_order feature), as upstream sorts them.
    if compact {
        (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            value.to_string(),
        )
            .into_response()
    } else {
        let body = serde_json::to_string_pretty(value).unwrap_or_default();
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
    }
}

async fn rest_get(
    State(state): State<AppState>,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, WebError> {
    check_view(&state)?;
    if let Some(log_path) = path.strip_suffix("/raw") {
        return raw(&state, log_path, Disposition::Attachment).await;
    }
    if let Some(log_path) = path.strip_suffix("/raw_inline") {
        return raw(&state, log_path, Disposition::Inline).await;
    }
    let pairs = query_pairs(query);
    let spec = data::ResultSpec::parse(&pairs)?;
    let body = match data_get(&state, path, &spec).await? {
        data::DataResult::Single { plural, value } => json!({ plural: [value], "meta": {} }),
        data::DataResult::List {
            plural,
            items,
            total,
        } => {
            let mut meta = Map::new();
            meta.insert("total".into(), json!(total));
            // A request without `limit` is capped (data::spec::DEFAULT_MAX_LIMIT); tell the
            // client where the rest is.
            let offset = spec.offset.unwrap_or(0).max(0);
            let shown = items.len() as i64;
            if spec.limit.is_none() && offset + shown < total {
                meta.insert(
                    "next".into(),
                    json!(next_link(path, &pairs, offset + shown)),
                );
            }
            json!({ plural: items, "meta": meta })
        }
    };
    Ok(json_response(headers, &body))
}

/// The same request from `offset` on, with the default page size spelled out.
fn next_link(path: &str, pairs: &[(String, String)], offset: i64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| k != "offset" && k != "limit") {
        query.append_pair(k, v);
    }
    query.append_pair("offset", &offset.to_string());
    query.append_pair("limit", &data::spec::DEFAULT_MAX_LIMIT.to_string());
    format!("api/v2/{path}?{}", query.finish())
}

/// How a raw log is offered to the browser.
#[derive(Clone, Copy)]
enum Disposition {
    /// `raw`: a download with a file name.
    Attachment,
    /// `raw_inline`: shown in the page.
    Inline,
}

/// Streams a whole log in constant memory; stdio logs lose their stream markers and get
/// the three-line preamble upstream writes (spec §7.5).
async fn raw(
    state: &AppState,
    log_path: &str,
    disposition: Disposition,
) -> Result<Response, WebError> {
    let target = data::raw_log_target(&state.shared.store, log_path).await?;
    let log = &target.log;
    let stdio = log.kind == store::LogKind::Stdio;
    let preamble = match stdio {
        true => format!(
            "Builder: {}\nBuild number: {}\nWorker name: {}\n",
            target.builder_name, target.build_number, target.worker_name
        ),
        false => String::new(),
    };
    let chunks = data::raw_log(&state.shared.store, log.id).map(move |chunk| {
        chunk
            .map(|text| {
                if !stdio {
                    return Bytes::from(text);
                }
                let mut out = String::with_capacity(text.len());
                for line in text.split_inclusive('\n') {
                    let mut chars = line.chars();
                    chars.next();
                    out.push_str(chars.as_str());
                }
                Bytes::from(out)
            })
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    let stream = futures::stream::once(async move { Ok(Bytes::from(preamble)) }).chain(chunks);
    let content_type = match log.kind {
        store::LogKind::Html => "text/html; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    if let Disposition::Attachment = disposition {
        let name = format!(
            "attachment; filename={}_build_{}_step_{}_log_{}",
            target.builder_name, target.build_number, target.step_name, log.slug
        );
        let safe: String = name
            .chars()
            .map(|c| match c.is_ascii_graphic() || c == ' ' {
                true => c,
                false => '_',
            })
            .collect();
        if let Ok(v) = header::HeaderValue::from_str(&safe) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(response)
}

/// A JSON-RPC failure: HTTP status, code and message (a string, or an object for field
/// validation).
struct RpcError(StatusCode, i64, Value);

impl RpcError {
    fn invalid(message: impl Into<String>) -> RpcError {
        RpcError(StatusCode::BAD_REQUEST, -32600, json!(message.into()))
    }
}

fn rpc_response(id: &Value, outcome: Result<Value, RpcError>) -> Response {
    let (status, body) = match outcome {
        Ok(result) => (
            StatusCode::OK,
            json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        ),
        Err(RpcError(status, code, message)) => (
            status,
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }),
        ),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// JSON-RPC control (spec §8): checks the envelope, resolves the path through the Data
/// API, asks [`authz`], then runs the engine's control action.
async fn rest_post(
    State(state): State<AppState>,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !is_json {
        let error = RpcError::invalid("Invalid content-type (use application/json)");
        return rpc_response(&Value::Null, Err(error));
    }
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let message = json!(format!("JSON parse error: {e}"));
            let error = RpcError(StatusCode::BAD_REQUEST, -32700, message);
            return rpc_response(&Value::Null, Err(error));
        }
    };
    let Some(obj) = request.as_object() else {
        let error = RpcError::invalid("invalid JSON-RPC request: expected an object");
        return rpc_response(&Value::Null, Err(error));
    };
    let id = match obj.get("id") {
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Null)) => v.clone(),
        Some(_) => return rpc_response(&Value::Null, Err(RpcError::invalid("invalid key 'id'"))),
        None => return rpc_response(&Value::Null, Err(RpcError::invalid("missing key 'id'"))),
    };
    let outcome = match envelope(obj) {
        Ok((method, params)) => control(&state, path, method, params).await,
        Err(e) => Err(e),
    };
    rpc_response(&id, outcome)
}

/// The method and params of a JSON-RPC request object.
fn envelope(obj: &Map<String, Value>) -> Result<(&str, &Map<String, Value>), RpcError> {
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::invalid("missing key 'jsonrpc'"));
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return Err(RpcError::invalid("missing key 'method'"));
    };
    let Some(params) = obj.get("params").and_then(Value::as_object) else {
        return Err(RpcError::invalid("missing key 'params'"));
    };
    Ok((method, params))
}

/// A page form's action: exactly the JSON-RPC call, with its error as a page error.
pub(crate) async fn control_from_page(
    state: &AppState,
    path: &str,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Value, WebError> {
    control(state, path, method, params)
        .await
        .map_err(|RpcError(status, _, message)| {
            let text = match message {
                Value::String(s) => s,
                other => other.to_string(),
            };
            match status {
                StatusCode::FORBIDDEN => WebError::Forbidden(text),
                StatusCode::NOT_FOUND => WebError::NotFound(text),
                StatusCode::INTERNAL_SERVER_ERROR => WebError::Internal(text),
                _ => WebError::BadRequest(text),
            }
        })
}

/// Resolves `path` to one entity, checks the action, and runs it.
async fn control(
    state: &AppState,
    path: &str,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let not_found = |m: String| RpcError(StatusCode::NOT_FOUND, -32600, json!(m));
    let entity = match data_get(state, path, &data::ResultSpec::default()).await {
        Ok(data::DataResult::Single { plural, value }) => Some((plural, value)),
        Ok(data::DataResult::List { .. }) => None,
        Err(data::DataError::InvalidPath(_)) => None,
        Err(e @ data::DataError::NotFound(_)) => return Err(not_found(e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "control lookup failed");
            return Err(internal());
        }
    };
    let Some((plural, value)) = entity else {
        return Err(not_found(format!("Invalid path: {path}")));
    };
    let unsupported = || {
        RpcError(
            StatusCode::NOT_IMPLEMENTED,
            -32601,
            json!(format!("action: {method} is not supported")),
        )
    };
    let Some(action) = authz::action_for(plural, method) else {
        return Err(unsupported());
    };
    let check = crate::actions::check_for(state, plural, method, &value)
        .await
        .unwrap_or_else(|| authz::Check::plain(action));
    if let Err(refused) = authz::authorize(state, &check, path).await {
        return Err(RpcError(
            StatusCode::FORBIDDEN,
            -32600,
            json!(refused.to_string()),
        ));
    }
    let int_field = |name: &str| value.get(name).and_then(Value::as_i64).unwrap_or(0);
    let reason = params
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("no reason")
        .to_string();
    let shared = &state.shared;
    let done = |r: Result<(), engine::control::ControlError>| r.map(|()| Value::Null);
    let outcome = match (plural, method) {
        ("forceschedulers", "force") => {
            let name = value.get("name").and_then(Value::as_str).unwrap_or("");
            return force(state, name, params).await;
        }
        ("builds", "stop") => {
            engine::control::stop_build(shared, model::BuildId(int_field("buildid")), &reason);
            Ok(Value::Null)
        }
        ("builds", "rebuild") => {
            engine::control::rebuild(shared, model::BuildId(int_field("buildid")))
                .await
                .map(|(bsid, requests)| buildset_result(bsid, &requests))
        }
        ("buildrequests", "cancel") => {
            let id = model::BuildRequestId(int_field("buildrequestid"));
            done(engine::control::cancel_buildrequest(shared, id, &reason).await)
        }
        ("buildrequests", "set_priority") => {
            let priority = match params.get("priority") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            };
            let Some(priority) = priority else {
                return Err(RpcError(
                    StatusCode::BAD_REQUEST,
                    -32602,
                    json!({"priority": "an integer is required"}),
                ));
            };
            let id = model::BuildRequestId(int_field("buildrequestid"));
            done(engine::control::set_priority(shared, id, priority).await)
        }
        ("workers", "pause" | "unpause" | "stop" | "kill") => {
            use engine::control::WorkerAction;
            let action = match method {
                "pause" => WorkerAction::Pause,
                "unpause" => WorkerAction::Unpause,
                "stop" => WorkerAction::Stop,
                _ => WorkerAction::Kill,
            };
            let id = model::WorkerId(int_field("workerid"));
            done(engine::control::worker_action(shared, id, action, &reason).await)
        }
        ("schedulers", "enable") => {
            let Some(enabled) = params.get("enabled").and_then(Value::as_bool) else {
                return Err(RpcError(
                    StatusCode::BAD_REQUEST,
                    -32602,
                    json!({"enabled": "a boolean is required"}),
                ));
            };
            let id = model::SchedulerId(int_field("schedulerid"));
            done(engine::control::scheduler_enable(shared, id, enabled).await)
        }
        _ => {
            return crate::actions::run(state, plural, method, &value, params)
                .await
                .map_err(|e| match e {
                    WebError::BadRequest(m) => RpcError::invalid(m),
                    WebError::NotFound(m) => not_found(m),
                    WebError::Forbidden(m) => RpcError(StatusCode::FORBIDDEN, -32600, json!(m)),
                    WebError::Internal(m) => {
                        tracing::error!(error = %m, "control action failed");
                        internal()
                    }
                })
        }
    };
    outcome.map_err(|e| match e {
        engine::control::ControlError::NotFound(m) => not_found(format!("not found: {m}")),
        engine::control::ControlError::Invalid(m) => RpcError::invalid(m),
        engine::control::ControlError::Engine(e) => {
            tracing::error!(error = %e, "control action failed");
            internal()
        }
    })
}

fn internal() -> RpcError {
    RpcError(
        StatusCode::INTERNAL_SERVER_ERROR,
        -32603,
        json!("internal error"),
    )
}

/// `[bsid, {"<builderid>": brid, …}]`, upstream's result of force and rebuild.
fn buildset_result(
    bsid: model::BuildsetId,
    requests: &[(model::BuilderId, model::BuildRequestId)],
) -> Value {
    let map: Map<String, Value> = requests
        .iter()
        .map(|(b, r)| (b.0.to_string(), json!(r.0)))
        .collect();
    json!([bsid.0, map])
}

/// `force` on a ForceScheduler: per-field validation errors are -32602 with an object.
async fn force(
    state: &AppState,
    scheduler: &str,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let field_error = |field: &str, message: &str| {
        RpcError(StatusCode::BAD_REQUEST, -32602, json!({ field: message }))
    };
    let builder_names = match (params.get("builderNames"), params.get("builderid")) {
        (Some(Value::Array(names)), _) => {
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                let Some(n) = n.as_str() else {
                    return Err(field_error("builderNames", "a list of names is required"));
                };
                out.push(n.to_string());
            }
            Some(out)
        }
        (Some(_), _) => return Err(field_error("builderNames", "a list of names is required")),
        (None, Some(bid)) => {
            let bid = bid
                .as_i64()
                .or_else(|| bid.as_str().and_then(|s| s.trim().parse().ok()));
            let runtime = state.shared.runtime();
            let name = bid.and_then(|b| {
                runtime
                    .builder_ids
                    .iter()
                    .find(|(_, v)| v.0 == b)
                    .map(|(k, _)| k.clone())
            });
            match name {
                Some(name) => Some(vec![name]),
                None => return Err(field_error("builderid", "unknown builder")),
            }
        }
        (None, None) => None,
    };
    // Spec §8: the owner is the session user's email (or name), else anonymous.
    let owner = crate::auth::current_name();
    let owner = owner.as_str();
    match engine::control::force(&state.shared, scheduler, builder_names, params, owner).await {
        Ok((bsid, requests)) => Ok(buildset_result(bsid, &requests)),
        Err(engine::control::ForceError::Fields(fields)) => {
            Err(RpcError(StatusCode::BAD_REQUEST, -32602, json!(fields)))
        }
        Err(engine::control::ForceError::UnknownScheduler(n)) => Err(RpcError(
            StatusCode::NOT_FOUND,
            -32600,
            json!(format!("no force scheduler named {n:?}")),
        )),
        Err(e) => {
            tracing::error!(error = %e, "force failed");
            Err(internal())
        }
    }
}
