//! `MessageFormatter(...)`, Buildbot 4's `reporters.MessageFormatter`: a Jinja template for
//! mail bodies (and subjects), read and syntax-checked when the config loads.
//!
//! The template files are read here, once per load, so `checkconfig` catches a missing file
//! or a syntax error with the template's own `file:line`, a reconfig picks up an edited
//! template, and the master never reads them while sending. What reaches the reporters is
//! a [`ConfigValue::Object`] of kind `MessageFormatter` holding the template *source*:
//!
//! | key | value |
//! |---|---|
//! | `template`, `subject` | template sources (absent: the reporter's default body / the notifier's `subject`) |
//! | `template_name`, `subject_name` | the names errors use: the file as written, or `template (master.cfg:12)` |
//! | `template_type` | `plain` or `html` |
//! | `want_properties`, `want_steps`, `want_logs`, `want_logs_content` | booleans |
//! | `ctx` | a dict of extra template variables |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::args::{to_json, Args};
use crate::collect::{Obj, Py};
use crate::error::ConfigError;
use crate::types::ConfigValue;

/// The class name, as `reporters.MessageFormatter` / `util.MessageFormatter`.
pub(crate) const CLASS: &str = "MessageFormatter";

/// Buildbot 4's keyword arguments that Signalbox implements (`extra_info_cb` is not).
const KEYWORDS: &[&str] = &[
    "template_dir",
    "template_filename",
    "template",
    "subject_filename",
    "subject",
    "template_type",
    "ctx",
    "want_properties",
    "want_steps",
    "want_logs",
    "want_logs_content",
];

/// Largest template file read: a mail template is a few kilobytes.
const MAX_TEMPLATE_BYTES: u64 = 1 << 20;

/// Checks a `MessageFormatter(...)` call, reads its template files and compiles its
/// templates; `basedir` is the master directory that relative paths start from.
pub(crate) fn convert(file: &str, basedir: &Path, obj: &Obj) -> Result<ConfigValue, ConfigError> {
    let args = Args::new(file, obj, &[], KEYWORDS)?;
    let template_type = args.opt_str("template_type")?.unwrap_or("plain".into());
    if template_type != "plain" && template_type != "html" {
        return Err(args.error(format!(
            "{CLASS}: template_type must be 'plain' or 'html', got '{template_type}'"
        )));
    }
    let dir = match args.opt_str("template_dir")? {
        Some(d) => basedir.join(d),
        None => basedir.to_path_buf(),
    };
    let mut out = BTreeMap::new();
    let body = source(
        &args,
        &dir,
        ("template", "template_filename"),
        format!("template ({file}:{})", obj.line),
    )?;
    let template_name = match &body {
        Some((name, text)) => {
            compile(&args, name, text)?;
            out.insert("template".to_string(), text_value(text));
            name.clone()
        }
        None => format!("default {template_type} template"),
    };
    out.insert("template_name".to_string(), text_value(&template_name));
    let subject = source(
        &args,
        &dir,
        ("subject", "subject_filename"),
        format!("subject ({file}:{})", obj.line),
    )?;
    if let Some((name, text)) = subject {
        compile(&args, &name, &text)?;
        out.insert("subject".to_string(), text_value(&text));
        out.insert("subject_name".to_string(), text_value(&name));
    }
    out.insert("template_type".to_string(), text_value(&template_type));
    for (name, default) in [
        ("want_properties", true),
        ("want_steps", false),
        ("want_logs", false),
        ("want_logs_content", false),
    ] {
        let value = args.bool_or(name, default)?;
        out.insert(name.to_string(), ConfigValue::Value(Json::Bool(value)));
    }
    match args.get("ctx") {
        None => {}
        Some(p @ Py::Dict(_)) => {
            out.insert("ctx".to_string(), ConfigValue::Value(to_json(p)));
        }
        Some(other) => return Err(args.type_error("ctx", "a dict", other)),
    }
    Ok(ConfigValue::Object {
        kind: CLASS.to_string(),
        args: out,
    })
}

fn text_value(text: &str) -> ConfigValue {
    ConfigValue::Value(Json::String(text.to_string()))
}

/// A template given inline (`inline` keyword) or as a file (`filename` keyword, under
/// `dir`): its name for error messages and its text. Giving both is refused, since one of
/// them would be silently ignored.
fn source(
    args: &Args<'_>,
    dir: &Path,
    (inline, filename): (&str, &str),
    inline_name: String,
) -> Result<Option<(String, String)>, ConfigError> {
    match (args.opt_str(inline)?, args.opt_str(filename)?) {
        (Some(_), Some(_)) => Err(args.error(format!(
            "{CLASS}: give '{inline}' or '{filename}', not both"
        ))),
        (Some(text), None) => Ok(Some((inline_name, text))),
        (None, Some(name)) => {
            let path = dir.join(&name);
            let text = read_template(args, &path, filename)?;
            Ok(Some((name, text)))
        }
        (None, None) => Ok(None),
    }
}

/// Reads a template file, with a size cap.
fn read_template(args: &Args<'_>, path: &PathBuf, keyword: &str) -> Result<String, ConfigError> {
    let metadata = std::fs::metadata(path).map_err(|e| {
        args.error(format!(
            "{CLASS}: {keyword} '{}' cannot be read ({e}); the path is relative to template_dir, or to the master directory",
            path.display()
        ))
    })?;
    if metadata.len() > MAX_TEMPLATE_BYTES {
        return Err(args.error(format!(
            "{CLASS}: {keyword} '{}' is larger than {MAX_TEMPLATE_BYTES} bytes",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| {
        args.error(format!(
            "{CLASS}: {keyword} '{}' cannot be read as UTF-8 text: {e}",
            path.display()
        ))
    })
}

/// Compiles `text` so a syntax error is reported now; minijinja's message ends with the
/// template's own `(in NAME:LINE)`.
fn compile(args: &Args<'_>, name: &str, text: &str) -> Result<(), ConfigError> {
    let env = minijinja::Environment::new();
    match env.template_from_named_str(name, text) {
        Ok(_) => Ok(()),
        Err(e) => Err(args.error(format!("{CLASS}: {e}"))),
    }
}

/// JSON to a template value, by hand: with serde_json's `arbitrary_precision` (which
/// `starlark`, pinned by DESIGN decision 1, turns on in this workspace) serialized numbers
/// would arrive as maps, and `result_names[results]` would find nothing. Pages and mail
/// templates both render through this.
pub fn template_value(json: &Json) -> minijinja::Value {
    use minijinja::Value;
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(f)) => Value::from(f),
            _ => Value::from(n.to_string()),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(template_value).collect::<Vec<_>>()),
        Json::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), template_value(v)))
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}
