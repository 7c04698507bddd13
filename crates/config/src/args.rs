//! Checked access to a recorded call's arguments: unknown keywords and wrong types become
//! `file:line:` errors naming the class.

use std::collections::BTreeMap;

use model::Renderable;
use serde_json::Value as Json;

use crate::collect::{Obj, Py};
use crate::error::ConfigError;
use crate::types::{ConfigValue, FunctionRef};

/// The arguments of one call, by name.
pub(crate) struct Args<'a> {
    pub(crate) file: &'a str,
    pub(crate) obj: &'a Obj,
    map: BTreeMap<&'a str, &'a Py>,
    /// Names in call order (positional first), for copying everything into a map.
    pub(crate) order: Vec<&'a str>,
}

impl<'a> Args<'a> {
    /// Names the positional arguments and checks every keyword against `positional ∪ keywords`.
    pub(crate) fn new(
        file: &'a str,
        obj: &'a Obj,
        positional: &[&'a str],
        keywords: &[&str],
    ) -> Result<Args<'a>, ConfigError> {
        let mut args = Args {
            file,
            obj,
            map: BTreeMap::new(),
            order: Vec::new(),
        };
        let given: Vec<&Py> = obj
            .args
            .iter()
            .filter(|a| !matches!(a, Py::Ellipsis))
            .collect();
        if given.len() > positional.len() {
            return Err(args.error(format!(
                "{} takes at most {} positional arguments, got {}",
                obj.class,
                positional.len(),
                given.len()
            )));
        }
        for (name, value) in positional.iter().zip(given) {
            args.map.insert(name, value);
            args.order.push(name);
        }
        for (name, value) in &obj.kwargs {
            if !positional.contains(&name.as_str()) && !keywords.contains(&name.as_str()) {
                return Err(args.error(format!(
                    "unknown keyword argument '{name}' for {}",
                    obj.class
                )));
            }
            if args.map.insert(name.as_str(), value).is_some() {
                return Err(args.error(format!(
                    "{} got multiple values for argument '{name}'",
                    obj.class
                )));
            }
            args.order.push(name.as_str());
        }
        Ok(args)
    }

