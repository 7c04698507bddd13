//! Plain domain types shared by every Signalbox crate.
//!
//! `model` depends on nothing of ours. It holds the words of the domain (builds, steps, logs,
//! changes, requests, workers), result codes, properties with their sources, the routing keys
//! of the event bus, and the rendering of `Interpolate`/`Property` values. Nothing here does
//! I/O; types that cross a wire are converted at that edge by the crate that owns the wire.
#![warn(missing_docs)]

mod ids;
mod properties;
mod render;
mod results;

pub use ids::*;
pub use properties::{Properties, PropertySource};
pub use render::{RenderContext, RenderError, Renderable, RendererCall, SourceStampView};
pub use results::Results;

/// Seconds since the Unix epoch, as Buildbot stores every timestamp.
pub type Timestamp = i64;

/// The current time in epoch seconds.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
