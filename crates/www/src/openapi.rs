//! `/api/v2/openapi.json`: an OpenAPI 3 description of what this server answers under
//! `/api/v2`: every GET path form of spec §7 with its result-spec parameters and entity
//! schemas, the JSON-RPC POSTs of §8, and the error shapes of §6.
//!
//! `scripts/test` runs schemathesis against a live master with this document
//! (`crates/cli/tests/schemathesis.rs`), so a drift between the document and the server is a
//! failing test. Two server rules cannot be written in OpenAPI and are stated in the
//! descriptions instead: with `field=`, every `order` and filter field must be selected
//! (else 400), and a `contents` offset past the last line is 404.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::rest::json_response;
use crate::AppState;

/// Serves the document.
pub async fn document(State(_state): State<AppState>, headers: HeaderMap) -> Response {
    json_response(&headers, &spec())
}

/// How a path answers a GET.
#[derive(Clone, Copy)]
enum Shape {
    /// A page of entities of the plural: result-spec parameters, `meta.total`.
    Collection(&'static str),
    /// One entity in a one-element list; `field` and (for builds) `property` apply.
    Single(&'static str),
    /// The dict-valued `properties` resource.
    Properties,
    /// Log lines as one `logchunks` entity (`offset`/`limit` in lines).
    Contents,
    /// The whole log as text.
    Raw,
}

use Shape::{Collection, Contents, Properties, Raw, Single};

/// Every GET path form of spec §7 that the Data API resolves, with what it answers.
const GETS: &[(&str, Shape)] = &[
    ("/builders", Collection("builders")),
    ("/masters/{masterid}/builders", Collection("builders")),
    ("/projects/{projectid}/builders", Collection("builders")),
    ("/workers/{workerid}/builders", Collection("builders")),
    ("/builders/{builder}", Single("builders")),
    (
        "/masters/{masterid}/builders/{builderid}",
        Single("builders"),
    ),
    ("/builds", Collection("builds")),
    ("/builders/{builder}/builds", Collection("builds")),
    (
        "/buildrequests/{buildrequestid}/builds",
        Collection("builds"),
    ),
    ("/changes/{changeid}/builds", Collection("builds")),
    ("/workers/{workerid}/builds", Collection("builds")),
    ("/builds/{buildid}", Single("builds")),
    ("/builders/{builder}/builds/{number}", Single("builds")),
    ("/builds/{buildid}/properties", Properties),
    ("/builders/{builder}/builds/{number}/properties", Properties),
    ("/builds/{buildid}/steps", Collection("steps")),
    (
        "/builders/{builder}/builds/{number}/steps",
        Collection("steps"),
    ),
    ("/steps/{stepid}", Single("steps")),
    ("/builds/{buildid}/steps/{step}", Single("steps")),
    (
        "/builders/{builder}/builds/{number}/steps/{step}",
        Single("steps"),
    ),
    ("/steps/{stepid}/logs", Collection("logs")),
    ("/builds/{buildid}/steps/{step}/logs", Collection("logs")),
    (
        "/builders/{builder}/builds/{number}/steps/{step}/logs",
        Collection("logs"),
    ),
    ("/logs/{logid}", Single("logs")),
    ("/steps/{stepid}/logs/{slug}", Single("logs")),
    ("/builds/{buildid}/steps/{step}/logs/{slug}", Single("logs")),
    (
        "/builders/{builder}/builds/{number}/steps/{step}/logs/{slug}",
        Single("logs"),
    ),
    ("/logs/{logid}/contents", Contents),
    ("/steps/{stepid}/logs/{slug}/contents", Contents),
    (
        "/builds/{buildid}/steps/{step}/logs/{slug}/contents",
        Contents,
    ),
    (
        "/builders/{builder}/builds/{number}/steps/{step}/logs/{slug}/contents",
        Contents,
    ),
    ("/logs/{logid}/raw", Raw),
    ("/logs/{logid}/raw_inline", Raw),
    ("/steps/{stepid}/logs/{slug}/raw", Raw),
    ("/steps/{stepid}/logs/{slug}/raw_inline", Raw),
    ("/builds/{buildid}/changes", Collection("changes")),
    (
        "/builders/{builder}/builds/{number}/changes",
        Collection("changes"),
    ),
    ("/sourcestamps/{ssid}/changes", Collection("changes")),
    ("/changes", Collection("changes")),
    ("/changes/{changeid}", Single("changes")),
    ("/buildrequests", Collection("buildrequests")),
    (
        "/builders/{builder}/buildrequests",
        Collection("buildrequests"),
    ),
    ("/buildrequests/{buildrequestid}", Single("buildrequests")),
    ("/buildrequests/{buildrequestid}/properties", Properties),
    ("/buildsets", Collection("buildsets")),
    ("/buildsets/{bsid}", Single("buildsets")),
    ("/buildsets/{bsid}/properties", Properties),
    ("/sourcestamps", Collection("sourcestamps")),
    ("/buildsets/{bsid}/sourcestamps", Collection("sourcestamps")),
    ("/sourcestamps/{ssid}", Single("sourcestamps")),
    ("/workers", Collection("workers")),
    ("/masters/{masterid}/workers", Collection("workers")),
    ("/builders/{builder}/workers", Collection("workers")),
    (
        "/masters/{masterid}/builders/{builderid}/workers",
        Collection("workers"),
    ),
    ("/workers/{worker}", Single("workers")),
    ("/masters/{masterid}/workers/{worker}", Single("workers")),
    ("/builders/{builder}/workers/{worker}", Single("workers")),
    (
        "/masters/{masterid}/builders/{builderid}/workers/{worker}",
        Single("workers"),
    ),
    ("/masters", Collection("masters")),
    ("/builders/{builder}/masters", Collection("masters")),
    ("/masters/{masterid}", Single("masters")),
    ("/builders/{builder}/masters/{masterid}", Single("masters")),
    ("/schedulers", Collection("schedulers")),
    ("/masters/{masterid}/schedulers", Collection("schedulers")),
    ("/schedulers/{schedulerid}", Single("schedulers")),
    (
        "/masters/{masterid}/schedulers/{schedulerid}",
        Single("schedulers"),
    ),
    ("/changesources", Collection("changesources")),
    (
        "/masters/{masterid}/changesources",
        Collection("changesources"),
    ),
    ("/changesources/{changesourceid}", Single("changesources")),
    (
        "/masters/{masterid}/changesources/{changesourceid}",
        Single("changesources"),
    ),
    ("/forceschedulers", Collection("forceschedulers")),
    (
        "/builders/{builder}/forceschedulers",
        Collection("forceschedulers"),
    ),
    (
        "/forceschedulers/{schedulername}",
        Single("forceschedulers"),
    ),
    ("/projects", Collection("projects")),
    ("/projects/{project}", Single("projects")),
];

/// What a collection also accepts, in words: these rules tie parameters together, which an
/// OpenAPI parameter list cannot say (a generator would send `field=a&order=b` as valid).
const COLLECTION_NOTES: &str = "Also accepted: field=<name> (repeatable) keeps only the named \
    fields, and every order and filter field must then be selected too (else 400 'cannot order \
    on un-selected fields' / 'cannot filter on un-selected fields'); <field>__<op>=<value> \
    filters with op one of eq, ne, lt, le, gt, ge, contains, in, notin (repeat for several \
    values). An unknown operator is ignored; an unknown bare parameter is 400.";

/// JSON-RPC control endpoints (spec §8) and the methods each answers.
const POSTS: &[(&str, &[&str])] = &[
    ("/forceschedulers/{schedulername}", &["force"]),
    ("/builds/{buildid}", &["stop", "rebuild"]),
    ("/builders/{builder}/builds/{number}", &["stop", "rebuild"]),
    (
        "/buildrequests/{buildrequestid}",
        &["cancel", "set_priority"],
    ),
    ("/workers/{worker}", &["stop", "kill", "pause", "unpause"]),
    ("/schedulers/{schedulerid}", &["enable"]),
];

/// A field's JSON type: `int`, `str`, `bool`, `obj` or a list (`[int]`, `[str]`, `[obj]`),
/// with a trailing `?` when it may be null.
type FieldType = &'static str;

/// The fields of each entity type, as `data::json` shapes them.
const ENTITIES: &[(&str, &[(&str, FieldType)])] = &[
    (
        "builders",
        &[
            ("builderid", "int"),
            ("name", "str"),
            ("masterids", "[int]"),
            ("description", "str?"),
            ("description_format", "str?"),
            ("description_html", "str?"),
            ("projectid", "int?"),
            ("tags", "[str]"),
        ],
    ),
    (
        "builds",
        &[
            ("buildid", "int"),
            ("number", "int"),
            ("builderid", "int"),
            ("buildrequestid", "int"),
            ("workerid", "int?"),
            ("masterid", "int"),
            ("started_at", "int"),
            ("complete", "bool"),
            ("complete_at", "int?"),
            ("locks_duration_s", "int"),
            ("results", "int?"),
            ("state_string", "str"),
            ("properties", "props"),
        ],
    ),
    (
        "steps",
        &[
            ("stepid", "int"),
            ("number", "int"),
            ("name", "str"),
            ("buildid", "int"),
            ("started_at", "int?"),
            ("locks_acquired_at", "int?"),
            ("complete", "bool"),
            ("complete_at", "int?"),
            ("results", "int?"),
            ("state_string", "str"),
            ("urls", "[obj]"),
            ("hidden", "bool"),
        ],
    ),
    (
        "logs",
        &[
            ("logid", "int"),
            ("name", "str"),
            ("slug", "str"),
            ("stepid", "int"),
            ("complete", "bool"),
            ("num_lines", "int"),
            ("type", "str"),
        ],
    ),
    (
        "logchunks",
        &[("logid", "int"), ("firstline", "int"), ("content", "str")],
    ),
    (
        "buildrequests",
        &[
            ("buildrequestid", "int"),
            ("buildsetid", "int"),
            ("builderid", "int"),
            ("priority", "int"),
            ("claimed", "bool"),
            ("claimed_at", "int?"),
            ("claimed_by_masterid", "int?"),
            ("complete", "bool"),
            ("complete_at", "int?"),
            ("results", "int?"),
            ("submitted_at", "int"),
            ("waited_for", "bool"),
            ("properties", "props?"),
        ],
    ),
    (
        "buildsets",
        &[
            ("bsid", "int"),
            ("external_idstring", "str?"),
            ("reason", "str"),
            ("submitted_at", "int"),
            ("complete", "bool"),
            ("complete_at", "int?"),
            ("results", "int?"),
            ("sourcestamps", "[obj]"),
            ("parent_buildid", "int?"),
            ("parent_relationship", "str?"),
            ("rebuilt_buildid", "int?"),
        ],
    ),
    (
        "sourcestamps",
        &[
            ("ssid", "int"),
            ("branch", "str?"),
            ("revision", "str?"),
            ("repository", "str"),
            ("project", "str"),
            ("codebase", "str"),
            ("created_at", "int"),
            ("patch", "obj?"),
        ],
    ),
    (
        "changes",
        &[
            ("changeid", "int"),
            ("author", "str"),
            ("committer", "str?"),
            ("comments", "str"),
            ("branch", "str?"),
            ("revision", "str?"),
            ("revlink", "str?"),
            ("when_timestamp", "int"),
            ("category", "str?"),
            ("repository", "str"),
            ("project", "str"),
            ("codebase", "str"),
            ("files", "[str]"),
            ("parent_changeids", "[int]"),
            ("properties", "props"),
            ("sourcestamp", "obj?"),
        ],
    ),
    (
        "workers",
        &[
            ("workerid", "int"),
            ("name", "str"),
            ("workerinfo", "obj?"),
            ("paused", "bool"),
            ("pause_reason", "str?"),
            ("graceful", "bool"),
            ("connected_to", "[obj]"),
            ("configured_on", "[obj]"),
        ],
    ),
    (
        "masters",
        &[
            ("masterid", "int"),
            ("name", "str"),
            ("active", "bool"),
            ("last_active", "int?"),
        ],
    ),
    (
        "schedulers",
        &[
            ("schedulerid", "int"),
            ("name", "str"),
            ("enabled", "bool"),
            ("master", "obj?"),
        ],
    ),
    (
        "changesources",
        &[
            ("changesourceid", "int"),
            ("name", "str"),
            ("master", "obj?"),
        ],
    ),
    (
        "forceschedulers",
        &[
            ("name", "str"),
            ("button_name", "str"),
            ("label", "str"),
            ("builder_names", "[str]"),
            ("enabled", "bool"),
            ("all_fields", "[obj]"),
        ],
    ),
    (
        "projects",
        &[
            ("projectid", "int"),
            ("name", "str"),
            ("slug", "str"),
            ("description", "str?"),
            ("description_format", "str?"),
            ("description_html", "str?"),
            ("active", "bool?"),
        ],
    ),
];

/// The OpenAPI document.
pub fn spec() -> Value {
    let mut paths = Map::new();
    for (template, shape) in GETS {
        let operation = get_operation(template, *shape);
        paths.insert(template.to_string(), json!({ "get": operation }));
    }
    for (template, methods) in POSTS {
        let operation = post_operation(template, methods);
        match paths.get_mut(*template).and_then(Value::as_object_mut) {
            Some(item) => {
                item.insert("post".into(), operation);
            }
            None => {
                paths.insert(template.to_string(), json!({ "post": operation }));
            }
        }
    }
    let mut schemas = Map::new();
    for (plural, fields) in ENTITIES {
        schemas.insert(plural.to_string(), entity_schema(fields));
    }
    schemas.insert("properties".into(), properties_schema());
    schemas.insert(
        "error".into(),
        json!({"type": "object", "required": ["error"], "additionalProperties": false,
               "properties": {"error": {"type": "string"}}}),
    );
    schemas.insert("rpc_response".into(), rpc_response_schema());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Signalbox REST API v2 (Buildbot-compatible)",
            "version": "2",
            "description": "Buildbot's REST API v2 as Signalbox serves it. Collections answer \
                {<plural>: [...], meta: {total, next?}}; single items the same envelope with a \
                one-element list and meta {}. GET errors are {error: text}; JSON-RPC errors \
                are {jsonrpc, id, error: {code, message}}. Methods other than GET, HEAD and \
                POST are 400 'invalid HTTP method', as upstream.",
        },
        "servers": [{"url": "/api/v2"}],
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn get_operation(template: &str, shape: Shape) -> Value {
    let mut parameters = path_parameters(template);
    let (plural, summary) = match shape {
        Collection(plural) => {
            parameters.extend(collection_parameters(plural));
            (plural, format!("a page of {plural}"))
        }
        Single(plural) => {
            parameters.push(field_parameter(plural));
            if plural == "builds" {
                parameters.push(property_parameter());
            }
            (plural, format!("one of {plural}"))
        }
        Properties => ("properties", "the properties dict".to_string()),
        Contents => {
            parameters.push(query_int("offset", "first line, 0-based"));
            parameters.push(query_int("limit", "number of lines"));
            ("logchunks", "log lines as one chunk".to_string())
        }
        Raw => return raw_operation(template, parameters),
    };
    let description = match shape {
        Collection(_) => COLLECTION_NOTES,
        _ => "",
    };
    json!({
        "operationId": operation_id("get", template),
        "summary": summary,
        "description": description,
        "parameters": parameters,
        "responses": {
            "200": {"description": "the envelope of spec §4.2", "content":
                json_or_text(envelope_schema(plural, matches!(shape, Collection(_))))},
            "400": error_response("bad query parameter"),
            "403": error_response("reading is not allowed"),
            "404": error_response("invalid path or no such entity"),
        },
    })
}

fn raw_operation(template: &str, parameters: Vec<Value>) -> Value {
    json!({
        "operationId": operation_id("get", template),
        "summary": "the whole log as text, streamed",
        "parameters": parameters,
        "responses": {
            "200": {"description": "the log", "content": {
                "text/plain": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}}}},
            "403": error_response("reading is not allowed"),
            "404": error_response("invalid path or no such log"),
        },
    })
}

