//! Typed reads of a JSON payload, each failure a one-line [`HookError`] naming the field.
//!
//! Forges send large, loosely typed documents and a dialect needs a dozen fields of them.
//! A [`Field`] remembers its path (`commits[0].author.name`), so a wrong type or a missing
//! field becomes "field 'commits[0].author.name' must be a string" rather than a panic or a
//! generic "bad JSON".

use chrono::{DateTime, NaiveDateTime};
use serde_json::Value;

use super::HookError;

/// A value inside a payload and the path that led to it.
pub struct Field<'a> {
    value: Option<&'a Value>,
    path: String,
}

impl<'a> Field<'a> {
    /// The whole payload; it must be a JSON object.
    pub fn root(value: &'a Value) -> Result<Field<'a>, HookError> {
        match value {
            Value::Object(_) => Ok(Field {
                value: Some(value),
                path: String::new(),
            }),
            _ => Err(HookError::BadPayload(
                "payload must be a JSON object".into(),
            )),
        }
    }

    /// Member `key` (absent when this is not an object or has no such member).
    pub fn get(&self, key: &str) -> Field<'a> {
        let path = match self.path.is_empty() {
            true => key.to_string(),
            false => format!("{}.{key}", self.path),
        };
        Field {
            value: self.value.and_then(|v| v.get(key)),
            path,
        }
    }

    /// True when the field is missing or `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.value, None | Some(Value::Null))
    }

    /// A string that must be there.
    pub fn str(&self) -> Result<&'a str, HookError> {
        match self.value {
            Some(Value::String(s)) => Ok(s),
            None | Some(Value::Null) => Err(self.error("is required")),
            Some(_) => Err(self.error("must be a string")),
        }
    }

    /// A string, or `None` when missing or `null`.
    pub fn opt_str(&self) -> Result<Option<&'a str>, HookError> {
        match self.value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error("must be a string")),
        }
    }

    /// A string or an integer that must be there, as text (ids some forges send as numbers).
    pub fn id(&self) -> Result<String, HookError> {
        match self.value {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            None | Some(Value::Null) => Err(self.error("is required")),
            Some(_) => Err(self.error("must be a string or an integer")),
        }
    }

    /// A boolean, `default` when missing or `null`.
    pub fn bool_or(&self, default: bool) -> Result<bool, HookError> {
        match self.value {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.error("must be a boolean")),
        }
    }

    /// The items of a list that must be there.
    pub fn items(&self) -> Result<Vec<Field<'a>>, HookError> {
        match self.value {
            Some(Value::Array(items)) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, value)| Field {
                    value: Some(value),
                    path: format!("{}[{i}]", self.path),
                })
                .collect()),
            None | Some(Value::Null) => Err(self.error("is required")),
            Some(_) => Err(self.error("must be a list")),
        }
    }

    /// The items of a list, none when missing or `null`.
    pub fn opt_items(&self) -> Result<Vec<Field<'a>>, HookError> {
        match self.is_null() {
            true => Ok(Vec::new()),
            false => self.items(),
        }
    }

    /// A list of strings, empty when missing or `null`.
    pub fn strings(&self) -> Result<Vec<String>, HookError> {
        self.opt_items()?
            .iter()
            .map(|item| item.str().map(str::to_string))
            .collect()
    }

    /// An object that must be there.
    pub fn object(&self) -> Result<&Field<'a>, HookError> {
        match self.value {
            Some(Value::Object(_)) => Ok(self),
            None | Some(Value::Null) => Err(self.error("is required")),
            Some(_) => Err(self.error("must be an object")),
        }
    }

    /// A point in time that must be there: RFC 3339, `YYYY-MM-DD HH:MM:SS+HH:MM`,
    /// `YYYY-MM-DDTHH:MM:SS+HHMM`, or seconds since the epoch.
    pub fn timestamp(&self) -> Result<model::Timestamp, HookError> {
        match self.value {
            Some(Value::Number(n)) => match n.as_f64() {
                Some(secs) if secs.is_finite() && secs.abs() < 1e15 => Ok(secs as i64),
                _ => Err(self.error("must be a time")),
            },
            Some(Value::String(s)) => parse_time(s)
                .ok_or_else(|| self.error("must be a time such as 2024-05-01T12:00:00Z")),
            None | Some(Value::Null) => Err(self.error("is required")),
            Some(_) => Err(self.error("must be a time")),
        }
    }

    fn error(&self, what: &str) -> HookError {
        HookError::BadPayload(format!("field '{}' {what}", self.path))
    }
}

/// Parses the time formats forges send; `None` when it is none of them.
pub fn parse_time(text: &str) -> Option<model::Timestamp> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%:z",
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%d %H:%M:%S%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.timestamp());
        }
    }
    // Naive times (`2012-05-30 05:58:56`) are taken as UTC.
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp());
        }
    }
    None
}

/// `Name <email>`, or the name alone when there is no email.
pub fn person(name: &str, email: Option<&str>) -> String {
    match email.filter(|e| !e.is_empty()) {
        Some(email) => format!("{name} <{email}>"),
        None => name.to_string(),
    }
}

/// Splits `refs/heads/x` and `refs/tags/x` into their kind and name.
pub fn git_ref(refname: &str) -> Option<GitRef<'_>> {
    if let Some(branch) = refname.strip_prefix("refs/heads/") {
        return (!branch.is_empty()).then_some(GitRef::Branch(branch));
    }
    if let Some(tag) = refname.strip_prefix("refs/tags/") {
        return (!tag.is_empty()).then_some(GitRef::Tag(tag));
    }
    None
}

/// A pushed git ref that can become a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitRef<'a> {
    /// `refs/heads/NAME`.
    Branch(&'a str),
    /// `refs/tags/NAME`.
    Tag(&'a str),
}

impl<'a> GitRef<'a> {
    /// The branch or tag name, the change's `branch`.
    pub fn name(self) -> &'a str {
        match self {
            GitRef::Branch(name) | GitRef::Tag(name) => name,
        }
    }
}

/// True for git's all-zero object id, which a forge sends as `after` when a ref is deleted.
pub fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// Parses a JSON body into a value, with a one-line reason when it is not JSON.
pub fn json_body(body: &[u8]) -> Result<Value, HookError> {
    serde_json::from_slice(body)
        .map_err(|e| HookError::BadPayload(format!("body is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_name_the_field() {
        let value = json!({"commits": [{"author": {"name": 5}}], "ref": null});
        let root = Field::root(&value).unwrap();
        let commits = root.get("commits").items().unwrap();
        let err = commits[0].get("author").get("name").str().unwrap_err();
        assert_eq!(
            err.to_string(),
            "field 'commits[0].author.name' must be a string"
        );
        assert_eq!(
            root.get("ref").str().unwrap_err().to_string(),
            "field 'ref' is required"
        );
        assert_eq!(
            root.get("ref").get("deeper").str().unwrap_err().to_string(),
            "field 'ref.deeper' is required"
        );
        assert!(Field::root(&json!([1])).is_err());
    }

    #[test]
    fn times_in_every_forge_format() {
        assert_eq!(parse_time("2019-05-15T15:20:41Z"), Some(1557933641));
        assert_eq!(parse_time("2011-12-12T14:27:31+02:00"), Some(1323692851));
        assert_eq!(parse_time("2012-05-30 03:58:56+00:00"), Some(1338350336));
        assert_eq!(parse_time("2017-09-19T09:45:32+1000"), Some(1505778332));
        assert_eq!(parse_time("2012-05-30 03:58:56"), Some(1338350336));
        assert_eq!(parse_time("yesterday"), None);
    }
}
