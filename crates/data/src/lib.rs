//! The Data API: a path plus a result spec, answered from the store.
//!
//! REST v2, the HTML pages, dashboards and config callables all read through [`get`]; it is
//! the only place that turns a path into store calls. Entities are REST-shaped JSON
//! ([`json`]), so events on the bus and GET answers have one shape.
#![warn(missing_docs)]

mod forceschedulers;
pub mod json;
mod outbox;
mod paths;
mod resources;
pub mod spec;

pub use forceschedulers::{Context, ForceField, ForceScheduler};
pub use paths::{get, raw_log, DataResult};
pub use resources::{raw_log_target, RawLogTarget, DEFAULT_MAX_LOG_LINES};
pub use spec::ResultSpec;

/// Answers `path` with `spec` applied, seeing the config-only resources of `ctx` too
/// (force schedulers). Enforces the single-item rules of spec §5 for every path: no
/// filters, and only fields the entity has.
pub async fn get_in(
    ctx: &Context<'_>,
    path: &str,
    spec: &ResultSpec,
) -> Result<DataResult, DataError> {
    let segments: Vec<&str> = path.split('/').collect();
    let builder_name = match segments.as_slice() {
        ["builders", b, "forceschedulers"] => match paths::builder_id(ctx.store, b).await? {
            Some(id) => ctx.store.builder_get(id).await?.map(|b| b.name),
            None => None,
        },
        _ => None,
    };
    if let Some(answer) = forceschedulers::get(ctx, &segments, builder_name.as_deref(), spec) {
        return answer;
    }
    let answer = get(ctx.store, path, spec).await?;
    if let DataResult::Single { value, plural } = &answer {
        if !spec.filters.is_empty() {
            return Err(DataError::BadRequest("this is not a collection".into()));
        }
        let dict_valued = *plural == "properties";
        if let Some(missing) = spec
            .fields
            .iter()
            .find(|f| !dict_valued && value.get(f.as_str()).is_none())
        {
            return Err(DataError::BadRequest(format!("no such field '{missing}'")));
        }
    }
    Ok(answer)
}

/// Why a Data API request failed.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The path matches no endpoint.
    #[error("Invalid path: {0}")]
    InvalidPath(String),
    /// The request is malformed (bad filter, unknown field…).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The entity does not exist.
    #[error("not found while getting from {0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}