fn post_operation(template: &str, methods: &[&str]) -> Value {
    let request = json!({
        "type": "object",
        "required": ["jsonrpc", "method", "id", "params"],
        "properties": {
            "jsonrpc": {"type": "string", "enum": ["2.0"]},
            "method": {"type": "string", "enum": methods},
            "id": {"nullable": true, "oneOf": [{"type": "number"}, {"type": "string"}]},
            "params": {"type": "object"},
        },
    });
    let rpc = |description: &str| {
        json!({"description": description, "content": {"application/json":
            {"schema": {"$ref": "#/components/schemas/rpc_response"}}}})
    };
    json!({
        "operationId": operation_id("post", template),
        "summary": format!("JSON-RPC control: {}", methods.join(", ")),
        "parameters": path_parameters(template),
        "requestBody": {"required": true, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": rpc("the action's result"),
            "400": rpc("invalid request or field validation errors (-32600, -32602, -32700)"),
            "403": rpc("the action is not allowed (-32600)"),
            "404": rpc("invalid path or no such entity (-32600)"),
            "500": rpc("the action failed inside the master (-32603)"),
            "501": rpc("the method is not supported on this endpoint (-32601)"),
        },
    })
}

fn operation_id(method: &str, template: &str) -> String {
    let id: String = template
        .chars()
        .filter(|c| !matches!(c, '{' | '}'))
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    format!("{method}{id}")
}

