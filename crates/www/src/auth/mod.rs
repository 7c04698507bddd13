//! Who is asking: the identity of each request, found once by [`identify`] and read by
//! [`crate::authz`] through [`current`].
//!
//! A request's user comes from, in order: a valid session cookie (made by the login page or
//! `auth/login`); with `useHttpHeader=True` only, the reverse proxy's `REMOTE_USER` /
//! `X-Remote-User` header or the user name of its Basic `Authorization` header (the proxy has
//! checked the password); with `RemoteUserAuth(header=…)` only, that header. Everything else
//! is anonymous. The identity lives in a task-local for the handler's duration, so every
//! check in the handler sees the same user without threading it through each signature.
//!
//! [`identify`] is also the front gate: it refuses cross-origin state-changing requests (the
//! `Sec-Fetch-Site`/`Origin` rule of tower-http 0.7's CSRF layer), and it requires `view`
//! for every read except the few public routes of [`crate::ROUTES`], so a route added later
//! is covered before its handler runs.

pub mod htpasswd;
pub(crate) mod login;
pub(crate) mod session;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use config::AuthConfig;
use subtle::ConstantTimeEq;

use crate::{AppState, WebError};

/// A logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Email address, if known (for role matchers and force owners).
    pub email: Option<String>,
    /// Groups, for `RolesFromGroups`.
    pub groups: Vec<String>,
}

/// The identity of the request being handled.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The user, or `None` for anonymous.
    pub user: Option<User>,
    /// The peer address, for the audit log.
    pub remote: Option<String>,
    /// The request's CSRF token (the same as its `signalbox_csrf` cookie).
    pub csrf: String,
}

tokio::task_local! {
    static CURRENT: Identity;
}

/// The identity of the request this task is handling; anonymous outside a request.
pub fn current() -> Identity {
    CURRENT.try_with(Clone::clone).unwrap_or_default()
}

/// The name actions are recorded under: the user, else `anonymous`.
pub fn current_name() -> String {
    current()
        .user
        .map(|u| u.email.unwrap_or(u.name))
        .unwrap_or_else(|| "anonymous".to_string())
}

