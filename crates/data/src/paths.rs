//! Path resolution: which endpoint a REST path names, and the store calls that answer it.
//!
//! A collection request becomes one [`store::ListQuery`]: filters, order, limit and offset
//! on the resource's own columns run in SQL, so `meta.total` is the real total and a page
//! costs the same at 50 or 50,000 builds. Filters on fields SQL cannot see (list fields such
//! as a builder's `tags`) make that one request fall back to filtering in memory.

use futures::StreamExt;
use model::{BuildId, BuilderId, BuildsetId, ChangeId, LogId, StepId, WorkerId};
use serde_json::Value;
use store::{FilterSpec, ListQuery, SqlValue, Store};

use crate::spec::{FilterOp, ResultSpec, DEFAULT_MAX_LIMIT};
use crate::{json, DataError};

/// The answer to a Data API request.
#[derive(Debug)]
pub enum DataResult {
    /// One entity, under the type's plural name.
    Single {
        /// Plural type name (`builds`).
        plural: &'static str,
        /// The entity.
        value: Value,
    },
    /// A page of a collection.
    List {
        /// Plural type name.
        plural: &'static str,
        /// Items after paging.
        items: Vec<Value>,
        /// Matches before paging.
        total: i64,
    },
}

/// How a field's values are typed, for filters pushed down to SQL.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Int,
    Text,
    Bool,
    /// Lists and objects: filtered in memory.
    Other,
}

pub(crate) use Kind::{Bool, Int, Other, Text};

pub(crate) type Fields = &'static [(&'static str, Kind)];

pub(crate) const BUILDER_FIELDS: Fields = &[
    ("builderid", Int),
    ("name", Text),
    ("masterids", Other),
    ("description", Text),
    ("description_format", Other),
    ("description_html", Other),
    ("projectid", Int),
    ("tags", Other),
];
const BUILD_FIELDS: Fields = &[
    ("buildid", Int),
    ("number", Int),
    ("builderid", Int),
    ("buildrequestid", Int),
    ("workerid", Int),
    ("masterid", Int),
    ("started_at", Int),
    ("complete", Bool),
    ("complete_at", Int),
    ("locks_duration_s", Int),
    ("results", Int),
    ("state_string", Text),
    ("properties", Other),
];
pub(crate) const STEP_FIELDS: Fields = &[
    ("stepid", Int),
    ("number", Int),
    ("name", Text),
    ("buildid", Int),
    ("started_at", Int),
    ("locks_acquired_at", Int),
    ("complete", Bool),
    ("complete_at", Int),
    ("results", Int),
    ("state_string", Text),
    ("urls", Other),
    ("hidden", Bool),
];
pub(crate) const LOG_FIELDS: Fields = &[
    ("logid", Int),
    ("name", Text),
    ("slug", Text),
    ("stepid", Int),
    ("complete", Bool),
    ("num_lines", Int),
    ("type", Text),
];
pub(crate) const CHANGE_FIELDS: Fields = &[
    ("changeid", Int),
    ("author", Text),
    ("committer", Text),
    ("comments", Text),
    ("branch", Text),
    ("revision", Text),
    ("revlink", Text),
    ("when_timestamp", Int),
    ("category", Text),
    ("repository", Text),
    ("project", Text),
    ("codebase", Text),
    ("files", Other),
    ("parent_changeids", Other),
    ("properties", Other),
    ("sourcestamp", Other),
];
pub(crate) const WORKER_FIELDS: Fields = &[
    ("workerid", Int),
    ("name", Text),
    ("workerinfo", Other),
    ("paused", Bool),
    ("pause_reason", Text),
    ("graceful", Bool),
    ("connected_to", Other),
    ("configured_on", Other),
];
pub(crate) const BUILDREQUEST_FIELDS: Fields = &[
    ("buildrequestid", Int),
    ("buildsetid", Int),
    ("builderid", Int),
    ("priority", Int),
    ("claimed", Bool),
    ("claimed_at", Int),
    ("claimed_by_masterid", Int),
    ("complete", Bool),
    ("complete_at", Int),
    ("results", Int),
    ("submitted_at", Int),
    ("waited_for", Bool),
    ("properties", Other),
];
pub(crate) const BUILDSET_FIELDS: Fields = &[
    ("bsid", Int),
    ("external_idstring", Text),
    ("reason", Text),
    ("submitted_at", Int),
    ("complete", Bool),
    ("complete_at", Int),
    ("results", Int),
    ("sourcestamps", Other),
    ("parent_buildid", Int),
    ("parent_relationship", Text),
    ("rebuilt_buildid", Int),
];

