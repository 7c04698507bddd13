//! Schedulers: turning changes, timers, force requests and triggers into buildsets.
//!
//! Change-driven schedulers listen to `changes/*/new` on the bus. Their tree-stable timers
//! are in memory; the changes themselves are rows, so nothing a user sent is lost.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use config::{ChangeFilterConfig, SchedulerConfig, SchedulerKind};
use model::{BuildId, BuildRequestId, BuilderId, BuildsetId, Properties, Results, SourceStampView};
use serde_json::Value as Json;

use crate::master::Shared;
use crate::EngineError;

/// A buildset to create.
pub struct BuildsetRequest<'a> {
    /// Scheduler name (recorded as the `scheduler` property).
    pub scheduler: &'a str,
    /// Builders to build on.
    pub builder_names: &'a [String],
    /// Why.
    pub reason: String,
    /// Buildset properties.
    pub properties: Properties,
    /// Source stamps.
    pub sourcestamps: Vec<store::NewSourceStamp>,
    /// The triggering build, for Trigger steps.
    pub parent_buildid: Option<BuildId>,
    /// Build request priority.
    pub priority: i64,
}

/// Records a buildset with one request per builder, announces it, and wakes the distributor.
pub async fn add_buildset(
    shared: &Arc<Shared>,
    req: BuildsetRequest<'_>,
) -> Result<(BuildsetId, Vec<(BuilderId, BuildRequestId)>), EngineError> {
    let runtime = shared.runtime();
    // A scheduler disabled through the `enable` control makes no buildsets of its own;
    // forced and triggered builds still run (spec §8).
    let own_initiative = runtime
        .config
        .schedulers
        .iter()
        .find(|s| s.name == req.scheduler)
        .is_some_and(|s| {
            !matches!(
                s.kind,
                SchedulerKind::Force { .. } | SchedulerKind::Triggerable
            )
        });
    if own_initiative && !scheduler_enabled(shared, req.scheduler).await? {
        return Err(EngineError::Invalid(format!(
            "scheduler {:?} is disabled",
            req.scheduler
        )));
    }
    let mut builders = Vec::new();
    for name in req.builder_names {
        match runtime.builder_ids.get(name) {
            Some(id) => builders.push(*id),
            None => return Err(EngineError::Invalid(format!("unknown builder {name:?}"))),
        }
    }
    let mut properties = req.properties;
    properties.set(
        "scheduler",
        Json::String(req.scheduler.to_string()),
        "Scheduler",
    );
    let new = store::NewBuildset {
        reason: req.reason,
        external_idstring: None,
        properties,
        sourcestamps: req.sourcestamps,
        builders,
        priority: req.priority,
        parent_buildid: req.parent_buildid,
        parent_relationship: None,
        rebuilt_buildid: None,
        waited_for: req.parent_buildid.is_some(),
        submitted_at: model::now(),
    };
    let (bsid, requests) = shared.store.buildset_add(&new).await?;
    crate::events::buildset(shared, bsid, "new").await;
    for (_, brid) in &requests {
        crate::events::buildrequest(shared, *brid, "new").await;
    }
    shared.wake.notify_one();
    Ok((bsid, requests))
}

/// False when the scheduler `name` was disabled through the `enable` control.
async fn scheduler_enabled(shared: &Arc<Shared>, name: &str) -> Result<bool, EngineError> {
    let q = store::ListQuery::filtered(vec![store::FilterSpec::new(
        "name",
        store::FilterOp::Eq,
        vec![store::SqlValue::Text(name.to_string())],
    )]);
    let (rows, _) = shared.store.schedulers_list(&q).await?;
    Ok(rows.first().is_none_or(|s| s.enabled))
}

