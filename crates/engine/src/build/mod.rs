//! The build runner: one task per build, running its steps on a worker.
//!
//! A build starts when the distributor has claimed its request(s) and reserved a worker. The
//! task creates the build row, sets the standard properties, runs `worker_preparation` and
//! then each configured step, combining step results with haltOnFailure/flunkOnFailure/
//! warnOnFailure semantics, and finally completes (or, on RETRY, releases) its requests.

mod command;
mod logwriter;
mod steps;
mod transfer;
pub mod untar;

use std::sync::Arc;

use config::BuilderConfig;
use model::{BuildId, BuildRequestId, BuilderId, Properties, Results, SourceStampView};
use serde_json::Value as Json;
use tokio::sync::watch;

pub use command::Outcome;
use command::Sinks;
pub use logwriter::LogWriter;

use crate::master::{RunningBuild, Runtime, Shared};
use crate::workers::{WorkerConnection, WorkerInfo};

/// The builder's directory on the worker, relative to the worker's base directory.
pub fn builder_dir(builder: &BuilderConfig) -> String {
    match &builder.workerbuilddir {
        Some(dir) => dir.clone(),
        None => builder
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
    }
}

/// Runs a filesystem command that has no log, returning its outcome; rc != 0 is an error.
pub async fn run_simple(
    conn: &Arc<WorkerConnection>,
    name: &str,
    args: protocol::Value,
) -> Result<Outcome, String> {
    let mut cmd = conn
        .start_command(name, args, None)
        .await
        .map_err(|e| e.to_string())?;
    let mut outcome = Outcome::default();
    loop {
        match cmd.next().await {
            crate::workers::CommandEvent::Update(updates) => {
                for (k, v) in updates {
                    if k == "rc" {
                        outcome.rc = v.as_i64();
                    } else {
                        outcome
                            .values
                            .insert(k, crate::convert::msgpack_to_json(&v));
                    }
                }
            }
            crate::workers::CommandEvent::Transfer(_, reply) => {
                let _ = reply.send(Err("no transfer expected".to_string()));
            }
            crate::workers::CommandEvent::Complete(failure) => {
                outcome.failure = failure;
                break;
            }
            crate::workers::CommandEvent::Lost => return Err("worker connection lost".to_string()),
        }
    }
    if let Some(f) = &outcome.failure {
        return Err(f.clone());
    }
    match outcome.rc {
        Some(0) | None => Ok(outcome),
        Some(rc) => Err(format!("{name} exited with rc {rc}")),
    }
}

/// What the distributor hands to a new build.
pub struct BuildStart {
    /// The builder's row id.
    pub builderid: BuilderId,
    /// The builder's name.
    pub builder_name: String,
    /// Requests this build satisfies (the first is the one it runs; others were collapsed).
    pub requests: Vec<store::BuildRequestRecord>,
    /// The worker's name.
    pub worker: String,
    /// The worker's connection.
    pub conn: Arc<WorkerConnection>,
    /// What the worker reported about itself.
    pub info: WorkerInfo,
}

/// Everything a step needs while the build runs.
pub struct BuildContext {
    pub(crate) shared: Arc<Shared>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) builder: BuilderConfig,
    pub(crate) buildid: BuildId,
    pub(crate) conn: Arc<WorkerConnection>,
    pub(crate) info: WorkerInfo,
    pub(crate) properties: Properties,
    pub(crate) sourcestamps: Vec<SourceStampView>,
    pub(crate) stop: watch::Receiver<Option<(Results, String)>>,
}

impl BuildContext {
    /// The builder directory on the worker, absolute.
    pub fn builder_path(&self) -> String {
        self.info.join(&[&builder_dir(&self.builder)])
    }

    /// Renders a config value with the build's properties.
    pub fn render(&self, r: &model::Renderable) -> Result<Json, String> {
        let ctx = model::RenderContext {
            properties: &self.properties,
            sourcestamps: &self.sourcestamps,
            functions: Some(&self.runtime.functions),
        };
        r.render(&ctx).map_err(|e| e.to_string())
    }

