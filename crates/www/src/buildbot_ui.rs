//! Buildbot's own React UI (the `buildbot-www` package the user installed), served at the
//! base path of `c['www']['buildbot_ui']` (spec §1–3).
//!
//! The UI computes every URL relative to the page: `<base>api/v2/…`, `<base>ws`,
//! `<base>auth/login`. Those paths are routed to the same handlers as at the root, and the
//! identity layer gives them the root's policy ([`policy_path`]), so access control, CSRF and
//! JSON-RPC behave exactly as for any other client. Everything else under the base is a file
//! of the UI's static tree, except `index.html`, which is rendered with the frontend config
//! injected (§2.1), and `config`, the same object as JSON (§3).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{OriginalUri, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::{AppState, WebError};

/// What `pip` needs to install, in every message about a missing UI.
const INSTALL: &str = "pip install buildbot-www==4.3.0";

/// The marker upstream replaces with the config script (note the leading space).
const CONFIG_PLACEHOLDER: &str = " <!-- BUILDBOT_CONFIG_PLACEHOLDER -->";

/// Asks Python where the package is without importing it: its `__init__` imports the
/// Buildbot master, which a user who only wants the UI need not have installed.
const FIND_PACKAGE: &str = "import importlib.util as u\n\
s = u.find_spec('buildbot_www')\n\
print(list(s.submodule_search_locations)[0] if s and s.submodule_search_locations else '')";

/// How long start-up waits for `python -c FIND_PACKAGE`.
const PYTHON_TIMEOUT: Duration = Duration::from_secs(30);

/// The located UI: where it is served and its files.
#[derive(Debug)]
pub struct BuildbotUi {
    /// The base path, starting and ending with `/`.
    base: String,
    /// The static tree (`…/buildbot_www/static`).
    static_dir: PathBuf,
    /// `index.html` as shipped, rendered per request.
    index: String,
    /// The package's `VERSION` file, for the About page.
    version: Option<String>,
}

/// Why the UI cannot be served; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("c['www']['buildbot_ui']: {0}")]
pub struct BuildbotUiError(String);

impl BuildbotUi {
    /// The base path, e.g. `/ui/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The static tree being served.
    pub fn static_dir(&self) -> &Path {
        &self.static_dir
    }
}

/// Finds the installed UI for `config` (run at start-up and by `checkconfig`): the given
/// `static_dir`, or the `buildbot_www` package of the configured Python. Blocks while Python
/// runs, at most [`PYTHON_TIMEOUT`].
pub fn locate(
    config: &config::BuildbotUiConfig,
    basedir: &Path,
) -> Result<BuildbotUi, BuildbotUiError> {
    check_base(&config.path)?;
    let dir = match &config.static_dir {
        Some(dir) => basedir.join(dir),
        None => package_of(&config.python)?.join("static"),
    };
    // Accept the package directory as well as its `static/` subdirectory.
    let dir = match dir.join("index.html").is_file() {
        true => dir,
        false => dir.join("static"),
    };
    let index = std::fs::read_to_string(dir.join("index.html")).map_err(|e| {
        BuildbotUiError(format!(
            "{} is not buildbot-www's static tree (no readable index.html: {e}); install the \
             UI with `{INSTALL}` and leave static_dir unset, or point static_dir at \
             buildbot_www/static",
            dir.display()
        ))
    })?;
    if !index.contains(CONFIG_PLACEHOLDER) {
        tracing::warn!(
            dir = %dir.display(),
            "index.html has no config placeholder; the UI will fetch `config` instead"
        );
    }
    let version = dir
        .parent()
        .and_then(|p| std::fs::read_to_string(p.join("VERSION")).ok())
        .map(|v| v.trim().to_string());
    Ok(BuildbotUi {
        base: config.path.clone(),
        static_dir: dir,
        index,
        version,
    })
}

/// The base must not shadow a route of our own (axum would refuse to start, and the pages
/// would vanish): its first segment may not be the first segment of any route.
fn check_base(base: &str) -> Result<(), BuildbotUiError> {
    let first = |path: &str| {
        path.trim_start_matches('/')
            .split('/')
            .next()
            .map(str::to_string)
    };
    let wanted = first(base).unwrap_or_default();
    let taken = crate::ROUTES
        .iter()
        .filter_map(|r| first(r.pattern))
        .any(|segment| segment == wanted);
    match taken {
        true => Err(BuildbotUiError(format!(
            "path {base:?} is taken by Signalbox's own routes; choose another, such as '/ui/'"
        ))),
        false => Ok(()),
    }
}