/// Stops the scheduler and change-source tasks of the previous config and starts the new ones.
pub fn restart(shared: &Arc<Shared>) {
    let runtime = shared.runtime();
    let mut handles = Vec::new();
    for s in &runtime.config.schedulers {
        let task = match &s.kind {
            SchedulerKind::SingleBranch { .. } | SchedulerKind::AnyBranch { .. } => {
                tokio::spawn(change_scheduler(shared.clone(), s.clone()))
            }
            SchedulerKind::Periodic { .. } => tokio::spawn(periodic(shared.clone(), s.clone())),
            SchedulerKind::Nightly { .. } => tokio::spawn(nightly(shared.clone(), s.clone())),
            SchedulerKind::Force { .. } | SchedulerKind::Triggerable => continue,
        };
        handles.push(task);
    }
    crate::changes::spawn_all(shared, &mut handles);
    let old = std::mem::replace(
        &mut *shared.service_tasks.lock().expect("tasks lock poisoned"),
        handles,
    );
    for h in old {
        h.abort();
    }
}

fn change_field<'a>(change: &'a Json, name: &str) -> Option<&'a str> {
    change.get(name).and_then(|v| v.as_str())
}

/// True if the change passes the filter.
pub fn filter_matches(filter: &ChangeFilterConfig, change: &Json, shared: &Shared) -> bool {
    let branch = change_field(change, "branch");
    if let Some(branches) = &filter.branch {
        if !branches.iter().any(|b| b.as_deref() == branch) {
            return false;
        }
    }
    if let Some(re) = &filter.branch_re {
        let Ok(re) = regex::Regex::new(re) else {
            return false;
        };
        if !branch.is_some_and(|b| re.is_match(b)) {
            return false;
        }
    }
    let one_of = |allowed: &Option<Vec<String>>, field: &str| match allowed {
        None => true,
        Some(list) => change_field(change, field).is_some_and(|v| list.iter().any(|a| a == v)),
    };
    if !one_of(&filter.project, "project")
        || !one_of(&filter.repository, "repository")
        || !one_of(&filter.category, "category")
        || !one_of(&filter.codebase, "codebase")
    {
        return false;
    }
    if let Some(f) = filter.filter_fn {
        return match shared
            .runtime()
            .functions
            .call(f, std::slice::from_ref(change))
        {
            Ok(v) => v.as_bool().unwrap_or(!v.is_null()),
            Err(e) => {
                tracing::warn!(error = %e, "change filter function failed; change ignored");
                false
            }
        };
    }
    true
}

fn sourcestamp_of(change: &Json) -> store::NewSourceStamp {
    let text = |k: &str| change_field(change, k).unwrap_or_default().to_string();
    store::NewSourceStamp {
        branch: change_field(change, "branch").map(str::to_string),
        revision: change_field(change, "revision").map(str::to_string),
        repository: text("repository"),
        codebase: text("codebase"),
        project: text("project"),
        patch: None,
    }
}

/// SingleBranchScheduler and AnyBranchScheduler.
async fn change_scheduler(shared: Arc<Shared>, config: SchedulerConfig) {
    let (filter, stable, important_fn, per_branch) = match &config.kind {
        SchedulerKind::SingleBranch {
            change_filter,
            tree_stable_timer,
            file_is_important,
            ..
        } => (
            change_filter.clone(),
            *tree_stable_timer,
            *file_is_important,
            false,
        ),
        SchedulerKind::AnyBranch {
            change_filter,
            tree_stable_timer,
            file_is_important,
        } => (
            change_filter.clone(),
            *tree_stable_timer,
            *file_is_important,
            true,
        ),
        _ => return,
    };
    let mut rx = shared.bus.subscribe();
    // Pending changes per branch key, with the time the tree became stable.
    let mut pending: HashMap<Option<String>, (Json, tokio::time::Instant)> = HashMap::new();
    loop {
        let next_deadline = pending.values().map(|(_, at)| *at).min();
        let sleep = async {
            match next_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = rx.recv() => {
                let event = match event {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(scheduler = %config.name, missed = n, "scheduler fell behind the event bus");
                        continue;
                    }
                    Err(_) => return,
                };
                if !event.matches(&["changes", "*", "new"]) {
                    continue;
                }
                let change = (*event.payload).clone();
                if !filter_matches(&filter, &change, &shared) {
                    continue;
                }
                if let Some(f) = important_fn {
                    match shared.runtime().functions.call(f, std::slice::from_ref(&change)) {
                        Ok(v) if v.as_bool() == Some(false) || v.is_null() => continue,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(scheduler = %config.name, error = %e, "fileIsImportant failed; change treated as important");
                        }
                    }
                }
                let key = if per_branch { change_field(&change, "branch").map(str::to_string) } else { None };
                let at = tokio::time::Instant::now() + Duration::from_secs(stable.unwrap_or(0));
                pending.insert(key, (change, at));
            }
            _ = sleep => {
                let now = tokio::time::Instant::now();
                let due: Vec<_> = pending.iter().filter(|(_, (_, at))| *at <= now).map(|(k, _)| k.clone()).collect();
                for key in due {
                    if let Some((change, _)) = pending.remove(&key) {
                        fire_for_change(&shared, &config, &change).await;
                    }
                }
            }
        }
    }
}

