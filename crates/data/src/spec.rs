//! Result specs (spec §5): field selection, filters, order, limit and offset.

use serde_json::Value;

use crate::DataError;

/// The largest page a request gets when it asks for no limit (bb#6131: one careless request
/// must never return megabytes). A `next` link tells the client where to continue.
pub const DEFAULT_MAX_LIMIT: i64 = 1000;

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// Equal (or any of several values).
    Eq,
    /// Not equal (to any).
    Ne,
    /// Less than.
    Lt,
    /// Less or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Ge,
    /// Substring or list element.
    Contains,
    /// Any of the values.
    In,
    /// None of the values.
    NotIn,
}

/// One `field__op=value` filter (values are kept as text until the field's type is known).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Field name.
    pub field: String,
    /// Operator.
    pub op: FilterOp,
    /// Values, in request order.
    pub values: Vec<String>,
}

/// A parsed result spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSpec {
    /// `field=` selections.
    pub fields: Vec<String>,
    /// Filters.
    pub filters: Vec<Filter>,
    /// `order=` keys: field and descending flag.
    pub order: Vec<(String, bool)>,
    /// `limit=`.
    pub limit: Option<i64>,
    /// `offset=`.
    pub offset: Option<i64>,
    /// `property=` names (`*` for all).
    pub properties: Vec<String>,
}

impl ResultSpec {
    /// Parses query pairs. Unknown operators are kept out (upstream ignores them silently);
    /// a bare parameter that is not a result-spec word is an error, as upstream.
    pub fn parse(pairs: &[(String, String)]) -> Result<ResultSpec, DataError> {
        let mut spec = ResultSpec::default();
        for (k, v) in pairs {
            match k.as_str() {
                "field" => spec.fields.push(v.clone()),
                "order" => match v.strip_prefix('-') {
                    Some(f) => spec.order.push((f.to_string(), true)),
                    None => spec.order.push((v.clone(), false)),
                },
                "limit" => {
                    spec.limit = Some(
                        v.parse()
                            .map_err(|_| DataError::BadRequest("invalid limit".into()))?,
                    )
                }
                "offset" => {
                    spec.offset = Some(
                        v.parse()
                            .map_err(|_| DataError::BadRequest("invalid offset".into()))?,
                    )
                }
                "property" => spec.properties.push(v.clone()),
                _ => {
                    let (field, op) = match k.split_once("__") {
                        Some((f, op)) => (f, op),
                        None => (k.as_str(), "eq"),
                    };
                    let op = match op {
                        "eq" => FilterOp::Eq,
                        "ne" => FilterOp::Ne,
                        "lt" => FilterOp::Lt,
                        "le" => FilterOp::Le,
                        "gt" => FilterOp::Gt,
                        "ge" => FilterOp::Ge,
                        "contains" => FilterOp::Contains,
                        "in" => FilterOp::In,
                        "notin" => FilterOp::NotIn,
                        _ => continue,
                    };
                    // No stored text holds NUL (PostgreSQL cannot), on either backend.
                    if v.contains('\0') {
                        return Err(DataError::BadRequest(format!(
                            "invalid filter value for {field}"
                        )));
                    }
                    match spec
                        .filters
                        .iter_mut()
                        .find(|f| f.field == field && f.op == op)
                    {
                        Some(f) => f.values.push(v.clone()),
                        None => spec.filters.push(Filter {
                            field: field.to_string(),
                            op,
                            values: vec![v.clone()],
                        }),
                    }
                }
            }
        }
        Ok(spec)
    }