pub(crate) fn int(segment: &str) -> Option<i64> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

/// Answers `path` (without the `api/v2/` prefix) with `spec` applied.
pub async fn get(store: &Store, path: &str, spec: &ResultSpec) -> Result<DataResult, DataError> {
    let segments: Vec<&str> = path.split('/').collect();
    let invalid = || DataError::InvalidPath(path.to_string());
    let not_found = || DataError::NotFound(path.to_string());
    match segments.as_slice() {
        ["builders"] => list_builders(store, spec, vec![]).await,
        ["builders", id] => {
            let id = builder_id(store, id).await?.ok_or_else(not_found)?;
            let (rows, _) = store
                .builders_list(&ListQuery::filtered(vec![eq_int("builderid", id.0)]))
                .await?;
            single("builders", rows.first().map(json::builder), spec).ok_or_else(not_found)
        }
        ["builds"] => list_builds(store, spec, vec![]).await,
        ["builders", id, "builds"] => {
            // An unknown builder still gets its query checked: an empty page, or the 400.
            let id = builder_id(store, id).await?.map_or(NO_ROW, |b| b.0);
            list_builds(store, spec, vec![eq_int("builderid", id)]).await
        }
        ["workers", id, "builds"] => {
            let id = int(id).ok_or_else(invalid)?;
            list_builds(store, spec, vec![eq_int("workerid", id)]).await
        }
        ["buildrequests", id, "builds"] => {
            let id = int(id).ok_or_else(invalid)?;
            list_builds(store, spec, vec![eq_int("buildrequestid", id)]).await
        }
        ["builds", id] => {
            let id = int(id).ok_or_else(invalid)?;
            let b = store.build_get(BuildId(id)).await?.ok_or_else(not_found)?;
            single_build(store, b, spec).await
        }
        ["builders", bid, "builds", number] => {
            let number = int(number).ok_or_else(invalid)?;
            let bid = builder_id(store, bid).await?.ok_or_else(not_found)?;
            let b = store
                .build_by_number(bid, number)
                .await?
                .ok_or_else(not_found)?;
            single_build(store, b, spec).await
        }
        ["builds", id, "properties"] => {
            let id = int(id).ok_or_else(invalid)?;
            let props = store.build_properties(BuildId(id)).await?;
            Ok(DataResult::Single {
                plural: "properties",
                value: json::properties(&props),
            })
        }
        ["builds", id, "steps"] => {
            let id = int(id).ok_or_else(invalid)?;
            list(
                store,
                "steps",
                STEP_FIELDS,
                spec,
                vec![eq_int("buildid", id)],
            )
            .await
        }
        ["steps", id] => {
            let id = int(id).ok_or_else(invalid)?;
            let s = store.step_get(StepId(id)).await?.ok_or_else(not_found)?;
            single("steps", Some(json::step(&s)), spec).ok_or_else(not_found)
        }
        ["steps", id, "logs"] => {
            let id = int(id).ok_or_else(invalid)?;
            list(store, "logs", LOG_FIELDS, spec, vec![eq_int("stepid", id)]).await
        }
        ["logs", id] => {
            let id = int(id).ok_or_else(invalid)?;
            let log = store.log_get(LogId(id)).await?.ok_or_else(not_found)?;
            single("logs", Some(json::log(&log)), spec).ok_or_else(not_found)
        }
        ["changes"] => list(store, "changes", CHANGE_FIELDS, spec, vec![]).await,
        ["changes", id] => {
            let id = int(id).ok_or_else(invalid)?;
            let c = store
                .change_get(ChangeId(id))
                .await?
                .ok_or_else(not_found)?;
            let ss = store.sourcestamp_get(c.sourcestampid).await?;
            single("changes", Some(json::change(&c, ss.as_ref())), spec).ok_or_else(not_found)
        }
        ["workers"] => list(store, "workers", WORKER_FIELDS, spec, vec![]).await,
        ["workers", id] if int(id).is_some() => {
            let id = int(id).ok_or_else(invalid)?;
            let w = store
                .worker_get(WorkerId(id))
                .await?
                .ok_or_else(not_found)?;
            single("workers", Some(json::worker(&w)), spec).ok_or_else(not_found)
        }
        ["buildrequests"] => crate::resources::list_buildrequests(store, spec, vec![]).await,
        ["builders", id, "buildrequests"] => {
            let id = builder_id(store, id).await?.map_or(NO_ROW, |b| b.0);
            crate::resources::list_buildrequests(store, spec, vec![eq_int("builderid", id)]).await
        }
        ["buildrequests", id] => {
            let id = int(id).ok_or_else(invalid)?;
            let r = store
                .buildrequest_get(model::BuildRequestId(id))
                .await?
                .ok_or_else(not_found)?;
            crate::resources::single_buildrequest(store, r, spec).await
        }
        ["buildsets"] => list(store, "buildsets", BUILDSET_FIELDS, spec, vec![]).await,
        ["buildsets", id] => {
            let id = int(id).ok_or_else(invalid)?;
            let b = store
                .buildset_get(BuildsetId(id))
                .await?
                .ok_or_else(not_found)?;
            single("buildsets", Some(json::buildset(&b)), spec).ok_or_else(not_found)
        }
        ["buildsets", id, "properties"] => {
            let id = int(id).ok_or_else(invalid)?;
            let props = store.buildset_properties(BuildsetId(id)).await?;
            Ok(DataResult::Single {
                plural: "properties",
                value: json::properties(&props),
            })
        }
        ["outbox", rest @ ..] => crate::outbox::get(store, rest, spec).await,
        _ => crate::resources::get(store, &segments, path, spec).await,
    }
}

