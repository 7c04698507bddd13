//! The path forms of spec §7 beyond the first few: nested locators (a build by builder and
//! number, a step by name or number, a log by slug), log contents, and the resources that
//! pages read less often (masters, schedulers, change sources, source stamps, projects).
//!
//! Each collection is still one [`ListQuery`] plus at most one batched query (build request
//! properties, the masters embedded in schedulers and change sources).

use std::collections::HashMap;

use model::{BuildId, BuildRequestId, BuildsetId, LogId, MasterId, StepId};
use serde_json::Value;
use store::{FilterSpec, ListQuery, SqlValue, Store};

use crate::paths::{
    builder_id, eq_int, int, list, list_builds, single, single_build, storable, wanted_properties,
    Bool, Fields, Int, Other, Text, BUILDER_FIELDS, BUILDREQUEST_FIELDS, CHANGE_FIELDS, LOG_FIELDS,
    NO_ROW, STEP_FIELDS, WORKER_FIELDS,
};
use crate::spec::ResultSpec;
use crate::{json, DataError, DataResult};

/// Lines a `contents` request gets when it names no `limit`: enough for any page, and a
/// bound on one careless request against a 10 MB log.
pub const DEFAULT_MAX_LOG_LINES: i64 = 10_000;

const MASTER_FIELDS: Fields = &[
    ("masterid", Int),
    ("name", Text),
    ("active", Bool),
    ("last_active", Int),
];
const SCHEDULER_FIELDS: Fields = &[
    ("schedulerid", Int),
    ("name", Text),
    ("enabled", Bool),
    ("master", Other),
];
const CHANGESOURCE_FIELDS: Fields = &[("changesourceid", Int), ("name", Text), ("master", Other)];
const SOURCESTAMP_FIELDS: Fields = &[
    ("ssid", Int),
    ("branch", Text),
    ("revision", Text),
    ("repository", Text),
    ("project", Text),
    ("codebase", Text),
    ("created_at", Int),
    ("patch", Other),
];
const PROJECT_FIELDS: Fields = &[
    ("projectid", Int),
    ("name", Text),
    ("slug", Text),
    ("description", Text),
    ("description_format", Text),
    ("description_html", Text),
    ("active", Bool),
];

/// Where a build is: by id, or by builder (id or name) and number.
#[derive(Clone, Copy)]
enum BuildAt<'a> {
    Id(i64),
    Number(&'a str, i64),
}

/// Where a step is.
#[derive(Clone, Copy)]
enum StepAt<'a> {
    Id(i64),
    InBuild(BuildAt<'a>, &'a str),
}

/// Where a log is.
#[derive(Clone, Copy)]
enum LogAt<'a> {
    Id(i64),
    InStep(StepAt<'a>, &'a str),
}

fn build_at<'a>(s: &[&'a str]) -> Option<(BuildAt<'a>, usize)> {
    match s {
        ["builds", id, ..] => Some((BuildAt::Id(int(id)?), 2)),
        ["builders", b, "builds", n, ..] => Some((BuildAt::Number(b, int(n)?), 4)),
        _ => None,
    }
}

fn step_at<'a>(s: &[&'a str]) -> Option<(StepAt<'a>, usize)> {
    if let ["steps", id, ..] = s {
        return Some((StepAt::Id(int(id)?), 2));
    }
    let (build, used) = build_at(s)?;
    match s.get(used..)? {
        ["steps", x, ..] => Some((StepAt::InBuild(build, x), used + 2)),
        _ => None,
    }
}

fn log_at<'a>(s: &[&'a str]) -> Option<(LogAt<'a>, usize)> {
    if let ["logs", id, ..] = s {
        return Some((LogAt::Id(int(id)?), 2));
    }
    let (step, used) = step_at(s)?;
    match s.get(used..)? {
        ["logs", slug, ..] => Some((LogAt::InStep(step, slug), used + 2)),
        _ => None,
    }
}

/// The build id a locator names; `None` when a builder/number form does not resolve.
async fn resolve_build(store: &Store, at: BuildAt<'_>) -> Result<Option<BuildId>, DataError> {
    match at {
        BuildAt::Id(id) => Ok(Some(BuildId(id))),
        BuildAt::Number(builder, number) => {
            let Some(builder) = builder_id(store, builder).await? else {
                return Ok(None);
            };
            Ok(store.build_by_number(builder, number).await?.map(|b| b.id))
        }
    }
}