    /// Applies filters, order, offset and limit to `items`; returns the page and the total
    /// that matched before paging. Field names are checked against the first item's keys.
    pub fn apply(
        &self,
        mut items: Vec<Value>,
        known: &[&str],
    ) -> Result<(Vec<Value>, i64), DataError> {
        for f in &self.filters {
            if !known.contains(&f.field.as_str()) {
                if bare_filter(f) {
                    return Err(DataError::BadRequest(format!(
                        "unrecognized query parameter '{}'",
                        f.field
                    )));
                }
                continue;
            }
            if !self.fields.is_empty() && !self.fields.contains(&f.field) {
                return Err(DataError::BadRequest(
                    "cannot filter on un-selected fields".into(),
                ));
            }
            items.retain(|item| matches(item.get(&f.field).unwrap_or(&Value::Null), f));
        }
        for (field, _) in &self.order {
            if !known.contains(&field.as_str()) {
                return Err(DataError::BadRequest(format!("no such field '{field}'")));
            }
            if !self.fields.is_empty() && !self.fields.contains(field) {
                return Err(DataError::BadRequest(
                    "cannot order on un-selected fields".into(),
                ));
            }
        }
        for f in &self.fields {
            if !known.contains(&f.as_str()) {
                return Err(DataError::BadRequest(format!("no such field '{f}'")));
            }
        }
        if !self.order.is_empty() {
            items.sort_by(|a, b| {
                for (field, desc) in &self.order {
                    let ord = compare(
                        a.get(field).unwrap_or(&Value::Null),
                        b.get(field).unwrap_or(&Value::Null),
                    );
                    let ord = if *desc { ord.reverse() } else { ord };
                    if ord != std::cmp::Ordering::Equal {
                        return ord;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
        let total = items.len() as i64;
        let offset = self.offset.unwrap_or(0).max(0) as usize;
        let limit = self.limit.unwrap_or(DEFAULT_MAX_LIMIT).clamp(0, i64::MAX) as usize;
        let page: Vec<Value> = items
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|item| self.select(item))
            .collect();
        Ok((page, total))
    }

    /// Keeps only the selected fields of one item.
    pub fn select(&self, item: Value) -> Value {
        if self.fields.is_empty() {
            return item;
        }
        match item {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| self.fields.contains(k))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// A `name=value` parameter that is not a field of the resource: upstream rejects these.
fn bare_filter(f: &Filter) -> bool {
    f.op == FilterOp::Eq
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "true".into(),
        Value::Bool(false) => "false".into(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn value_eq(field: &Value, text: &str) -> bool {
    match field {
        Value::Bool(b) => match text.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => *b,
            "off" | "false" | "no" | "0" => !*b,
            _ => false,
        },
        Value::Number(n) => text.parse::<f64>().ok() == n.as_f64(),
        Value::Null => false,
        other => as_text(other) == text,
    }
}

fn matches(field: &Value, f: &Filter) -> bool {
    let any_eq = || f.values.iter().any(|v| value_eq(field, v));
    match f.op {
        FilterOp::Eq | FilterOp::In => any_eq(),
        FilterOp::Ne | FilterOp::NotIn => !any_eq(),
        FilterOp::Contains => f.values.iter().any(|v| match field {
            Value::Array(items) => items.iter().any(|i| value_eq(i, v)),
            Value::String(s) => s.contains(v.as_str()),
            _ => false,
        }),
        FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge => {
            if f.values.len() != 1 || field.is_null() {
                return f.values.len() != 1;
            }
            let ord = match (field.as_f64(), f.values[0].parse::<f64>()) {
                (Some(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(as_text(field).as_str().cmp(f.values[0].as_str())),
            };
            let Some(ord) = ord else { return false };
            match f.op {
                FilterOp::Lt => ord.is_lt(),
                FilterOp::Le => ord.is_le(),
                FilterOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            }
        }
    }
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => as_text(a).cmp(&as_text(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(query: &[(&str, &str)], expected: &str) {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let items = vec![
            json!({"id": 1, "name": "a", "tags": ["x"], "done": true}),
            json!({"id": 2, "name": "b", "tags": [], "done": false}),
            json!({"id": 3, "name": "c", "tags": ["x", "y"], "done": null}),
        ];
        let got = match ResultSpec::parse(&pairs)
            .and_then(|s| s.apply(items, &["id", "name", "tags", "done"]))
        {
            Ok((page, total)) => format!(
                "{} {}",
                total,
                page.iter()
                    .map(|i| i["id"].to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{query:?}");
    }

    #[test]
    fn result_specs() {
        check(&[], "3 1,2,3");
        check(&[("order", "-id")], "3 3,2,1");
        check(&[("id__gt", "1"), ("limit", "1")], "2 2");
        check(&[("id", "1"), ("id", "3")], "2 1,3");
        check(&[("id__ne", "1")], "2 2,3");
        check(&[("tags__contains", "x")], "2 1,3");
        check(&[("done", "yes")], "1 1");
        check(&[("offset", "2")], "3 3");
        check(&[("limit", "x")], "error: bad request: invalid limit");
        check(
            &[("order", "nope")],
            "error: bad request: no such field 'nope'",
        );
        check(
            &[("bogus", "1")],
            "error: bad request: unrecognized query parameter 'bogus'",
        );
        check(&[("bogus__xx", "1")], "3 1,2,3");
        check(
            &[("field", "name"), ("order", "id")],
            "error: bad request: cannot order on un-selected fields",
        );
    }
}
