//! One finished build, loaded once per event and shared by every target that renders it.

use std::collections::BTreeMap;
use std::sync::Arc;

use config::status_objects::{
    BuildStatus, ChangeStatus, LogStatus, PatchStatus, SourceStampStatus, StepStatus,
};
use model::{BuildId, BuilderId, BuildsetId, Properties, Results, SourceStampView};
use store::Store;

use crate::previous::PreviousBuild;
use crate::{BuilderInfo, ReporterError};

/// How much log text the targets need, beyond the failing step's tail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogNeeds {
    /// Lines to load from the end of every log (0: none).
    pub every_log_tail: i64,
}

/// Lines of the failing step's log quoted in default messages.
pub const FAILING_TAIL_LINES: i64 = 40;

/// Extra lines read from the end of a log, since header lines are dropped from it.
const HEADER_ALLOWANCE: i64 = 20;

/// A log's text as `log.getText()` gives it: for a stdio log, the output lines without
/// their stream marker, and without the header lines (command, environment, elapsed time).
fn log_text(kind: store::LogKind, raw: &str) -> String {
    match kind {
        store::LogKind::Stdio => {
            let mut out = String::with_capacity(raw.len());
            for line in raw.lines() {
                match line.strip_prefix('o').or_else(|| line.strip_prefix('e')) {
                    Some(text) => {
                        out.push_str(text);
                        out.push('\n');
                    }
                    None => continue,
                }
            }
            out
        }
        store::LogKind::Text | store::LogKind::Html => raw.to_string(),
    }
}

/// The last lines of the first failing step's main log.
#[derive(Debug, Clone, PartialEq)]
pub struct FailingLog {
    /// Step name.
    pub step: String,
    /// Log name.
    pub log: String,
    /// Its last [`FAILING_TAIL_LINES`] lines.
    pub tail: String,
}

/// A finished build with everything a target may say about it.
#[derive(Debug, Clone)]
pub struct BuildSnapshot {
    /// Row id.
    pub buildid: BuildId,
    /// Builder row id.
    pub builderid: BuilderId,
    /// The buildset the build ran for.
    pub buildsetid: BuildsetId,
    /// Builder name and categories.
    pub builder: BuilderInfo,
    /// The build's result (RETRY for a build that never finished cleanly).
    pub results: Results,
    /// The status objects that user functions see (with the previous build, one level).
    pub status: Arc<BuildStatus>,
    /// The previous finished build of the builder (one indexed query).
    pub previous: Option<PreviousBuild>,
    /// The build's properties, for `Interpolate` in extra headers.
    pub properties: Properties,
    /// Source stamps, for `%(src:…)s`.
    pub sourcestamps: Vec<SourceStampView>,
    /// Email addresses the users table gives for change authors.
    pub user_emails: BTreeMap<String, String>,
    /// The `owner`/`owners` properties, always told.
    pub owners: Vec<String>,
    /// The failing step's log tail, if a step failed.
    pub failing_log: Option<FailingLog>,
    /// Title of the master (`c['title']`).
    pub title: String,
    /// `c['buildbotURL']`.
    pub buildbot_url: String,
}

