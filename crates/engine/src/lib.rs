//! The build master: event bus, change sources, schedulers, build-request distribution, the
//! build runner and the worker protocol server.
//!
//! [`Master::start`] opens the database, applies the config, recovers from an unclean stop,
//! and starts every task; [`Master::shutdown`] stops them, waiting for running builds.
#![warn(missing_docs)]

mod attach;
pub mod build;
pub mod bus;
pub mod changes;
pub mod control;
mod convert;
mod distributor;
mod error;
pub mod events;
pub(crate) mod janitor;
pub mod master;
pub mod missing;
pub mod reconfig;
mod recovery;
pub mod schedulers;
pub mod workers;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use error::EngineError;
pub use master::{database_url, Shared};

/// `interface:port`, loopback when no interface is given.
fn bind_address(interface: Option<String>, port: u16) -> String {
    format!("{}:{port}", interface.unwrap_or_else(|| "127.0.0.1".into()))
}

/// A started master.
pub struct Master {
    /// State shared with the web server and reporters.
    pub shared: Arc<Shared>,
    /// The worker port actually bound (useful when configured as port 0).
    pub worker_addr: std::net::SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Master {
    /// Opens the database, applies `loaded`, recovers, and starts the worker port, the
    /// distributor, schedulers and change sources.
    pub async fn start(
        basedir: &Path,
        loaded: config::LoadedConfig,
    ) -> Result<Master, EngineError> {
        let listen = loaded.config.worker_port.clone();
        let shared = master::open(basedir, loaded).await?;
        let (addr, tls) = match listen {
            Some(config::Listen::Tcp { port, interface }) => (bind_address(interface, port), None),
            Some(config::Listen::Tls {
                port,
                interface,
                private_key,
                cert_key,
            }) => {
                let tls = workers::server_config(basedir, &private_key, &cert_key)?;
                (bind_address(interface, port), Some(tls))
            }
            Some(config::Listen::Unix(path)) => {
                return Err(EngineError::Invalid(format!(
                    "workers cannot connect over a unix socket ({path})"
                )))
            }
            None => ("127.0.0.1:9989".to_string(), None),
        };
        let listen_error = |source| EngineError::Listen {
            addr: addr.clone(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(listen_error)?;
        let worker_addr = listener.local_addr().map_err(listen_error)?;
        let listener = match tls {
            Some(tls) => workers::WorkerListener::Tls(
                workers::TlsListener::new(listener, tls).map_err(listen_error)?,
            ),
            None => workers::WorkerListener::Plain(listener),
        };
        let mut tasks = Vec::new();
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = workers::serve(s, listener).await {
                tracing::error!(error = %e, "worker port failed");
            }
        }));
        tasks.push(tokio::spawn(distributor::run(shared.clone())));
        tasks.push(tokio::spawn(janitor::run(shared.clone())));
        schedulers::restart(&shared);
        events::master_event(&shared, None, "started").await;
        // Status targets are started, and the inactive ones announced, by `reporters::start`.
        tracing::info!(worker_port = %worker_addr, "master started");
        Ok(Master {
            shared,
            worker_addr,
            tasks,
        })
    }

    /// Stops taking new builds, waits for running builds (up to `grace`), then stops.
    pub async fn shutdown(self, grace: Duration) {
        self.shared.begin_stop();
        let deadline = tokio::time::Instant::now() + grace;
        while self.shared.running_builds() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (_, b) in self
            .shared
            .builds
            .lock()
            .expect("builds lock poisoned")
            .iter()
        {
            b.stop
                .send_replace(Some((model::Results::Retry, "master shutting down".into())));
        }
        let tasks = std::mem::take(
            &mut *self
                .shared
                .service_tasks
                .lock()
                .expect("tasks lock poisoned"),
        );
        for t in tasks.into_iter().chain(self.tasks) {
            t.abort();
        }
        let _ = self
            .shared
            .store
            .master_set_active(self.shared.masterid, false)
            .await;
    }
}
