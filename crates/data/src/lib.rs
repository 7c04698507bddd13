//! The Data API: a path plus a result spec, answered from the store.
//!
//! REST v2, the HTML pages, dashboards and config callables all read through [`get`]; it is
//! the only place that turns a path into store calls. Entities are REST-shaped JSON
//! ([`json`]), so events on the bus and GET answers have one shape.
#![warn(missing_docs)]

pub mod json;
mod paths;
pub mod spec;

pub use paths::{get, raw_log, DataResult};
pub use spec::ResultSpec;

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