/// Path parameters: ids and numbers are integers; a builder, worker, project, step or
/// slug segment may be a name or a number, so it is a string.
fn path_parameters(template: &str) -> Vec<Value> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = match name {
                "builder" | "worker" | "project" | "step" | "slug" | "schedulername" => {
                    json!({"type": "string", "minLength": 1})
                }
                _ => json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

fn fields_of(plural: &str) -> &'static [(&'static str, FieldType)] {
    ENTITIES
        .iter()
        .find(|(p, _)| *p == plural)
        .map(|(_, fields)| *fields)
        .unwrap_or(&[])
}

fn collection_parameters(plural: &str) -> Vec<Value> {
    let fields = fields_of(plural);
    let mut order: Vec<String> = fields.iter().map(|(f, _)| f.to_string()).collect();
    order.extend(fields.iter().map(|(f, _)| format!("-{f}")));
    let mut parameters = vec![
        query_int(
            "limit",
            "items per page; without it at most 1000 and meta.next links the rest",
        ),
        query_int("offset", "items to skip after filtering and ordering"),
        json!({"name": "order", "in": "query", "required": false, "style": "form",
               "explode": true, "description": "sort keys; a leading - sorts descending",
               "schema": {"type": "array", "items": {"type": "string", "enum": order}}}),
    ];
    if plural == "builds" || plural == "buildrequests" {
        parameters.push(property_parameter());
    }
    // Equality filters on the scalar fields; the other operators are in the description.
    for (name, field_type) in fields {
        let schema = match field_type.trim_end_matches('?') {
            "int" => json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
            "bool" => json!({"type": "boolean"}),
            // PostgreSQL text cannot hold NUL, so no value with one can match: it is a 400.
            "str" => json!({"type": "string", "pattern": "^[^\\u0000]*$"}),
            _ => continue,
        };
        parameters.push(json!({"name": name, "in": "query", "required": false,
            "description": "equality filter", "schema": schema}));
    }
    parameters
}

