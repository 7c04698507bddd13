//! HTTP for Signalbox: the REST API v2 and, as they land, status pages, events and hooks.
//!
//! [`app`] is the only constructor of the router; tests call it with `oneshot`. Every route
//! it registers is listed in [`ROUTES`] with its access policy, and the identity layer
//! ([`auth::identify`]) gates every read on `view` unless the route is public there, so a
//! route added without a policy is covered anyway.
#![warn(missing_docs)]

mod actions;
mod audit;
pub mod auth;
pub mod authz;
pub mod buildbot_ui;
mod error;
pub mod hooks;
pub mod http_log;
mod json_api;
mod openapi;
mod pages;
mod rest;
pub mod rotating_log;
mod sse;
mod users_pages;
mod ws;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

pub use error::WebError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The master's shared state.
    pub shared: Arc<engine::Shared>,
    /// Buildbot's own web UI, if `c['www']['buildbot_ui']` turned it on (located at start).
    pub buildbot_ui: Option<Arc<buildbot_ui::BuildbotUi>>,
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Needs `view` (checked by the identity layer before the handler runs).
    View,
    /// Open to everybody: logging in and out, the stylesheet and script, robots.txt.
    Public,
    /// A control action; the handler asks the policy with the action's object. Reads of the
    /// same route (if any) need `view`.
    Control,
    /// A change hook: off unless a dialect is enabled, with its own `change_hook_auth`.
    Hook,
}

/// One registered route: its pattern (axum syntax), a concrete path for tests, and who may
/// use it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The pattern as registered.
    pub pattern: &'static str,
    /// A path that matches it, for tests that walk every route.
    pub example: &'static str,
    /// The policy.
    pub policy: Policy,
}

const fn route(pattern: &'static str, example: &'static str, policy: Policy) -> Route {
    Route {
        pattern,
        example,
        policy,
    }
}

