//! Control actions the web and chat call: force a build, stop a build.
//!
//! Authorization happens before these are called (in `www`); they only validate input.

use std::collections::BTreeMap;
use std::sync::Arc;

use config::SchedulerKind;
use model::{BuildId, BuildRequestId, BuilderId, BuildsetId, Properties, Results};
use serde_json::Value as Json;

use crate::master::Shared;
use crate::schedulers::{add_buildset, BuildsetRequest};
use crate::EngineError;

/// Why a force request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ForceError {
    /// No ForceScheduler of that name.
    #[error("no force scheduler named {0:?}")]
    UnknownScheduler(String),
    /// Field-level validation errors, keyed by field name.
    #[error("invalid force parameters")]
    Fields(BTreeMap<String, String>),
    /// Storing the buildset failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Forces a build through the ForceScheduler `scheduler`. `params` are the form or JSON-RPC
/// fields; `owner` is who asked.
pub async fn force(
    shared: &Arc<Shared>,
    scheduler: &str,
    builder_names: Option<Vec<String>>,
    params: &serde_json::Map<String, Json>,
    owner: &str,
) -> Result<(BuildsetId, Vec<(BuilderId, BuildRequestId)>), ForceError> {
    let runtime = shared.runtime();
    let Some(s) = runtime
        .config
        .schedulers
        .iter()
        .find(|s| s.name == scheduler)
    else {
        return Err(ForceError::UnknownScheduler(scheduler.to_string()));
    };
    let SchedulerKind::Force {
        reason,
        username,
        codebase_fields,
        properties,
        ..
    } = &s.kind
    else {
        return Err(ForceError::UnknownScheduler(scheduler.to_string()));
    };
    let mut errors = BTreeMap::new();
    let text = |name: &str, default: &Json| -> String {
        match params.get(name) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => match default {
                Json::String(s) => s.clone(),
                Json::Null => String::new(),
                other => other.to_string(),
            },
            Some(other) => other.to_string(),
        }
    };
    let reason_text = text(&reason.name, &reason.default);
    let user = text(&username.name, &username.default);
    let owner = if user.is_empty() {
        owner.to_string()
    } else {
        user
    };
    let mut ss = store::NewSourceStamp::default();
    for field in codebase_fields {
        let value = text(&field.name, &field.default);
        if let Some(re) = &field.regex {
            if let Ok(re) = regex::Regex::new(re) {
                if !re.is_match(&value) {
                    errors.insert(
                        field.name.clone(),
                        format!("value {value:?} does not match pattern {re}"),
                    );
                }
            }
        }
        if field.required && value.is_empty() {
            errors.insert(field.name.clone(), "this field is required".to_string());
        }
        let opt = if value.is_empty() {
            None
        } else {
            Some(value.clone())
        };
        match field.name.as_str() {
            "branch" => ss.branch = opt,
            "revision" => ss.revision = opt,
            "repository" => ss.repository = value,
            "project" => ss.project = value,
            _ => {}
        }
    }
    let mut props = Properties::new();
    for p in properties {
        let raw = params
            .get(&p.name)
            .cloned()
            .unwrap_or_else(|| p.default.clone());
        let value = match p.kind.as_str() {
            "int" => match &raw {
                Json::Number(_) => raw.clone(),
                Json::String(s) => match s.trim().parse::<i64>() {
                    Ok(n) => Json::from(n),
                    Err(_) => {
                        errors.insert(p.name.clone(), format!("invalid literal for int(): {s:?}"));
                        continue;
                    }
                },
                _ => Json::Null,
            },
            "bool" => Json::Bool(
                matches!(&raw, Json::Bool(true))
                    || matches!(&raw, Json::String(s) if s == "true" || s == "on" || s == "1"),
            ),
            _ => match &raw {
                Json::String(_) => raw.clone(),
                Json::Null => Json::String(String::new()),
                other => Json::String(other.to_string()),
            },
        };
        if p.kind == "list" && !p.choices.is_empty() {
            if let Json::String(s) = &value {
                if !p.choices.contains(s) {
                    errors.insert(p.name.clone(), format!("{s:?} is not one of the choices"));
                }
            }
        }
        if p.required && (value.is_null() || value == Json::String(String::new())) {
            errors.insert(p.name.clone(), "this field is required".to_string());
        }
        props.set(&p.name, value, "Force Build Form");
    }
    let priority = match params.get("priority") {
        None | Some(Json::Null) => 0,
        Some(Json::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Json::String(s)) if s.is_empty() => 0,
        Some(Json::String(s)) => match s.trim().parse() {
            Ok(n) => n,
            Err(_) => {
                errors.insert(
                    "priority".to_string(),
                    format!("invalid literal for int() with base 10: {s:?}"),
                );
                0
            }
        },
        Some(_) => 0,
    };
    if !errors.is_empty() {
        return Err(ForceError::Fields(errors));
    }
    props.set(
        "reason",
        Json::String(reason_text.clone()),
        "Force Build Form",
    );
    props.set("owner", Json::String(owner.clone()), "Force Build Form");
    let builders = match builder_names {
        Some(names) => {
            for n in &names {
                if !s.builder_names.contains(n) {
                    return Err(ForceError::Fields(BTreeMap::from([(
                        "builderNames".to_string(),
                        format!("builder {n:?} is not in scheduler {scheduler:?}"),
                    )])));
                }
            }
            names
        }
        None => s.builder_names.clone(),
    };
    let req = BuildsetRequest {
        scheduler,
        builder_names: &builders,
        reason: format!("A build was forced by '{owner}': {reason_text}"),
        properties: props,
        sourcestamps: vec![ss],
        parent_buildid: None,
        priority,
    };
    Ok(add_buildset(shared, req).await?)
}

/// Stops a running build; it ends CANCELLED. False if it is not running here.
pub fn stop_build(shared: &Arc<Shared>, id: BuildId, reason: &str) -> bool {
    let builds = shared.builds.lock().expect("builds lock poisoned");
    match builds.get(&id) {
        Some(b) => {
            b.stop
                .send_replace(Some((Results::Cancelled, reason.to_string())));
            true
        }
        None => false,
    }
}
