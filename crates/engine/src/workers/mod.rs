//! Workers: the protocol server that workers attach to, and the registry of attached workers.

mod connection;
mod server;
mod throttle;
mod tls;

pub use connection::{CommandEvent, RemoteError, RunningCommand, WorkerConnection};
pub use server::{serve, WorkerListener, DEFAULT_MAX_CONNECTIONS};
pub use tls::{server_config, TlsListener};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use model::WorkerId;

/// What the master knows of one configured worker.
#[derive(Clone)]
pub struct WorkerSlot {
    /// Row id.
    pub id: WorkerId,
    /// The live connection, if attached.
    pub conn: Option<Arc<WorkerConnection>>,
    /// Facts the worker reported (`get_worker_info`).
    pub info: WorkerInfo,
    /// Builds running on it now.
    pub running: u32,
    /// No new builds while paused.
    pub paused: bool,
    /// Finish current builds, then shut down.
    pub graceful: bool,
    /// The missing-worker timer, running while the worker is away (`crate::missing`).
    pub missing: Option<tokio::task::AbortHandle>,
}

/// The parts of `get_worker_info` the master uses.
#[derive(Debug, Clone, Default)]
pub struct WorkerInfo {
    /// Absolute base directory on the worker.
    pub basedir: String,
    /// `posix` or `nt`.
    pub system: String,
    /// Everything reported, as JSON, for pages.
    pub raw: serde_json::Value,
}

impl WorkerInfo {
    /// Joins worker-side path parts with the worker's separator.
    pub fn join(&self, parts: &[&str]) -> String {
        let sep = if self.system == "nt" { "\\" } else { "/" };
        let mut out = self.basedir.trim_end_matches(sep).to_string();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            if part.starts_with('/') {
                out = part.to_string();
                continue;
            }
            out.push_str(sep);
            out.push_str(part);
        }
        out
    }
}

/// Registry of workers by name.
#[derive(Default)]
pub struct Workers {
    slots: Mutex<HashMap<String, WorkerSlot>>,
    /// Upgraded worker connections open now, attached or not (capped by `max_connections`).
    pub(crate) connections: std::sync::atomic::AtomicUsize,
}

impl Workers {
    /// Runs `f` on the registry under its lock. Never hold it across `.await`.
    pub fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, WorkerSlot>) -> R) -> R {
        let mut slots = self.slots.lock().expect("workers lock poisoned");
        f(&mut slots)
    }

    /// A copy of one slot.
    pub fn get(&self, name: &str) -> Option<WorkerSlot> {
        self.with(|s| s.get(name).cloned())
    }
}
