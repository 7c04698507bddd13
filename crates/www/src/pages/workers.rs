//! `/buildslaves` and `/workers`: each configured worker, its builders (unless
//! `no_builders=1`), whether it is connected or paused, what it runs, and its host info.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{json, Value as Json};

use super::args::Args;
use super::view::{seg, Catalog};
use super::Pages;
use crate::{AppState, WebError};

/// The page; no database query (the registry and the config hold everything).
pub(crate) async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let runtime = state.shared.runtime();
    let slots = state.shared.workers.with(|slots| slots.clone());
    let workers: Vec<Json> = runtime
        .config
        .workers
        .iter()
        .map(|w| {
            let slot = slots.get(&w.name);
            let builders: Vec<Json> = catalog
                .builders
                .iter()
                .filter(|b| b.workernames.contains(&w.name))
                .map(|b| json!({"name": b.name, "url": b.url()}))
                .collect();
            let info = slot.map(|s| s.info.raw.clone()).unwrap_or(Json::Null);
            let field = |k: &str| info.get(k).map(super::view::display);
            json!({
                "name": w.name,
                "anchor": seg(&w.name),
                "connected": slot.is_some_and(|s| s.conn.is_some()),
                "paused": slot.is_some_and(|s| s.paused),
                "graceful": slot.is_some_and(|s| s.graceful),
                "running": slot.map(|s| s.running).unwrap_or(0),
                "max_builds": w.max_builds,
                "host": field("host"),
                "admin": field("admin"),
                "version": field("version"),
                "builders": builders,
            })
        })
        .collect();
    Pages::of(&state).page(
        &state,
        "workers.html",
        json!({ "workers": workers, "show_builders": !args.flag("no_builders", false) }),
    )
}