/// The `buildbot_www` package directory of `python`.
fn package_of(python: &str) -> Result<PathBuf, BuildbotUiError> {
    let missing = |why: String| {
        BuildbotUiError(format!(
            "{why}; install Buildbot's web UI with `{python} -m {INSTALL}` (or set \
             static_dir to its buildbot_www/static directory, or python to the interpreter \
             that has it)"
        ))
    };
    let child = Command::new(python)
        .args(["-c", FIND_PACKAGE])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| missing(format!("cannot run {python:?} to find buildbot-www ({e})")))?;
    let output = wait_bounded(child).map_err(|e| {
        missing(format!(
            "{python:?} did not say where buildbot-www is ({e})"
        ))
    })?;
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || printed.is_empty() {
        return Err(missing(format!(
            "buildbot-www is not installed for {python:?}"
        )));
    }
    Ok(PathBuf::from(printed))
}

/// Waits for `child` at most [`PYTHON_TIMEOUT`], killing it after that.
fn wait_bounded(mut child: std::process::Child) -> std::io::Result<std::process::Output> {
    let deadline = Instant::now() + PYTHON_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer within 30 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output()
}

/// Adds the UI to `router` at its base: the base itself (the UI's `index.html`), and below
/// it the root's REST, `/ws` and login handlers, with the UI's own files as the fallback.
pub(crate) fn mount(router: Router<AppState>, ui: &BuildbotUi) -> Router<AppState> {
    // A nested router answers `/ui` and `/ui/x` but not `/ui/`, so the base gets a route.
    router
        .route(&ui.base, get(page))
        .nest(ui.base.trim_end_matches('/'), nested())
}

fn nested() -> Router<AppState> {
    Router::new()
        .nest("/api/v2", crate::rest::routes())
        .nest("/api/latest", crate::rest::routes())
        .merge(crate::ws::routes())
        .route("/auth/login", get(login))
        .route("/auth/logout", get(logout))
        .fallback(page)
}

/// `/icon.svg` and `/icon.png` at the root: the UI's favicon code asks the host root for them
/// when its config came from `GET config` (spec §2).
pub(crate) fn root_routes() -> Router<AppState> {
    Router::new()
        .route("/icon.svg", get(root_icon))
        .route("/icon.png", get(root_icon))
}

/// The path whose [`crate::ROUTES`] policy applies to `path`: under the base, the REST,
/// `/ws` and `auth/` paths take the policy of the same path at the root; the UI's own files
/// keep their path, which no route matches, so they need `view`.
pub(crate) fn policy_path<'a>(ui: Option<&BuildbotUi>, path: &'a str) -> Cow<'a, str> {
    let Some(rest) = ui.and_then(|ui| path.strip_prefix(ui.base.as_str())) else {
        return Cow::Borrowed(path);
    };
    let forwarded = rest.starts_with("api/") || rest == "ws" || rest.starts_with("auth/");
    match forwarded {
        true => Cow::Owned(format!("/{rest}")),
        false => Cow::Borrowed(path),
    }
}

/// Everything under the base that is not forwarded: `index.html`, `config`, static files.
async fn page(
    State(state): State<AppState>,
    OriginalUri(original): OriginalUri,
    request: Request,
) -> Response {
    let Some(ui) = state.buildbot_ui.clone() else {
        return WebError::NotFound("the Buildbot UI is off".into()).into_response();
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return WebError::BadRequest("invalid HTTP method".into()).into_response();
    }
    let Some(rest) = original.path().strip_prefix(ui.base.as_str()) else {
        // The base without its slash: the UI must be loaded from the directory URL, or it
        // computes its API root wrongly (spec §1).
        let query = original
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        return Redirect::permanent(&format!("{}{query}", ui.base)).into_response();
    };
    // `buildbotURL + "/icon.svg"` doubles the slash (spec §2); any doubled slash is one.
    let rest = collapse_slashes(rest);
    match rest.as_str() {
        "" => index(&state, &ui),
        "index.html" => Redirect::permanent(&ui.base).into_response(),
        "config" => {
            let mut response = axum::Json(frontend_config(&state, &ui)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, per_user_cache());
            response
        }
        _ => file(&ui, &rest, request).await,
    }
}

