//! REST API v2: GETs through the Data API, JSON-RPC control POSTs (spec §4–§8).

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use model::LogId;
use serde_json::{json, Value};

use crate::{AppState, WebError};

/// Routes under `/api/v2`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/logs/{id}/raw", get(raw_log))
        .route("/logs/{id}/raw_inline", get(raw_log_inline))
        .route("/{*path}", get(rest_get).post(rest_post))
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(headers: &HeaderMap, value: &Value) -> Response {
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
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let pairs = query_pairs(query.as_deref());
    let spec = data::ResultSpec::parse(&pairs)?;
    let body = match data::get(&state.shared.store, &path, &spec).await? {
        data::DataResult::Single { plural, value } => json!({ plural: [value], "meta": {} }),
        data::DataResult::List {
            plural,
            items,
            total,
        } => json!({ plural: items, "meta": { "total": total } }),
    };
    Ok(json_response(&headers, &body))
}

async fn raw_log(state: State<AppState>, id: Path<i64>) -> Result<Response, WebError> {
    raw(state, id, true).await
}

async fn raw_log_inline(state: State<AppState>, id: Path<i64>) -> Result<Response, WebError> {
    raw(state, id, false).await
}

/// Streams a whole log in constant memory; stdio stream markers are stripped.
async fn raw(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    attachment: bool,
) -> Result<Response, WebError> {
    let store = &state.shared.store;
    let log = store
        .log_get(LogId(id))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let Some(log) = log else {
        return Err(WebError::NotFound(format!(
            "not found while getting from logs/{id}/raw"
        )));
    };
    let stdio = log.kind == store::LogKind::Stdio;
    let stream = data::raw_log(store, log.id).map(move |chunk| {
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
    let content_type = if log.kind == store::LogKind::Html {
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    if attachment {
        let name = format!("attachment; filename=log_{}_{}", id, log.slug);
        if let Ok(v) = header::HeaderValue::from_str(&name) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(response)
}

fn rpc_error(status: StatusCode, id: &Value, code: i64, message: Value) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// JSON-RPC control (spec §8). Only `force` on force schedulers and `stop` on builds so far.
async fn rest_post(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !is_json {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            -32600,
            json!("Invalid content-type (use application/json)"),
        );
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                -32700,
                json!(format!("JSON parse error: {e}")),
            )
        }
    };
    let Some(obj) = request.as_object() else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            -32600,
            json!("invalid JSON-RPC request: expected an object"),
        );
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(|v| v.as_str()) != Some("2.0") {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32600,
            json!("missing key 'jsonrpc'"),
        );
    }
    let Some(method) = obj.get("method").and_then(|v| v.as_str()) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32600,
            json!("missing key 'method'"),
        );
    };
    let Some(params) = obj.get("params").and_then(|v| v.as_object()) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32600,
            json!("missing key 'params'"),
        );
    };
    let segments: Vec<&str> = path.split('/').collect();
    let allowed = |action: &str| crate_policy_allows(&state, action);
    let result = match (segments.as_slice(), method) {
        (["forceschedulers", name], "force") => {
            if !allowed("forceBuild") {
                return rpc_error(
                    StatusCode::FORBIDDEN,
                    &id,
                    -32600,
                    json!("you are not allowed to force builds"),
                );
            }
            let builder_names = match (params.get("builderNames"), params.get("builderid")) {
                (Some(Value::Array(names)), _) => Some(
                    names
                        .iter()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect(),
                ),
                (_, Some(bid)) => {
                    let bid = bid
                        .as_i64()
                        .or_else(|| bid.as_str().and_then(|s| s.parse().ok()));
                    let runtime = state.shared.runtime();
                    match bid.and_then(|b| {
                        runtime
                            .builder_ids
                            .iter()
                            .find(|(_, v)| v.0 == b)
                            .map(|(k, _)| k.clone())
                    }) {
                        Some(name) => Some(vec![name]),
                        None => {
                            return rpc_error(
                                StatusCode::BAD_REQUEST,
                                &id,
                                -32602,
                                json!({"builderid": "unknown builder"}),
                            )
                        }
                    }
                }
                _ => None,
            };
            let owner = params
                .get("owner")
                .and_then(|v| v.as_str())
                .unwrap_or("anonymous")
                .to_string();
            match engine::control::force(&state.shared, name, builder_names, params, &owner).await {
                Ok((bsid, requests)) => {
                    let map: serde_json::Map<String, Value> = requests
                        .iter()
                        .map(|(b, r)| (b.0.to_string(), json!(r.0)))
                        .collect();
                    json!([bsid.0, map])
                }
                Err(engine::control::ForceError::Fields(fields)) => {
                    return rpc_error(StatusCode::BAD_REQUEST, &id, -32602, json!(fields))
                }
                Err(engine::control::ForceError::UnknownScheduler(n)) => {
                    return rpc_error(
                        StatusCode::NOT_FOUND,
                        &id,
                        -32600,
                        json!(format!("no force scheduler named {n:?}")),
                    )
                }
                Err(e) => {
                    tracing::error!(error = %e, "force failed");
                    return rpc_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &id,
                        -32603,
                        json!("internal error"),
                    );
                }
            }
        }
        (["builds", bid], "stop") => {
            if !allowed("stopBuild") {
                return rpc_error(
                    StatusCode::FORBIDDEN,
                    &id,
                    -32600,
                    json!("you are not allowed to stop builds"),
                );
            }
            let Ok(bid) = bid.parse::<i64>() else {
                return rpc_error(StatusCode::NOT_FOUND, &id, -32600, json!("Invalid path"));
            };
            let reason = params
                .get("reason")
                .and_then(|v| v.as_str())
                .unwrap_or("no reason");
            engine::control::stop_build(&state.shared, model::BuildId(bid), reason);
            Value::Null
        }
        (_, m) => {
            return rpc_error(
                StatusCode::NOT_IMPLEMENTED,
                &id,
                -32601,
                json!(format!("action: {m} is not supported")),
            )
        }
    };
    let body = json!({ "jsonrpc": "2.0", "id": id, "result": result });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The access policy for control actions: denied unless the config allows the action for
/// everybody. (Authentication and the full policy come with the access-control work.)
fn crate_policy_allows(state: &AppState, action: &str) -> bool {
    let runtime = state.shared.runtime();
    matches!(
        runtime.config.www.authz.actions.get(action),
        Some(config::AuthzRule::Allow)
    )
}
