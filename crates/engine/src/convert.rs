//! Conversions between msgpack values from workers and JSON values of the rest of the master.

use protocol::Value;

/// A msgpack value as JSON; binary data becomes a lossy string, non-string keys their text.
pub fn msgpack_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(i) => match i.as_i64() {
            Some(n) => serde_json::Value::from(n),
            None => serde_json::Value::from(i.as_u64().unwrap_or(0)),
        },
        Value::F32(f) => serde_json::Value::from(*f as f64),
        Value::F64(f) => serde_json::Value::from(*f),
        Value::String(s) => serde_json::Value::String(
            s.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(s.as_bytes()).into_owned()),
        ),
        Value::Binary(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(msgpack_to_json).collect())
        }
        Value::Map(pairs) => {
            let mut map = serde_json::Map::new();
            for (k, v) in pairs {
                let key = match k {
                    Value::String(s) => s.as_str().unwrap_or_default().to_string(),
                    other => other.to_string(),
                };
                map.insert(key, msgpack_to_json(v));
            }
            serde_json::Value::Object(map)
        }
        Value::Ext(_, _) => serde_json::Value::Null,
    }
}