    /// An error at the call's line.
    pub(crate) fn error(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: self.obj.line,
            message,
        }
    }

    /// A type error: `MailNotifier: 'smtpPort' must be an int, got string`.
    pub(crate) fn type_error(&self, name: &str, expected: &str, got: &Py) -> ConfigError {
        self.error(format!(
            "{}: '{name}' must be {expected}, got {}",
            self.obj.class,
            got.type_name()
        ))
    }

    /// The argument, if given (an explicit `None` counts as given).
    pub(crate) fn raw(&self, name: &str) -> Option<&'a Py> {
        self.map.get(name).copied()
    }

    /// The argument, if given and not `None`.
    pub(crate) fn get(&self, name: &str) -> Option<&'a Py> {
        self.raw(name).filter(|p| !matches!(p, Py::None))
    }

    /// The first of several alias names that is given.
    pub(crate) fn first(&self, names: &[&'a str]) -> Option<(&'a str, &'a Py)> {
        names.iter().find_map(|n| self.get(n).map(|p| (*n, p)))
    }

    /// A required string.
    pub(crate) fn req_str(&self, name: &str) -> Result<String, ConfigError> {
        match self.get(name) {
            Some(p) => self.as_str(name, p),
            None => Err(self.error(format!(
                "{}: missing required argument '{name}'",
                self.obj.class
            ))),
        }
    }

    /// An optional string.
    pub(crate) fn opt_str(&self, name: &str) -> Result<Option<String>, ConfigError> {
        self.get(name).map(|p| self.as_str(name, p)).transpose()
    }

    /// A string value.
    pub(crate) fn as_str(&self, name: &str, p: &Py) -> Result<String, ConfigError> {
        match p {
            Py::Str(s) => Ok(s.clone()),
            other => Err(self.type_error(name, "a string", other)),
        }
    }

    /// An optional non-negative integer.
    pub(crate) fn opt_u64(&self, name: &str) -> Result<Option<u64>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(Py::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(Py::Float(f)) if *f >= 0.0 && f.fract() == 0.0 => Ok(Some(*f as u64)),
            Some(other) => Err(self.type_error(name, "a non-negative int", other)),
        }
    }

    /// An optional number (int or float).
    pub(crate) fn opt_f64(&self, name: &str) -> Result<Option<f64>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(Py::Int(i)) => Ok(Some(*i as f64)),
            Some(Py::Float(f)) => Ok(Some(*f)),
            Some(other) => Err(self.type_error(name, "a number", other)),
        }
    }

    /// A boolean with a default (ints count as in Python).
    pub(crate) fn bool_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(Py::Bool(b)) => Ok(*b),
            Some(Py::Int(i)) => Ok(*i != 0),
            Some(other) => Err(self.type_error(name, "a bool", other)),
        }
    }

    /// A string or a list of strings, as a list.
    pub(crate) fn str_list(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(p) => self.as_str_list(name, p),
        }
    }

    /// A string or a list/tuple of strings, as a list.
    pub(crate) fn as_str_list(&self, name: &str, p: &Py) -> Result<Vec<String>, ConfigError> {
        match p {
            Py::Str(s) => Ok(vec![s.clone()]),
            Py::List(items) | Py::Tuple(items) => items
                .iter()
                .map(|item| match item {
                    Py::Str(s) => Ok(s.clone()),
                    other => Err(self.type_error(name, "a list of strings", other)),
                })
                .collect(),
            other => Err(self.type_error(name, "a string or a list of strings", other)),
        }
    }

    /// An optional user function.
    pub(crate) fn opt_func(&self, name: &str) -> Result<Option<FunctionRef>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(Py::Func(id)) => Ok(Some(FunctionRef(*id))),
            Some(other) => Err(self.type_error(name, "a function", other)),
        }
    }

    /// An optional renderable.
    pub(crate) fn opt_renderable(&self, name: &str) -> Result<Option<Renderable>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(p) => to_renderable(p)
                .map(Some)
                .ok_or_else(|| self.type_error(name, "a string or a renderable", p)),
        }
    }

    /// A required renderable.
    pub(crate) fn req_renderable(&self, name: &str) -> Result<Renderable, ConfigError> {
        match self.opt_renderable(name)? {
            Some(r) => Ok(r),
            None => Err(self.error(format!(
                "{}: missing required argument '{name}'",
                self.obj.class
            ))),
        }
    }

    /// A dict of string keys to renderables.
    pub(crate) fn renderable_map(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, Renderable>, ConfigError> {
        let Some(p) = self.get(name) else {
            return Ok(BTreeMap::new());
        };
        let Py::Dict(entries) = p else {
            return Err(self.type_error(name, "a dict", p));
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let Py::Str(k) = k else {
                return Err(self.type_error(name, "a dict with string keys", k));
            };
            let Some(r) = to_renderable(v) else {
                return Err(self.type_error(name, "a dict of strings or renderables", v));
            };
            out.insert(k.clone(), r);
        }
        Ok(out)
    }

    /// A dict of plain values as properties.
    pub(crate) fn properties(
        &self,
        name: &str,
        source: &str,
    ) -> Result<model::Properties, ConfigError> {
        let mut props = model::Properties::new();
        let Some(p) = self.get(name) else {
            return Ok(props);
        };
        let Py::Dict(entries) = p else {
            return Err(self.type_error(name, "a dict", p));
        };
        for (k, v) in entries {
            let Py::Str(k) = k else {
                return Err(self.type_error(name, "a dict with string keys", k));
            };
            props.set(k.clone(), to_json(v), source);
        }
        Ok(props)
    }
}