impl BuildSnapshot {
    /// Loads build `id` with log tails as `needs` says.
    pub async fn load(
        store: &Store,
        runtime: &engine::master::Runtime,
        id: BuildId,
        needs: LogNeeds,
    ) -> Result<Option<BuildSnapshot>, ReporterError> {
        let Some(build) = store.build_get(id).await? else {
            return Ok(None);
        };
        let builder = builder_info(runtime, store, build.builderid).await?;
        let properties = store.build_properties(id).await?;
        let request = store.buildrequest_get(build.buildrequestid).await?;
        let buildsetid = request
            .as_ref()
            .map(|r| r.buildsetid)
            .unwrap_or(BuildsetId(0));
        let buildset = store.buildset_get(buildsetid).await?;
        let reason = buildset
            .as_ref()
            .map(|b| b.reason.clone())
            .unwrap_or_default();
        let worker_name = match build.workerid {
            Some(w) => store
                .worker_get(w)
                .await?
                .map(|w| w.name)
                .unwrap_or_default(),
            None => String::new(),
        };
        let stamps = store.buildset_sourcestamps(buildsetid).await?;
        let mut source_stamps = Vec::with_capacity(stamps.len());
        let mut authors: Vec<String> = Vec::new();
        for ss in &stamps {
            let changes = store.changes_for_sourcestamp(ss.id).await?;
            for c in &changes {
                if !authors.contains(&c.author) {
                    authors.push(c.author.clone());
                }
            }
            source_stamps.push(SourceStampStatus {
                codebase: ss.codebase.clone(),
                branch: ss.branch.clone(),
                revision: ss.revision.clone(),
                repository: ss.repository.clone(),
                project: ss.project.clone(),
                patch: ss.patch.as_ref().map(|p| PatchStatus {
                    level: p.level,
                    body: String::from_utf8_lossy(&p.body).into_owned(),
                    subdir: p.subdir.clone(),
                    author: p.author.clone().unwrap_or_default(),
                    comment: p.comment.clone().unwrap_or_default(),
                }),
                changes: changes
                    .iter()
                    .map(|c| ChangeStatus {
                        number: c.id.0,
                        who: c.author.clone(),
                        revision: c.revision.clone(),
                        branch: c.branch.clone(),
                        when: c.when_timestamp,
                        files: c.files.clone(),
                        comments: c.comments.clone(),
                        repository: c.repository.clone(),
                        project: c.project.clone(),
                        category: c.category.clone(),
                        revlink: c.revlink.clone(),
                    })
                    .collect(),
            });
        }
        let mut steps = Vec::new();
        let mut failing_log = None;
        for step in store.steps_for_build(id).await? {
            let logs = store.logs_for_step(step.id).await?;
            let failed = matches!(step.results, Some(Results::Failure | Results::Exception));
            let mut log_statuses = Vec::with_capacity(logs.len());
            for (index, log) in logs.iter().enumerate() {
                let main_log =
                    log.name == "stdio" || (index == 0 && !logs.iter().any(|l| l.name == "stdio"));
                let wants_failing = failed && failing_log.is_none() && main_log;
                let tail = match wants_failing {
                    true => needs.every_log_tail.max(FAILING_TAIL_LINES),
                    false => needs.every_log_tail,
                };
                let text = match tail > 0 && log.num_lines > 0 {
                    true => {
                        // A few more lines than asked, for the header lines dropped below.
                        let first = (log.num_lines - tail - HEADER_ALLOWANCE).max(0);
                        let raw = store.log_lines(log.id, first, log.num_lines - 1).await?;
                        let text = log_text(log.kind, &raw);
                        let skip = text.lines().count().saturating_sub(tail as usize);
                        let kept: Vec<&str> = text.lines().skip(skip).collect();
                        kept.join("\n") + if kept.is_empty() { "" } else { "\n" }
                    }
                    false => String::new(),
                };
                if wants_failing {
                    let skip = text
                        .lines()
                        .count()
                        .saturating_sub(FAILING_TAIL_LINES as usize);
                    let tail: Vec<&str> = text.lines().skip(skip).collect();
                    failing_log = Some(FailingLog {
                        step: step.name.clone(),
                        log: log.name.clone(),
                        tail: tail.join("\n"),
                    });
                }
                log_statuses.push(LogStatus {
                    name: log.name.clone(),
                    text: match needs.every_log_tail > 0 {
                        true => text,
                        false => String::new(),
                    },
                });
            }
            steps.push(StepStatus {
                name: step.name.clone(),
                results: step.results.map(Results::code),
                text: step.state_string.clone(),
                finished: step.complete_at.is_some(),
                logs: log_statuses,
            });
        }
        let previous =
            crate::previous::default_previous(store, build.builderid, build.number).await?;
        let user_emails = user_emails(store, &authors).await?;
        let owners = owners(&properties);
        let buildbot_url = runtime.config.buildbot_url.clone();
        let url = format!(
            "{buildbot_url}builders/{}/builds/{}",
            url_segment(&builder.name),
            build.number
        );
        let results = build.results.unwrap_or(Results::Retry);
        let status = BuildStatus {
            builder_name: builder.name.clone(),
            number: build.number,
            results: Some(results.code()),
            text: build.state_string.clone(),
            reason,
            properties: properties
                .iter()
                .map(|(k, v, s)| (k.to_string(), v.clone(), s.to_string()))
                .collect(),
            worker_name,
            responsible_users: authors,
            source_stamps,
            steps,
            url,
            previous: previous.as_ref().map(|p| {
                Box::new(BuildStatus {
                    builder_name: builder.name.clone(),
                    number: p.number,
                    results: p.results.map(Results::code),
                    url: format!(
                        "{buildbot_url}builders/{}/builds/{}",
                        url_segment(&builder.name),
                        p.number
                    ),
                    ..BuildStatus::default()
                })
            }),
        };
        let sourcestamps = stamps
            .iter()
            .map(|ss| SourceStampView {
                codebase: ss.codebase.clone(),
                branch: ss.branch.clone(),
                revision: ss.revision.clone(),
                repository: ss.repository.clone(),
                project: ss.project.clone(),
            })
            .collect();
        Ok(Some(BuildSnapshot {
            buildid: id,
            builderid: build.builderid,
            buildsetid,
            builder,
            results,
            status: Arc::new(status),
            previous,
            properties,
            sourcestamps,
            user_emails,
            owners,
            failing_log,
            title: runtime.config.title.clone(),
            buildbot_url,
        }))
    }
}

