//! The `base` dialect: every field of contrib's `post_build_request` and of `sendchange`,
//! as form fields or as a JSON object.

use serde_json::Value;

use super::{HookError, HookRequest};

/// Turns a `base` request into one change.
pub fn parse(request: &HookRequest, _options: &Value) -> Result<Vec<store::NewChange>, HookError> {
    let fields = if request.is_json() {
        let value: Value = serde_json::from_slice(&request.body)
            .map_err(|e| HookError::BadPayload(format!("body is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(HookError::BadPayload("body must be a JSON object".into()));
        };
        map.into_iter().collect::<Vec<_>>()
    } else {
        request
            .args
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    };
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let text = |name: &str| -> Result<Option<String>, HookError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(HookError::BadPayload(format!(
                "field '{name}' must be a string"
            ))),
        }
    };
    let author = match (text("author")?, text("who")?) {
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => {
            return Err(HookError::BadPayload(
                "field 'author' (or 'who') is required".into(),
            ))
        }
    };
    let files = match get("files") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => strings(items, "files")?,
        Some(Value::String(s)) if s.trim_start().starts_with('[') => {
            match serde_json::from_str::<Value>(s) {
                Ok(Value::Array(items)) => strings(&items, "files")?,
                _ => {
                    return Err(HookError::BadPayload(
                        "field 'files' must be a JSON list of strings".into(),
                    ))
                }
            }
        }
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(_) => {
            return Err(HookError::BadPayload(
                "field 'files' must be a list of strings".into(),
            ))
        }
    };
    let when = match text("when_timestamp")?.or(text("when")?) {
        None => request.received_at,
        Some(s) => s.trim().parse::<f64>().map(|f| f as i64).map_err(|_| {
            HookError::BadPayload("field 'when' must be a number of seconds".into())
        })?,
    };
    let mut properties = model::Properties::new();
    match get("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                properties.set(k, v.clone(), "Change");
            }
        }
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => {
                for (k, v) in map {
                    properties.set(k, v, "Change");
                }
            }
            _ => {
                return Err(HookError::BadPayload(
                    "field 'properties' must be a JSON object".into(),
                ))
            }
        },
        Some(_) => {
            return Err(HookError::BadPayload(
                "field 'properties' must be an object".into(),
            ))
        }
    }
    Ok(vec![store::NewChange {
        author,
        committer: text("committer")?,
        comments: text("comments")?.unwrap_or_default(),
        branch: text("branch")?.filter(|b| !b.is_empty()),
        revision: text("revision")?.filter(|r| !r.is_empty()),
        revlink: text("revlink")?,
        when_timestamp: when,
        category: text("category")?.filter(|c| !c.is_empty()),
        repository: text("repository")?.unwrap_or_default(),
        codebase: text("codebase")?.unwrap_or_default(),
        project: text("project")?.unwrap_or_default(),
        files,
        properties,
        created_at: request.received_at,
    }])
}

fn strings(items: &[Value], field: &str) -> Result<Vec<String>, HookError> {
    items
        .iter()
        .map(|i| {
            i.as_str().map(str::to_string).ok_or_else(|| {
                HookError::BadPayload(format!("field '{field}' must hold only strings"))
            })
        })
        .collect()
}
