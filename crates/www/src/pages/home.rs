//! `/` (the welcome page, `root.html`) and `/about`.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::view::{builder_boxes, Catalog};
use super::Pages;
use crate::{AppState, WebError};

/// `/`: the welcome page with a one-line health summary of every builder.
pub(crate) async fn root(State(state): State<AppState>) -> Result<Response, WebError> {
    let catalog = Catalog::of(&state);
    let all: Vec<_> = catalog.builders.iter().collect();
    let boxes = builder_boxes(&state, &catalog, &all, &[]).await?;
    let failing = boxes
        .iter()
        .filter(|b| matches!(b["class"].as_str(), Some("failure" | "exception")))
        .count();
    Pages::of(&state).page(
        &state,
        "root.html",
        json!({ "builders": boxes.len(), "failing": failing }),
    )
}

/// `/about`: versions.
pub(crate) async fn about(State(state): State<AppState>) -> Result<Response, WebError> {
    let backend = match state.shared.store.backend() {
        store::Backend::Sqlite => "SQLite",
        store::Backend::Postgres => "PostgreSQL",
    };
    Pages::of(&state).page(
        &state,
        "about.html",
        json!({
            "versions": [
                ["Signalbox", env!("CARGO_PKG_VERSION")],
                ["database", backend],
                ["axum", "0.8"],
                ["minijinja", "3"],
            ],
        }),
    )
}