async fn fire_for_change(shared: &Arc<Shared>, config: &SchedulerConfig, change: &Json) {
    let kind = match config.kind {
        SchedulerKind::AnyBranch { .. } => "AnyBranchScheduler",
        _ => "SingleBranchScheduler",
    };
    let req = BuildsetRequest {
        scheduler: &config.name,
        builder_names: &config.builder_names,
        reason: format!(
            "The {kind} scheduler named '{}' triggered this build",
            config.name
        ),
        properties: config.properties.clone(),
        sourcestamps: vec![sourcestamp_of(change)],
        parent_buildid: None,
        priority: 0,
    };
    if let Err(e) = add_buildset(shared, req).await {
        tracing::error!(scheduler = %config.name, error = %e, "could not create buildset");
    }
}

fn default_sourcestamp(branch: Option<&String>) -> store::NewSourceStamp {
    store::NewSourceStamp {
        branch: branch.cloned(),
        ..Default::default()
    }
}

/// Periodic: a buildset every `period` seconds.
async fn periodic(shared: Arc<Shared>, config: SchedulerConfig) {
    let SchedulerKind::Periodic { period, branch } = &config.kind else {
        return;
    };
    let mut ticker = tokio::time::interval(Duration::from_secs((*period).max(1)));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let req = BuildsetRequest {
            scheduler: &config.name,
            builder_names: &config.builder_names,
            reason: format!(
                "The Periodic scheduler named '{}' triggered this build",
                config.name
            ),
            properties: config.properties.clone(),
            sourcestamps: vec![default_sourcestamp(branch.as_ref())],
            parent_buildid: None,
            priority: 0,
        };
        if let Err(e) = add_buildset(&shared, req).await {
            tracing::error!(scheduler = %config.name, error = %e, "could not create buildset");
        }
    }
}

/// True if `value` is allowed by a cron field (`None` = any).
fn cron_field(allowed: &Option<Vec<u32>>, value: u32) -> bool {
    allowed.as_ref().is_none_or(|list| list.contains(&value))
}