/// The builder's name and categories (its `category` and `tags`).
pub(crate) async fn builder_info(
    runtime: &engine::master::Runtime,
    store: &Store,
    id: BuilderId,
) -> Result<BuilderInfo, ReporterError> {
    if let Some(b) = runtime.builder_by_id(id) {
        let mut categories: Vec<String> = b.category.iter().cloned().collect();
        categories.extend(b.tags.iter().cloned());
        return Ok(BuilderInfo {
            name: b.name.clone(),
            categories,
        });
    }
    // A builder removed by a reconfig still has its row.
    let record = store.builder_get(id).await?;
    Ok(BuilderInfo {
        name: record.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
        categories: record.map(|r| r.tags).unwrap_or_default(),
    })
}

/// Addresses the users table holds for `authors`: a user whose identifier, or one of whose
/// attributes, is the author, with an `email` attribute.
async fn user_emails(
    store: &Store,
    authors: &[String],
) -> Result<BTreeMap<String, String>, ReporterError> {
    let mut out = BTreeMap::new();
    if authors.is_empty() {
        return Ok(out);
    }
    let mut everyone = None;
    for author in authors {
        let user = match store.user_get_by_identifier(author).await? {
            Some(u) => Some(u),
            None => {
                if everyone.is_none() {
                    everyone = Some(store.users_list().await?);
                }
                everyone
                    .as_ref()
                    .and_then(|all| {
                        all.iter()
                            .find(|u| u.attributes.iter().any(|(_, data)| data == author))
                    })
                    .cloned()
            }
        };
        let email = user.and_then(|u| {
            u.attributes
                .iter()
                .find(|(kind, _)| kind == "email")
                .map(|(_, data)| data.clone())
        });
        if let Some(email) = email {
            out.insert(author.clone(), email);
        }
    }
    Ok(out)
}

/// The `owner` and `owners` properties as a list of names or addresses.
fn owners(properties: &Properties) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["owner", "owners"] {
        match properties.get(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => out.push(s.clone()),
            Some(serde_json::Value::Array(items)) => out.extend(
                items
                    .iter()
                    .filter_map(|i| i.as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    out.dedup();
    out
}

/// A builder name as one URL path segment.
fn url_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