fn field_parameter(plural: &str) -> Value {
    let names: Vec<&str> = fields_of(plural).iter().map(|(f, _)| *f).collect();
    json!({"name": "field", "in": "query", "required": false, "style": "form", "explode": true,
           "description": "keep only these fields",
           "schema": {"type": "array", "items": {"type": "string", "enum": names}}})
}

fn property_parameter() -> Value {
    json!({"name": "property", "in": "query", "required": false, "style": "form",
           "explode": true, "description": "properties to fill in (* for all)",
           "schema": {"type": "array", "items": {"type": "string"}}})
}

fn query_int(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "schema": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}})
}

fn entity_schema(fields: &[(&str, FieldType)]) -> Value {
    let mut properties = Map::new();
    for (name, field_type) in fields {
        properties.insert(name.to_string(), type_schema(field_type));
    }
    // No `required`: `field=` keeps only the fields asked for.
    json!({"type": "object", "additionalProperties": false, "properties": properties})
}

fn type_schema(field_type: &str) -> Value {
    let (base, nullable) = match field_type.strip_suffix('?') {
        Some(base) => (base, true),
        None => (field_type, false),
    };
    let mut schema = match base {
        "int" => json!({"type": "integer"}),
        "str" => json!({"type": "string"}),
        "bool" => json!({"type": "boolean"}),
        "props" => properties_schema(),
        "[int]" => json!({"type": "array", "items": {"type": "integer"}}),
        "[str]" => json!({"type": "array", "items": {"type": "string"}}),
        "[obj]" => json!({"type": "array", "items": {"type": "object"}}),
        _ => json!({"type": "object"}),
    };
    if let (true, Some(obj)) = (nullable, schema.as_object_mut()) {
        obj.insert("nullable".into(), json!(true));
    }
    schema
}