/// False for text no row can hold: PostgreSQL text cannot store NUL and rejects a query
/// that compares with it, so a name or filter value with NUL matches nothing (or is a 400)
/// instead of reaching SQL.
pub(crate) fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// An id no row has (ids start at 1): a collection under a parent that does not exist is
/// queried with it, so its result spec is still checked and a bad one is still a 400.
pub(crate) const NO_ROW: i64 = -1;

pub(crate) async fn builder_id(
    store: &Store,
    segment: &str,
) -> Result<Option<BuilderId>, DataError> {
    Ok(match int(segment) {
        Some(id) => Some(BuilderId(id)),
        None if !storable(segment) => None,
        None => store.builder_id(segment).await?,
    })
}

pub(crate) fn eq_int(column: &'static str, value: i64) -> FilterSpec {
    FilterSpec::new(column, store::FilterOp::Eq, vec![SqlValue::Int(value)])
}

pub(crate) fn single(
    plural: &'static str,
    value: Option<Value>,
    spec: &ResultSpec,
) -> Option<DataResult> {
    value.map(|v| DataResult::Single {
        plural,
        value: spec.select(v),
    })
}

pub(crate) async fn single_build(
    store: &Store,
    b: store::BuildRecord,
    spec: &ResultSpec,
) -> Result<DataResult, DataError> {
    let props = match spec.properties.is_empty() {
        true => None,
        false => Some(wanted_properties(
            store.build_properties(b.id).await?,
            &spec.properties,
        )),
    };
    Ok(DataResult::Single {
        plural: "builds",
        value: spec.select(json::build(&b, props.as_ref())),
    })
}

pub(crate) fn wanted_properties(all: model::Properties, wanted: &[String]) -> model::Properties {
    if wanted.iter().any(|w| w == "*") {
        return all;
    }
    let mut out = model::Properties::new();
    for (name, value, source) in all.iter() {
        if wanted.iter().any(|w| w == name) {
            out.set(name, value.clone(), source);
        }
    }
    out
}

