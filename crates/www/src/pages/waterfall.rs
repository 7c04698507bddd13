//! `/waterfall` (builder columns, builds newest first, idle gaps compressed so 5-second and
//! 3-hour builds stay readable) and `/buildstatus?builder=&number=`.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{json, Value as Json};
use store::pages::BuildFilter;

use super::args::Args;
use super::build::find_build;
use super::view::{self, builder_boxes, internal, BuilderInfo, Catalog};
use super::Pages;
use crate::{AppState, WebError};

/// A gap between two rows longer than this is shown as one "idle" line, not as space.
const IDLE_GAP_S: i64 = 600;

/// A waterfall row being filled: its newest start (shown), its oldest, and a cell per
/// builder column (null when empty).
struct Row {
    time: i64,
    oldest: i64,
    cells: Vec<Json>,
}

/// The `num_events` and `num_events_max` options.
fn event_limits(state: &AppState) -> (i64, i64) {
    let runtime = state.shared.runtime();
    let options = &runtime.config.www.options;
    let get = |k: &str| options.get(k).and_then(Json::as_i64).filter(|n| *n > 0);
    let max = get("num_events_max").unwrap_or(1000);
    (get("num_events").unwrap_or(200).min(max), max)
}

/// Builders of the waterfall and the feeds: `builder=` and `category=`.
pub(crate) fn selected<'c>(catalog: &'c Catalog, args: &Args) -> Vec<&'c BuilderInfo> {
    catalog.select(&args.all("builder"), &args.all("category"))
}

/// The time window: `last_time` (end), `first_time` (start), `show_time` (length).
fn window(args: &Args) -> (Option<i64>, Option<i64>) {
    let last = args.int("last_time");
    let first = args.int("first_time").or_else(|| {
        let span = args.int("show_time")?;
        Some(last.unwrap_or_else(model::now) - span)
    });
    (first, last.map(|t| t + 1))
}

/// `/waterfall?builder=&branch=&category=&show_events=&failures_only=&last_time=&first_time=&show_time=&num_events=`.
pub(crate) async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let mut shown = selected(&catalog, &args);
    let branches = args.all("branch");
    let mut boxes = builder_boxes(&state, &catalog, &shown, &branches).await?;
    if args.flag("failures_only", false) {
        // Failing: the last finished build was not successful, or the builder is offline.
        let keep: Vec<bool> = boxes
            .iter()
            .map(|b| {
                b["offline"].as_bool() == Some(true)
                    || !matches!(b["class"].as_str(), Some("success" | "warnings" | "none"))
            })
            .collect();
        let mut it = keep.iter();
        shown.retain(|_| *it.next().unwrap_or(&false));
        let mut it = keep.iter();
        boxes.retain(|_| *it.next().unwrap_or(&false));
    }
    let (default_events, max_events) = event_limits(&state);
    let num_events = args.count("num_events", default_events, max_events);
    let (first_time, before) = window(&args);
    let rows = state
        .shared
        .store
        .builds_filtered(&BuildFilter {
            builders: Some(shown.iter().map(|b| b.id).collect()),
            branches,
            started_before: before,
            started_after: first_time,
            limit: num_events,
            ..BuildFilter::default()
        })
        .await
        .map_err(internal)?;
    let ids: Vec<_> = rows.iter().map(|r| r.build.id).collect();
    let steps = state
        .shared
        .store
        .steps_for_builds(&ids)
        .await
        .map_err(internal)?;
    let columns: HashMap<model::BuilderId, usize> =
        shown.iter().enumerate().map(|(i, b)| (b.id, i)).collect();
    // Builds are packed into rows, newest first: a build joins the open row when its column
    // is free there and it started within IDLE_GAP_S of the row's newest build, so the table
    // has about as many rows as there are moments of activity, not one row per build (at
    // 1,000 builders a row per build made pages of megabytes of empty cells).
    let mut table: Vec<Json> = Vec::new();
    let mut open: Option<Row> = None;
    let mut previous: Option<i64> = None;
    for r in &rows {
        let Some(&col) = columns.get(&r.build.builderid) else {
            continue;
        };
        let started = r.build.started_at;
        let fits = open
            .as_ref()
            .is_some_and(|row| row.cells[col].is_null() && row.time - started <= IDLE_GAP_S);
        if !fits {
            if let Some(row) = open.take() {
                previous = Some(row.oldest);
                table.push(json!({"time": row.time, "cells": row.cells}));
            }
            if let Some(prev) = previous {
                if prev - started > IDLE_GAP_S {
                    table.push(json!({"gap": prev - started}));
                }
            }
            open = Some(Row {
                time: started,
                oldest: started,
                cells: vec![Json::Null; shown.len()],
            });
        }
        let mut b = view::build(&catalog, &r.build);
        let url = b["url"].as_str().unwrap_or_default().to_string();
        b["steps"] = steps
            .iter()
            .filter(|s| s.buildid == r.build.id && !s.hidden)
            .map(|s| view::step(&url, s))
            .collect();
        b["branch"] = json!(r.branch);
        b["revision"] = json!(r.revision);
        let row = open.as_mut().expect("a row is open here");
        row.cells[col] = b;
        row.oldest = started;
    }
    if let Some(row) = open {
        table.push(json!({"time": row.time, "cells": row.cells}));
    }
    let older = rows.last().map(|r| r.build.started_at - 1);
    let mut next_args: Vec<(String, String)> = args
        .pairs()
        .iter()
        .filter(|(k, _)| k != "last_time" && k != "first_time" && k != "show_time")
        .cloned()
        .collect();
    if let Some(t) = older {
        next_args.push(("last_time".to_string(), t.to_string()));
    }
    Pages::of(&state).page(
        &state,
        "waterfall.html",
        json!({
            "boxes": boxes,
            "rows": table,
            "show_events": args.flag("show_events", true),
            "num_events": num_events,
            "older_url": older.map(|_| format!("/waterfall?{}", super::args::encode(&next_args))),
            "live_builders": shown.iter().map(|b| b.id.0).collect::<Vec<_>>(),
            "live_rows": true,
        }),
    )
}

/// `/buildstatus?builder=B&number=N`: the steps of one build, top to bottom.
pub(crate) async fn buildstatus(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let (Some(name), Some(number)) = (args.one("builder"), args.one("number")) else {
        return Err(WebError::BadRequest(
            "give builder= and number=".to_string(),
        ));
    };
    let (_, build) = find_build(&state, &catalog, name, number).await?;
    let steps = state
        .shared
        .store
        .steps_for_build(build.id)
        .await
        .map_err(internal)?;
    let mut b = view::build(&catalog, &build);
    let url = b["url"].as_str().unwrap_or_default().to_string();
    b["steps"] = steps
        .iter()
        .filter(|s| !s.hidden)
        .map(|s| view::step(&url, s))
        .collect();
    Pages::of(&state).page(
        &state,
        "buildstatus.html",
        json!({ "build": b, "live_builders": [build.builderid.0] }),
    )
}
