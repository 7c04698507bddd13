//! What templates see: builders, builds, steps and changes shaped as small JSON objects with
//! their URLs and CSS classes, and the builder boxes shared by the overview pages.

use std::collections::HashMap;

use model::{BuilderId, Results};
use serde_json::{json, Value as Json};
use store::{BuildRecord, ChangeRecord, StepRecord};

use crate::{AppState, WebError};

/// Maps a store error to the web's.
pub(crate) fn internal(e: store::StoreError) -> WebError {
    WebError::Internal(e.to_string())
}

/// Seconds as `1h 02m`, `3m 05s`, `12s`.
pub(crate) fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A Unix time as `2024-05-01 12:00:00` (UTC).
pub(crate) fn time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A Unix time in RFC 3339 (feeds).
pub(crate) fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// Percent-encodes one path segment.
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The CSS class and the word for a result (None: still running).
pub(crate) fn result_class(results: Option<Results>) -> &'static str {
    results.map(Results::name).unwrap_or("running")
}

/// One configured builder.
#[derive(Debug, Clone)]
pub(crate) struct BuilderInfo {
    pub id: BuilderId,
    pub name: String,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub workernames: Vec<String>,
}

impl BuilderInfo {
    pub(crate) fn url(&self) -> String {
        format!("/builders/{}", seg(&self.name))
    }
}

/// The builders of the config in force, in config order.
pub(crate) struct Catalog {
    pub builders: Vec<BuilderInfo>,
    by_id: HashMap<BuilderId, usize>,
}

impl Catalog {
    pub(crate) fn of(state: &AppState) -> Catalog {
        let runtime = state.shared.runtime();
        let builders: Vec<BuilderInfo> = runtime
            .config
            .builders
            .iter()
            .filter_map(|b| {
                let id = *runtime.builder_ids.get(&b.name)?;
                let mut tags = b.tags.clone();
                if let Some(category) = &b.category {
                    if !tags.contains(category) {
                        tags.push(category.clone());
                    }
                }
                Some(BuilderInfo {
                    id,
                    name: b.name.clone(),
                    tags,
                    description: b.description.clone(),
                    workernames: b.workernames.clone(),
                })
            })
            .collect();
        let by_id = builders
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id, i))
            .collect();
        Catalog { builders, by_id }
    }

    pub(crate) fn get(&self, id: BuilderId) -> Option<&BuilderInfo> {
        self.by_id.get(&id).and_then(|i| self.builders.get(*i))
    }

    pub(crate) fn named(&self, name: &str) -> Option<&BuilderInfo> {
        self.builders.iter().find(|b| b.name == name)
    }

    /// The builder named `name`, or a 404.
    pub(crate) fn require(&self, name: &str) -> Result<&BuilderInfo, WebError> {
        self.named(name)
            .ok_or_else(|| WebError::NotFound(format!("no builder named {name:?}")))
    }

    /// Builders kept by `builder=` names and `category=` (a category or tag); all when both
    /// are empty.
    pub(crate) fn select(&self, names: &[String], categories: &[String]) -> Vec<&BuilderInfo> {
        self.builders
            .iter()
            .filter(|b| names.is_empty() || names.contains(&b.name))
            .filter(|b| categories.is_empty() || b.tags.iter().any(|t| categories.contains(t)))
            .collect()
    }

    pub(crate) fn name(&self, id: BuilderId) -> String {
        self.get(id)
            .map(|b| b.name.clone())
            .unwrap_or_else(|| format!("builder {}", id.0))
    }
}

/// A build for templates.
pub(crate) fn build(catalog: &Catalog, b: &BuildRecord) -> Json {
    let name = catalog.name(b.builderid);
    let duration = b.complete_at.map(|end| end - b.started_at);
    json!({
        "id": b.id.0,
        "number": b.number,
        "builder": name,
        "builderid": b.builderid.0,
        "url": format!("/builders/{}/builds/{}", seg(&name), b.number),
        "class": result_class(b.results),
        "result": b.results.map(Results::name).unwrap_or("running"),
        "state": b.state_string,
        "started_at": b.started_at,
        "complete_at": b.complete_at,
        "duration": duration,
        "finished": b.complete_at.is_some(),
    })
}