async fn list_builders(
    store: &Store,
    spec: &ResultSpec,
    fixed: Vec<FilterSpec>,
) -> Result<DataResult, DataError> {
    list(store, "builders", BUILDER_FIELDS, spec, fixed).await
}

pub(crate) async fn list_builds(
    store: &Store,
    spec: &ResultSpec,
    fixed: Vec<FilterSpec>,
) -> Result<DataResult, DataError> {
    let DataResult::List {
        plural,
        mut items,
        total,
    } = list(store, "builds", BUILD_FIELDS, spec, fixed).await?
    else {
        return Err(DataError::BadRequest("unexpected single result".into()));
    };
    if !spec.properties.is_empty() {
        let ids: Vec<BuildId> = items
            .iter()
            .filter_map(|b| b.get("buildid").and_then(Value::as_i64))
            .map(BuildId)
            .collect();
        // One batched query for every build of the page, never one per build.
        let mut props = store.builds_properties(&ids).await?;
        for item in &mut items {
            let Some(id) = item.get("buildid").and_then(Value::as_i64) else {
                continue;
            };
            let p = wanted_properties(
                props.remove(&BuildId(id)).unwrap_or_default(),
                &spec.properties,
            );
            if let Some(obj) = item.as_object_mut() {
                obj.insert("properties".to_string(), json::properties(&p));
            }
        }
    }
    Ok(DataResult::List {
        plural,
        items,
        total,
    })
}

/// Splits the spec into what SQL can do and what needs memory, runs the query, and shapes
/// the rows.
pub(crate) async fn list(
    store: &Store,
    plural: &'static str,
    fields: Fields,
    spec: &ResultSpec,
    fixed: Vec<FilterSpec>,
) -> Result<DataResult, DataError> {
    let known: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    let field = |name: &str| fields.iter().find(|(n, _)| *n == name).copied();
    let mut query = ListQuery::filtered(fixed);
    let mut in_memory = ResultSpec {
        fields: spec.fields.clone(),
        ..ResultSpec::default()
    };
    for f in &spec.filters {
        match field(&f.field) {
            Some((name, kind)) if kind != Other && !matches!(f.op, FilterOp::Contains) => {
                if !spec.fields.is_empty() && !spec.fields.contains(&f.field) {
                    return Err(DataError::BadRequest(
                        "cannot filter on un-selected fields".into(),
                    ));
                }
                let values = f
                    .values
                    .iter()
                    .map(|v| sql_value(kind, &f.field, v))
                    .collect::<Result<Vec<_>, _>>()?;
                if matches!(
                    f.op,
                    FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge
                ) && values.len() != 1
                {
                    continue; // upstream drops ordering filters with several values
                }
                query
                    .filters
                    .push(FilterSpec::new(name, store_op(f.op), values));
            }
            _ => in_memory.filters.push(f.clone()),
        }
    }
    for (name, desc) in &spec.order {
        match field(name) {
            Some((n, kind)) if kind != Other => query.order.push((n, *desc)),
            Some(_) => in_memory.order.push((name.clone(), *desc)),
            None => return Err(DataError::BadRequest(format!("no such field '{name}'"))),
        }
    }
    for f in &spec.fields {
        if field(f).is_none() {
            return Err(DataError::BadRequest(format!("no such field '{f}'")));
        }
    }
    if !spec.fields.is_empty() && spec.order.iter().any(|(o, _)| !spec.fields.contains(o)) {
        return Err(DataError::BadRequest(
            "cannot order on un-selected fields".into(),
        ));
    }
    let memory_work = !in_memory.filters.is_empty() || !in_memory.order.is_empty();
    if memory_work {
        // Order in memory keeps SQL order for ties; paging happens after filtering.
        in_memory.order.splice(
            0..0,
            spec.order
                .iter()
                .filter(|(n, _)| field(n).is_some_and(|(_, k)| k != Other))
                .cloned(),
        );
        in_memory.limit = spec.limit;
        in_memory.offset = spec.offset;
    } else {
        query.limit = Some(spec.limit.unwrap_or(DEFAULT_MAX_LIMIT));
        query.offset = spec.offset;
    }
    let (rows, total) = fetch(store, plural, &query).await?;
    if memory_work {
        let (items, total) = in_memory.apply(rows, &known)?;
        return Ok(DataResult::List {
            plural,
            items,
            total,
        });
    }
    let items = rows.into_iter().map(|r| spec.select(r)).collect();
    Ok(DataResult::List {
        plural,
        items,
        total,
    })
}

