//! The worker port: an HTTP listener that checks Basic auth and upgrades to the protocol.
//!
//! Stock workers send `Authorization: Basic base64(name:password)` on `GET /` (any path is
//! accepted). Missing or wrong credentials get 401, a malformed header 400; the log line names
//! the worker and never the password. Past `max_connections` live worker connections an
//! upgrade gets 503 (the worker retries with back-off), so a flood cannot exhaust memory.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::throttle::{Throttle, WARNING_INTERVAL};
use crate::master::Shared;

/// Worker connections allowed at once when `max_connections` is not configured. An idle
/// worker costs the master about 28 KiB (bench/workers.sh), so the default bounds their memory
/// at a few hundred MiB while leaving room for any real fleet.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;

/// The worker port's socket: plain TCP, or TCP with TLS.
pub enum WorkerListener {
    /// `tcp:` or a bare port.
    Plain(tokio::net::TcpListener),
    /// `ssl:`.
    Tls(super::tls::TlsListener),
}

/// Serves the worker protocol on `listener` until the master shuts down.
pub async fn serve(shared: Arc<Shared>, listener: WorkerListener) -> std::io::Result<()> {
    let app = Router::new().fallback(upgrade).with_state(shared.clone());
    let mut stop = shared.stopping();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    match listener {
        WorkerListener::Plain(listener) => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }
        WorkerListener::Tls(listener) => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }
    }
}

/// Counts one live worker connection for as long as it is held.
struct ConnectionSlot(Arc<Shared>);

impl ConnectionSlot {
    /// Takes a slot, or `None` when `limit` connections are open already.
    fn take(shared: &Arc<Shared>, limit: u32) -> Option<ConnectionSlot> {
        let counter = &shared.workers.connections;
        let taken = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < limit as usize).then_some(open + 1)
        });
        taken.ok().map(|_| ConnectionSlot(shared.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.workers.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let (name, password) = match basic_credentials(&headers) {
        Credentials::Missing => {
            return (StatusCode::UNAUTHORIZED, "authorization required\n").into_response()
        }
        Credentials::Malformed => {
            return (StatusCode::BAD_REQUEST, "malformed authorization header\n").into_response()
        }
        Credentials::Given(name, password) => (name, password),
    };
    let expected = shared
        .runtime()
        .config
        .workers
        .iter()
        .find(|w| w.name == name)
        .map(|w| w.password.clone());
    let ok = match &expected {
        Some(expected) => bool::from(expected.as_bytes().ct_eq(password.as_bytes())),
        None => false,
    };
    if !ok {
        static REFUSED: Throttle = Throttle::new(WARNING_INTERVAL);
        if let Some(held_back) = REFUSED.allow() {
            tracing::warn!(worker = %name, held_back, "worker refused: unknown name or wrong password");
        }
        return (
            StatusCode::UNAUTHORIZED,
            "unknown worker or wrong password\n",
        )
            .into_response();
    }
    let limit = shared
        .runtime()
        .config
        .worker_max_connections
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    // Refused before the upgrade: a flood of connections then costs no WebSocket state.
    let Some(slot) = ConnectionSlot::take(&shared, limit) else {
        static FULL: Throttle = Throttle::new(WARNING_INTERVAL);
        if let Some(held_back) = FULL.allow() {
            tracing::warn!(worker = %name, limit, held_back, "worker refused: too many worker connections");
        }
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the master has {limit} worker connections already (raise c['protocols'][…]['max_connections']); retry later\n"),
        )
            .into_response();
    };
    let Ok(ws) = ws else {
        return (
            StatusCode::BAD_REQUEST,
            "this port speaks the worker protocol over WebSocket\n",
        )
            .into_response();
    };
    // Small starting buffers: an idle worker then costs ~28 KiB instead of ~150 KiB
    // (tungstenite's default 128 KiB read buffer is touched on the first frame); buffers
    // still grow on demand for large frames (measured by bench/workers.sh).
    ws.max_message_size(super::connection::MAX_FRAME)
        .max_frame_size(super::connection::MAX_FRAME)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| async move {
            crate::attach::attach(shared, name, socket).await;
            drop(slot);
        })
}

enum Credentials {
    Missing,
    Malformed,
    Given(String, String),
}

fn basic_credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Credentials::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Credentials::Malformed;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return Credentials::Malformed;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Credentials::Malformed;
    };
    match text.split_once(':') {
        Some((name, password)) => Credentials::Given(name.to_string(), password.to_string()),
        None => Credentials::Malformed,
    }
}