async fn resolve_step(
    store: &Store,
    at: StepAt<'_>,
) -> Result<Option<store::StepRecord>, DataError> {
    match at {
        StepAt::Id(id) => Ok(store.step_get(StepId(id)).await?),
        StepAt::InBuild(build, x) => {
            let Some(build) = resolve_build(store, build).await? else {
                return Ok(None);
            };
            if !storable(x) {
                return Ok(None);
            }
            let by = match int(x) {
                Some(n) => FilterSpec::new("number", store::FilterOp::Eq, vec![SqlValue::Int(n)]),
                None => {
                    FilterSpec::new("name", store::FilterOp::Eq, vec![SqlValue::Text(x.into())])
                }
            };
            let q = ListQuery::filtered(vec![eq_int("buildid", build.0), by]);
            Ok(store.steps_list(&q).await?.0.into_iter().next())
        }
    }
}

async fn resolve_log(store: &Store, at: LogAt<'_>) -> Result<Option<store::LogRecord>, DataError> {
    match at {
        LogAt::Id(id) => Ok(store.log_get(LogId(id)).await?),
        LogAt::InStep(step, slug) => {
            let Some(step) = resolve_step(store, step).await? else {
                return Ok(None);
            };
            if !storable(slug) {
                return Ok(None);
            }
            Ok(store.log_get_by_slug(step.id, slug).await?)
        }
    }
}

/// The log a `…/raw` or `…/raw_inline` path names (the path without that last segment),
/// with what the download preamble and file name need.
pub async fn raw_log_target(store: &Store, path: &str) -> Result<RawLogTarget, DataError> {
    let segments: Vec<&str> = path.split('/').collect();
    let not_found = || DataError::NotFound(path.to_string());
    let Some((at, used)) = log_at(&segments) else {
        return Err(DataError::InvalidPath(path.to_string()));
    };
    if used != segments.len() {
        return Err(DataError::InvalidPath(path.to_string()));
    }
    let log = resolve_log(store, at).await?.ok_or_else(not_found)?;
    let step = store.step_get(log.stepid).await?.ok_or_else(not_found)?;
    let build = store.build_get(step.buildid).await?.ok_or_else(not_found)?;
    let builder = store.builder_get(build.builderid).await?;
    let worker = match build.workerid {
        Some(w) => store.worker_get(w).await?.map(|w| w.name),
        None => None,
    };
    Ok(RawLogTarget {
        log,
        builder_name: builder.map(|b| b.name).unwrap_or_default(),
        build_number: build.number,
        step_name: step.name,
        worker_name: worker.unwrap_or_default(),
    })
}

/// A log to download and its context.
#[derive(Debug)]
pub struct RawLogTarget {
    /// The log.
    pub log: store::LogRecord,
    /// Its builder's name.
    pub builder_name: String,
    /// Its build's number.
    pub build_number: i64,
    /// Its step's name.
    pub step_name: String,
    /// The worker that ran the build (empty if unknown).
    pub worker_name: String,
}

