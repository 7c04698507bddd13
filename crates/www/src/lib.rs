//! HTTP for Signalbox: the REST API v2 and, as they land, status pages, events and hooks.
//!
//! [`app`] is the only constructor of the router; tests call it with `oneshot`.
#![warn(missing_docs)]

mod error;
pub mod hooks;
mod rest;

use std::sync::Arc;

use axum::Router;

pub use error::WebError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The master's shared state.
    pub shared: Arc<engine::Shared>,
}

/// The whole web application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .nest("/api/v2", rest::routes())
        .merge(hooks::routes())
        .with_state(state)
}

/// Serves `app` on `listener` until the master stops.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let mut stop = state.shared.stopping();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}
