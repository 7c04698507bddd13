//! Force schedulers (spec §7.14): not stored, so the caller describes them in a [`Context`].
//!
//! `data` does not depend on `config`; `www` builds a [`ForceScheduler`] per configured
//! ForceScheduler from the config in force and passes them with the store.

use serde_json::{json, Value};

use crate::spec::ResultSpec;
use crate::{DataError, DataResult};

/// What a Data API request can see besides the store: the config-only resources.
pub struct Context<'a> {
    /// The database.
    pub store: &'a store::Store,
    /// The ForceSchedulers of the config in force.
    pub forceschedulers: &'a [ForceScheduler],
}

/// One ForceScheduler as the config describes it.
#[derive(Debug, Clone)]
pub struct ForceScheduler {
    /// Scheduler name (an identifier; the control URL uses it).
    pub name: String,
    /// Button text.
    pub button_name: String,
    /// Form title.
    pub label: String,
    /// Builders it may force.
    pub builder_names: Vec<String>,
    /// The `reason`, `username` and `priority` fields, in form order.
    pub main_fields: Vec<ForceField>,
    /// The default codebase's fields (`branch`, `project`, `repository`, `revision`).
    pub codebase_fields: Vec<ForceField>,
    /// Extra property fields.
    pub property_fields: Vec<ForceField>,
}

/// One form field.
#[derive(Debug, Clone)]
pub struct ForceField {
    /// Name (and full name: the default layout has unnamed groups).
    pub name: String,
    /// Label.
    pub label: String,
    /// `text`, `int`, `bool`, `list`, `username`, `textarea`, `fixed`.
    pub kind: String,
    /// Default value.
    pub default: Value,
    /// Must be given.
    pub required: bool,
    /// Choices of a `list`.
    pub choices: Vec<String>,
    /// Pattern the value must match.
    pub regex: Option<String>,
}

const FIELDS: &[&str] = &[
    "name",
    "button_name",
    "label",
    "builder_names",
    "enabled",
    "all_fields",
];

/// Answers `forceschedulers…` and `builders/{id}/forceschedulers`; `None` for other paths.
/// `builder_name` resolves a builder path segment to a builder name.
pub(crate) fn get(
    ctx: &Context<'_>,
    segments: &[&str],
    builder_name: Option<&str>,
    spec: &ResultSpec,
) -> Option<Result<DataResult, DataError>> {
    let all = || ctx.forceschedulers.iter();
    match segments {
        ["forceschedulers"] => Some(list(all().map(shape).collect(), spec)),
        ["forceschedulers", name] => Some(match all().find(|f| f.name == *name) {
            Some(f) => single(shape(f), spec),
            None => Err(DataError::NotFound(segments.join("/"))),
        }),
        ["builders", _, "forceschedulers"] => Some(list(
            all()
                .filter(|f| builder_name.is_some_and(|b| f.builder_names.iter().any(|n| n == b)))
                .map(shape)
                .collect(),
            spec,
        )),
        _ => None,
    }
}

fn single(value: Value, spec: &ResultSpec) -> Result<DataResult, DataError> {
    if !spec.filters.is_empty() {
        return Err(DataError::BadRequest("this is not a collection".into()));
    }
    for f in &spec.fields {
        if !FIELDS.contains(&f.as_str()) {
            return Err(DataError::BadRequest(format!("no such field '{f}'")));
        }
    }
    Ok(DataResult::Single {
        plural: "forceschedulers",
        value: spec.select(value),
    })
}

fn list(items: Vec<Value>, spec: &ResultSpec) -> Result<DataResult, DataError> {
    // `enabled` is the one boolean field; its filter values are checked as the SQL-backed
    // resources check theirs, even when there is nothing to compare them with.
    let bad_enabled = spec.filters.iter().any(|f| {
        f.field == "enabled"
            && f.values.iter().any(|v| {
                !matches!(
                    v.to_ascii_lowercase().as_str(),
                    "on" | "true" | "yes" | "1" | "off" | "false" | "no" | "0"
                )
            })
    });
    if bad_enabled {
        return Err(DataError::BadRequest(
            "invalid filter value for enabled".into(),
        ));
    }
    let (items, total) = spec.apply(items, FIELDS)?;
    Ok(DataResult::List {
        plural: "forceschedulers",
        items,
        total,
    })
}

/// The REST shape: two unnamed `nested` groups (main fields, then the codebase), as
/// Buildbot's default layout, and the property fields after them.
fn shape(f: &ForceScheduler) -> Value {
    let mut all_fields = vec![
        nested(f.main_fields.iter().map(field).collect()),
        nested(f.codebase_fields.iter().map(field).collect()),
    ];
    all_fields.extend(f.property_fields.iter().map(field));
    json!({
        "name": f.name,
        "button_name": f.button_name,
        "label": f.label,
        "builder_names": f.builder_names,
        "enabled": true,
        "all_fields": all_fields,
    })
}

fn nested(fields: Vec<Value>) -> Value {
    json!({
        "name": "", "fullName": "", "label": "", "tablabel": "", "type": "nested",
        "default": "", "required": false, "multiple": false, "regex": null, "hide": false,
        "maxsize": null, "autopopulate": null, "tooltip": "",
        "layout": "vertical", "columns": 1, "fields": fields,
    })
}

fn field(p: &ForceField) -> Value {
    let mut v = json!({
        "name": p.name, "fullName": p.name, "label": p.label, "tablabel": p.label,
        "type": p.kind, "default": p.default, "required": p.required, "multiple": false,
        "regex": p.regex, "hide": false, "maxsize": null, "autopopulate": null, "tooltip": "",
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    match p.kind.as_str() {
        "text" | "int" => {
            obj.insert("size".into(), json!(10));
        }
        "username" => {
            obj.insert("size".into(), json!(30));
            obj.insert("need_email".into(), json!(true));
        }
        "textarea" => {
            obj.insert("cols".into(), json!(80));
            obj.insert("rows".into(), json!(20));
        }
        "list" => {
            obj.insert("choices".into(), json!(p.choices));
            obj.insert("strict".into(), json!(true));
        }
        _ => {}
    }
    v
}
