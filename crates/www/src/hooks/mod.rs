//! Change hooks: `/change_hook/DIALECT` turns a forge's or a script's request into changes.
//!
//! Hooks are off unless `change_hook_dialects` enables a dialect. Before any dialect sees a
//! request, this module caps the body size, checks `change_hook_auth` (Basic auth, compared
//! in constant time) and the forge's signature ([`signature`]). Each dialect is then one pure
//! function from a request to changes; `?project=` and `?codebase=` apply to all of them. The
//! changes are recorded before the answer, so a crash after a 200 loses nothing, and a
//! forge's delivery id (`X-GitHub-Delivery`…) is accepted once.
//!
//! ```
//! # use axum::http::{HeaderMap, Method};
//! # use www::hooks::{parse, Dialect, HookRequest};
//! let request = HookRequest::from_parts(
//!     Method::POST,
//!     HeaderMap::new(),
//!     "author=alice&revision=1a2b&branch=main",
//!     Default::default(),
//!     1_700_000_000,
//! );
//! let changes = parse(Dialect::Base, &request, &serde_json::json!({})).unwrap();
//! assert_eq!(changes[0].author, "alice");
//! ```

pub mod base;
pub mod bitbucket;
mod fields;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod gitorious;
pub mod googlecode;
pub mod poller;
pub mod signature;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine as _;
use serde_json::Value;
use store::NewChange;
use subtle::ConstantTimeEq;

use crate::AppState;

/// The largest hook body accepted.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Routes under `/change_hook`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/change_hook/{dialect}", any(hook))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The change hook dialects, named as in `change_hook_dialects`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `base`: contrib's `post_build_request` and `signalbox sendchange`.
    Base,
    /// `github`: GitHub webhooks.
    GitHub,
    /// `gitlab`: GitLab webhooks.
    GitLab,
    /// `bitbucket`: the Bitbucket POST service, Cloud and Server webhooks.
    Bitbucket,
    /// `googlecode`: Google Code's post-commit hook.
    GoogleCode,
    /// `gitorious`: Gitorious web hooks.
    Gitorious,
    /// `poller`: triggers polling change sources.
    Poller,
    /// `gitea` (also `forgejo`): Gitea and Forgejo webhooks.
    Gitea,
}

impl Dialect {
    /// The dialect of `/change_hook/NAME`.
    pub fn from_name(name: &str) -> Option<Dialect> {
        Some(match name {
            "base" => Dialect::Base,
            "github" => Dialect::GitHub,
            "gitlab" => Dialect::GitLab,
            "bitbucket" => Dialect::Bitbucket,
            "googlecode" => Dialect::GoogleCode,
            "gitorious" => Dialect::Gitorious,
            "poller" => Dialect::Poller,
            "gitea" | "forgejo" => Dialect::Gitea,
            _ => return None,
        })
    }
}

/// A request as a dialect sees it: size-checked, authenticated, its query and form decoded.
pub struct HookRequest {
    /// HTTP method.
    pub method: Method,
    /// Request headers.
    pub headers: HeaderMap,
    /// Query and (for forms) body parameters, in order; names may repeat.
    pub args: Vec<(String, String)>,
    /// The raw body, exactly as signed.
    pub body: Bytes,
    /// When the master received it: the `when` of changes whose payload has no time.
    pub received_at: model::Timestamp,
}

impl HookRequest {
    /// Builds a request from its parts, decoding `query` and a form-urlencoded body.
    pub fn from_parts(
        method: Method,
        headers: HeaderMap,
        query: &str,
        body: Bytes,
        received_at: model::Timestamp,
    ) -> HookRequest {
        let mut args: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if content_type(&headers).starts_with("application/x-www-form-urlencoded") {
            args.extend(form_urlencoded::parse(&body).into_owned());
        }
        HookRequest {
            method,
            headers,
            args,
            body,
            received_at,
        }
    }

    /// The first value of parameter `name`.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of parameter `name`, in order.
    pub fn args_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.args
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when the body is JSON.
    pub fn is_json(&self) -> bool {
        content_type(&self.headers).starts_with("application/json")
    }

    /// True when the body is a form.
    pub fn is_form(&self) -> bool {
        content_type(&self.headers).starts_with("application/x-www-form-urlencoded")
    }