/// A step for templates; `build_url` is its build's page.
pub(crate) fn step(build_url: &str, s: &StepRecord) -> Json {
    let duration = match (s.started_at, s.complete_at) {
        (Some(start), Some(end)) => Some(end - start),
        _ => None,
    };
    let class = match (s.started_at, s.results) {
        (None, None) => "pending",
        (_, r) => result_class(r),
    };
    json!({
        "id": s.id.0,
        "number": s.number,
        "name": s.name,
        "url": format!("{build_url}/steps/{}", seg(&s.name)),
        "class": class,
        "state": s.state_string,
        "started_at": s.started_at,
        "complete_at": s.complete_at,
        "duration": duration,
        "hidden": s.hidden,
        "urls": s.urls.iter().map(|(n, u)| json!({"name": n, "url": safe_url(u)})).collect::<Vec<_>>(),
    })
}

/// `url` if it is http(s) or relative, else `#` (no `javascript:` links from build data).
pub(crate) fn safe_url(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with('/') {
        url.trim().to_string()
    } else {
        "#".to_string()
    }
}

/// A change for templates, with `revlink`, project and repository links from the WebStatus
/// options (each a URL pattern with `%s`, a dict, or a function of `master.cfg`) and ticket
/// links in the comments.
pub(crate) fn change(state: &AppState, c: &ChangeRecord) -> Json {
    let runtime = state.shared.runtime();
    let options = &runtime.config.www.options;
    // A function option is called with limits; a failing or non-string answer means no link.
    let call = |option: &str, args: &[Json]| -> Option<String> {
        let f = runtime.config.www.functions.get(option)?;
        match runtime.functions.call(*f, args) {
            Ok(Json::String(url)) if !url.is_empty() => Some(url),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(option, error = %e, "www function failed");
                None
            }
        }
    };
    let lookup = |option: &str, key: &str| -> Option<String> {
        match options.get(option) {
            Some(Json::Object(map)) => map.get(key).and_then(Json::as_str).map(str::to_string),
            Some(Json::String(pattern)) if pattern.contains("%s") => {
                Some(pattern.replace("%s", key))
            }
            _ => call(option, &[json!(key)]),
        }
    };
    let revlink = c
        .revlink
        .clone()
        .filter(|l| !l.is_empty())
        .or_else(|| {
            let rev = c.revision.as_deref()?;
            match options.get("revlink") {
                Some(Json::String(pattern)) if pattern.contains("%s") => {
                    Some(pattern.replace("%s", rev))
                }
                Some(Json::Object(map)) => map
                    .get(&c.repository)
                    .and_then(Json::as_str)
                    .map(|p| p.replace("%s", rev)),
                _ => call("revlink", &[json!(rev), json!(c.repository)]),
            }
        })
        .map(|l| safe_url(&l));
    json!({
        "id": c.id.0,
        "url": format!("/changes/{}", c.id.0),
        "author": c.author,
        "committer": c.committer,
        "comments": c.comments,
        "comments_html": comment_html(options.get("changecommentlink"), &c.comments),
        "title": c.comments.lines().next().unwrap_or_default(),
        "branch": c.branch,
        "revision": c.revision,
        "short_revision": c.revision.as_deref().map(|r| r.chars().take(12).collect::<String>()),
        "revlink": revlink,
        "when": c.when_timestamp,
        "category": c.category,
        "repository": c.repository,
        "repository_url": lookup("repositories", &c.repository).map(|u| safe_url(&u)),
        "project": c.project,
        "project_url": lookup("projects", &c.project).map(|u| safe_url(&u)),
        "codebase": c.codebase,
        "files": c.files,
        "properties": c.properties.iter().map(|(n, v, s)| json!({"name": n, "value": display(v), "source": s})).collect::<Vec<_>>(),
    })
}