/// `a//b/` as `a/b/`, with leading slashes dropped.
fn collapse_slashes(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = segments.join("/");
    if path.ends_with('/') && !out.is_empty() {
        out.push('/');
    }
    out
}

/// `index.html` and `config` carry the session's user, so shared caches must not keep them;
/// otherwise this is upstream's `public,max-age=0` (always revalidate).
fn per_user_cache() -> HeaderValue {
    HeaderValue::from_static("private, max-age=0")
}

fn index(state: &AppState, ui: &crate::buildbot_ui::BuildbotUi) -> Response {
    let config = frontend_config(state, ui);
    let mut response = Html(render_index(&ui.index, &config)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, per_user_cache());
    response
}

/// `index.html` with `window.buildbotFrontendConfig` set as upstream does (spec §2.1). The
/// theme range is left as shipped: its defaults are upstream's default theme.
fn render_index(template: &str, config: &Value) -> String {
    // `<`, `>` and `&` as JSON escapes, so no value (a title, a user name) can close the
    // script element or open a comment inside it.
    let json = config
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let script = format!(
        "<script id=\"bb-config\">\n    window.buildbotFrontendConfig = {json};\n</script>"
    );
    template.replacen(CONFIG_PLACEHOLDER, &script, 1)
}

/// The frontend config object of spec §3, for the requesting user.
fn frontend_config(state: &AppState, ui: &BuildbotUi) -> Value {
    let runtime = state.shared.runtime();
    let config = &runtime.config;
    let mut versions = vec![json!(["Signalbox", env!("CARGO_PKG_VERSION")])];
    if let Some(version) = &ui.version {
        versions.push(json!(["buildbot-www", version]));
    }
    json!({
        "title": config.title,
        "titleURL": config.title_url,
        "buildbotURL": format!("{}{}", config.buildbot_url, ui.base.trim_start_matches('/')),
        "multiMaster": false,
        "versions": versions,
        "auth": {"name": auth_name(config.www.authz.auth.as_ref())},
        // A list, so the UI's `.length > 0` test works; empty, as we serve no avatars.
        "avatar_methods": [],
        // Empty even if `c['www']['plugins']` names some: their files are not served, and
        // the UI would load a script per key.
        "plugins": {},
        "user": user_object(crate::auth::current().user.as_ref()),
    })
}

/// Upstream's class name of the configured login backend; `NoAuth` hides the login menu.
fn auth_name(auth: Option<&config::AuthConfig>) -> &'static str {
    match auth {
        None => "NoAuth",
        Some(config::AuthConfig::Users(_) | config::AuthConfig::UsersTable) => "UserPasswordAuth",
        Some(config::AuthConfig::HtPasswd(_)) => "HTPasswdAuth",
        Some(config::AuthConfig::RemoteUser { .. }) => "RemoteUserAuth",
    }
}

/// The `user` object of spec §12.3. Like upstream's default user-info provider, a user
/// without an email address gets the user name as email.
fn user_object(user: Option<&crate::auth::User>) -> Value {
    let Some(user) = user else {
        return json!({"anonymous": true});
    };
    json!({
        "username": user.name,
        "email": user.email.as_deref().unwrap_or(&user.name),
        "groups": user.groups,
    })
}