/// Answers the paths `paths::get` does not handle itself.
pub(crate) async fn get(
    store: &Store,
    segments: &[&str],
    path: &str,
    spec: &ResultSpec,
) -> Result<DataResult, DataError> {
    let invalid = || DataError::InvalidPath(path.to_string());
    let not_found = || DataError::NotFound(path.to_string());

    // Logs, their contents; steps and their logs; things under a build.
    if let Some((at, used)) = log_at(segments) {
        return match &segments[used..] {
            [] => {
                let log = resolve_log(store, at).await?.ok_or_else(not_found)?;
                single_checked("logs", json::log(&log), LOG_FIELDS, spec)
            }
            ["contents"] => {
                let log = resolve_log(store, at).await?.ok_or_else(not_found)?;
                contents(store, &log, path, spec).await
            }
            _ => Err(invalid()),
        };
    }
    if let Some((at, used)) = step_at(segments) {
        return match &segments[used..] {
            [] => {
                let step = resolve_step(store, at).await?.ok_or_else(not_found)?;
                single_checked("steps", json::step(&step), STEP_FIELDS, spec)
            }
            ["logs"] => match resolve_step(store, at).await? {
                Some(step) => {
                    list(
                        store,
                        "logs",
                        LOG_FIELDS,
                        spec,
                        vec![eq_int("stepid", step.id.0)],
                    )
                    .await
                }
                None if matches!(at, StepAt::Id(_)) => {
                    list(
                        store,
                        "logs",
                        LOG_FIELDS,
                        spec,
                        vec![eq_int("stepid", NO_ROW)],
                    )
                    .await
                }
                None => Err(not_found()),
            },
            _ => Err(invalid()),
        };
    }
    if let Some((at, used)) = build_at(segments) {
        let id_form = matches!(at, BuildAt::Id(_));
        let build = resolve_build(store, at).await?;
        return match (&segments[used..], build) {
            ([], Some(id)) => {
                let b = store.build_get(id).await?.ok_or_else(not_found)?;
                single_build(store, b, spec).await
            }
            (["steps"], Some(id)) => {
                list(
                    store,
                    "steps",
                    STEP_FIELDS,
                    spec,
                    vec![eq_int("buildid", id.0)],
                )
                .await
            }
            (["changes"], Some(id)) => {
                list(
                    store,
                    "changes",
                    CHANGE_FIELDS,
                    spec,
                    vec![eq_int("buildid", id.0)],
                )
                .await
            }
            (["properties"], Some(id)) => Ok(DataResult::Single {
                plural: "properties",
                value: json::properties(&store.build_properties(id).await?),
            }),
            (["steps"], None) if id_form => {
                let none = vec![eq_int("buildid", NO_ROW)];
                list(store, "steps", STEP_FIELDS, spec, none).await
            }
            (["changes"], None) if id_form => {
                let none = vec![eq_int("buildid", NO_ROW)];
                list(store, "changes", CHANGE_FIELDS, spec, none).await
            }
            ([] | ["steps"] | ["changes"] | ["properties"], None) => Err(not_found()),
            _ => Err(invalid()),
        };
    }

    match segments {
        ["changes", id, "builds"] => {
            let id = int(id).ok_or_else(invalid)?;
            list_builds(store, spec, vec![eq_int("changeid", id)]).await
        }
        ["sourcestamps", id, "changes"] => {
            let id = int(id).ok_or_else(invalid)?;
            list(
                store,
                "changes",
                CHANGE_FIELDS,
                spec,
                vec![eq_int("sourcestampid", id)],
            )
            .await
        }
        ["buildrequests", id, "properties"] => {
            let id = int(id).ok_or_else(invalid)?;
            let r = store
                .buildrequest_get(BuildRequestId(id))
                .await?
                .ok_or_else(not_found)?;
            Ok(DataResult::Single {
                plural: "properties",
                value: json::properties(&store.buildset_properties(r.buildsetid).await?),
            })
        }
        // Builders under masters, projects and workers.
        ["masters", m, "builders"] => {
            let m = int(m).ok_or_else(invalid)?;
            list(
                store,
                "builders",
                BUILDER_FIELDS,
                spec,
                vec![eq_int("masterid", m)],
            )
            .await
        }
        ["masters", m, "builders", b] => {
            let (m, b) = (int(m).ok_or_else(invalid)?, int(b).ok_or_else(invalid)?);
            let filters = vec![eq_int("masterid", m), eq_int("builderid", b)];
            first(store, "builders", BUILDER_FIELDS, spec, filters, path).await
        }
        ["projects", p, "builders"] => {
            let p = int(p).ok_or_else(invalid)?;
            list(
                store,
                "builders",
                BUILDER_FIELDS,
                spec,
                vec![eq_int("projectid", p)],
            )
            .await
        }
        ["workers", w, "builders"] => {
            let w = int(w).ok_or_else(invalid)?;
            list(
                store,
                "builders",
                BUILDER_FIELDS,
                spec,
                vec![eq_int("workerid", w)],
            )
            .await
        }
        // Workers, by id or name, alone or under masters and builders.
        ["workers", name] => {
            let filters = vec![by_id_or_name("workerid", name)];
            first(store, "workers", WORKER_FIELDS, spec, filters, path).await
        }
        ["masters", m, "workers"] => {
            let m = int(m).ok_or_else(invalid)?;
            list(
                store,
                "workers",
                WORKER_FIELDS,
                spec,
                vec![eq_int("masterid", m)],
            )
            .await
        }
        ["masters", m, "workers", w] => {
            let m = int(m).ok_or_else(invalid)?;
            let filters = vec![eq_int("masterid", m), by_id_or_name("workerid", w)];
            first(store, "workers", WORKER_FIELDS, spec, filters, path).await
        }
        ["builders", b, "workers"] => {
            let b = builder_id(store, b).await?.map_or(NO_ROW, |b| b.0);
            list(
                store,
                "workers",
                WORKER_FIELDS,
                spec,
                vec![eq_int("builderid", b)],
            )
            .await
        }
        ["builders", b, "workers", w] => {
            let b = builder_id(store, b).await?.ok_or_else(not_found)?;
            let filters = vec![eq_int("builderid", b.0), by_id_or_name("workerid", w)];
            first(store, "workers", WORKER_FIELDS, spec, filters, path).await
        }
        ["masters", m, "builders", b, "workers"] => {
            let (m, b) = (int(m).ok_or_else(invalid)?, int(b).ok_or_else(invalid)?);
            let filters = vec![eq_int("masterid", m), eq_int("builderid", b)];
            list(store, "workers", WORKER_FIELDS, spec, filters).await
        }
        ["masters", m, "builders", b, "workers", w] => {
            let (m, b) = (int(m).ok_or_else(invalid)?, int(b).ok_or_else(invalid)?);
            let filters = vec![
                eq_int("masterid", m),
                eq_int("builderid", b),
                by_id_or_name("workerid", w),
            ];
            first(store, "workers", WORKER_FIELDS, spec, filters, path).await
        }
        // Masters.
        ["masters"] => list(store, "masters", MASTER_FIELDS, spec, vec![]).await,
        ["masters", m] => {
            let m = int(m).ok_or_else(invalid)?;
            first(
                store,
                "masters",
                MASTER_FIELDS,
                spec,
                vec![eq_int("masterid", m)],
                path,
            )
            .await
        }
        ["builders", b, "masters"] => {
            let b = builder_id(store, b).await?.map_or(NO_ROW, |b| b.0);
            list(
                store,
                "masters",
                MASTER_FIELDS,
                spec,
                vec![eq_int("builderid", b)],
            )
            .await
        }
        ["builders", b, "masters", m] => {
            let b = builder_id(store, b).await?.ok_or_else(not_found)?;
            let m = int(m).ok_or_else(invalid)?;
            let filters = vec![eq_int("builderid", b.0), eq_int("masterid", m)];
            first(store, "masters", MASTER_FIELDS, spec, filters, path).await
        }
        // Schedulers and change sources.
        ["schedulers"] => list(store, "schedulers", SCHEDULER_FIELDS, spec, vec![]).await,
        ["schedulers", s] => {
            let s = int(s).ok_or_else(invalid)?;
            let filters = vec![eq_int("schedulerid", s)];
            first(store, "schedulers", SCHEDULER_FIELDS, spec, filters, path).await
        }
        ["masters", m, "schedulers"] => {
            let m = int(m).ok_or_else(invalid)?;
            list(
                store,
                "schedulers",
                SCHEDULER_FIELDS,
                spec,
                vec![eq_int("masterid", m)],
            )
            .await
        }
        ["masters", m, "schedulers", s] => {
            let (m, s) = (int(m).ok_or_else(invalid)?, int(s).ok_or_else(invalid)?);
            let filters = vec![eq_int("masterid", m), eq_int("schedulerid", s)];
            first(store, "schedulers", SCHEDULER_FIELDS, spec, filters, path).await
        }
        ["changesources"] => list(store, "changesources", CHANGESOURCE_FIELDS, spec, vec![]).await,
        ["changesources", c] => {
            let c = int(c).ok_or_else(invalid)?;
            let filters = vec![eq_int("changesourceid", c)];
            first(
                store,
                "changesources",
                CHANGESOURCE_FIELDS,
                spec,
                filters,
                path,
            )
            .await
        }
        ["masters", m, "changesources"] => {
            let m = int(m).ok_or_else(invalid)?;
            let filters = vec![eq_int("masterid", m)];
            list(store, "changesources", CHANGESOURCE_FIELDS, spec, filters).await
        }
        ["masters", m, "changesources", c] => {
            let (m, c) = (int(m).ok_or_else(invalid)?, int(c).ok_or_else(invalid)?);
            let filters = vec![eq_int("masterid", m), eq_int("changesourceid", c)];
            first(
                store,
                "changesources",
                CHANGESOURCE_FIELDS,
                spec,
                filters,
                path,
            )
            .await
        }
        // Source stamps.
        ["sourcestamps"] => list(store, "sourcestamps", SOURCESTAMP_FIELDS, spec, vec![]).await,
        ["sourcestamps", s] => {
            let s = int(s).ok_or_else(invalid)?;
            let filters = vec![eq_int("ssid", s)];
            first(
                store,
                "sourcestamps",
                SOURCESTAMP_FIELDS,
                spec,
                filters,
                path,
            )
            .await
        }
        ["buildsets", bs, "sourcestamps"] => {
            let bs = int(bs).ok_or_else(invalid)?;
            let filters = vec![eq_int("buildsetid", bs)];
            list(store, "sourcestamps", SOURCESTAMP_FIELDS, spec, filters).await
        }
        // Projects.
        ["projects"] => list_projects(store, spec, vec![]).await,
        ["projects", p] => {
            let filter = by_id_or_name("projectid", p);
            let page = list_projects(store, &ResultSpec::default(), vec![filter]).await?;
            match page {
                DataResult::List { items, .. } => match items.into_iter().next() {
                    Some(v) => single_checked("projects", v, PROJECT_FIELDS, spec),
                    None => Err(not_found()),
                },
                single => Ok(single),
            }
        }
        _ => Err(invalid()),
    }
}