    /// Header `name` as text, `None` when missing or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Why a hook request was refused: always a 4xx with a one-line reason, except
/// [`HookError::Options`], a mistake in `master.cfg`.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The payload is malformed or of the wrong type (400).
    #[error("{0}")]
    BadPayload(String),
    /// The request is not authentic, or the dialect forbids what it asks (403).
    #[error("{0}")]
    Unauthorized(String),
    /// The dialect's options in `change_hook_dialects` are wrong (500, logged).
    #[error("change hook options: {0}")]
    Options(String),
}

/// Checks the signature `dialect` requires, then turns `request` into changes. Pure: the
/// `poller` dialect has no changes (its requests go to [`poller::select`]).
pub fn parse(
    dialect: Dialect,
    request: &HookRequest,
    options: &Value,
) -> Result<Vec<NewChange>, HookError> {
    signature::verify(dialect, request, options)?;
    match dialect {
        Dialect::Base => base::parse(request, options),
        Dialect::GitHub => github::parse(request, options),
        Dialect::GitLab => gitlab::parse(request, options),
        Dialect::Bitbucket => bitbucket::parse(request, options),
        Dialect::GoogleCode => googlecode::parse(request, options),
        Dialect::Gitorious => gitorious::parse(request, options),
        Dialect::Gitea => gitea::parse(request, options),
        Dialect::Poller => Ok(Vec::new()),
    }
}

/// The forge's id of this delivery, the same when the forge sends it again.
fn delivery_id(dialect: Dialect, request: &HookRequest) -> Result<Option<String>, HookError> {
    let names: &[&str] = match dialect {
        Dialect::GitHub => &["x-github-delivery"],
        Dialect::Gitea => &["x-gitea-delivery", "x-forgejo-delivery"],
        Dialect::GitLab => &["idempotency-key"],
        _ => &[],
    };
    let Some(value) = names.iter().find_map(|name| request.headers.get(*name)) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(id) if !id.trim().is_empty() && id.len() <= 200 => Ok(Some(id.trim().to_string())),
        _ => Err(HookError::BadPayload("malformed delivery id header".into())),
    }
}

async fn hook(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let runtime = state.shared.runtime();
    let www = &runtime.config.www;
    let Some(options) = www.change_hook_dialects.get(&name) else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("change hook dialect '{name}' is not enabled"),
        );
    };
    let Some(dialect) = Dialect::from_name(&name) else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("change hook dialect '{name}' does not exist"),
        );
    };
    if body.len() > MAX_BODY {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
    }
    if !www.change_hook_auth.is_empty() {
        if let Err(reason) = check_auth(&state, &www.change_hook_auth, &headers) {
            let mut response = refuse(StatusCode::UNAUTHORIZED, &reason);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"change_hook\""),
            );
            return response;
        }
    }
    let request = HookRequest::from_parts(
        method,
        headers,
        query.as_deref().unwrap_or(""),
        body,
        model::now(),
    );
    if dialect == Dialect::Poller {
        let names: Vec<String> = runtime
            .config
            .change_sources
            .iter()
            .map(|source| engine::changes::source_name(source).to_string())
            .collect();
        return match poller::select(&request, options, &names) {
            Ok(selected) => {
                let n = selected.len();
                // Polls can take minutes (a slow fetch); the answer does not wait for them.
                // The task ends when the polls end, each bounded by the VCS command timeout.
                let shared = state.shared.clone();
                tokio::spawn(async move {
                    engine::changes::poll_now(&shared, Some(&selected)).await;
                });
                tracing::info!(dialect = %name, pollers = n, "change hook triggered polling");
                answer(&format!("polling {n} change source(s)"))
            }
            Err(e) => refuse_for(&name, e),
        };
    }
    let mut changes = match parse(dialect, &request, options) {
        Ok(changes) => changes,
        Err(e) => return refuse_for(&name, e),
    };
    for change in &mut changes {
        if let Some(project) = request.arg("project").filter(|p| !p.is_empty()) {
            change.project = project.to_string();
        }
        if let Some(codebase) = request.arg("codebase").filter(|c| !c.is_empty()) {
            change.codebase = codebase.to_string();
        }
    }
    let delivery = match delivery_id(dialect, &request) {
        Ok(delivery) => delivery,
        Err(e) => return refuse_for(&name, e),
    };
    // A delivery with no change needs no dedup: accepting it twice records nothing twice.
    let delivery = delivery
        .filter(|_| !changes.is_empty())
        .map(|id| store::Delivery {
            dialect: name.clone(),
            id,
            received_at: request.received_at,
        });
    let delivery_id = delivery.as_ref().map(|d| d.id.clone()).unwrap_or_default();
    let added = match engine::changes::add_delivered_changes(&state.shared, changes, delivery).await
    {
        Ok(store::ChangesAdded::Recorded(added)) => added,
        Ok(store::ChangesAdded::Replayed) => {
            return refuse(
                StatusCode::CONFLICT,
                &format!("delivery {delivery_id} was already accepted"),
            );
        }
        Err(e) => return internal(&name, "could not record the changes", &e),
    };
    let ids: Vec<i64> = added.iter().map(|a| a.change.id.0).collect();
    tracing::info!(dialect = %name, changes = ids.len(), "change hook accepted");
    answer(&format!("{} change(s) recorded", ids.len()))
}

