//! Server-Sent Events (spec §11): `sse/listen[/<path>]` opens a stream, `sse/add/<uuid>/<path>`
//! and `sse/remove/<uuid>/<path>` change its subscriptions.
//!
//! Open streams are kept in a registry by handshake id; a stream removes itself when the
//! client goes away.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Path, State};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::authz::{self, VIEW};
use crate::{AppState, WebError};

type Patterns = Arc<Mutex<Vec<Vec<String>>>>;

/// Open streams by handshake id. Process-wide: one web server per master.
fn registry() -> &'static Mutex<HashMap<String, Patterns>> {
    static STREAMS: OnceLock<Mutex<HashMap<String, Patterns>>> = OnceLock::new();
    STREAMS.get_or_init(Default::default)
}

/// The SSE routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sse/listen", get(listen_all))
        .route("/sse/listen/{*path}", get(listen))
        .route("/sse/add/{uuid}/{*path}", get(add))
        .route("/sse/remove/{uuid}/{*path}", get(remove))
        .route("/sse/add/{uuid}", get(need_path))
        .route("/sse/add", get(need_uuid))
        .route("/sse/remove", get(need_uuid))
}

async fn need_uuid() -> Response {
    WebError::BadRequest("need uuid".into()).into_response()
}

async fn need_path() -> Response {
    WebError::BadRequest("need path".into()).into_response()
}

async fn listen_all(state: State<AppState>) -> Response {
    open(state, None)
}

async fn listen(state: State<AppState>, Path(path): Path<String>) -> Response {
    open(state, Some(path))
}

/// Removes a stream's registry entry when the stream is dropped.
struct Registration(String);

impl Drop for Registration {
    fn drop(&mut self) {
        registry()
            .lock()
            .expect("sse registry lock poisoned")
            .remove(&self.0);
    }
}

fn open(State(state): State<AppState>, path: Option<String>) -> Response {
    if !authz::allows(&state, VIEW) {
        return WebError::Forbidden("you need to have role 'view'".into()).into_response();
    }
    let uuid = handshake_id();
    let patterns: Patterns = Arc::new(Mutex::new(
        path.map(|p| vec![p.split('/').map(str::to_string).collect()])
            .unwrap_or_default(),
    ));
    registry()
        .lock()
        .expect("sse registry lock poisoned")
        .insert(uuid.clone(), patterns.clone());
    let stream = events(state, uuid, patterns);
    Sse::new(stream).into_response()
}

fn events(
    state: AppState,
    uuid: String,
    patterns: Patterns,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let receiver = state.shared.bus.subscribe();
    let registration = Registration(uuid.clone());
    let first = Event::default().event("handshake").data(uuid);
    let rest = futures::stream::unfold(
        (receiver, patterns, registration),
        |(mut receiver, patterns, registration)| async move {
            loop {
                let event = match receiver.recv().await {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                };
                let wanted = patterns
                    .lock()
                    .expect("sse patterns lock poisoned")
                    .iter()
                    .any(|p| {
                        let pattern: Vec<&str> = p.iter().map(String::as_str).collect();
                        event.matches(&pattern)
                    });
                if !wanted {
                    continue;
                }
                let data = json!({"key": &*event.key, "message": &*event.payload}).to_string();
                let out = Event::default().event("event").data(data);
                return Some((Ok(out), (receiver, patterns, registration)));
            }
        },
    );
    futures::StreamExt::chain(futures::stream::once(async move { Ok(first) }), rest)
}

/// A handshake id: random enough to be unguessable by another client on the same master.
fn handshake_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

async fn add(Path((uuid, path)): Path<(String, String)>) -> Response {
    change(&uuid, &path, true)
}

async fn remove(Path((uuid, path)): Path<(String, String)>) -> Response {
    change(&uuid, &path, false)
}

fn change(uuid: &str, path: &str, add: bool) -> Response {
    let patterns = registry()
        .lock()
        .expect("sse registry lock poisoned")
        .get(uuid)
        .cloned();
    let Some(patterns) = patterns else {
        return WebError::NotFound("unknown uuid".into()).into_response();
    };
    let pattern: Vec<String> = path.split('/').map(str::to_string).collect();
    let mut patterns = patterns.lock().expect("sse patterns lock poisoned");
    match add {
        true if !patterns.contains(&pattern) => patterns.push(pattern),
        true => {}
        false => patterns.retain(|p| *p != pattern),
    }
    "ok".into_response()
}
