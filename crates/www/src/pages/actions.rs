//! The control forms of the pages: every seed-002 action's button posts here, to
//! `/control/{type}/{id}/{method}`, which runs exactly what the JSON-RPC call
//! `POST /api/v2/{type}/{id}` with `method` runs (same lookup, same policy, same audit), after
//! checking the form's CSRF token. Also the CSRF helpers the login form and the identity
//! middleware share, and the `site.auth` values every template sees.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{json, Map, Value as Json};

use super::{csrf, Pages};
use crate::authz::{self, Action, ACTIONS};
use crate::{AppState, WebError};

/// The name of the CSRF cookie.
pub(crate) const CSRF_COOKIE: &str = csrf::COOKIE;

/// The request's CSRF token if its cookie holds a valid one, else a fresh token (and true).
pub(crate) fn csrf_token(state: &AppState, cookie_header: Option<&str>) -> (String, bool) {
    csrf::token(&Pages::of(state).secret, cookie_header)
}

/// The `Set-Cookie` value for a CSRF token.
pub(crate) fn csrf_set_cookie(token: &str) -> String {
    csrf::set_cookie(token)
}

/// True when a form's `csrf` field matches the request's CSRF cookie.
pub(crate) fn csrf_check(state: &AppState, field: Option<&str>, headers: &HeaderMap) -> bool {
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    csrf::check(&Pages::of(state).secret, field, cookie)
}

/// `site.auth` for templates: who is logged in, where to log in, the CSRF token, and which
/// actions' buttons to show.
pub(crate) fn site_auth(state: &AppState) -> Json {
    let identity = crate::auth::current();
    let runtime = state.shared.runtime();
    let login_url = runtime
        .config
        .www
        .authz
        .http_login_url
        .clone()
        .unwrap_or_else(|| "/login".to_string());
    let has_login = runtime.config.www.authz.auth.is_some()
        || runtime.config.www.authz.http_login_url.is_some()
        || runtime.config.www.authz.use_http_header;
    drop(runtime);
    let actions: Map<String, Json> = ACTIONS
        .iter()
        .map(|a| (a.to_string(), json!(authz::advertised(state, Action(a)))))
        .collect();
    json!({
        "user": identity.user.map(|u| u.name),
        "login_url": if has_login { Some(login_url) } else { None },
        "csrf": identity.csrf,
        "actions": actions,
        "masterid": state.shared.masterid.0,
    })
}

/// POST `/control/{type}/{id}/{method}`: one action from a page form (fields `csrf`,
/// optional `reason`, optional `redirect`), then back to the page; a builder's ping answers
/// with a page of each worker's reply instead.
pub(crate) async fn submit(
    State(state): State<AppState>,
    Path((plural, id, method)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    if body.len() > 16 * 1024 {
        return Err(WebError::BadRequest("form too large".to_string()));
    }
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if !csrf_check(&state, get("csrf"), &headers) {
        return Err(WebError::Forbidden(
            "missing or invalid CSRF token: reload the page and try again".to_string(),
        ));
    }
    let id = resolve_id(&state, &plural, &id);
    let params: Map<String, Json> = fields
        .iter()
        .filter(|(k, _)| k != "csrf" && k != "redirect")
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    let path = format!("{plural}/{id}");
    let result = crate::rest::control_from_page(&state, &path, &method, &params).await?;
    let back = get("redirect")
        .filter(|r| r.starts_with('/') && !r.starts_with("//") && !r.contains('\\'))
        .unwrap_or("/");
    // A ping's answer is the point of pressing the button: show it, not the page again.
    if plural == "builders" && method == "ping" {
        return Pages::of(&state).page(
            &state,
            "ping.html",
            json!({ "builder": builder_name(&state, &id), "result": result, "back": back }),
        );
    }
    Ok(Redirect::to(back).into_response())
}

/// The name of builder `id` (a number or a name) in the config in force, else `id` itself.
fn builder_name(state: &AppState, id: &str) -> String {
    let runtime = state.shared.runtime();
    let by_id = id
        .parse::<i64>()
        .ok()
        .and_then(|n| runtime.builder_ids.iter().find(|(_, b)| b.0 == n))
        .map(|(name, _)| name.clone());
    by_id.unwrap_or_else(|| id.to_string())
}

/// Workers are named in the pages; the REST path wants the id.
fn resolve_id(state: &AppState, plural: &str, id: &str) -> String {
    if plural != "workers" || id.parse::<i64>().is_ok() {
        return id.to_string();
    }
    let runtime = state.shared.runtime();
    runtime
        .worker_ids
        .get(id)
        .map(|w| w.0.to_string())
        .unwrap_or_else(|| id.to_string())
}