/// The renderable form of a value: plain data, `Property`, `Interpolate`, `WithProperties`,
/// `@renderer` functions, and lists/dicts of those. `None` for anything else.
pub(crate) fn to_renderable(p: &Py) -> Option<Renderable> {
    match p {
        Py::None | Py::Bool(_) | Py::Int(_) | Py::Float(_) | Py::Str(_) => {
            Some(Renderable::Value(to_json(p)))
        }
        Py::List(items) | Py::Tuple(items) => {
            let rendered: Option<Vec<Renderable>> = items.iter().map(to_renderable).collect();
            let rendered = rendered?;
            if rendered.iter().all(Renderable::is_constant) {
                return Some(Renderable::Value(to_json(p)));
            }
            Some(Renderable::List(rendered))
        }
        Py::Dict(entries) => {
            let mut out = Vec::new();
            for (k, v) in entries {
                let Py::Str(k) = k else {
                    return None;
                };
                out.push((k.clone(), to_renderable(v)?));
            }
            if out.iter().all(|(_, v)| v.is_constant()) {
                return Some(Renderable::Value(to_json(p)));
            }
            Some(Renderable::Dict(out))
        }
        Py::Func(id) => Some(Renderable::Function(*id)),
        Py::Obj(obj) => match obj.class.as_str() {
            "Property" => {
                let name = match (obj.args.first(), kw(obj, "name")) {
                    (Some(Py::Str(s)), _) | (None, Some(Py::Str(s))) => s.clone(),
                    _ => return None,
                };
                let default = match (obj.args.get(1), kw(obj, "default")) {
                    (Some(d), _) | (None, Some(d)) => Some(Box::new(to_renderable(d)?)),
                    _ => None,
                };
                Some(Renderable::Property { name, default })
            }
            "Interpolate" => {
                let Some(Py::Str(format)) = obj.args.first().or_else(|| kw(obj, "fmtstring"))
                else {
                    return None;
                };
                let args = obj
                    .args
                    .iter()
                    .skip(1)
                    .map(to_renderable)
                    .collect::<Option<Vec<_>>>()?;
                let mut kwargs = BTreeMap::new();
                for (k, v) in &obj.kwargs {
                    if k != "fmtstring" {
                        kwargs.insert(k.clone(), to_renderable(v)?);
                    }
                }
                Some(Renderable::Interpolate {
                    format: format.clone(),
                    args,
                    kwargs,
                })
            }
            "WithProperties" => {
                let Some(Py::Str(format)) = obj.args.first() else {
                    return None;
                };
                let args = obj
                    .args
                    .iter()
                    .skip(1)
                    .map(|a| match a {
                        Py::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(Renderable::WithProperties {
                    format: format.clone(),
                    args,
                })
            }
            "renderer" => match obj.args.first() {
                Some(Py::Func(id)) => Some(Renderable::Function(*id)),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A keyword argument of a recorded call.
fn kw<'a>(obj: &'a Obj, name: &str) -> Option<&'a Py> {
    obj.kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Plain JSON for a value; objects become `{"class": …, "args": […], "kwargs": {…}}` and
/// functions `{"function": id}`.
pub(crate) fn to_json(p: &Py) -> Json {
    match p {
        Py::None | Py::Ellipsis => Json::Null,
        Py::Bool(b) => Json::Bool(*b),
        Py::Int(i) => Json::from(*i),
        Py::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Py::Str(s) => Json::String(s.clone()),
        Py::List(items) | Py::Tuple(items) => Json::Array(items.iter().map(to_json).collect()),
        Py::Dict(entries) => {
            let mut map = serde_json::Map::new();
            for (k, v) in entries {
                let key = match k {
                    Py::Str(s) => s.clone(),
                    other => match to_json(other) {
                        Json::String(s) => s,
                        j => j.to_string(),
                    },
                };
                map.insert(key, to_json(v));
            }
            Json::Object(map)
        }
        Py::Obj(obj) => {
            let mut map = serde_json::Map::new();
            map.insert("class".to_string(), Json::String(obj.class.clone()));
            map.insert(
                "args".to_string(),
                Json::Array(obj.args.iter().map(to_json).collect()),
            );
            let kwargs: serde_json::Map<String, Json> = obj
                .kwargs
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect();
            map.insert("kwargs".to_string(), Json::Object(kwargs));
            Json::Object(map)
        }
        Py::Func(id) => serde_json::json!({ "function": id }),
        Py::Builtin(name) => serde_json::json!({ "builtin": name }),
        Py::Other(name) => serde_json::json!({ "unsupported": name }),
    }
}

/// True if the value holds nothing but plain data.
fn is_plain(p: &Py) -> bool {
    match p {
        Py::None | Py::Bool(_) | Py::Int(_) | Py::Float(_) | Py::Str(_) => true,
        Py::List(items) | Py::Tuple(items) => items.iter().all(is_plain),
        Py::Dict(entries) => entries.iter().all(|(k, v)| is_plain(k) && is_plain(v)),
        _ => false,
    }
}

/// A status target argument: plain data, a renderable, a function, or a helper object.
pub(crate) fn to_config_value(p: &Py) -> ConfigValue {
    if is_plain(p) {
        return ConfigValue::Value(to_json(p));
    }
    match p {
        Py::Func(id) => ConfigValue::Function(FunctionRef(*id)),
        Py::Obj(obj)
            if !matches!(
                obj.class.as_str(),
                "Property" | "Interpolate" | "WithProperties" | "renderer"
            ) =>
        {
            let mut args = BTreeMap::new();
            for (i, a) in obj.args.iter().enumerate() {
                args.insert(i.to_string(), to_config_value(a));
            }
            for (k, v) in &obj.kwargs {
                args.insert(k.clone(), to_config_value(v));
            }
            ConfigValue::Object {
                kind: obj.class.clone(),
                args,
            }
        }
        other => match to_renderable(other) {
            Some(r) => ConfigValue::Renderable(r),
            None => ConfigValue::Value(to_json(other)),
        },
    }
}
