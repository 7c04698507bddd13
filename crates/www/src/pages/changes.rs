//! `/changes` (the change sources and recent changes) and `/changes/NN`.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use model::ChangeId;
use serde_json::json;
use store::pages::ChangeFilter;

use super::args::Args;
use super::view::{self, internal};
use super::Pages;
use crate::{AppState, WebError};

/// `/changes?branch=&num=`.
pub(crate) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let changes = state
        .shared
        .store
        .changes_filtered(&ChangeFilter {
            branches: args.all("branch"),
            limit: args.count("num", 50, 1000),
            ..ChangeFilter::default()
        })
        .await
        .map_err(internal)?;
    let sources: Vec<String> = state
        .shared
        .runtime()
        .config
        .change_sources
        .iter()
        .map(|s| {
            format!("{s:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    Pages::of(&state).page(
        &state,
        "changes.html",
        json!({
            "sources": sources,
            "changes": changes.iter().map(|c| view::change(&state, c)).collect::<Vec<_>>(),
        }),
    )
}

/// `/changes/NN`.
pub(crate) async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: i64 = id
        .parse()
        .map_err(|_| WebError::NotFound(format!("no change {id:?}")))?;
    let change = state
        .shared
        .store
        .change_get(ChangeId(id))
        .await
        .map_err(internal)?
        .ok_or_else(|| WebError::NotFound(format!("no change {id}")))?;
    Pages::of(&state).page(
        &state,
        "change.html",
        json!({ "change": view::change(&state, &change) }),
    )
}
