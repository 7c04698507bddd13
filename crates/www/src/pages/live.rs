//! `/pages/events?builders=1,2`: live cells for open pages over SSE. Bus events mark builders
//! and builds dirty; every quarter second the dirty ones are re-rendered and sent as
//! `cell` events (`{"id": "builder-3", "html": "…"}`), which `live.js` swaps in. A build
//! that starts on a watched builder also sends `rows`: pages that list builds
//! (`data-live-rows`) then fetch themselves once and swap their `<main>`, since the new row
//! has no cell yet. Each batch costs two queries for builds and steps, however many builds
//! changed. Pages without scripts never connect and lose nothing but liveness.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use model::{BuildId, BuilderId};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::args::Args;
use super::view::{self, builder_boxes, Catalog};
use super::Pages;
use crate::{AppState, WebError};

/// How long events are gathered before the changed cells are sent.
const BATCH: Duration = Duration::from_millis(250);

/// What one batch of bus events made stale.
#[derive(Default)]
struct Stale {
    /// Watched builders whose box changed.
    builders: BTreeSet<i64>,
    /// Builds whose cell changed (of any builder; unwatched ones are dropped after reading).
    builds: BTreeSet<i64>,
    /// A worker came or went, or events were lost: every watched box.
    everything: bool,
    /// A watched builder started a build, which needs a row the page does not have yet.
    new_rows: bool,
}

impl Stale {
    /// Notes what `event` makes stale for a page watching `watched`.
    fn note(&mut self, event: &engine::bus::Event, watched: &BTreeSet<i64>) {
        let key: Vec<&str> = event.key.iter().map(String::as_str).collect();
        let builder = |b: &str| b.parse::<i64>().ok().filter(|b| watched.contains(b));
        match key.as_slice() {
            ["builders", b, "builds", _, event_name] => {
                let Some(b) = builder(b) else { return };
                self.builders.insert(b);
                if let Some(build) = event.payload["buildid"].as_i64() {
                    self.builds.insert(build);
                }
                if *event_name == "new" {
                    self.new_rows = true;
                }
            }
            ["builders", b, "buildrequests", _, _] => {
                if let Some(b) = builder(b) {
                    self.builders.insert(b);
                }
            }
            ["builds", b, "steps", _, _] => {
                if let Ok(b) = b.parse() {
                    self.builds.insert(b);
                }
            }
            ["workers", _, "connected" | "disconnected"] => self.everything = true,
            _ => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.builders.is_empty() && self.builds.is_empty() && !self.everything && !self.new_rows
    }
}

/// The SSE endpoint.
pub(crate) async fn events(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    super::require_view(&state)?;
    let args = Args::parse(query.as_deref());
    let watched: BTreeSet<i64> = args
        .one("builders")
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .take(5000)
        .collect();
    let mut receiver = state.shared.bus.subscribe();
    let (tx, rx) = mpsc::channel::<Event>(64);
    let mut stopping = state.shared.stopping();
    tokio::spawn(async move {
        loop {
            // Wait for the first event, then gather more for BATCH.
            let mut stale = Stale::default();
            tokio::select! {
                _ = tx.closed() => return,
                _ = stopping.wait_for(|s| *s) => return,
                event = receiver.recv() => match event {
                    Ok(event) => stale.note(&event, &watched),
                    Err(broadcast::error::RecvError::Lagged(_)) => stale.everything = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
            if stale.is_empty() {
                continue;
            }
            let deadline = tokio::time::Instant::now() + BATCH;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    event = receiver.recv() => match event {
                        Ok(event) => stale.note(&event, &watched),
                        Err(broadcast::error::RecvError::Lagged(_)) => stale.everything = true,
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
            if stale.everything {
                stale.builders.extend(watched.iter().copied());
            }
            let cells = match render_cells(&state, &watched, &stale).await {
                Ok(cells) => cells,
                Err(e) => {
                    tracing::warn!(error = %e, "live cells failed");
                    continue;
                }
            };
            let mut events: Vec<Event> = cells
                .into_iter()
                .map(|(id, html)| {
                    let data = json!({"id": id, "html": html}).to_string();
                    Event::default().event("cell").data(data)
                })
                .collect();
            // Pages that list builds fetch themselves again for the new row; the others
            // ignore this.
            if stale.new_rows {
                events.push(Event::default().event("rows").data("new"));
            }
            for event in events {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Fresh HTML of the builder boxes and build cells named.
async fn render_cells(
    state: &AppState,
    watched: &BTreeSet<i64>,
    stale: &Stale,
) -> Result<Vec<(String, String)>, WebError> {
    let catalog = Catalog::of(state);
    let pages = Pages::of(state);
    let mut out = Vec::new();
    let shown: Vec<_> = stale
        .builders
        .iter()
        .filter_map(|id| catalog.get(BuilderId(*id)))
        .collect();
    if !shown.is_empty() {
        for b in builder_boxes(state, &catalog, &shown, &[]).await? {
            let html = pages.render_string(state, "_builder_box.html", json!({"box": b}))?;
            out.push((format!("builder-{}", b["id"]), html));
        }
    }
    // One query for the builds and one for their steps, however many changed in the batch.
    let ids: Vec<BuildId> = stale.builds.iter().map(|b| BuildId(*b)).collect();
    let records: Vec<_> = state
        .shared
        .store
        .builds_by_ids(&ids)
        .await
        .map_err(view::internal)?
        .into_iter()
        .filter(|b| watched.contains(&b.builderid.0))
        .collect();
    let ids: Vec<BuildId> = records.iter().map(|b| b.id).collect();
    let steps = state
        .shared
        .store
        .steps_for_builds(&ids)
        .await
        .map_err(view::internal)?;
    for build in &records {
        let mut b = view::build(&catalog, build);
        let url = b["url"].as_str().unwrap_or_default().to_string();
        b["steps"] = steps
            .iter()
            .filter(|s| s.buildid == build.id && !s.hidden)
            .map(|s| view::step(&url, s))
            .collect();
        let html = pages.render_string(state, "_build_cell.html", json!({"b": b}))?;
        out.push((format!("build-{}", build.id.0), html));
    }
    Ok(out)
}
