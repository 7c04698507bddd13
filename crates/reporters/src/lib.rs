//! Status targets: services that listen to the event bus, decide whether a build matters to
//! them, and send a message about it through a durable outbox.
//!
//! The main idea is the split between *rendering* and *delivery* (DESIGN.md decision 8). When
//! a build finishes, every configured target renders its messages from one snapshot of the
//! build (pure code, plus the user's own functions); the messages are written to the
//! `outbox` table in one transaction **before any network I/O**, keyed by (target, build,
//! event) so a message is never recorded twice. A delivery loop then claims due rows and
//! sends them, with exponential backoff and jitter on failure; it reads the table at start,
//! so mail queued before a crash or while the SMTP server was down is sent when it can be.
//!
//! ```no_run
//! # async fn demo(shared: std::sync::Arc<engine::Shared>) {
//! let tasks = reporters::start(shared);
//! # drop(tasks); }
//! ```
//!
//! Two environment variables exist for tests and benchmarks, and are not needed otherwise:
//! `SIGNALBOX_OUTBOX_RETRY=BASE_MS:MAX_MS` shortens the backoff (default 15 s doubling to
//! 5 min, see [`Backoff`]), and `SIGNALBOX_SMTP_CA_FILE=PATH` adds a PEM certificate to the roots that SMTP TLS
//! trusts (the web PKI roots), so a test SMTP server with its own CA can be used.
#![warn(missing_docs)]

mod build_status;
mod error;
mod filter;
mod outbox;
mod previous;
mod retry;
mod service;
pub mod targets;

use std::sync::Arc;

use futures::future::BoxFuture;

pub use build_status::{BuildSnapshot, LogNeeds};
pub use error::ReporterError;
pub use outbox::OutgoingMessage;
pub use retry::Backoff;

/// The status target kinds this crate runs; the others are announced as not active yet.
pub const IMPLEMENTED: &[&str] = &["MailNotifier"];

/// What happened, as a target sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A build finished (`builds/N/finished`).
    BuildFinished,
    /// A buildset completed (`buildsets/N/complete`): for summary messages.
    BuildsetComplete,
}

impl BuildEvent {
    /// The event word used in outbox keys.
    pub fn word(&self) -> &'static str {
        match self {
            BuildEvent::BuildFinished => "finished",
            BuildEvent::BuildsetComplete => "complete",
        }
    }
}

/// Why one delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth trying again later (connection refused, timeout, 4xx reply).
    Retry(String),
    /// Will never work (5xx reply, bad address): the message is marked failed.
    Permanent(String),
}

/// A configured notifier: decides what to say; the outbox decides when it is sent.
pub trait StatusTarget: Send + Sync {
    /// The target's name in the outbox (`MailNotifier#1`), stable across restarts while the
    /// config keeps its order.
    fn name(&self) -> &str;
    /// True if this target wants this kind of event for a build of `builder`.
    fn wants(&self, event: &BuildEvent, builder: &BuilderInfo) -> bool;
    /// How much log text rendering needs.
    fn log_needs(&self) -> LogNeeds;
    /// Messages for this event, to be recorded before any I/O. Pure apart from calling the
    /// user's functions. `builds` holds one snapshot for a build event and every build of
    /// the buildset for a buildset event.
    fn render(&self, event: &BuildEvent, builds: &[Arc<BuildSnapshot>]) -> Vec<OutgoingMessage>;
    /// Sends one recorded message.
    fn deliver<'a>(&'a self, content: &'a str) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// What filters look at: the builder's name and categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderInfo {
    /// Builder name.
    pub name: String,
    /// The builder's category and tags.
    pub categories: Vec<String>,
}

/// Starts the status targets of the config in force: one task turns bus events into outbox
/// rows, one delivers them. Both end when the master stops (the caller aborts them).
pub fn start(shared: Arc<engine::Shared>) -> Vec<tokio::task::JoinHandle<()>> {
    service::start(shared)
}