/// `id = n` for a numeric segment, else `name = segment`.
fn by_id_or_name(id_column: &'static str, segment: &str) -> FilterSpec {
    match int(segment) {
        Some(id) => eq_int(id_column, id),
        None if !storable(segment) => eq_int(id_column, NO_ROW),
        None => FilterSpec::new(
            "name",
            store::FilterOp::Eq,
            vec![SqlValue::Text(segment.to_string())],
        ),
    }
}

/// A single item checked as spec §5 says: no filters, only known fields.
fn single_checked(
    plural: &'static str,
    value: Value,
    fields: Fields,
    spec: &ResultSpec,
) -> Result<DataResult, DataError> {
    if !spec.filters.is_empty() {
        return Err(DataError::BadRequest("this is not a collection".into()));
    }
    for f in &spec.fields {
        if !fields.iter().any(|(n, _)| n == f) {
            return Err(DataError::BadRequest(format!("no such field '{f}'")));
        }
    }
    single(plural, Some(value), spec).ok_or_else(|| DataError::NotFound(plural.to_string()))
}

/// The first row of a filtered list as a single item, or not found.
async fn first(
    store: &Store,
    plural: &'static str,
    fields: Fields,
    spec: &ResultSpec,
    filters: Vec<FilterSpec>,
    path: &str,
) -> Result<DataResult, DataError> {
    let page = list(store, plural, fields, &ResultSpec::default(), filters).await?;
    let DataResult::List { items, .. } = page else {
        return Err(DataError::NotFound(path.to_string()));
    };
    match items.into_iter().next() {
        Some(value) => single_checked(plural, value, fields, spec),
        None => Err(DataError::NotFound(path.to_string())),
    }
}

