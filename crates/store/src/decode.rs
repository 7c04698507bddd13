//! Reading columns out of rows ([`Columns`]) and stored encodings (results codes, JSON, properties).

use model::{Properties, Results};

use crate::error::StoreError;
pub(crate) use crate::rows::Columns;

/// An integer column.
pub(crate) fn int<R: Columns + ?Sized>(row: &R, i: usize) -> Result<i64, StoreError> {
    row.get_int(i)?.ok_or_else(|| null(i))
}

/// A nullable integer column.
pub(crate) fn opt_int<R: Columns + ?Sized>(row: &R, i: usize) -> Result<Option<i64>, StoreError> {
    row.get_int(i)
}

/// A text column.
pub(crate) fn text<R: Columns + ?Sized>(row: &R, i: usize) -> Result<String, StoreError> {
    row.get_text(i)?.ok_or_else(|| null(i))
}

/// A nullable text column.
pub(crate) fn opt_text<R: Columns + ?Sized>(
    row: &R,
    i: usize,
) -> Result<Option<String>, StoreError> {
    row.get_text(i)
}

/// A boolean stored as a small integer.
pub(crate) fn flag<R: Columns + ?Sized>(row: &R, i: usize) -> Result<bool, StoreError> {
    Ok(int(row, i)? != 0)
}

/// A blob column.
pub(crate) fn blob<R: Columns + ?Sized>(row: &R, i: usize) -> Result<Vec<u8>, StoreError> {
    row.get_blob(i)?.ok_or_else(|| null(i))
}

/// A NULL where the schema promises a value.
fn null(i: usize) -> StoreError {
    StoreError::Decode {
        column: i,
        reason: "unexpected NULL".into(),
    }
}

/// A results code; NULL and -1 (incomplete) are `None`.
pub(crate) fn results<R: Columns + ?Sized>(
    row: &R,
    i: usize,
    table: &'static str,
) -> Result<Option<Results>, StoreError> {
    match opt_int(row, i)? {
        None | Some(-1) => Ok(None),
        Some(code) => match Results::from_code(code) {
            Some(r) => Ok(Some(r)),
            None => Err(StoreError::Corrupt {
                table,
                column: "results",
                reason: format!("unknown code {code}"),
            }),
        },
    }
}

/// Parses a JSON text column.
pub(crate) fn json(
    value: &str,
    table: &'static str,
    column: &'static str,
) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(value).map_err(|e| StoreError::Corrupt {
        table,
        column,
        reason: e.to_string(),
    })
}

/// Encodes a property as Buildbot's `[value, source]` JSON pair.
pub(crate) fn property_pair(value: &serde_json::Value, source: &str) -> String {
    serde_json::Value::Array(vec![
        value.clone(),
        serde_json::Value::String(source.to_string()),
    ])
    .to_string()
}

/// Adds a `[value, source]` JSON pair to `props` under `name`.
pub(crate) fn add_property_pair(
    props: &mut Properties,
    name: String,
    pair: &str,
    table: &'static str,
) -> Result<(), StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        table,
        column: "property_value",
        reason: reason.to_string(),
    };
    let parsed = json(pair, table, "property_value")?;
    let serde_json::Value::Array(mut items) = parsed else {
        return Err(corrupt("not a [value, source] pair"));
    };
    if items.len() != 2 {
        return Err(corrupt("not a [value, source] pair"));
    }
    let source = match items.pop() {
        Some(serde_json::Value::String(s)) => s,
        _ => return Err(corrupt("source is not a string")),
    };
    let value = items.pop().unwrap_or(serde_json::Value::Null);
    props.set(name, value, source);
    Ok(())
}
