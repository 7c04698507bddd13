//! Per-builder charts as server-rendered SVG: build durations (bars coloured by result) and
//! the pass rate over a sliding window of ten builds.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use model::Results;

use super::view::{internal, Catalog};
use crate::{AppState, WebError};

/// `/builders/$B/charts.svg`: the same chart as on the builder page, as an image.
pub(crate) async fn builder_chart(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    super::require_view(&state)?;
    let catalog = Catalog::of(&state);
    let builder = catalog.require(&name)?;
    let history = state
        .shared
        .store
        .builder_history(builder.id, 100)
        .await
        .map_err(internal)?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        builder_svg(&history),
    )
        .into_response())
}

/// The chart for finished builds given newest first as (number, started, completed, result).
pub(crate) fn builder_svg(history: &[(i64, i64, i64, Option<Results>)]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 20.0;
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"build durations and pass rate\">"
    );
    if history.is_empty() {
        svg.push_str(
            "<text x=\"10\" y=\"80\" class=\"chart-text\">no finished builds yet</text></svg>",
        );
        return svg;
    }
    let builds: Vec<_> = history.iter().rev().collect();
    let longest = builds
        .iter()
        .map(|(_, s, e, _)| (e - s).max(0))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let n = builds.len() as f64;
    let slot = W / n;
    let plot = H - TOP - BOTTOM;
    for (i, (number, started, ended, results)) in builds.iter().enumerate() {
        let d = (ended - started).max(0) as f64;
        let h = (d / longest * plot).max(1.0);
        let class = results.map(Results::name).unwrap_or("running");
        svg.push_str(&format!(
            "<rect class=\"bar {class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>#{number}: {}s {class}</title></rect>",
            i as f64 * slot,
            TOP + plot - h,
            (slot - 1.0).max(1.0),
            h,
            ended - started
        ));
    }
    let mut points = Vec::new();
    for i in 0..builds.len() {
        let window = &builds[i.saturating_sub(9)..=i];
        let passed = window
            .iter()
            .filter(|(_, _, _, r)| matches!(r, Some(Results::Success | Results::Warnings)))
            .count() as f64;
        let rate = passed / window.len() as f64;
        points.push(format!(
            "{:.1},{:.1}",
            i as f64 * slot + slot / 2.0,
            TOP + plot - rate * plot
        ));
    }
    svg.push_str(&format!(
        "<polyline class=\"passrate\" fill=\"none\" points=\"{}\"/>",
        points.join(" ")
    ));
    svg.push_str(&format!(
        "<text x=\"2\" y=\"{}\" class=\"chart-text\">longest {}s · line: pass rate (10 builds)</text></svg>",
        H - 4.0,
        longest as i64
    ));
    svg
}
