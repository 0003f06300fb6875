//! The OpenAPI document: the committed file is what the descriptors give today (drift fails
//! here, naming the command that regenerates it), every binding is an operation, every `$ref`
//! resolves, and every message schema accepts what the server writes for that message (each
//! message filled in and serialised by prost-reflect as the HTTP transcoding does).

use std::collections::BTreeSet;
use std::path::PathBuf;

use prost_reflect::{DynamicMessage, Kind, MapKey, MessageDescriptor, Value as PValue};
use qilu_common::http_rule;
use qilu_common::openapi::{self, COMMITTED_PATH, SUITE};
use serde_json::Value;

use super::pool;

const REGENERATE: &str = "QILU_UPDATE_OPENAPI=1 cargo test -p qilu-common --test http openapi";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(COMMITTED_PATH)
}

fn document() -> Value {
    openapi::document(SUITE).unwrap()
}

#[test]
fn the_committed_document_is_what_the_protos_give() {
    let generated = openapi::document_json(SUITE).unwrap();
    let path = committed_path();
    if std::env::var_os("QILU_UPDATE_OPENAPI").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "{COMMITTED_PATH} is not what the protos give (first difference at line {line}): a \
             proto changed without regenerating it. Regenerate with\n    {REGENERATE}\nand \
             commit the file (then `bash .ci/openapi-lint.sh` lints it)."
        );
    }
}

#[test]
fn every_binding_is_one_operation_with_a_unique_id() {
    let doc = document();
    let pool = pool();
    let mut bindings = 0;
    for service in SUITE {
        bindings += http_rule::service_bindings(&pool, service).unwrap().len();
    }
    let mut ids = BTreeSet::new();
    let mut grpc = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (verb, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(op["summary"].is_string(), "{verb} {path}: no summary");
            if op.get("x-grpc-method").is_some() {
                grpc += 1;
            }
        }
    }
    assert_eq!(grpc, bindings, "one operation per binding");
    assert_eq!(
        doc["paths"]["/openapi.json"]["get"]["security"],
        serde_json::json!([]),
        "the document itself needs no token"
    );
}

#[test]
fn operations_carry_path_query_and_body_as_the_bindings_say() {
    let doc = document();
    let get = &doc["paths"]["/v1/enterprises/{enterprise}"]["get"];
    assert_eq!(
        get["operationId"],
        "EnterpriseRegistryService_GetEnterprise"
    );
    assert_eq!(get["parameters"][0]["name"], "enterprise");
    assert_eq!(get["parameters"][0]["in"], "path");
    let list = &doc["paths"]["/v1/enterprises"]["get"]["parameters"];
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pageSize", "pageToken", "filter", "orderBy"]);
    // A Create: the resource is the body, its REQUIRED fields required; the rest is query.
    let create = &doc["paths"]["/v1/programs"]["post"];
    assert_eq!(create["parameters"][0]["name"], "programId");
    assert_eq!(create["parameters"][0]["required"], true);
    let required = &create["requestBody"]["content"]["application/json"]["schema"]["required"];
    assert!(required.as_array().unwrap().contains(&"displayName".into()));
    // An Update: the path sets `program.name`; the mask is a query parameter.
    let update = &doc["paths"]["/v1/programs/{program}"]["patch"];
    let names: Vec<&str> = update["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["program", "updateMask", "requestId"]);
    // A custom method with body "*": the body is the request without `name`.
    let revoke = &doc["paths"]["/v1/enterprises/{enterprise}:revoke"]["post"];
    let body = &revoke["requestBody"]["content"]["application/json"]["schema"];
    assert!(body["properties"].get("name").is_none());
    assert_eq!(body["required"], serde_json::json!(["reason"]));
    // Nested query parameters by dotted JSON names.
    let distribution = &doc["paths"]["/v1/fieldDistribution"]["get"]["parameters"];
    assert!(
        distribution
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"].as_str().unwrap().starts_with("years."))
    );
    // Streams: NDJSON out; in, NDJSON, one JSON request or the imports' CSV (what the
    // transcoder takes, no more).
    let watch = &doc["paths"]["/v1/registry/changes:watch"]["get"];
    assert!(watch["responses"]["200"]["content"]["application/x-ndjson"].is_object());
    let import = &doc["paths"]["/v1/enterprises:import"]["post"]["requestBody"]["content"];
    let media: Vec<&String> = import.as_object().unwrap().keys().collect();
    assert_eq!(
        media,
        ["application/json", "application/x-ndjson", "text/csv"]
    );
}

/// A wildcard matches one segment or more, never none: an empty path value makes another path,
/// so no operation may admit one (schemathesis generated `""` for them until they said so).
#[test]
fn path_parameters_are_never_empty() {
    let doc = document();
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    assert_eq!(p["schema"]["minLength"], 1, "{method} {path} {}", p["name"]);
                    seen += 1;
                }
            }
        }
    }
    assert!(seen > 80, "{seen} path parameters");
}