/// `logs/{id}/contents` (spec §7.5): lines `offset..offset+limit`, one chunk.
async fn contents(
    store: &Store,
    log: &store::LogRecord,
    path: &str,
    spec: &ResultSpec,
) -> Result<DataResult, DataError> {
    if !spec.filters.is_empty() {
        return Err(DataError::BadRequest("this is not a collection".into()));
    }
    let offset = spec.offset.unwrap_or(0);
    let limit = spec.limit.unwrap_or(DEFAULT_MAX_LOG_LINES);
    let out_of_range = offset < 0 || limit < 0 || (offset > 0 && offset >= log.num_lines);
    if out_of_range {
        return Err(DataError::NotFound(path.to_string()));
    }
    let last = offset.saturating_add(limit).saturating_sub(1);
    let content = match limit {
        0 => String::new(),
        _ => store.log_lines(log.id, offset, last).await?,
    };
    let value = serde_json::json!({"logid": log.id.0, "firstline": offset, "content": content});
    Ok(DataResult::Single {
        plural: "logchunks",
        value: spec.select(value),
    })
}

/// Build requests, with `property=` filled from their buildsets in one batched query.
pub(crate) async fn list_buildrequests(
    store: &Store,
    spec: &ResultSpec,
    fixed: Vec<FilterSpec>,
) -> Result<DataResult, DataError> {
    let page = list(store, "buildrequests", BUILDREQUEST_FIELDS, spec, fixed).await?;
    let DataResult::List {
        plural,
        mut items,
        total,
    } = page
    else {
        return Ok(page);
    };
    if spec.properties.is_empty() {
        return Ok(DataResult::List {
            plural,
            items,
            total,
        });
    }
    let bsids: Vec<BuildsetId> = items
        .iter()
        .filter_map(|r| r.get("buildsetid").and_then(Value::as_i64))
        .map(BuildsetId)
        .collect();
    let props = store.buildsets_properties(&bsids).await?;
    for item in &mut items {
        let Some(bsid) = item.get("buildsetid").and_then(Value::as_i64) else {
            continue;
        };
        let p = props.get(&BuildsetId(bsid)).cloned().unwrap_or_default();
        let p = wanted_properties(p, &spec.properties);
        if let Some(obj) = item.as_object_mut() {
            obj.insert("properties".into(), json::properties(&p));
        }
    }
    Ok(DataResult::List {
        plural,
        items,
        total,
    })
}