fn answer(text: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    // A reason quotes the request; keep it to one line whatever was sent.
    let line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{line}\n"),
    )
        .into_response()
}

fn refuse_for(dialect: &str, error: HookError) -> Response {
    match error {
        HookError::BadPayload(reason) => refuse(StatusCode::BAD_REQUEST, &reason),
        HookError::Unauthorized(reason) => refuse(StatusCode::FORBIDDEN, &reason),
        HookError::Options(reason) => {
            tracing::error!(dialect = %dialect, error = %reason, "change hook misconfigured");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "change hook misconfigured; see the master log",
            )
        }
    }
}

fn internal(dialect: &str, what: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(dialect = %dialect, error = %error, "{what}");
    refuse(StatusCode::INTERNAL_SERVER_ERROR, what)
}

/// Checks Basic credentials against every `file:` entry of `change_hook_auth`.
fn check_auth(state: &AppState, entries: &[String], headers: &HeaderMap) -> Result<(), String> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| "authentication required".to_string())?;
    let (user, password) = given
        .split_once(':')
        .ok_or_else(|| "authentication required".to_string())?;
    let mut accounts: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries {
        let Some(file) = entry.strip_prefix("file:") else {
            continue;
        };
        let path = state.shared.basedir.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            tracing::error!(file = %path.display(), "change_hook_auth file cannot be read");
            continue;
        };
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if let Some((u, p)) = line.split_once(':') {
                accounts.insert(u.to_string(), p.to_string());
            }
        }
    }
    // Compare against a dummy when the user is unknown, so timing does not reveal names.
    let expected = accounts
        .get(user)
        .cloned()
        .unwrap_or_else(|| "\u{0}".repeat(password.len().max(1)));
    let ok =
        bool::from(expected.as_bytes().ct_eq(password.as_bytes())) && accounts.contains_key(user);
    if ok {
        Ok(())
    } else {
        Err("wrong user or password".to_string())
    }
}

/// Test support shared by the dialects' tests: requests and a readable dump of changes.
#[cfg(test)]
pub(crate) mod testing {
    use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
    use store::NewChange;

    use super::HookRequest;

    /// The time every test request is received at.
    pub const NOW: model::Timestamp = 1_700_000_000;

    /// A POST with `headers` and `body`.
    pub fn request(headers: &[(&str, &str)], query: &str, body: &[u8]) -> HookRequest {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
                HeaderValue::from_str(value).expect("test header value"),
            );
        }
        HookRequest::from_parts(Method::POST, map, query, body.to_vec().into(), NOW)
    }

    /// One block per change, one line per field, empty fields left out.
    pub fn describe(changes: &[NewChange]) -> String {
        let mut out = String::new();
        for change in changes {
            let mut line = |name: &str, value: &str| {
                if !value.is_empty() {
                    out.push_str(&format!("{name}: {value}\n"));
                }
            };
            line("author", &change.author);
            line("committer", change.committer.as_deref().unwrap_or(""));
            line("revision", change.revision.as_deref().unwrap_or(""));
            line("branch", change.branch.as_deref().unwrap_or(""));
            line("files", &change.files.join(" "));
            line("comments", &change.comments.replace('\n', "\\n"));
            line("repository", &change.repository);
            line("project", &change.project);
            line("codebase", &change.codebase);
            line("category", change.category.as_deref().unwrap_or(""));
            line("revlink", change.revlink.as_deref().unwrap_or(""));
            let when = match change.when_timestamp {
                NOW => "[received]".to_string(),
                t => t.to_string(),
            };
            line("when", &when);
            let properties: Vec<String> = change
                .properties
                .iter()
                .map(|(name, value, _)| match value {
                    serde_json::Value::String(text) => format!("{name}={text}"),
                    other => format!("{name}={other}"),
                })
                .collect();
            line("properties", &properties.join(" "));
            out.push_str("--\n");
        }
        out
    }
}
