//! `/console`: revisions down the page, builders across, every build of every shown
//! revision (placed by source stamp, not "the last N builds"). As in Buildbot 0.8, a failed
//! build is red when it broke its builder (the previous build passed) and orange
//! (`failure-again`) when the builder was already failing.

use std::collections::HashSet;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use model::{BuildId, Results};
use serde_json::{json, Value as Json};
use store::pages::ChangeFilter;

use super::args::Args;
use super::grid::revisions;
use super::view::{internal, Catalog};
use super::Pages;
use crate::{AppState, WebError};

/// `/console?builder=&repository=&branch=&category=&project=&codebase=&name=&revs=`.
pub(crate) async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let builders = catalog.select(&args.all("builder"), &args.all("category"));
    let by_time = state
        .shared
        .runtime()
        .config
        .www
        .options
        .get("order_console_by_time")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let filter = ChangeFilter {
        branches: args.all("branch"),
        repositories: args.all("repository"),
        projects: args.all("project"),
        codebases: args.all("codebase"),
        authors: args.all("name"),
        by_time,
        limit: args.count("revs", 25, 200),
        ..ChangeFilter::default()
    };
    let mut revs = revisions(&state, &catalog, &builders, &filter).await?;
    mark_regressions(&state, &mut revs.cells).await?;
    let rows: Vec<Json> = revs
        .changes
        .into_iter()
        .zip(revs.cells)
        .map(|(change, cells)| json!({"change": change, "cells": cells}))
        .collect();
    Pages::of(&state).page(
        &state,
        "console.html",
        json!({
            "builders": builders.iter().map(|b| json!({"id": b.id.0, "name": b.name, "url": b.url()})).collect::<Vec<_>>(),
            "rows": rows,
            "by_time": by_time,
            "live_builders": builders.iter().map(|b| b.id.0).collect::<Vec<_>>(),
            "live_rows": true,
        }),
    )
}

/// Marks failed builds whose builder's previous build also failed as `failure-again`: one
/// query for all the failed builds on the page.
async fn mark_regressions(state: &AppState, cells: &mut [Vec<Vec<Json>>]) -> Result<(), WebError> {
    let failed: Vec<BuildId> = cells
        .iter()
        .flatten()
        .flatten()
        .filter(|b| b["class"] == "failure")
        .filter_map(|b| b["id"].as_i64().map(BuildId))
        .collect();
    let previous = state
        .shared
        .store
        .previous_results(&failed)
        .await
        .map_err(internal)?;
    let again: HashSet<i64> = previous
        .into_iter()
        .filter(|(_, r)| matches!(r, Some(Results::Failure | Results::Exception)))
        .map(|(id, _)| id.0)
        .collect();
    for b in cells.iter_mut().flatten().flatten() {
        if b["id"].as_i64().is_some_and(|id| again.contains(&id)) {
            b["class"] = json!("failure failure-again");
            b["again"] = json!(true);
        }
    }
    Ok(())
}