/// Every route [`app`] registers, in one place. A test compares it with the source, so a
/// new route must be listed here with its policy.
pub const ROUTES: &[Route] = &[
    // REST v2 (rest.rs), also under /api/latest.
    route("/api/v2/", "/api/v2/", Policy::View),
    route("/api/v2/openapi.json", "/api/v2/openapi.json", Policy::View),
    route("/api/v2/{*path}", "/api/v2/builds", Policy::Control),
    route("/api/latest/", "/api/latest/", Policy::View),
    route(
        "/api/latest/openapi.json",
        "/api/latest/openapi.json",
        Policy::View,
    ),
    route("/api/latest/{*path}", "/api/latest/builds", Policy::Control),
    // Events (ws.rs, sse.rs).
    route("/ws", "/ws", Policy::View),
    route("/sse/listen", "/sse/listen", Policy::View),
    route("/sse/listen/{*path}", "/sse/listen/builds", Policy::View),
    route("/sse/add/{uuid}/{*path}", "/sse/add/x/builds", Policy::View),
    route(
        "/sse/remove/{uuid}/{*path}",
        "/sse/remove/x/builds",
        Policy::View,
    ),
    route("/sse/add/{uuid}", "/sse/add/x", Policy::View),
    route("/sse/add", "/sse/add", Policy::View),
    route("/sse/remove", "/sse/remove", Policy::View),
    // Change hooks (hooks/mod.rs).
    route("/change_hook/{dialect}", "/change_hook/base", Policy::Hook),
    // The seed's 0.8-style JSON API (json_api.rs).
    route("/json", "/json/builders", Policy::View),
    route("/json/", "/json/", Policy::View),
    route("/json/{*path}", "/json/builders/b/builds/1", Policy::View),
    // Pages (pages/mod.rs).
    route("/", "/", Policy::View),
    route("/about", "/about", Policy::View),
    route("/builders", "/builders", Policy::View),
    route("/builders/{builder}", "/builders/b", Policy::View),
    route(
        "/builders/{builder}/force",
        "/builders/b/force",
        Policy::Control,
    ),
    route(
        "/builders/{builder}/charts.svg",
        "/builders/b/charts.svg",
        Policy::View,
    ),
    route(
        "/builders/{builder}/builds/{number}",
        "/builders/b/builds/1",
        Policy::View,
    ),
    route(
        "/builders/{builder}/builds/{number}/steps/{step}",
        "/builders/b/builds/1/steps/1",
        Policy::View,
    ),
    route(
        "/builders/{builder}/builds/{number}/steps/{step}/logs/{log}",
        "/builders/b/builds/1/steps/1/logs/stdio",
        Policy::View,
    ),
    route(
        "/builders/{builder}/builds/{number}/steps/{step}/logs/{log}/text",
        "/builders/b/builds/1/steps/1/logs/stdio/text",
        Policy::View,
    ),
    route(
        "/pages/logs/{id}/lines",
        "/pages/logs/1/lines",
        Policy::View,
    ),
    route(
        "/pages/logs/{id}/search",
        "/pages/logs/1/search?q=a",
        Policy::View,
    ),
    route(
        "/pages/logs/{id}/follow",
        "/pages/logs/1/follow",
        Policy::View,
    ),
    route("/pages/events", "/pages/events", Policy::View),
    route(
        "/pages/static/{file}",
        "/pages/static/signalbox.css",
        Policy::Public,
    ),
    route("/waterfall", "/waterfall", Policy::View),
    route(
        "/buildstatus",
        "/buildstatus?builder=b&number=1",
        Policy::View,
    ),
    route("/grid", "/grid", Policy::View),
    route("/tgrid", "/tgrid", Policy::View),
    route("/console", "/console", Policy::View),
    route("/changes", "/changes", Policy::View),
    route("/changes/{id}", "/changes/1", Policy::View),
    route("/buildslaves", "/buildslaves", Policy::View),
    route("/workers", "/workers", Policy::View),
    route("/one_line_per_build", "/one_line_per_build", Policy::View),
    route("/rss", "/rss", Policy::View),
    route("/atom", "/atom", Policy::View),
    route("/png", "/png?builder=b", Policy::View),
    // Access control (auth/, users_pages.rs, audit.rs, pages/actions.rs).
    route("/login", "/login", Policy::Public),
    route("/logout", "/logout", Policy::Public),
    route("/auth/login", "/auth/login", Policy::Public),
    route("/auth/logout", "/auth/logout", Policy::Public),
    route("/authfail", "/authfail", Policy::Public),
    route("/users", "/users", Policy::View),
    route("/users/table", "/users/table", Policy::View),
    route("/users/table/{uid}", "/users/table/1", Policy::View),
    route("/audit", "/audit", Policy::View),
    route(
        "/control/{plural}/{id}/{method}",
        "/control/builds/1/stop",
        Policy::Control,
    ),
    // public_html files (the fallback): robots.txt is public, everything else needs view.
    route("/robots.txt", "/robots.txt", Policy::Public),
    // Buildbot's own UI (buildbot_ui.rs). Under its configured base, `api/`, `ws` and
    // `auth/login|logout` are the routes above with their policies; its files need view. Its
    // favicon code also asks the root for the icons, which are not secret.
    route("/icon.svg", "/icon.svg", Policy::Public),
    route("/icon.png", "/icon.png", Policy::Public),
];

/// The entry of [`ROUTES`] that `path` falls under, if any (the fallback has none).
pub fn route_of(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| pattern_matches(r.pattern, path))
}

/// True if `path` matches an axum pattern: `{name}` is one segment, `{*rest}` the rest.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let mut wanted = pattern.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with("{*") => return !g.is_empty(),
            (Some(w), Some(g)) if w.starts_with('{') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The access-control routes: login, logout, the users and audit pages, and the control
/// forms of the pages.
fn access_routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(auth::login::form).post(auth::login::submit))
        .route("/logout", get(auth::login::logout))
        .route("/auth/login", get(auth::login::basic))
        .route("/auth/logout", get(auth::login::logout))
        .route("/authfail", get(auth::login::authfail))
        .route("/users", get(users_pages::users))
        .route("/users/table", get(users_pages::table))
        .route("/users/table/{uid}", get(users_pages::one))
        .route("/audit", get(audit::page))
        .route(
            "/control/{plural}/{id}/{method}",
            post(pages::actions::submit),
        )
}

/// The whole web application.
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .nest("/api/v2", rest::routes())
        .nest("/api/latest", rest::routes())
        .merge(ws::routes())
        .merge(sse::routes())
        .merge(json_api::routes())
        .merge(hooks::routes())
        .merge(access_routes())
        .merge(pages::routes())
        .merge(buildbot_ui::root_routes());
    let router = match &state.buildbot_ui {
        Some(ui) => buildbot_ui::mount(router, ui),
        None => router,
    };
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::identify,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http_log::layer,
        ))
        .with_state(state)
}

/// Serves `app` on `listener` until the master stops.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let mut stop = state.shared.stopping();
    let app = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Without TCP_NODELAY the last piece of a streamed response waits ~40 ms for the
    // client's delayed acknowledgement (Nagle): measured on log downloads.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}
