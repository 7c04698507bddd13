//! `http.log`: one line per request in the master directory, apart from `master.log` (seed
//! 002 "Logging configuration"), rotated by the WebStatus options `rotateLength` and
//! `maxRotatedFiles` (default 1 MB and 10 files, as Buildbot).
//!
//! A line holds the client address, the user name, the time, the method, the path with its
//! query (values of parameters whose names suggest secrets replaced by `***`), the status
//! and the user agent. No header value other than the user agent is written, so neither an
//! `Authorization` header nor a session cookie can reach the file; those headers are also
//! marked sensitive, so that no tracing layer prints them.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value as Json;

use crate::rotating_log::{
    Rotation, SharedRotatingFile, DEFAULT_MAX_ROTATED_FILES, DEFAULT_ROTATE_LENGTH,
};
use crate::AppState;

/// The user a request was handled for, left on the response by the identity layer.
#[derive(Debug, Clone)]
pub struct LoggedUser(pub String);

/// Middleware: writes the request's line once the response is ready.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    for name in [
        header::AUTHORIZATION,
        header::PROXY_AUTHORIZATION,
        header::COOKIE,
    ] {
        if let Some(value) = request.headers_mut().get_mut(&name) {
            value.set_sensitive(true);
        }
    }
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "-".to_string());
    let method = request.method().to_string();
    let target = redact(
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    );
    let agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .replace('"', "'");
    let mut response = next.run(request).await;
    if let Some(value) = response.headers_mut().get_mut(header::SET_COOKIE) {
        value.set_sensitive(true);
    }
    let user = response
        .extensions()
        .get::<LoggedUser>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| "-".to_string());
    let line = format!(
        "{remote} - {user} [{time}] \"{method} {target}\" {status} \"{agent}\"\n",
        time = chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S +0000"),
        status = response.status().as_u16(),
    );
    write_line(&state, line.as_bytes());
    response
}

/// Appends to the master's `http.log`, opening it on first use.
fn write_line(state: &AppState, line: &[u8]) {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, SharedRotatingFile>>> = OnceLock::new();
    let rotation = rotation(state);
    let mut files = FILES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let file = match files.get(&rotation.path) {
        Some(file) => file.clone(),
        None => match SharedRotatingFile::open(rotation.clone()) {
            Ok(file) => {
                files.insert(rotation.path.clone(), file.clone());
                file
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %rotation.path.display(), "cannot open http.log");
                return;
            }
        },
    };
    drop(files);
    let mut file = file;
    if let Err(e) = file.write_all(line) {
        tracing::warn!(error = %e, "cannot write http.log");
    }
}

/// Where `http.log` goes and how it rotates, from the WebStatus options.
pub fn rotation(state: &AppState) -> Rotation {
    let runtime = state.shared.runtime();
    let options = &runtime.config.www.options;
    let number = |name: &str| options.get(name).and_then(Json::as_u64);
    Rotation {
        path: state.shared.basedir.join("http.log"),
        rotate_length: number("rotateLength").unwrap_or(DEFAULT_ROTATE_LENGTH),
        max_rotated_files: number("maxRotatedFiles")
            .map(|n| n as usize)
            .unwrap_or(DEFAULT_MAX_ROTATED_FILES),
    }
}

/// The path and query with the values of secret-looking parameters replaced.
fn redact(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or("").to_ascii_lowercase();
            let secret = ["pass", "token", "secret", "csrf", "session", "auth", "key"]
                .iter()
                .any(|s| name.contains(s));
            if secret {
                format!("{}=***", pair.split('=').next().unwrap_or(""))
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_queries_are_hidden() {
        assert_eq!(redact("/builders"), "/builders");
        assert_eq!(
            redact("/x?user=bob&password=hunter2&csrf=abc&n=1"),
            "/x?user=bob&password=***&csrf=***&n=1"
        );
    }
}