#[test]
fn every_reference_resolves_and_every_schema_is_used() {
    let doc = document();
    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    for r in &refs {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            refs.contains(&format!("#/components/schemas/{name}")),
            "schema {name} is never used"
        );
    }
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.insert(v.as_str().unwrap().to_string());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Every message with a schema, filled in (every field set, nested two deep) and written as the
/// server writes responses (prost-reflect's default JSON options), validates against its
/// schema; so does the message with nothing set (`{}`).
#[test]
fn message_schemas_accept_what_the_server_writes() {
    let doc = document();
    let pool = pool();
    let mut checked = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        // `google.protobuf.Any` is written by hand: its JSON is the packed message's.
        if name == "google.protobuf.Any" {
            continue;
        }
        let Some(message) = pool.get_message_by_name(name) else {
            continue;
        };
        for depth in [0, 2] {
            let filled = fill(&message, depth);
            let json = serde_json::to_value(&filled)
                .unwrap_or_else(|e| panic!("{name} does not serialise: {e}"));
            if let Err(e) = validate(&doc, schema, &json, name) {
                panic!("{name} as the server writes it breaks its schema: {e}\n{json:#}");
            }
        }
        checked += 1;
    }
    assert!(checked > 100, "only {checked} message schemas checked");
}

fn fill(message: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut out = DynamicMessage::new(message.clone());
    if depth == 0 {
        return out;
    }
    for field in message.fields() {
        // An Any needs a type the pool knows; one is filled in by hand below.
        if let Kind::Message(m) = field.kind()
            && m.full_name() == "google.protobuf.Any"
        {
            continue;
        }
        if matches!(
            message.full_name(),
            "google.protobuf.Timestamp" | "google.protobuf.Duration"
        ) {
            continue;
        }
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            let key = match entry.map_entry_key_field().kind() {
                Kind::String => MapKey::String("k".into()),
                Kind::Bool => MapKey::Bool(true),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(3),
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(3),
                Kind::Uint32 | Kind::Fixed32 => MapKey::U32(3),
                _ => MapKey::U64(3),
            };
            let value = scalar(&entry.map_entry_value_field().kind(), depth);
            PValue::Map([(key, value)].into_iter().collect())
        } else if field.is_list() {
            PValue::List(vec![scalar(&field.kind(), depth)])
        } else {
            scalar(&field.kind(), depth)
        };
        out.set_field(&field, value);
    }
    out
}

fn scalar(kind: &Kind, depth: usize) -> PValue {
    match kind {
        Kind::Double => PValue::F64(f64::NAN),
        Kind::Float => PValue::F32(1.5),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => PValue::I32(-7),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PValue::I64(-70_000_000_000),
        Kind::Uint32 | Kind::Fixed32 => PValue::U32(7),
        Kind::Uint64 | Kind::Fixed64 => PValue::U64(70_000_000_000),
        Kind::Bool => PValue::Bool(true),
        Kind::String => PValue::String("x_y".into()),
        Kind::Bytes => PValue::Bytes(vec![0xfb, 0xff].into()),
        Kind::Enum(e) => PValue::EnumNumber(e.values().last().map_or(0, |v| v.number())),
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => {
                let mut t = DynamicMessage::new(m.clone());
                t.set_field_by_name("seconds", PValue::I64(1_700_000_000));
                PValue::Message(t)
            }
            "google.protobuf.Duration" => {
                let mut d = DynamicMessage::new(m.clone());
                d.set_field_by_name("seconds", PValue::I64(90));
                d.set_field_by_name("nanos", PValue::I32(500_000_000));
                PValue::Message(d)
            }
            _ => PValue::Message(fill(m, depth - 1)),
        },
    }
}

/// A small JSON Schema check of what the generator uses: `$ref`, `allOf`, `oneOf`, `type`,
/// `enum`, `properties`, `additionalProperties`, `items`, `required`, integer patterns.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = doc.pointer(r.strip_prefix('#').unwrap()).unwrap();
        validate(doc, target, value, at)?;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(doc, s, value, at)?;
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = one
            .iter()
            .filter(|s| validate(doc, s, value, at).is_ok())
            .count();
        if matching != 1 {
            return Err(format!("{at}: {value} matches {matching} of oneOf"));
        }
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        };
        if !ok {
            return Err(format!("{at}: {value} is not of type {t}"));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {values:?}"));
    }
    if let (Some(pattern), Some(s)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) {
        let unsigned = |d: &str| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit());
        let fits = match pattern {
            "^-?[0-9]+$" => unsigned(s.strip_prefix('-').unwrap_or(s)),
            "^[0-9]+$" => unsigned(s),
            _ => true,
        };
        if !fits {
            return Err(format!("{at}: {s:?} does not match {pattern}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, v) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(s) => validate(doc, s, v, &format!("{at}.{key}"))?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false))
                        if properties.is_some() || schema.get("type").is_some() =>
                    {
                        return Err(format!("{at}: unknown property {key}"));
                    }
                    Some(s @ Value::Object(_)) => validate(doc, s, v, &format!("{at}.{key}"))?,
                    _ => {}
                },
            }
        }
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !object.contains_key(r.as_str().unwrap()) {
                return Err(format!("{at}: required {r} missing"));
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            validate(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
