//! `/grid` (builders down, revisions across) and `/tgrid` (transposed): the builds of each
//! revision, found by source stamp in one query.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use model::BuilderId;
use serde_json::{json, Value as Json};
use store::pages::ChangeFilter;

use super::args::Args;
use super::view::{self, internal, BuilderInfo, Catalog};
use super::Pages;
use crate::{AppState, WebError};

/// Revisions (changes, newest first) and, per revision and builder, every build of it.
pub(crate) struct Revisions {
    pub changes: Vec<Json>,
    /// `cells[revision][builder]`: builds, oldest first.
    pub cells: Vec<Vec<Vec<Json>>>,
}

/// Loads `filter`'s changes and their builds on `builders`: two queries (plus the change
/// files), whatever the number of builders.
pub(crate) async fn revisions(
    state: &AppState,
    catalog: &Catalog,
    builders: &[&BuilderInfo],
    filter: &ChangeFilter,
) -> Result<Revisions, WebError> {
    let store = &state.shared.store;
    let changes = store.changes_filtered(filter).await.map_err(internal)?;
    let stamps: Vec<_> = changes.iter().map(|c| c.sourcestampid).collect();
    let builds = store
        .builds_for_sourcestamps(&stamps)
        .await
        .map_err(internal)?;
    let column = |id: BuilderId| builders.iter().position(|b| b.id == id);
    let cells = changes
        .iter()
        .map(|c| {
            let mut row = vec![Vec::new(); builders.len()];
            for (ss, b) in &builds {
                if *ss == c.sourcestampid {
                    if let Some(col) = column(b.builderid) {
                        row[col].push(view::build(catalog, b));
                    }
                }
            }
            row
        })
        .collect();
    Ok(Revisions {
        changes: changes.iter().map(|c| view::change(state, c)).collect(),
        cells,
    })
}

fn filter(args: &Args, limit: i64) -> ChangeFilter {
    ChangeFilter {
        branches: args.all("branch"),
        categories: args.all("category"),
        limit,
        ..ChangeFilter::default()
    }
}

fn builder_json(b: &BuilderInfo) -> Json {
    json!({"id": b.id.0, "name": b.name, "url": b.url()})
}

/// `/grid?category=&branch=&width=`.
pub(crate) async fn grid(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let builders = catalog.select(&args.all("builder"), &[]);
    let width = args.count("width", 5, 100);
    let revs = revisions(&state, &catalog, &builders, &filter(&args, width)).await?;
    // Oldest revision on the left, as Buildbot's grid.
    let mut changes = revs.changes;
    changes.reverse();
    let mut cells = revs.cells;
    cells.reverse();
    let rows: Vec<Json> = builders
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "builder": builder_json(b),
                "cells": cells.iter().map(|row| row[i].clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Pages::of(&state).page(
        &state,
        "grid.html",
        json!({"changes": changes, "rows": rows, "width": width,
               "live_builders": builders.iter().map(|b| b.id.0).collect::<Vec<_>>(),
               "live_rows": true}),
    )
}

/// `/tgrid?category=&branch=&length=&rev_order=asc|desc`.
pub(crate) async fn tgrid(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let builders = catalog.select(&args.all("builder"), &[]);
    let length = args.count("length", 5, 100);
    let revs = revisions(&state, &catalog, &builders, &filter(&args, length)).await?;
    let ascending = args.one("rev_order") == Some("asc");
    let mut rows: Vec<Json> = revs
        .changes
        .into_iter()
        .zip(revs.cells)
        .map(|(change, cells)| json!({"change": change, "cells": cells}))
        .collect();
    if ascending {
        rows.reverse();
    }
    Pages::of(&state).page(
        &state,
        "tgrid.html",
        json!({"builders": builders.iter().map(|b| builder_json(b)).collect::<Vec<_>>(),
               "rows": rows, "length": length, "rev_order": if ascending { "asc" } else { "desc" },
               "live_builders": builders.iter().map(|b| b.id.0).collect::<Vec<_>>(),
               "live_rows": true}),
    )
}