/// One build request, with `property=` honoured.
pub(crate) async fn single_buildrequest(
    store: &Store,
    r: store::BuildRequestRecord,
    spec: &ResultSpec,
) -> Result<DataResult, DataError> {
    let props = match spec.properties.is_empty() {
        true => None,
        false => Some(wanted_properties(
            store.buildset_properties(r.buildsetid).await?,
            &spec.properties,
        )),
    };
    single_checked(
        "buildrequests",
        json::buildrequest(&r, props.as_ref()),
        BUILDREQUEST_FIELDS,
        spec,
    )
}

/// Projects; `active` is filled only when the request filtered on it, as upstream.
async fn list_projects(
    store: &Store,
    spec: &ResultSpec,
    fixed: Vec<FilterSpec>,
) -> Result<DataResult, DataError> {
    let active = spec
        .filters
        .iter()
        .find(|f| f.field == "active" && f.values.len() == 1)
        .and_then(|f| match f.values[0].to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Some(matches!(f.op, crate::spec::FilterOp::Eq)),
            "off" | "false" | "no" | "0" => Some(!matches!(f.op, crate::spec::FilterOp::Eq)),
            _ => None,
        });
    let page = list(store, "projects", PROJECT_FIELDS, spec, fixed).await?;
    let DataResult::List {
        plural,
        mut items,
        total,
    } = page
    else {
        return Ok(page);
    };
    if let Some(active) = active {
        for item in &mut items {
            if let Some(obj) = item.as_object_mut().filter(|o| o.contains_key("active")) {
                obj.insert("active".into(), Value::Bool(active));
            }
        }
    }
    Ok(DataResult::List {
        plural,
        items,
        total,
    })
}

/// Rows of the resources `paths::fetch` does not know, shaped as JSON.
pub(crate) async fn fetch(
    store: &Store,
    plural: &str,
    q: &ListQuery,
) -> Result<(Vec<Value>, i64), DataError> {
    Ok(match plural {
        "masters" => {
            let (rows, total) = store.masters_list(q).await?;
            (rows.iter().map(json::master).collect(), total)
        }
        "schedulers" => {
            let (rows, total) = store.schedulers_list(q).await?;
            let masters = masters_by_id(store, rows.iter().filter_map(|s| s.masterid)).await?;
            let items = rows
                .iter()
                .map(|s| json::scheduler(s, s.masterid.and_then(|m| masters.get(&m))))
                .collect();
            (items, total)
        }
        "changesources" => {
            let (rows, total) = store.changesources_list(q).await?;
            let masters = masters_by_id(store, rows.iter().filter_map(|s| s.masterid)).await?;
            let items = rows
                .iter()
                .map(|c| json::changesource(c, c.masterid.and_then(|m| masters.get(&m))))
                .collect();
            (items, total)
        }
        "sourcestamps" => {
            let (rows, total) = store.sourcestamps_list(q).await?;
            (rows.iter().map(json::sourcestamp).collect(), total)
        }
        "projects" => {
            let (rows, total) = store.projects_list(q).await?;
            (rows.iter().map(|p| json::project(p, None)).collect(), total)
        }
        other => return Err(DataError::InvalidPath(other.to_string())),
    })
}

/// The masters with these ids, in one query.
async fn masters_by_id(
    store: &Store,
    ids: impl Iterator<Item = MasterId>,
) -> Result<HashMap<MasterId, store::MasterRecord>, DataError> {
    let mut ids: Vec<SqlValue> = ids.map(|m| SqlValue::Int(m.0)).collect();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let q = ListQuery::filtered(vec![FilterSpec::new("masterid", store::FilterOp::In, ids)]);
    let (rows, _) = store.masters_list(&q).await?;
    Ok(rows.into_iter().map(|m| (m.id, m)).collect())
}
