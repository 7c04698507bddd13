//! `/login` (a form), `/logout`, `/authfail`, and upstream's `auth/login` (Basic
//! credentials, spec §12.2) and `auth/logout`.
//!
//! A successful login rotates both the session id and the CSRF token, so nothing a visitor
//! held before logging in stays valid. Failures are throttled per user name and address.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::session::{is_https, Sessions};
use super::{basic_credentials, current, verify_password, User};
use crate::{AppState, WebError};

/// GET `/login`: the login form, or the `httpLoginUrl` of a reverse proxy if configured.
pub async fn form(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let redirect = redirect_of(query.as_deref());
    let runtime = state.shared.runtime();
    if let Some(url) = &runtime.config.www.authz.http_login_url {
        return Redirect::to(url).into_response();
    }
    login_page(&redirect, None, StatusCode::OK)
}

/// POST `/login`: checks the CSRF token, the throttle and the password, then starts a
/// session and goes to `redirect`.
pub async fn submit(
    State(state): State<AppState>,
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
    if !crate::pages::csrf_check(&state, get("csrf"), &headers) {
        return Err(WebError::Forbidden(
            "missing or invalid CSRF token: reload the page and try again".to_string(),
        ));
    }
    let redirect = safe_redirect(get("redirect").unwrap_or("/"));
    let name = get("username").unwrap_or("").trim().to_string();
    let password = get("password").unwrap_or("").to_string();
    match check(&state, &name, &password).await {
        Outcome::Throttled => Ok(login_page(
            &redirect,
            Some("Too many failed attempts; wait a few minutes."),
            StatusCode::TOO_MANY_REQUESTS,
        )),
        Outcome::Refused => Ok(login_page(
            &redirect,
            Some("Wrong user name or password."),
            StatusCode::UNAUTHORIZED,
        )),
        Outcome::Accepted(user) => Ok(start_session(&state, &headers, user, &redirect)),
    }
}

/// GET `auth/login`: Basic credentials (or the proxy's user, with `useHttpHeader`) become a
/// session; without them, a Basic challenge.
pub async fn basic(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let redirect = redirect_of(query.as_deref());
    let runtime = state.shared.runtime();
    let remote_user = matches!(
        runtime.config.www.authz.auth,
        Some(config::AuthConfig::RemoteUser { .. })
    );
    let trusted = runtime.config.www.authz.use_http_header || remote_user;
    drop(runtime);
    if trusted {
        return match current().user {
            Some(user) => start_session(&state, &headers, user, &redirect),
            None => WebError::Forbidden("no user given by the proxy".to_string()).into_response(),
        };
    }
    let Some((name, password)) = basic_credentials(&headers) else {
        return challenge();
    };
    match check(&state, &name, &password).await {
        Outcome::Accepted(user) => start_session(&state, &headers, user, &redirect),
        Outcome::Throttled => {
            (StatusCode::TOO_MANY_REQUESTS, "too many failed attempts").into_response()
        }
        Outcome::Refused => challenge(),
    }
}

/// GET `/logout` and `auth/logout`: ends the session and goes to `redirect`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let redirect = redirect_of(query.as_deref());
    let secure = is_https(&state, &headers);
    let cookie = Sessions::of(&state).logout(&headers, secure);
    let mut response = Redirect::to(&redirect).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// GET `/authfail`: where a refused `/users` lands, as in seed 002.
pub async fn authfail() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(
            "<!doctype html><title>Authentication failed</title><h1>Authentication failed</h1>\
             <p>You are not allowed to see this page. <a href=\"/login\">Log in</a> or go \
             <a href=\"/\">home</a>.</p>",
        ),
    )
        .into_response()
}

enum Outcome {
    Accepted(User),
    Refused,
    Throttled,
}

async fn check(state: &AppState, name: &str, password: &str) -> Outcome {
    let sessions = Sessions::of(state);
    let key = format!("{name}\u{0}{}", current().remote.unwrap_or_default());
    if sessions.throttled(&key) {
        tracing::warn!(user = %name, "login throttled");
        return Outcome::Throttled;
    }
    match verify_password(state, name, password).await {
        Some(user) => {
            sessions.succeeded(&key);
            Outcome::Accepted(user)
        }
        None => {
            sessions.failed(&key);
            tracing::info!(user = %name, "login refused");
            Outcome::Refused
        }
    }
}

fn start_session(state: &AppState, headers: &HeaderMap, user: User, redirect: &str) -> Response {
    let secure = is_https(state, headers);
    tracing::info!(user = %user.name, "logged in");
    let session = Sessions::of(state).login(headers, user, secure);
    let csrf = crate::pages::csrf_set_cookie(&crate::pages::csrf_token(state, None).0);
    let mut response = Redirect::to(redirect).into_response();
    for cookie in [session, csrf] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

fn challenge() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"buildbot\"")],
        "authentication required",
    )
        .into_response()
}

pub(crate) fn redirect_of(query: Option<&str>) -> String {
    let value = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "redirect")
        .map(|(_, v)| v.into_owned());
    safe_redirect(value.as_deref().unwrap_or("/"))
}

/// Only a path on this site: an absolute or protocol-relative URL would make the login page
/// an open redirector.
fn safe_redirect(target: &str) -> String {
    let local = target.starts_with('/') && !target.starts_with("//") && !target.contains('\\');
    if local && !target.chars().any(char::is_control) {
        target.to_string()
    } else {
        "/".to_string()
    }
}

fn login_page(redirect: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = current().csrf;
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Log in · Signalbox</title>\
         <link rel=\"stylesheet\" href=\"/pages/static/signalbox.css\"></head><body><main id=\"main\">\
         <h1>Log in</h1>{error}<form method=\"post\" action=\"/login\" class=\"login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"redirect\" value=\"{redirect}\">\
         <label>User name <input name=\"username\" autocomplete=\"username\" required></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Log in</button></form></main></body></html>",
        csrf = escape(&csrf),
        redirect = escape(redirect),
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// HTML-escapes text for an element or a quoted attribute.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_site() {
        assert_eq!(safe_redirect("/builders/a"), "/builders/a");
        assert_eq!(safe_redirect("//evil.example/"), "/");
        assert_eq!(safe_redirect("https://evil.example/"), "/");
        assert_eq!(safe_redirect("/\\evil.example"), "/");
    }
}
