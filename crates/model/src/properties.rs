//! Properties: named JSON values, each with the source that set it.

use std::collections::BTreeMap;

use serde_json::Value;

/// Who set a property, as Buildbot records it (`"Build"`, `"Scheduler"`, `"Force Build Form"`…).
pub type PropertySource = String;

/// A set of properties, ordered by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    map: BTreeMap<String, (Value, PropertySource)>,
}

impl Properties {
    /// An empty set.
    pub fn new() -> Properties {
        Properties::default()
    }

    /// Sets `name` to `value`, replacing any earlier value.
    pub fn set(&mut self, name: impl Into<String>, value: Value, source: impl Into<String>) {
        self.map.insert(name.into(), (value, source.into()));
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).map(|(v, _)| v)
    }

    /// The value and source of `name`, if set.
    pub fn get_with_source(&self, name: &str) -> Option<(&Value, &str)> {
        self.map.get(name).map(|(v, s)| (v, s.as_str()))
    }

    /// True if `name` is set.
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Copies every property of `other` over this set.
    pub fn update(&mut self, other: &Properties) {
        for (k, v) in &other.map {
            self.map.insert(k.clone(), v.clone());
        }
    }

    /// All properties, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value, &str)> {
        self.map
            .iter()
            .map(|(k, (v, s))| (k.as_str(), v, s.as_str()))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The property as text the way `%(prop:x)s` shows it: strings bare, other values as JSON.
    pub fn get_text(&self, name: &str) -> Option<String> {
        self.get(name).map(value_text)
    }
}

/// The text of a value as Python's `%s` would show it for common types.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        other => other.to_string(),
    }
}
