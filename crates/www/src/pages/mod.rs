//! The status pages of seed 002, server-rendered: one request and a fixed number of queries
//! per page, minijinja templates (embedded, overridable from the master's `templates/`),
//! static files from `public_html/`, and live cells over SSE.
//!
//! Each module holds one page family and its handlers; [`routes`] gathers them.

pub(crate) mod actions;
mod ansi;
mod args;
mod badge;
mod build;
mod builders;
mod changes;
mod charts;
mod console;
mod csrf;
mod feeds;
mod grid;
mod home;
mod live;
mod logs;
mod render;
mod view;
mod waterfall;
mod workers;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rust_embed::RustEmbed;

use crate::{AppState, WebError};

pub(crate) use actions::{csrf_check, csrf_set_cookie, csrf_token, CSRF_COOKIE};
pub(crate) use render::Pages;

/// The stylesheet and script every page links to, compiled into the binary.
#[derive(RustEmbed)]
#[folder = "static/"]
struct StaticFiles;

/// Every page route, with `public_html/` as the fallback.
pub fn routes() -> Router<AppState> {
    const BUILD: &str = "/builders/{builder}/builds/{number}";
    Router::new()
        .route("/", get(home::root))
        .route("/about", get(home::about))
        .route("/builders", get(builders::list))
        .route("/builders/{builder}", get(builders::one))
        .route("/builders/{builder}/force", post(builders::force))
        .route("/builders/{builder}/charts.svg", get(charts::builder_chart))
        .route(BUILD, get(build::page))
        .route(&format!("{BUILD}/steps/{{step}}"), get(build::step))
        .route(
            &format!("{BUILD}/steps/{{step}}/logs/{{log}}"),
            get(logs::page),
        )
        .route(
            &format!("{BUILD}/steps/{{step}}/logs/{{log}}/text"),
            get(logs::text),
        )
        .route("/pages/logs/{id}/lines", get(logs::lines))
        .route("/pages/logs/{id}/search", get(logs::search))
        .route("/pages/logs/{id}/follow", get(logs::follow))
        .route("/pages/events", get(live::events))
        .route("/pages/static/{file}", get(static_file))
        .route("/waterfall", get(waterfall::page))
        .route("/buildstatus", get(waterfall::buildstatus))
        .route("/grid", get(grid::grid))
        .route("/tgrid", get(grid::tgrid))
        .route("/console", get(console::page))
        .route("/changes", get(changes::list))
        .route("/changes/{id}", get(changes::one))
        .route("/buildslaves", get(workers::page))
        .route("/workers", get(workers::page))
        .route("/one_line_per_build", get(builders::one_line_per_build))
        .route("/rss", get(feeds::rss))
        .route("/atom", get(feeds::atom))
        .route("/png", get(badge::png))
        .fallback(public_html)
}

/// Pages, feeds, badges and live streams are readable only when the access policy allows
/// `view`.
pub(crate) fn require_view(state: &AppState) -> Result<(), WebError> {
    if crate::authz::allows(state, crate::authz::VIEW) {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "you are not allowed to view this page".to_string(),
        ))
    }
}

/// `/pages/static/FILE`: the embedded stylesheet and script.
async fn static_file(Path(file): Path<String>) -> Result<Response, WebError> {
    let Some(content) = StaticFiles::get(&file) else {
        return Err(WebError::NotFound(format!("no static file {file:?}")));
    };
    let kind = match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        Body::from(content.data.into_owned()),
    )
        .into_response())
}

/// Anything no route matched: a file from `public_html/` (or the `public_html` option).
async fn public_html(State(state): State<AppState>, request: Request) -> Response {
    let runtime = state.shared.runtime();
    let dir = match runtime.config.www.options.get("public_html") {
        Some(serde_json::Value::String(dir)) => state.shared.basedir.join(dir),
        _ => state.shared.basedir.join("public_html"),
    };
    let mut serve = tower_http::services::ServeDir::new(dir);
    match serve.try_call(request).await {
        Ok(response) if response.status() == StatusCode::NOT_FOUND => {
            WebError::NotFound("no such page".to_string()).into_response()
        }
        Ok(response) => response.map(Body::new),
        Err(err) => WebError::Internal(format!("public_html: {err}")).into_response(),
    }
}