/// One file of the static tree. `ServeDir` refuses `..` and absolute components, sets the
/// content type (`text/javascript` for `.js`) and answers ranges and conditional requests.
async fn file(ui: &BuildbotUi, rest: &str, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    parts.uri = match format!("/{rest}").parse() {
        Ok(uri) => uri,
        Err(_) => return WebError::NotFound("no such file".into()).into_response(),
    };
    let request = Request::from_parts(parts, body);
    let mut serve =
        tower_http::services::ServeDir::new(&ui.static_dir).append_index_html_on_directories(false);
    let mut response = match serve.try_call(request).await {
        Ok(response) if response.status() == StatusCode::NOT_FOUND => {
            return WebError::NotFound(format!("no file {rest:?} in the Buildbot UI"))
                .into_response()
        }
        Ok(response) => response.map(Body::new),
        Err(err) => return WebError::Internal(format!("buildbot_ui: {err}")).into_response(),
    };
    // `assets/` names carry a content hash, so they never change; the rest may.
    let cache = match rest.starts_with("assets/") {
        true => "public, max-age=31536000, immutable",
        false => "public, max-age=0",
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

async fn root_icon(State(state): State<AppState>, request: Request) -> Response {
    let Some(ui) = state.buildbot_ui.clone() else {
        return WebError::NotFound("no such page".into()).into_response();
    };
    let name = request.uri().path().trim_start_matches('/').to_string();
    file(&ui, &name, request).await
}

/// `<base>auth/login`: the root's Basic login, then back into the UI at `redirect`, which
/// the UI passes as one of its own (hash) routes.
async fn login(state: State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let ui_state = state.0.clone();
    let response = crate::auth::login::basic(state, headers, RawQuery(query.clone())).await;
    into_ui(&ui_state, response, query.as_deref())
}

/// `<base>auth/logout`: the root's logout, then back into the UI.
async fn logout(state: State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let ui_state = state.0.clone();
    let response = crate::auth::login::logout(state, headers, RawQuery(query.clone())).await;
    into_ui(&ui_state, response, query.as_deref())
}

/// Points a login or logout redirect at `<base>#<redirect>`, as upstream's
/// `buildbotURL#redirect`.
fn into_ui(state: &AppState, mut response: Response, query: Option<&str>) -> Response {
    let Some(ui) = &state.buildbot_ui else {
        return response;
    };
    if !response.status().is_redirection() {
        return response;
    }
    let target = format!("{}#{}", ui.base, crate::auth::login::redirect_of(query));
    if let Ok(value) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ui(base: &str) -> BuildbotUi {
        BuildbotUi {
            base: base.to_string(),
            static_dir: PathBuf::from("/nonexistent"),
            index: String::new(),
            version: None,
        }
    }

    #[test]
    fn policy_paths() {
        let ui = ui("/ui/");
        let check = |path: &str| policy_path(Some(&ui), path).into_owned();
        assert_eq!(check("/ui/api/v2/builds"), "/api/v2/builds");
        assert_eq!(check("/ui/ws"), "/ws");
        assert_eq!(check("/ui/auth/login"), "/auth/login");
        // The UI's own files, and root paths, keep their path.
        assert_eq!(check("/ui/change_hook/base"), "/ui/change_hook/base");
        assert_eq!(check("/ui/"), "/ui/");
        assert_eq!(check("/api/v2/builds"), "/api/v2/builds");
        assert_eq!(policy_path(None, "/ui/ws"), "/ui/ws");
    }

    #[test]
    fn slashes() {
        assert_eq!(collapse_slashes(""), "");
        assert_eq!(collapse_slashes("/icon.svg"), "icon.svg");
        assert_eq!(collapse_slashes("assets//a.js"), "assets/a.js");
        assert_eq!(collapse_slashes("a/"), "a/");
    }

    #[test]
    fn bases() {
        assert!(check_base("/ui/").is_ok());
        assert!(check_base("/buildbot/ui/").is_ok());
        for taken in ["/api/", "/builders/x/", "/ws/", "/pages/", "/icon.svg/"] {
            assert!(check_base(taken).is_err(), "{taken} accepted");
        }
    }

    #[test]
    fn config_is_injected_and_cannot_close_the_script() {
        let template = "<html><body></body> <!-- BUILDBOT_CONFIG_PLACEHOLDER -->\n</html>";
        let out = render_index(template, &json!({"title": "</script><b>x</b> & y"}));
        assert!(out.contains("window.buildbotFrontendConfig = {\"title\":"));
        assert!(!out.contains("</script><b>"), "{out}");
        assert!(!out.contains("BUILDBOT_CONFIG_PLACEHOLDER"));
        assert_eq!(out.matches("</script>").count(), 1);
    }

    #[test]
    fn users() {
        assert_eq!(user_object(None), json!({"anonymous": true}));
        let bob = crate::auth::User {
            name: "bob".into(),
            email: None,
            groups: vec!["dev".into()],
        };
        assert_eq!(
            user_object(Some(&bob)),
            json!({"username": "bob", "email": "bob", "groups": ["dev"]})
        );
    }
}
