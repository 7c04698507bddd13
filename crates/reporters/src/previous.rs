//! The previous build of a builder: "change" and "problem" modes compare with it.
//!
//! The default is one indexed query (the newest finished build numbered below this one),
//! never a walk over the builder's history (Buildbot bug #4055). A user
//! `previousBuildGetter` may choose another build, or none to suppress the comparison.

use std::sync::Arc;

use config::status_objects::BuildStatus;
use config::{FunctionHost, FunctionRef};
use model::{BuilderId, Results};
use store::Store;

use crate::ReporterError;

/// The build a new result is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousBuild {
    /// Build number.
    pub number: i64,
    /// Its result, if it finished.
    pub results: Option<Results>,
}

/// The newest finished build of `builder` numbered below `number`.
pub(crate) async fn default_previous(
    store: &Store,
    builder: BuilderId,
    number: i64,
) -> Result<Option<PreviousBuild>, ReporterError> {
    Ok(store
        .previous_finished_build(builder, number)
        .await?
        .map(|b| PreviousBuild {
            number: b.number,
            results: b.results,
        }))
}

/// What a `previousBuildGetter` chose; an error in the function means no previous build
/// (and is logged), so "change" and "problem" stay quiet rather than guess.
pub(crate) fn from_getter(
    functions: &FunctionHost,
    getter: FunctionRef,
    build: &Arc<BuildStatus>,
) -> Option<PreviousBuild> {
    match functions.call_previous_build_getter(getter, build) {
        Ok(chosen) => chosen.map(|c| PreviousBuild {
            number: c.number,
            results: c.results.and_then(Results::from_code),
        }),
        Err(e) => {
            tracing::error!(error = %e, builder = %build.builder_name, number = build.number, "previousBuildGetter failed");
            None
        }
    }
}