    /// Renders a config value to text.
    pub fn render_text(&self, r: &model::Renderable) -> Result<String, String> {
        let ctx = model::RenderContext {
            properties: &self.properties,
            sourcestamps: &self.sourcestamps,
            functions: Some(&self.runtime.functions),
        };
        r.render_text(&ctx).map_err(|e| e.to_string())
    }

    /// Sets a property on the build, records it, and announces the change.
    pub async fn set_property(&mut self, name: &str, value: Json, source: &str) {
        self.properties.set(name, value.clone(), source);
        let mut delta = Properties::new();
        delta.set(name, value.clone(), source);
        if let Err(e) = self
            .shared
            .store
            .build_properties_set(self.buildid, &delta)
            .await
        {
            tracing::error!(build = %self.buildid, error = %e, "could not store property");
        }
        self.shared.bus.publish(
            &crate::bus::keys::build_properties(self.buildid.0),
            serde_json::json!({ name: [value, source] }),
        );
    }

    /// Runs a remote command for a step.
    pub async fn remote(
        &mut self,
        command_name: &str,
        args: protocol::Value,
        sinks: Sinks<'_>,
    ) -> Outcome {
        command::run(
            &self.shared,
            &self.conn,
            &self.builder.name,
            command_name,
            args,
            sinks,
            &mut self.stop,
        )
        .await
    }
}

/// Runs one build to its end. Never panics on worker input; every error becomes a result.
pub async fn run(shared: Arc<Shared>, start: BuildStart) {
    let runtime = shared.runtime();
    let Some(builder) = runtime.builder(&start.builder_name).cloned() else {
        tracing::error!(builder = %start.builder_name, "builder vanished before its build started");
        release(&shared, &start, &start.worker).await;
        return;
    };
    let Some(first) = start.requests.first() else {
        return;
    };
    let request_ids: Vec<BuildRequestId> = start.requests.iter().map(|r| r.id).collect();
    let workerid = shared.workers.get(&start.worker).map(|s| s.id);
    let (buildid, number) = match shared
        .store
        .build_add(
            start.builderid,
            first.id,
            workerid,
            shared.masterid,
            "building",
            model::now(),
        )
        .await
    {
        Ok(it) => it,
        Err(e) => {
            tracing::error!(builder = %builder.name, error = %e, "could not create build");
            release(&shared, &start, &start.worker).await;
            return;
        }
    };
    let (stop_tx, stop_rx) = watch::channel(None);
    shared
        .builds
        .lock()
        .expect("builds lock poisoned")
        .insert(buildid, RunningBuild { stop: stop_tx });
    crate::events::build(&shared, buildid, "new").await;
    tracing::info!(builder = %builder.name, build = number, worker = %start.worker, "build started");

    let (properties, sourcestamps) =
        initial_properties(&shared, &runtime, &builder, &start, number).await;
    let mut ctx = BuildContext {
        shared: shared.clone(),
        runtime: runtime.clone(),
        builder: builder.clone(),
        buildid,
        conn: start.conn.clone(),
        info: start.info.clone(),
        properties: Properties::new(),
        sourcestamps,
        stop: stop_rx,
    };
    if let Err(e) = shared
        .store
        .build_properties_set(buildid, &properties)
        .await
    {
        tracing::error!(build = %buildid, error = %e, "could not store build properties");
    }
    ctx.properties = properties;

    let results = steps::run_all(&mut ctx).await;
    let state = match results {
        Results::Success => "build successful".to_string(),
        other => format!("build {}", other.name()),
    };
    let _ = shared.store.build_set_state_string(buildid, &state).await;
    if let Err(e) = shared
        .store
        .build_finish(buildid, results, model::now())
        .await
    {
        tracing::error!(build = %buildid, error = %e, "could not finish build");
    }
    shared
        .builds
        .lock()
        .expect("builds lock poisoned")
        .remove(&buildid);
    crate::events::build(&shared, buildid, "finished").await;
    tracing::info!(builder = %builder.name, build = number, results = %results, "build finished");

    crate::janitor::expire_builder(&shared, start.builderid).await;
    if results == Results::Retry {
        release(&shared, &start, &start.worker).await;
    } else {
        complete_requests(&shared, &request_ids, results).await;
        finish_worker(&shared, &start.worker);
    }
}

