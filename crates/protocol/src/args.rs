//! Typed access to the keys of a msgpack map (`start_command` args, worker info, settings).
//!
//! Every getter treats a missing key and a `nil` value alike (`Ok(None)`), and returns an error
//! only when the key is present with a type that cannot be read as asked. Numbers follow the
//! Python side's looseness: a float field accepts ints, a bool field accepts 0/1.

use rmpv::Value;

use crate::ProtocolError;

type Result<T> = std::result::Result<T, ProtocolError>;

/// The value under `key` in the map `args`; `None` if `args` is not a map, the key is absent, or
/// its value is nil.
pub fn get<'a>(args: &'a Value, key: &str) -> Option<&'a Value> {
    let Value::Map(entries) = args else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_nil())
}

/// Whether `key` is present in the map `args`, even with a nil value.
pub fn has_key(args: &Value, key: &str) -> bool {
    let Value::Map(entries) = args else {
        return false;
    };
    entries.iter().any(|(k, _)| k.as_str() == Some(key))
}

fn bad(key: &str, expected: &'static str) -> ProtocolError {
    ProtocolError::BadArg {
        key: key.to_owned(),
        expected,
    }
}

/// A string argument.
pub fn get_str<'a>(args: &'a Value, key: &str) -> Result<Option<&'a str>> {
    match get(args, key) {
        None => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or_else(|| bad(key, "a string")),
    }
}

/// A string argument that must be present.
pub fn require_str<'a>(args: &'a Value, key: &str) -> Result<&'a str> {
    get_str(args, key)?.ok_or_else(|| ProtocolError::MissingArg(key.to_owned()))
}

/// A number argument (int or float).
pub fn get_f64(args: &Value, key: &str) -> Result<Option<f64>> {
    match get(args, key) {
        None => Ok(None),
        Some(v) => value_f64(v).map(Some).ok_or_else(|| bad(key, "a number")),
    }
}

/// Reads an int or float value as `f64`.
pub fn value_f64(v: &Value) -> Option<f64> {
    match v {
        Value::F64(f) => Some(*f),
        Value::F32(f) => Some(f64::from(*f)),
        Value::Integer(i) => i
            .as_i64()
            .map(|i| i as f64)
            .or_else(|| i.as_u64().map(|u| u as f64)),
        _ => None,
    }
}

/// An integer argument; an integral float is accepted too.
pub fn get_i64(args: &Value, key: &str) -> Result<Option<i64>> {
    match get(args, key) {
        None => Ok(None),
        Some(v) => value_i64(v).map(Some).ok_or_else(|| bad(key, "an integer")),
    }
}

/// Reads an int (or an integral float) value as `i64`.
pub fn value_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => i.as_i64(),
        Value::F64(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        Value::F32(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        _ => None,
    }
}

/// A non-negative integer argument.
pub fn get_u64(args: &Value, key: &str) -> Result<Option<u64>> {
    match get(args, key) {
        None => Ok(None),
        Some(v) => match v {
            Value::Integer(i) => i
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(key, "a non-negative integer")),
            other => match value_i64(other) {
                Some(i) if i >= 0 => Ok(Some(i as u64)),
                _ => Err(bad(key, "a non-negative integer")),
            },
        },
    }
}

/// A boolean argument; ints are accepted as in Python (0 is false, anything else true).
pub fn get_bool(args: &Value, key: &str) -> Result<Option<bool>> {
    match get(args, key) {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(Value::Integer(i)) => Ok(Some(i.as_i64() != Some(0))),
        Some(_) => Err(bad(key, "a boolean")),
    }
}

/// A map argument, as its entries.
pub fn get_map<'a>(args: &'a Value, key: &str) -> Result<Option<&'a [(Value, Value)]>> {
    match get(args, key) {
        None => Ok(None),
        Some(Value::Map(entries)) => Ok(Some(entries)),
        Some(_) => Err(bad(key, "a map")),
    }
}

/// An array argument.
pub fn get_array<'a>(args: &'a Value, key: &str) -> Result<Option<&'a [Value]>> {
    match get(args, key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(bad(key, "an array")),
    }
}

/// An array-of-strings argument.
pub fn get_str_list<'a>(args: &'a Value, key: &str) -> Result<Option<Vec<&'a str>>> {
    let Some(items) = get_array(args, key)? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|v| v.as_str().ok_or_else(|| bad(key, "an array of strings")))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A bytes argument: msgpack bin, or str from old packers.
pub fn get_bytes<'a>(args: &'a Value, key: &str) -> Result<Option<&'a [u8]>> {
    match get(args, key) {
        None => Ok(None),
        Some(v) => value_bytes(v)
            .map(Some)
            .ok_or_else(|| bad(key, "binary data")),
    }
}

/// Reads a bin or str value as bytes (an invalid-UTF-8 str still yields its raw bytes).
pub fn value_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Binary(b) => Some(b),
        Value::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// The entries of a map whose keys must all be strings (`env`, `logfiles`, worker info).
pub fn str_entries<'a>(map: &'a [(Value, Value)], key: &str) -> Result<Vec<(&'a str, &'a Value)>> {
    map.iter()
        .map(|(k, v)| {
            k.as_str()
                .map(|k| (k, v))
                .ok_or_else(|| bad(key, "a map with string keys"))
        })
        .collect()
}

/// Builds a map value with string keys.
pub fn make_map<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_numbers_and_bools() {
        let args = make_map([
            ("t", Value::from(5)),
            ("f", Value::F64(0.5)),
            ("b", Value::from(1)),
            ("n", Value::Nil),
            ("s", Value::from("x")),
        ]);
        assert_eq!(get_f64(&args, "t"), Ok(Some(5.0)));
        assert_eq!(get_f64(&args, "f"), Ok(Some(0.5)));
        assert!(get_i64(&args, "f").is_err());
        assert_eq!(get_bool(&args, "b"), Ok(Some(true)));
        assert_eq!(get_str(&args, "n"), Ok(None));
        assert!(has_key(&args, "n"));
        assert!(!has_key(&args, "zz"));
        assert_eq!(require_str(&args, "s"), Ok("x"));
        assert!(require_str(&args, "zz").is_err());
        assert!(get_str(&args, "t").is_err());
        assert!(get_map(&args, "s").is_err());
    }
}