async fn fetch(store: &Store, plural: &str, q: &ListQuery) -> Result<(Vec<Value>, i64), DataError> {
    Ok(match plural {
        "builders" => {
            let (rows, total) = store.builders_list(q).await?;
            (rows.iter().map(json::builder).collect(), total)
        }
        "builds" => {
            let (rows, total) = store.builds_list(q).await?;
            (rows.iter().map(|b| json::build(b, None)).collect(), total)
        }
        "steps" => {
            let (rows, total) = store.steps_list(q).await?;
            (rows.iter().map(json::step).collect(), total)
        }
        "logs" => {
            let (rows, total) = store.logs_list(q).await?;
            (rows.iter().map(json::log).collect(), total)
        }
        "changes" => {
            let (rows, total) = store.changes_list(q).await?;
            let ids: Vec<SqlValue> = rows
                .iter()
                .map(|c| SqlValue::Int(c.sourcestampid.0))
                .collect();
            let ss = match ids.is_empty() {
                true => Vec::new(),
                false => {
                    store
                        .sourcestamps_list(&ListQuery::filtered(vec![FilterSpec::new(
                            "ssid",
                            store::FilterOp::In,
                            ids,
                        )]))
                        .await?
                        .0
                }
            };
            let by_id: std::collections::HashMap<_, _> = ss.iter().map(|s| (s.id, s)).collect();
            (
                rows.iter()
                    .map(|c| json::change(c, by_id.get(&c.sourcestampid).copied()))
                    .collect(),
                total,
            )
        }
        "workers" => {
            let (rows, total) = store.workers_list(q).await?;
            (rows.iter().map(json::worker).collect(), total)
        }
        "buildrequests" => {
            let (rows, total) = store.buildrequests_list(q).await?;
            (
                rows.iter().map(|r| json::buildrequest(r, None)).collect(),
                total,
            )
        }
        "buildsets" => {
            let (rows, total) = store.buildsets_list(q).await?;
            (rows.iter().map(json::buildset).collect(), total)
        }
        other => return crate::resources::fetch(store, other, q).await,
    })
}

fn store_op(op: FilterOp) -> store::FilterOp {
    match op {
        FilterOp::Eq => store::FilterOp::Eq,
        FilterOp::Ne => store::FilterOp::Ne,
        FilterOp::Lt => store::FilterOp::Lt,
        FilterOp::Le => store::FilterOp::Le,
        FilterOp::Gt => store::FilterOp::Gt,
        FilterOp::Ge => store::FilterOp::Ge,
        FilterOp::Contains => store::FilterOp::Contains,
        FilterOp::In => store::FilterOp::In,
        FilterOp::NotIn => store::FilterOp::NotIn,
    }
}

fn sql_value(kind: Kind, field: &str, v: &str) -> Result<SqlValue, DataError> {
    let bad = || DataError::BadRequest(format!("invalid filter value for {field}"));
    match kind {
        Int => v.trim().parse().map(SqlValue::Int).map_err(|_| bad()),
        Bool => match v.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Ok(SqlValue::Int(1)),
            "off" | "false" | "no" | "0" => Ok(SqlValue::Int(0)),
            _ => Err(bad()),
        },
        Text | Other if !storable(v) => Err(bad()),
        Text | Other => Ok(SqlValue::Text(v.to_string())),
    }
}

/// The text of a whole log, chunk by chunk, for `raw` downloads; constant memory.
pub fn raw_log(
    store: &Store,
    id: LogId,
) -> impl futures::Stream<Item = Result<String, DataError>> + Send + 'static {
    store
        .log_chunks_stream(id)
        .map(|r| r.map_err(DataError::from))
}