/// `{name: [value, source]}`.
fn properties_schema() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "array", "minItems": 2,
           "maxItems": 2, "items": {}}})
}

fn envelope_schema(plural: &str, collection: bool) -> Value {
    let item = json!({"$ref": format!("#/components/schemas/{plural}")});
    let meta = match collection {
        true => json!({"type": "object", "required": ["total"], "additionalProperties": false,
                       "properties": {"total": {"type": "integer", "minimum": 0},
                                      "next": {"type": "string"}}}),
        false => json!({"type": "object", "additionalProperties": false}),
    };
    let list = match collection {
        true => json!({"type": "array", "items": item}),
        false => json!({"type": "array", "items": item, "minItems": 1, "maxItems": 1}),
    };
    json!({"type": "object", "required": [plural, "meta"], "additionalProperties": false,
           "properties": {plural: list, "meta": meta}})
}

/// JSON with `Accept: application/json`, indented text otherwise (spec §4.2).
fn json_or_text(schema: Value) -> Value {
    json!({"application/json": {"schema": schema.clone()}, "text/plain": {"schema": schema}})
}

fn error_response(description: &str) -> Value {
    json!({"description": description,
           "content": json_or_text(json!({"$ref": "#/components/schemas/error"}))})
}

fn rpc_response_schema() -> Value {
    json!({
        "type": "object",
        "required": ["jsonrpc", "id"],
        "additionalProperties": false,
        "properties": {
            "jsonrpc": {"type": "string", "enum": ["2.0"]},
            "id": {"nullable": true},
            "result": {"nullable": true},
            "error": {"type": "object", "required": ["code", "message"],
                      "properties": {"code": {"type": "integer"}, "message": {}}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entity the document references has a schema, and every GET path is unique.
    #[test]
    fn document_is_self_consistent() {
        let doc = spec();
        let text = doc.to_string();
        for (plural, _) in ENTITIES {
            assert!(doc["components"]["schemas"][plural].is_object(), "{plural}");
        }
        for (template, _) in GETS {
            assert!(doc["paths"][template]["get"].is_object(), "{template}");
        }
        assert!(text.contains("\"post\""));
        assert_eq!(
            GETS.len(),
            doc["paths"]
                .as_object()
                .map(|p| p.values().filter(|v| v.get("get").is_some()).count())
                .unwrap_or(0)
        );
    }
}