/// Nightly: cron-like times in local time; `onlyIfChanged` needs a matching change since the
/// last run.
async fn nightly(shared: Arc<Shared>, config: SchedulerConfig) {
    use chrono::{Datelike, Timelike};
    let SchedulerKind::Nightly {
        minute,
        hour,
        day_of_month,
        month,
        day_of_week,
        only_if_changed,
        branch,
        change_filter,
    } = &config.kind
    else {
        return;
    };
    let mut rx = shared.bus.subscribe();
    let mut changed = false;
    let mut last_fired: Option<(i32, u32, u32, u32, u32)> = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(20));
    loop {
        tokio::select! {
            event = rx.recv() => {
                if let Ok(event) = event {
                    if event.matches(&["changes", "*", "new"]) && filter_matches(change_filter, &event.payload, &shared) {
                        changed = true;
                    }
                }
            }
            _ = ticker.tick() => {
                let now = chrono::Local::now();
                let stamp = (now.year(), now.month(), now.day(), now.hour(), now.minute());
                let due = cron_field(minute, now.minute()) && cron_field(hour, now.hour())
                    && cron_field(day_of_month, now.day()) && cron_field(month, now.month())
                    && cron_field(day_of_week, now.weekday().num_days_from_monday());
                if !due || last_fired == Some(stamp) {
                    continue;
                }
                last_fired = Some(stamp);
                if *only_if_changed && !changed {
                    continue;
                }
                changed = false;
                let req = BuildsetRequest {
                    scheduler: &config.name,
                    builder_names: &config.builder_names,
                    reason: format!("The Nightly scheduler named '{}' triggered this build", config.name),
                    properties: config.properties.clone(),
                    sourcestamps: vec![default_sourcestamp(branch.as_ref())],
                    parent_buildid: None,
                    priority: 0,
                };
                if let Err(e) = add_buildset(&shared, req).await {
                    tracing::error!(scheduler = %config.name, error = %e, "could not create buildset");
                }
            }
        }
    }
}

/// Fires Triggerable schedulers for a Trigger step; waits for their buildsets when asked.
pub async fn trigger(
    shared: &Arc<Shared>,
    parent: BuildId,
    scheduler_names: &[String],
    properties: Properties,
    sourcestamps: &[SourceStampView],
    wait: bool,
) -> Result<Results, String> {
    let runtime = shared.runtime();
    let mut rx = shared.bus.subscribe();
    let mut waiting = Vec::new();
    for name in scheduler_names {
        let Some(s) = runtime.config.schedulers.iter().find(|s| &s.name == name) else {
            return Err(format!("no scheduler named {name:?}"));
        };
        if !matches!(s.kind, SchedulerKind::Triggerable) {
            return Err(format!("scheduler {name:?} is not Triggerable"));
        }
        let mut props = s.properties.clone();
        props.update(&properties);
        let ss = sourcestamps
            .iter()
            .map(|s| store::NewSourceStamp {
                branch: s.branch.clone(),
                revision: s.revision.clone(),
                repository: s.repository.clone(),
                codebase: s.codebase.clone(),
                project: s.project.clone(),
                patch: None,
            })
            .collect();
        let req = BuildsetRequest {
            scheduler: name,
            builder_names: &s.builder_names,
            reason: format!("The Triggerable scheduler named '{name}' triggered this build"),
            properties: props,
            sourcestamps: ss,
            parent_buildid: Some(parent),
            priority: 0,
        };
        let (bsid, _) = add_buildset(shared, req).await.map_err(|e| e.to_string())?;
        waiting.push(bsid);
    }
    if !wait {
        return Ok(Results::Success);
    }
    let mut results = Results::Success;
    let mut left: BTreeMap<i64, ()> = waiting.iter().map(|b| (b.0, ())).collect();
    // A buildset may have completed before we listened: check the rows first.
    for bsid in &waiting {
        if let Ok(Some(bs)) = shared.store.buildset_get(*bsid).await {
            if let Some(r) = bs.results.filter(|_| bs.complete) {
                results = results.worst(r);
                left.remove(&bsid.0);
            }
        }
    }
    while !left.is_empty() {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return Err("master stopping".to_string()),
        };
        if !event.matches(&["buildsets", "*", "complete"]) {
            continue;
        }
        let Some(id) = event.payload.get("bsid").and_then(|v| v.as_i64()) else {
            continue;
        };
        if left.remove(&id).is_some() {
            let code = event
                .payload
                .get("results")
                .and_then(|v| v.as_i64())
                .unwrap_or(2);
            results = results.worst(Results::from_code(code).unwrap_or(Results::Failure));
        }
    }
    Ok(results)
}