/// Middleware: finds the user, checks cross-origin writes and the `view` gate, and runs the
/// rest of the stack with the identity in scope.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let sessions = session::Sessions::of(&state);
    let user = user_of(&state, &sessions, request.headers());
    // Every client gets a CSRF cookie on its first request. It is put into this request's
    // own Cookie header too, so handlers that read the cookie see the token the page shows.
    let cookies = request
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (csrf, fresh) = crate::pages::csrf_token(&state, cookies.as_deref());
    if fresh {
        let cookie = match cookies {
            Some(c) => format!("{c}; {}={csrf}", crate::pages::CSRF_COOKIE),
            None => format!("{}={csrf}", crate::pages::CSRF_COOKIE),
        };
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            request.headers_mut().insert(header::COOKIE, v);
        }
    }
    let logged_name = user
        .as_ref()
        .map(|u| {
            u.name
                .replace(|c: char| c.is_whitespace() || c.is_control(), "_")
        })
        .unwrap_or_else(|| "-".to_string());
    let identity = Identity {
        user,
        remote,
        csrf: csrf.clone(),
    };
    let mut response = CURRENT
        .scope(identity, async move {
            match gate(&state, &request) {
                Ok(()) => next.run(request).await,
                Err(e) => e.into_response(),
            }
        })
        .await;
    response
        .extensions_mut()
        .insert(crate::http_log::LoggedUser(logged_name));
    let prefix = format!("{}=", crate::pages::CSRF_COOKIE);
    let csrf_set = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(prefix.as_bytes()));
    if fresh && !csrf_set {
        if let Ok(v) = HeaderValue::from_str(&crate::pages::csrf_set_cookie(&csrf)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The front gate: cross-origin writes are refused; reads need `view` unless public.
fn gate(state: &AppState, request: &Request) -> Result<(), WebError> {
    // The full path, also inside nested routers; under the Buildbot UI's base, the policy
    // of the root path it stands for.
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or(request.uri().path(), |original| original.path());
    let path = crate::buildbot_ui::policy_path(state.buildbot_ui.as_deref(), path);
    let route = crate::route_of(&path);
    let hook = matches!(route.map(|r| r.policy), Some(crate::Policy::Hook));
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    // A WebSocket handshake is a GET, but it opens a channel that carries the session's
    // cookie, so another site must not open one (cross-site WebSocket hijacking).
    let upgrade = request
        .headers()
        .get(axum::http::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if (!safe || upgrade) && !hook && !same_origin(request.headers()) {
        return Err(WebError::Forbidden(
            "cross-origin request refused (CSRF protection)".to_string(),
        ));
    }
    let public = matches!(
        route.map(|r| r.policy),
        Some(crate::Policy::Public | crate::Policy::Hook)
    );
    if safe && !public && !crate::authz::allows(state, crate::authz::VIEW) {
        return Err(WebError::Forbidden(
            "you are not allowed to view this page; log in at /login".to_string(),
        ));
    }
    Ok(())
}

/// tower-http 0.7's CSRF rule (after Go's `CrossOriginProtection`): a browser tells where a
/// request comes from in `Sec-Fetch-Site`, or else in `Origin`; a request with neither is
/// not from a browser, so it carries no ambient credentials an attacker could borrow.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match text("sec-fetch-site") {
        Some("same-origin" | "none") => return true,
        Some(_) => return false,
        None => {}
    }
    let Some(origin) = text("origin") else {
        return true;
    };
    let Some(host) = text("host") else {
        return false;
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    origin_host.eq_ignore_ascii_case(host)
}

/// The user of a request: session, then the trusted proxy headers if configured.
fn user_of(state: &AppState, sessions: &session::Sessions, headers: &HeaderMap) -> Option<User> {
    if let Some(user) = sessions.user(headers) {
        return Some(user);
    }
    let runtime = state.shared.runtime();
    let authz = &runtime.config.www.authz;
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if let Some(AuthConfig::RemoteUser { header }) = &authz.auth {
        // RemoteUserAuth: `user@realm` keeps the user part, as upstream's default regex.
        let name = text(header)?;
        let name = name.split('@').next().unwrap_or(&name).to_string();
        return Some(plain_user(&name));
    }
    if !authz.use_http_header {
        return None;
    }
    if let Some(name) = text("remote_user").or_else(|| text("x-remote-user")) {
        return Some(plain_user(&name));
    }
    let (name, _password) = basic_credentials(headers)?;
    Some(plain_user(&name))
}

fn plain_user(name: &str) -> User {
    User {
        name: name.to_string(),
        email: None,
        groups: Vec::new(),
    }
}

/// The user name and password of a Basic `Authorization` header.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_string(), password.to_string()))
}

/// Checks a user name and password against the configured backend.
pub(crate) async fn verify_password(state: &AppState, name: &str, password: &str) -> Option<User> {
    let runtime = state.shared.runtime();
    let auth = runtime.config.www.authz.auth.clone()?;
    drop(runtime);
    match auth {
        AuthConfig::Users(users) => {
            // Compare against every entry so the time does not tell which names exist.
            let mut found = false;
            for (u, p) in &users {
                let same_user = u.as_bytes().ct_eq(name.as_bytes());
                let same_password = p.as_bytes().ct_eq(password.as_bytes());
                found |= bool::from(same_user & same_password);
            }
            found.then(|| plain_user(name))
        }
        AuthConfig::HtPasswd(file) => {
            let path = state.shared.basedir.join(file);
            let text = tokio::fs::read_to_string(&path).await.ok()?;
            let hash = text.lines().find_map(|line| {
                let (user, hash) = line.trim_end().split_once(':')?;
                (user == name).then(|| hash.to_string())
            })?;
            let password = password.to_string();
            let ok = tokio::task::spawn_blocking(move || htpasswd::verify(&password, &hash))
                .await
                .unwrap_or(false);
            ok.then(|| plain_user(name))
        }
        AuthConfig::UsersTable => {
            let record = state.shared.store.user_get_by_username(name).await.ok()??;
            let hash = record.bb_password.clone()?;
            let password = password.to_string();
            let ok = tokio::task::spawn_blocking(move || htpasswd::verify(&password, &hash))
                .await
                .unwrap_or(false);
            if !ok {
                return None;
            }
            let attr = |t: &str| {
                record
                    .attributes
                    .iter()
                    .find(|(k, _)| k == t)
                    .map(|(_, v)| v.clone())
            };
            Some(User {
                name: name.to_string(),
                email: attr("email"),
                groups: attr("groups")
                    .map(|g| g.split(',').map(|s| s.trim().to_string()).collect())
                    .unwrap_or_default(),
            })
        }
        AuthConfig::RemoteUser { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("test header"));
        }
        h
    }

    #[test]
    fn cross_origin_rule() {
        assert!(same_origin(&headers(&[])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8010"),
            ("host", "127.0.0.1:8010")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8010")
        ])));
    }

    #[test]
    fn basic_header() {
        let h = headers(&[("authorization", "Basic Ym9iOnNlY3JldDpwYXNz")]);
        assert_eq!(
            basic_credentials(&h),
            Some(("bob".to_string(), "secret:pass".to_string()))
        );
        assert_eq!(
            basic_credentials(&headers(&[("authorization", "Bearer x")])),
            None
        );
    }
}