/// A property value as people read it: strings bare, everything else as JSON.
pub(crate) fn display(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The comment, escaped, with ticket references linked when `changecommentlink` is
/// `[regex, url]` (the url may use `\1` or `%s` for the first group).
fn comment_html(link: Option<&Json>, comments: &str) -> String {
    let escape = super::ansi::escape;
    let Some(Json::Array(parts)) = link else {
        return escape(comments);
    };
    let (Some(pattern), Some(url)) = (
        parts.first().and_then(Json::as_str),
        parts.get(1).and_then(Json::as_str),
    ) else {
        return escape(comments);
    };
    let Ok(re) = regex::Regex::new(pattern) else {
        return escape(comments);
    };
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(comments) {
        let Some(whole) = caps.get(0) else { continue };
        let group = caps.get(1).map(|m| m.as_str()).unwrap_or(whole.as_str());
        let href = safe_url(&url.replace("\\1", group).replace("%s", group));
        out.push_str(&escape(&comments[last..whole.start()]));
        out.push_str(&format!(
            "<a href=\"{}\">{}</a>",
            escape(&href),
            escape(whole.as_str())
        ));
        last = whole.end();
    }
    out.push_str(&escape(&comments[last..]));
    out
}

/// The state of a builder on every overview: last finished build (red however long ago it
/// failed), running builds, pending requests with an ETA, and its workers.
pub(crate) async fn builder_boxes(
    state: &AppState,
    catalog: &Catalog,
    builders: &[&BuilderInfo],
    branches: &[String],
) -> Result<Vec<Json>, WebError> {
    let store = &state.shared.store;
    let ids: Vec<BuilderId> = builders.iter().map(|b| b.id).collect();
    let summaries = store
        .builder_summaries(Some(&ids), branches)
        .await
        .map_err(internal)?;
    let running = store.builds_running().await.map_err(internal)?;
    let pending = store
        .buildrequests_unclaimed(Some(&ids))
        .await
        .map_err(internal)?;
    let workers = worker_states(state);
    let now = model::now();
    let out = builders
        .iter()
        .map(|b| {
            let summary = summaries.iter().find(|s| s.builderid == b.id);
            let last = summary.and_then(|s| s.last_finished.as_ref());
            let mean = summary.and_then(|s| s.recent_duration_s);
            let runs: Vec<Json> = running
                .iter()
                .filter(|r| r.builderid == b.id)
                .map(|r| {
                    let mut j = build(catalog, r);
                    if let Some(mean) = mean {
                        j["eta"] = json!((r.started_at + mean - now).max(0));
                    }
                    j
                })
                .collect();
            let waiting: Vec<Json> = pending
                .iter()
                .filter(|r| r.builderid == b.id)
                .map(|r| {
                    json!({"id": r.id.0, "buildsetid": r.buildsetid.0,
                           "submitted_at": r.submitted_at})
                })
                .collect();
            let connected: Vec<&str> = b
                .workernames
                .iter()
                .filter(|w| workers.get(w.as_str()).is_some_and(|s| s.0))
                .map(String::as_str)
                .collect();
            let paused: Vec<&str> = b
                .workernames
                .iter()
                .filter(|w| workers.get(w.as_str()).is_some_and(|s| s.1))
                .map(String::as_str)
                .collect();
            let offline: Vec<&str> = b
                .workernames
                .iter()
                .filter(|w| !workers.get(w.as_str()).is_some_and(|s| s.0))
                .map(String::as_str)
                .collect();
            // Requests wait for the running builds, then run one after another.
            let queue_eta = mean.map(|m| {
                let ahead: i64 = runs
                    .iter()
                    .filter_map(|r| r["eta"].as_i64())
                    .min()
                    .unwrap_or(0);
                ahead + m * (waiting.len() as i64).saturating_sub(1).max(0) + m
            });
            let class = last.map(|l| result_class(l.results)).unwrap_or("none");
            json!({
                "id": b.id.0,
                "name": b.name,
                "url": b.url(),
                "tags": b.tags,
                "description": b.description,
                "class": class,
                "last": last.map(|l| build(catalog, l)),
                "running": runs,
                "pending": waiting,
                "pending_count": waiting.len(),
                "pending_eta": if waiting.is_empty() { None } else { queue_eta },
                "workers_connected": connected,
                "workers_paused": paused,
                "workers_offline": offline,
                "offline": connected.is_empty(),
            })
        })
        .collect();
    Ok(out)
}

/// name -> (connected, paused) for every configured worker.
pub(crate) fn worker_states(state: &AppState) -> HashMap<String, (bool, bool)> {
    state.shared.workers.with(|slots| {
        slots
            .iter()
            .map(|(name, slot)| (name.clone(), (slot.conn.is_some(), slot.paused)))
            .collect()
    })
}
