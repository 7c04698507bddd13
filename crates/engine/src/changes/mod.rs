//! Change sources and the ways a change enters the master: [`add_change`] and, for webhook
//! deliveries, [`add_delivered_changes`].
//!
//! Pollers keep their last seen revision in the database, so commits made while the master
//! was down are found at the next poll (`pollAtLaunch` makes that poll happen at start).

mod git;
mod svn;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use config::ChangeSourceConfig;

use crate::master::Shared;
use crate::EngineError;

/// Records a change found by a poller, then announces it to schedulers and pages.
pub async fn add_change(shared: &Arc<Shared>, change: store::NewChange) -> Result<(), EngineError> {
    add_delivered_changes(shared, vec![change], None).await?;
    Ok(())
}

/// Records the changes of one webhook delivery, and the delivery id, in one transaction,
/// then announces them from what was written. A replayed delivery records nothing.
pub async fn add_delivered_changes(
    shared: &Arc<Shared>,
    changes: Vec<store::NewChange>,
    delivery: Option<store::Delivery>,
) -> Result<store::ChangesAdded, EngineError> {
    let added = shared.store.changes_add(changes, delivery).await?;
    if let store::ChangesAdded::Recorded(added) = &added {
        for a in added {
            crate::events::change_added(shared, a);
        }
    }
    Ok(added)
}

/// Starts one task per configured change source.
pub fn spawn_all(shared: &Arc<Shared>, handles: &mut Vec<tokio::task::JoinHandle<()>>) {
    let runtime = shared.runtime();
    for source in &runtime.config.change_sources {
        match source {
            ChangeSourceConfig::Git { .. } | ChangeSourceConfig::Svn { .. } => {
                handles.push(tokio::spawn(poller(shared.clone(), source.clone())))
            }
        }
    }
}

/// The name a change source answers to: its repository URL, as Buildbot names pollers
/// (the `poller` change hook's `poller=` argument).
pub fn source_name(source: &ChangeSourceConfig) -> &str {
    match source {
        ChangeSourceConfig::Git { repourl, .. } => repourl,
        ChangeSourceConfig::Svn { svnurl, .. } => svnurl,
    }
}

/// Polls now the change sources named in `only` ([`source_name`]), or every one when
/// `None`; the `poller` change hook uses this. Returns how many sources were polled.
pub async fn poll_now(shared: &Arc<Shared>, only: Option<&[String]>) -> usize {
    let runtime = shared.runtime();
    let mut polled = 0;
    for source in &runtime.config.change_sources {
        let name = source_name(source);
        if only.is_some_and(|names| !names.iter().any(|n| n == name)) {
            continue;
        }
        polled += 1;
        if let Err(e) = poll(shared, source).await {
            tracing::warn!(source = %name, error = %e, "poll failed");
        }
    }
    polled
}

/// One poll lock per source name. A hook-triggered poll and the periodic one must not run
/// the same source at once: both would read the same last revision and record the new
/// commits twice. The lock is a tokio mutex because it is held across the poll's awaits.
static POLL_LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

/// One poll of any polling change source, never two of the same source at once.
async fn poll(shared: &Arc<Shared>, source: &ChangeSourceConfig) -> Result<(), String> {
    let lock = {
        let mut locks = POLL_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        locks
            .entry(source_name(source).to_string())
            .or_default()
            .clone()
    };
    let _polling = lock.lock().await;
    match source {
        ChangeSourceConfig::Git { .. } => git::poll(shared, source).await,
        ChangeSourceConfig::Svn { .. } => svn::poll(shared, source).await,
    }
}

/// Polls `source` every `pollInterval` seconds (first at launch when `pollAtLaunch`).
async fn poller(shared: Arc<Shared>, source: ChangeSourceConfig) {
    let (interval, at_launch, name) = match &source {
        ChangeSourceConfig::Git {
            poll_interval,
            poll_at_launch,
            repourl,
            ..
        } => (*poll_interval, *poll_at_launch, repourl.clone()),
        ChangeSourceConfig::Svn {
            poll_interval,
            poll_at_launch,
            svnurl,
            ..
        } => (*poll_interval, *poll_at_launch, svnurl.clone()),
    };
    if !at_launch {
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
    }
    loop {
        if let Err(e) = poll(&shared, &source).await {
            tracing::warn!(source = %name, error = %e, "poll failed; will try again");
        }
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
    }
}

/// Runs a VCS command with a deadline; returns its stdout.
async fn run_vcs(
    program: &str,
    args: &[&str],
    cwd: Option<&std::path::Path>,
) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let output = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .map_err(|_| format!("{program} {} timed out", args.join(" ")))?
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
