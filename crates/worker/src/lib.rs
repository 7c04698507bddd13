//! Signalbox's own worker: connection to a master and the command runners.
//!
//! It speaks the msgpack protocol of the stock `buildbot-worker` 4.3.0 (see
//! `spec/worker-protocol.md`), so both Signalbox and a stock Buildbot master accept it. The
//! shape mirrors the spec: a reconnect loop around a per-connection actor (`connection`), an
//! RPC core numbering our own requests (`rpc`), one module per command family (`commands`), and
//! an output pipeline (`output`, `reporter`) that turns process output into batched `update`s.
//!
//! ```no_run
//! # async fn demo() -> Result<(), worker::WorkerError> {
//! let basedir = std::path::Path::new("/srv/worker");
//! worker::create(basedir, "127.0.0.1:9989", "w1", "secret")?;
//! let options = worker::load_options(basedir)?;
//! worker::run(options, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
#![warn(missing_docs)]

mod commands;
mod config;
mod connection;
mod error;
mod info;
mod output;
mod reporter;
mod rpc;
mod tls;

pub use config::{create, create_with_tls, load_options, TlsOptions, WorkerOptions, CONFIG_FILE};
pub use connection::run;
pub use error::WorkerError;
