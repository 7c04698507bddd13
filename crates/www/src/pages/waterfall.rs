//! `/waterfall` (builder columns, builds newest first, idle gaps compressed so 5-second and
//! 3-hour builds stay readable) and `/buildstatus?builder=&number=`.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{json, Value as Json};
use store::pages::BuildFilter;
use store::MasterEvent;

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

/// Packs builds and events into table rows, newest first. A build joins the open row when
/// its column is free there and it started within IDLE_GAP_S of the row's newest build, so
/// the table has about as many rows as there are moments of activity, not one row per
/// build (at 1,000 builders a row per build made pages of megabytes of empty cells). An
/// event gets a row of its own, and a quiet stretch longer than IDLE_GAP_S one "idle" line.
struct Packer {
    width: usize,
    table: Vec<Json>,
    open: Option<Row>,
    previous: Option<i64>,
}

impl Packer {
    fn new(width: usize) -> Packer {
        Packer {
            width,
            table: Vec::new(),
            open: None,
            previous: None,
        }
    }

    fn add_build(&mut self, col: usize, started: i64, build: Json) {
        let fits = self
            .open
            .as_ref()
            .is_some_and(|row| row.cells[col].is_null() && row.time - started <= IDLE_GAP_S);
        if !fits {
            self.close();
            self.gap_before(started);
            self.open = Some(Row {
                time: started,
                oldest: started,
                cells: vec![Json::Null; self.width],
            });
        }
        if let Some(row) = self.open.as_mut() {
            row.cells[col] = json!({ "build": build });
            row.oldest = started;
        }
    }

    /// An event row: `cells` holds the event's cell in each column it concerns, null
    /// elsewhere.
    fn add_event(&mut self, at: i64, cells: Vec<Json>) {
        self.close();
        self.gap_before(at);
        self.table
            .push(json!({"time": at, "event": true, "cells": segments(cells)}));
        self.previous = Some(at);
    }

    fn close(&mut self) {
        if let Some(row) = self.open.take() {
            self.previous = Some(row.oldest);
            self.table
                .push(json!({"time": row.time, "cells": segments(row.cells)}));
        }
    }

    fn gap_before(&mut self, at: i64) {
        if let Some(prev) = self.previous {
            if prev - at > IDLE_GAP_S {
                self.table.push(json!({ "gap": prev - at }));
            }
        }
    }

    fn finish(mut self) -> Vec<Json> {
        self.close();
        self.table
    }
}

/// A row's cells for the template: each run of empty columns becomes one `{"span": n}`,
/// shown as one `<td colspan=n>`. At 1,000 builders most cells are empty, and one element
/// per empty cell was most of the page's bytes and of its rendering time.
fn segments(cells: Vec<Json>) -> Vec<Json> {
    let mut out = Vec::new();
    let mut empty = 0;
    for cell in cells {
        if cell.is_null() {
            empty += 1;
            continue;
        }
        if empty > 0 {
            out.push(json!({ "span": empty }));
            empty = 0;
        }
        out.push(cell);
    }
    if empty > 0 {
        out.push(json!({ "span": empty }));
    }
    out
}

/// The cells of an event row: a worker's event in the columns of the builders it serves; a
/// master's event (start, reconfig) as one cell across every column.
fn event_cells(event: &MasterEvent, shown: &[&BuilderInfo]) -> Option<Vec<Json>> {
    let Some(worker) = &event.worker else {
        let text = match event.event.as_str() {
            "reconfig" => "configuration reloaded".to_string(),
            other => format!("master {other}"),
        };
        return (!shown.is_empty())
            .then(|| vec![json!({"event": text, "class": "master", "span": shown.len()})]);
    };
    let text = format!("{worker} {}", event.event);
    let cells: Vec<Json> = shown
        .iter()
        .map(|b| match b.workernames.contains(worker) {
            true => json!({"event": text, "class": event.event, "span": 1}),
            false => Json::Null,
        })
        .collect();
    cells.iter().any(|c| !c.is_null()).then_some(cells)
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
    let mut steps_of: HashMap<model::BuildId, Vec<&store::StepRecord>> = HashMap::new();
    for s in steps.iter().filter(|s| !s.hidden) {
        steps_of.entry(s.buildid).or_default().push(s);
    }
    let show_events = args.flag("show_events", true);
    let events = match show_events {
        // Events from the oldest build shown (or the window's start) to the window's end.
        true => {
            let after = match rows.len() as i64 >= num_events {
                true => rows.last().map(|r| r.build.started_at),
                false => first_time,
            };
            state
                .shared
                .store
                .master_events(after, before, num_events)
                .await
                .map_err(internal)?
        }
        false => Vec::new(),
    };
    let mut packer = Packer::new(shown.len());
    let mut events = events.iter().peekable();
    for r in &rows {
        let started = r.build.started_at;
        while let Some(e) = events.next_if(|e| e.at > started) {
            if let Some(cells) = event_cells(e, &shown) {
                packer.add_event(e.at, cells);
            }
        }
        let Some(&col) = columns.get(&r.build.builderid) else {
            continue;
        };
        let mut b = view::build(&catalog, &r.build);
        let url = b["url"].as_str().unwrap_or_default().to_string();
        b["steps"] = steps_of
            .get(&r.build.id)
            .map(|steps| steps.iter().map(|s| view::step(&url, s)).collect())
            .unwrap_or_default();
        b["branch"] = json!(r.branch);
        b["revision"] = json!(r.revision);
        packer.add_build(col, started, b);
    }
    for e in events {
        if let Some(cells) = event_cells(e, &shown) {
            packer.add_event(e.at, cells);
        }
    }
    let table = packer.finish();
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
            "show_events": show_events,
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
