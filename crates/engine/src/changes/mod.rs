//! Change sources and the one way a change enters the master: [`add_change`].
//!
//! Pollers keep their last seen revision in the database, so commits made while the master
//! was down are found at the next poll (`pollAtLaunch` makes that poll happen at start).

mod git;
mod svn;

use std::sync::Arc;
use std::time::Duration;

use config::ChangeSourceConfig;
use model::ChangeId;

use crate::master::Shared;
use crate::EngineError;

/// Records a change, then announces it to schedulers and pages.
pub async fn add_change(
    shared: &Arc<Shared>,
    change: &store::NewChange,
) -> Result<ChangeId, EngineError> {
    let id = shared.store.change_add(change).await?;
    crate::events::change(shared, id).await;
    Ok(id)
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

/// Polls every git change source now (the `poller` change hook uses this).
pub async fn poll_now(shared: &Arc<Shared>) {
    let runtime = shared.runtime();
    for source in &runtime.config.change_sources {
        if let Err(e) = poll(shared, source).await {
            tracing::warn!(error = %e, "poll failed");
        }
    }
}

/// One poll of any polling change source.
async fn poll(shared: &Arc<Shared>, source: &ChangeSourceConfig) -> Result<(), String> {
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
