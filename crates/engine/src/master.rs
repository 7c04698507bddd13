//! The running master: shared state, start-up (config sync and crash recovery), and shutdown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use config::{LoadedConfig, MasterConfig};
use model::{BuildId, BuilderId, MasterId, Results, WorkerId};
use store::Store;
use tokio::sync::{watch, Notify};

use crate::bus::Bus;
use crate::workers::Workers;
use crate::EngineError;

/// The configuration in force, with the ids its names map to.
pub struct Runtime {
    /// The loaded configuration.
    pub config: MasterConfig,
    /// Runs user functions from `master.cfg`.
    pub functions: config::FunctionHost,
    /// Builder name -> id.
    pub builder_ids: HashMap<String, BuilderId>,
    /// Worker name -> id.
    pub worker_ids: HashMap<String, WorkerId>,
}

impl Runtime {
    /// The builder named `name`.
    pub fn builder(&self, name: &str) -> Option<&config::BuilderConfig> {
        self.config.builders.iter().find(|b| b.name == name)
    }

    /// The builder with row id `id`.
    pub fn builder_by_id(&self, id: BuilderId) -> Option<&config::BuilderConfig> {
        let name = self
            .builder_ids
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k)?;
        self.builder(name)
    }
}

/// A build in progress, as seen from outside its task.
pub struct RunningBuild {
    /// Set to a reason to stop the build.
    pub stop: watch::Sender<Option<(Results, String)>>,
}

/// State shared by every task of the master.
pub struct Shared {
    /// The master directory.
    pub basedir: PathBuf,
    /// The database.
    pub store: Store,
    /// The event bus.
    pub bus: Bus,
    /// This master's row id.
    pub masterid: MasterId,
    runtime: RwLock<Arc<Runtime>>,
    /// Attached and configured workers.
    pub workers: Workers,
    /// Wakes the build-request distributor.
    pub wake: Notify,
    /// Builds running on this master.
    pub builds: Mutex<HashMap<BuildId, RunningBuild>>,
    /// Scheduler and change-source tasks of the config in force, replaced on reconfig.
    pub(crate) service_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Shared {
    /// The configuration in force.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.read().expect("runtime lock poisoned").clone()
    }

    /// A receiver that turns true when the master begins to stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// True once shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Begins shutdown: no new builds start; listeners close.
    pub fn begin_stop(&self) {
        self.stop.send_replace(true);
        self.wake.notify_one();
    }

    pub(crate) fn set_runtime(&self, runtime: Runtime) {
        *self.runtime.write().expect("runtime lock poisoned") = Arc::new(runtime);
    }

    /// Number of builds running now.
    pub fn running_builds(&self) -> usize {
        self.builds.lock().expect("builds lock poisoned").len()
    }
}

/// Turns `db_url` (or the default) into a URL the store can open.
pub fn database_url(basedir: &Path, db_url: Option<&str>) -> String {
    let url = db_url.unwrap_or("sqlite:///state.sqlite");
    // Buildbot writes `sqlite:///state.sqlite` for a file relative to the master directory;
    // four slashes mean an absolute path.
    if let Some(rest) = url.strip_prefix("sqlite:///") {
        if rest.starts_with('/') {
            return format!("sqlite://{rest}");
        }
        return format!("sqlite://{}", basedir.join(rest).display());
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        if !rest.starts_with('/') && rest != ":memory:" {
            return format!("sqlite://{}", basedir.join(rest).display());
        }
    }
    url.to_string()
}

/// Creates the shared state: opens the database, checks its schema, registers this master.
pub async fn open(basedir: &Path, loaded: LoadedConfig) -> Result<Arc<Shared>, EngineError> {
    let url = database_url(basedir, loaded.config.db_url.as_deref());
    let store = Store::connect(&url).await?;
    match store.schema_state().await? {
        store::SchemaState::Current => {}
        store::SchemaState::Empty => {
            return Err(EngineError::Schema(
                "the database is empty: run `signalbox upgrade-master DIR` first".to_string(),
            ))
        }
        store::SchemaState::Old { version } => {
            return Err(EngineError::Schema(format!(
                "the database schema is at version {version}, older than this signalbox: run `signalbox upgrade-master DIR`"
            )))
        }
        store::SchemaState::Newer { version } => {
            return Err(EngineError::Schema(format!(
                "the database schema is at version {version}, newer than this signalbox understands: upgrade signalbox"
            )))
        }
    }
    let host = hostname();
    let name = format!("{host}:{}", basedir.display());
    let masterid = store.master_upsert(&name).await?;
    store.master_set_active(masterid, true).await?;
    let (stop, _) = watch::channel(false);
    let runtime = crate::reconfig::sync(&store, masterid, loaded).await?;
    let shared = Arc::new(Shared {
        basedir: basedir.to_path_buf(),
        store,
        bus: Bus::new(),
        masterid,
        runtime: RwLock::new(Arc::new(runtime)),
        workers: Workers::default(),
        wake: Notify::new(),
        builds: Mutex::new(HashMap::new()),
        service_tasks: Mutex::new(Vec::new()),
        stop,
    });
    crate::reconfig::sync_workers(&shared);
    crate::recovery::recover(&shared).await?;
    Ok(shared)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