/// Gives the requests back (RETRY or a build that could not start) and frees the worker.
async fn release(shared: &Arc<Shared>, start: &BuildStart, worker: &str) {
    let ids: Vec<_> = start.requests.iter().map(|r| r.id).collect();
    if let Err(e) = shared
        .store
        .buildrequests_unclaim(&ids, shared.masterid)
        .await
    {
        tracing::error!(error = %e, "could not release build requests");
    }
    for r in &start.requests {
        crate::events::buildrequest(shared, r.id, "unclaimed").await;
    }
    finish_worker(shared, worker);
}

fn finish_worker(shared: &Arc<Shared>, worker: &str) {
    shared.workers.with(|slots| {
        if let Some(slot) = slots.get_mut(worker) {
            slot.running = slot.running.saturating_sub(1);
        }
    });
    shared.wake.notify_one();
}

async fn complete_requests(shared: &Arc<Shared>, ids: &[BuildRequestId], results: Results) {
    match shared
        .store
        .buildrequests_complete(ids, results, model::now())
        .await
    {
        Ok(done) => {
            for id in ids {
                crate::events::buildrequest(shared, *id, "complete").await;
            }
            for bsid in done {
                crate::events::buildset(shared, bsid, "complete").await;
            }
        }
        Err(e) => tracing::error!(error = %e, "could not complete build requests"),
    }
}

/// Global, builder, worker and buildset properties, then the standard ones.
async fn initial_properties(
    shared: &Arc<Shared>,
    runtime: &Runtime,
    builder: &BuilderConfig,
    start: &BuildStart,
    number: i64,
) -> (Properties, Vec<SourceStampView>) {
    let mut props = Properties::new();
    props.update(&runtime.config.properties);
    props.update(&builder.properties);
    if let Some(w) = runtime
        .config
        .workers
        .iter()
        .find(|w| w.name == start.worker)
    {
        props.update(&w.properties);
    }
    let mut sourcestamps = Vec::new();
    if let Some(first) = start.requests.first() {
        if let Ok(p) = shared.store.buildset_properties(first.buildsetid).await {
            props.update(&p);
        }
        if let Ok(Some(bs)) = shared.store.buildset_get(first.buildsetid).await {
            if !props.has("reason") {
                props.set("reason", Json::String(bs.reason.clone()), "Buildset");
            }
        }
        if let Ok(ss) = shared.store.buildset_sourcestamps(first.buildsetid).await {
            sourcestamps = ss
                .iter()
                .map(|s| SourceStampView {
                    codebase: s.codebase.clone(),
                    branch: s.branch.clone(),
                    revision: s.revision.clone(),
                    repository: s.repository.clone(),
                    project: s.project.clone(),
                })
                .collect();
        }
    }
    let opt = |v: &Option<String>| v.clone().map(Json::String).unwrap_or(Json::Null);
    let ss = sourcestamps.first().cloned().unwrap_or_default();
    props.set("buildername", Json::String(builder.name.clone()), "Builder");
    props.set("builderid", Json::from(start.builderid.0), "Builder");
    props.set("buildnumber", Json::from(number), "Build");
    props.set("workername", Json::String(start.worker.clone()), "Worker");
    props.set("branch", opt(&ss.branch), "Build");
    props.set("revision", opt(&ss.revision), "Build");
    props.set("repository", Json::String(ss.repository.clone()), "Build");
    props.set("project", Json::String(ss.project.clone()), "Build");
    props.set("codebase", Json::String(ss.codebase.clone()), "Build");
    props.set(
        "builddir",
        Json::String(start.info.join(&[&builder_dir(builder)])),
        "Worker",
    );
    props.set(
        "basedir",
        Json::String(start.info.basedir.clone()),
        "Worker",
    );
    if !props.has("owner") {
        props.set("owner", Json::Null, "Build");
    }
    (props, sourcestamps)
}
