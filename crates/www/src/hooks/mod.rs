//! Change hooks: `/change_hook/DIALECT` turns a forge's or a script's request into changes.
//!
//! Hooks are off unless `change_hook_dialects` enables a dialect. Before any dialect sees a
//! request, this module caps the body size and checks `change_hook_auth` (Basic auth,
//! compared in constant time). Each dialect is one pure function from a request to changes;
//! the changes are recorded before the answer, so a crash after a 200 loses nothing.

mod base;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::AppState;

/// The largest hook body accepted.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Routes under `/change_hook`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/change_hook/{dialect}", any(hook))
}

/// A request as a dialect sees it: already authenticated and size-checked.
pub struct HookRequest {
    /// HTTP method.
    pub method: Method,
    /// Request headers.
    pub headers: HeaderMap,
    /// Query and (for forms) body parameters, in order; names may repeat.
    pub args: Vec<(String, String)>,
    /// The raw body.
    pub body: Bytes,
}

impl HookRequest {
    /// The first value of parameter `name`.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when the body is JSON.
    pub fn is_json(&self) -> bool {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"))
    }
}

/// Why a hook request was refused: always a 4xx with a one-line reason.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The payload is malformed or of the wrong type.
    #[error("{0}")]
    BadPayload(String),
    /// The request is not authentic.
    #[error("{0}")]
    Unauthorized(String),
}

async fn hook(
    State(state): State<AppState>,
    Path(dialect): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let runtime = state.shared.runtime();
    let www = &runtime.config.www;
    let Some(options) = www.change_hook_dialects.get(&dialect) else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("change hook dialect '{dialect}' is not enabled"),
        );
    };
    if body.len() > MAX_BODY {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
    }
    if !www.change_hook_auth.is_empty() {
        match check_auth(&state, &www.change_hook_auth, &headers) {
            Ok(()) => {}
            Err(reason) => {
                let mut r = refuse(StatusCode::UNAUTHORIZED, &reason);
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"change_hook\""),
                );
                return r;
            }
        }
    }
    let mut args: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        args.extend(form_urlencoded::parse(&body).into_owned());
    }
    let request = HookRequest {
        method,
        headers,
        args,
        body,
    };
    let parsed = match dialect.as_str() {
        "base" => base::parse(&request, options),
        other => {
            return refuse(
                StatusCode::NOT_FOUND,
                &format!("change hook dialect '{other}' is not supported yet"),
            )
        }
    };
    let mut changes = match parsed {
        Ok(changes) => changes,
        Err(HookError::BadPayload(reason)) => return refuse(StatusCode::BAD_REQUEST, &reason),
        Err(HookError::Unauthorized(reason)) => return refuse(StatusCode::FORBIDDEN, &reason),
    };
    // `?project=` and `?codebase=` apply to every dialect.
    for change in &mut changes {
        if let Some(p) = request.arg("project").filter(|p| !p.is_empty()) {
            change.project = p.to_string();
        }
        if let Some(c) = request.arg("codebase").filter(|c| !c.is_empty()) {
            change.codebase = c.to_string();
        }
    }
    let mut ids = Vec::new();
    for change in &changes {
        match engine::changes::add_change(&state.shared, change).await {
            Ok(id) => ids.push(id.0),
            Err(e) => {
                tracing::error!(dialect = %dialect, error = %e, "could not record change from hook");
                return refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "could not record the change",
                );
            }
        }
    }
    tracing::info!(dialect = %dialect, changes = ids.len(), "change hook accepted");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{} change(s) recorded\n", ids.len()),
    )
        .into_response()
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}

/// Checks Basic credentials against every `file:` entry of `change_hook_auth`.
fn check_auth(state: &AppState, entries: &[String], headers: &HeaderMap) -> Result<(), String> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| "authentication required".to_string())?;
    let (user, password) = given
        .split_once(':')
        .ok_or_else(|| "authentication required".to_string())?;
    let mut accounts: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries {
        let Some(file) = entry.strip_prefix("file:") else {
            continue;
        };
        let path = state.shared.basedir.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            tracing::error!(file = %path.display(), "change_hook_auth file cannot be read");
            continue;
        };
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if let Some((u, p)) = line.split_once(':') {
                accounts.insert(u.to_string(), p.to_string());
            }
        }
    }
    // Compare against a dummy when the user is unknown, so timing does not reveal names.
    let expected = accounts
        .get(user)
        .cloned()
        .unwrap_or_else(|| "\u{0}".repeat(password.len().max(1)));
    let ok =
        bool::from(expected.as_bytes().ct_eq(password.as_bytes())) && accounts.contains_key(user);
    if ok {
        Ok(())
    } else {
        Err("wrong user or password".to_string())
    }
}
