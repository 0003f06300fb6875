//! The OpenAPI 3.1 document of Qilu's HTTP/JSON API, generated from the descriptor set the
//! servers embed (`qilu_proto::FILE_DESCRIPTOR_SET`): one operation per HTTP binding
//! ([`crate::http_rule`]), proto comments as descriptions, field behaviours as
//! `required`/`readOnly`, schemas in the proto3 JSON mapping exactly as prost-reflect writes and
//! reads it. It is committed as `openapi/qilu.openapi.json`; a test regenerates it and fails on
//! drift (docs/http.md). Nothing here is written per RPC: a new RPC with a binding appears by
//! itself, and one without a binding fails the contract test, not this module.
//!
//! The JSON mapping described (prost-reflect's defaults, which the HTTP transcoding uses):
//! fields by `json_name` (lowerCamelCase); fields at their default value are left out of
//! responses, so no response schema requires anything; 64-bit integers as decimal strings;
//! enums by value name; `bytes` as standard base64; `float`/`double` as numbers or `"NaN"`,
//! `"Infinity"`, `"-Infinity"`; `Timestamp` RFC 3339, `Duration` `"1.5s"`, `FieldMask` one
//! string of comma-separated lowerCamelCase paths; wrappers as their value; `Struct`/`Value`
//! as JSON; `Any` as an object with `@type`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ServiceDescriptor, Value as PValue,
};
use serde_json::{Map, Value, json};

use crate::http_rule::{self, Binding, Segment};

/// What the suite serves on one address (`qilu dev`): the three services and the
/// `google.longrunning.Operations` service every server also serves.
pub const SUITE: &[&str] = &[
    qilu_proto::service_names::REGISTRY,
    qilu_proto::service_names::REVIEW,
    qilu_proto::service_names::AWARDS,
    OPERATIONS,
];

/// `google.longrunning.Operations` (AIP-151), served beside every Qilu service.
pub const OPERATIONS: &str = "google.longrunning.Operations";

/// Where the committed document lives, relative to the repository root.
pub const COMMITTED_PATH: &str = "openapi/qilu.openapi.json";

/// Where the document is served, without a token.
pub const SERVED_PATH: &str = "/openapi.json";

/// Why the document could not be made (a descriptor set that does not decode, a service or a
/// binding that is not what the contract tests let through).
#[derive(Debug, thiserror::Error)]
#[error("OpenAPI document: {0}")]
pub struct OpenApiError(String);

/// `google.api.FieldBehavior` numbers (google/api/field_behavior.proto).
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;
const INPUT_ONLY: i32 = 4;
const IMMUTABLE: i32 = 5;
const IDENTIFIER: i32 = 8;

/// The OpenAPI document of `services` (full names, e.g. [`SUITE`]), as a JSON value.
pub fn document(services: &[&str]) -> Result<Value, OpenApiError> {
    let pool = DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| OpenApiError(format!("descriptor set: {e}")))?;
    Generator::new(pool).document(services)
}

/// [`document`] as the committed file holds it: pretty-printed, keys sorted at every level, one
/// final newline, so that the same descriptors always give the same bytes.
pub fn document_json(services: &[&str]) -> Result<String, OpenApiError> {
    let doc = canonical(document(services)?);
    serde_json::to_string_pretty(&doc)
        .map(|s| s + "\n")
        .map_err(|e| OpenApiError(format!("serialising: {e}")))
}

/// `value` with the keys of every object in sorted order (whether or not serde_json keeps
/// insertion order in this build).
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn response_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

/// `google.rpc.Status`, the body of every error (AIP-193).
const STATUS: &str = "google.rpc.Status";
/// `google.protobuf.Any`, written by hand: an object with `@type` and the message's fields.
const ANY: &str = "google.protobuf.Any";
/// The last line of a server stream that failed after it started.
const STREAM_ERROR: &str = "qilu.http.StreamError";

struct Generator {
    pool: DescriptorPool,
    /// Leading comments by file name and source path.
    comments: HashMap<String, HashMap<Vec<i32>, String>>,
    /// `google.api.resource` patterns, split into segments, for naming path parameters.
    patterns: Vec<Vec<String>>,
    schemas: BTreeMap<String, Value>,
    /// Messages and enums referenced and not yet written.
    pending: Vec<Pending>,
}

enum Pending {
    Message(MessageDescriptor),
    Enum(EnumDescriptor),
}

impl Generator {
    fn new(pool: DescriptorPool) -> Self {
        let patterns = resource_patterns(&pool);
        Generator {
            pool,
            comments: HashMap::new(),
            patterns,
            schemas: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    fn document(mut self, services: &[&str]) -> Result<Value, OpenApiError> {
        let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        let mut tags = Vec::new();
        for name in services {
            let service = self
                .pool
                .get_service_by_name(name)
                .ok_or_else(|| OpenApiError(format!("no service {name} in the descriptor set")))?;
            tags.push(json!({
                "name": service.name(),
                "description": self.service_comment(&service),
            }));
            for method in service.methods() {
                let bindings = http_rule::method_bindings(&self.pool, &method)
                    .map_err(|e| OpenApiError(e.to_string()))?;
                for (i, binding) in bindings.iter().enumerate() {
                    let (path, operation) = self.operation(&method, binding, i)?;
                    let item = paths.entry(path.clone()).or_default();
                    let verb = binding.http_method.to_ascii_lowercase();
                    if item.insert(verb.clone(), operation).is_some() {
                        return Err(OpenApiError(format!(
                            "{}: {verb} {path} is bound twice",
                            binding.rpc()
                        )));
                    }
                }
            }
        }
        tags.push(json!({
            "name": "OpenAPI",
            "description": "This document, served without a token.",
        }));
        paths.entry(SERVED_PATH.to_string()).or_default().insert(
            "get".into(),
            json!({
                "operationId": "GetOpenApiDocument",
                "summary": "This OpenAPI document.",
                "description": "The OpenAPI 3.1 document of the HTTP/JSON API, generated from \
                    the protobuf descriptors the server embeds. Needs no token.",
                "tags": ["OpenAPI"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The document.",
                        "content": { "application/json": { "schema": { "type": "object" } } },
                    },
                    "4XX": response_ref("Error"),
                    "default": response_ref("Error"),
                },
            }),
        );

        // The error model, then every schema referenced, transitively.
        let status = self
            .pool
            .get_message_by_name(STATUS)
            .ok_or_else(|| OpenApiError(format!("no {STATUS} in the descriptor set")))?;
        self.message_ref(&status);
        self.write_pending();
        if self.schemas.contains_key(ANY) {
            self.schemas.insert(
            ANY.into(),
            json!({
                "type": "object",
                "description": "A message of any type (`google.protobuf.Any`): `@type` names it \
                    (`type.googleapis.com/<full name>`), the other properties are the message's \
                    own in the proto3 JSON mapping (a well-known type's JSON form is under \
                    `value`).",
                "properties": { "@type": { "type": "string" } },
                "required": ["@type"],
                "additionalProperties": true,
            }),
        );
        }
        if self.schemas.contains_key(STREAM_ERROR) {
            self.schemas.insert(
                STREAM_ERROR.into(),
                json!({
                    "type": "object",
                    "description": "The last line of a newline-delimited JSON stream that failed \
                        after it started (the status line was already sent): the error, as a \
                        `google.rpc.Status`.",
                    "properties": { "error": schema_ref(STATUS) },
                    "required": ["error"],
                    "additionalProperties": false,
                }),
            );
        }

        let paths: Map<String, Value> = paths
            .into_iter()
            .map(|(k, v)| (k, Value::Object(v)))
            .collect();
        let schemas: Map<String, Value> = std::mem::take(&mut self.schemas).into_iter().collect();
        Ok(json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Qilu HTTP/JSON API",
                "version": env!("CARGO_PKG_VERSION"),
                "summary": "The enterprise registry, achievement review and award allocation \
                    services of Qilu, over HTTP/JSON.",
                "description": INFO_DESCRIPTION,
                "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
            },
            "servers": [{
                "url": "http://127.0.0.1:50051",
                "description": "`qilu dev`: gRPC, grpc-web and HTTP/JSON on one address.",
            }],
            "security": [{ "bearerAuth": [] }],
            "tags": tags,
            "paths": paths,
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "The same bearer JWT as on gRPC (`qilu token --role \
                            officer` mints one for `qilu dev`); each operation's roles are in \
                            its description.",
                    },
                },
                "responses": error_responses(),
                "schemas": schemas,
            },
        }))
    }

    /// The OpenAPI path and operation of one binding of `method`.
    fn operation(
        &mut self,
        method: &MethodDescriptor,
        binding: &Binding,
        index: usize,
    ) -> Result<(String, Value), OpenApiError> {
        let rpc = method.full_name();
        let input = method.input();
        let comment = self.method_comment(method);
        let (path, path_params) = self.path(binding, &input)?;

        let body_field = match binding.body.as_deref() {
            None => None,
            Some("*") => Some(None),
            Some(name) => Some(Some(input.get_field_by_name(name).ok_or_else(|| {
                OpenApiError(format!(
                    "{rpc}: body field {name} is not in {}",
                    input.name()
                ))
            })?)),
        };
        // Fields taken by the path (top-level or dotted) and by the body.
        let mut taken: BTreeSet<String> = binding
            .template
            .variables
            .iter()
            .map(|v| v.field_path.clone())
            .collect();
        if let Some(Some(field)) = &body_field {
            taken.insert(field.name().to_string());
        }

        let mut parameters = path_params;
        if !matches!(body_field, Some(None)) {
            let mut query = Vec::new();
            self.query_params(&input, "", "", &taken, &mut Vec::new(), &mut query);
            parameters.extend(query);
        }
        let mut names = BTreeSet::new();
        for p in &parameters {
            if let Some(name) = p.get("name").and_then(Value::as_str)
                && !names.insert(name.to_string())
            {
                return Err(OpenApiError(format!(
                    "{rpc}: parameter {name} appears twice"
                )));
            }
        }

        let mut op = Map::new();
        let id = if index == 0 {
            format!("{}_{}", method.parent_service().name(), method.name())
        } else {
            format!(
                "{}_{}_{index}",
                method.parent_service().name(),
                method.name()
            )
        };
        op.insert("operationId".into(), json!(id));
        op.insert("summary".into(), json!(summary(&comment, method.name())));
        if !comment.is_empty() {
            op.insert("description".into(), json!(comment));
        }
        op.insert("tags".into(), json!([method.parent_service().name()]));
        op.insert(
            "x-grpc-method".into(),
            json!(format!(
                "/{}/{}",
                method.parent_service().full_name(),
                method.name()
            )),
        );
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(body) = body_field {
            op.insert(
                "requestBody".into(),
                self.request_body(method, binding, body.as_ref(), &taken),
            );
        }
        op.insert(
            "responses".into(),
            self.responses(method, binding, &comment),
        );
        Ok((path, Value::Object(op)))
    }

    /// The OpenAPI path of a binding (one parameter per wildcard segment of a variable, named
    /// after the resource pattern it matches) and its path parameters.
    fn path(
        &self,
        binding: &Binding,
        input: &MessageDescriptor,
    ) -> Result<(String, Vec<Value>), OpenApiError> {
        let template = &binding.template;
        let mut parts: Vec<String> = template
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.clone(),
                Segment::Single | Segment::Multi => String::new(),
            })
            .collect();
        let mut params = Vec::new();
        let mut used = BTreeSet::new();
        for var in &template.variables {
            let segments = &template.segments[var.start..var.end];
            let names = self.segment_names(segments);
            field_by_path(input, &var.field_path).ok_or_else(|| {
                OpenApiError(format!(
                    "{}: path variable {} is not a field of {}",
                    binding.rpc(),
                    var.field_path,
                    input.name()
                ))
            })?;
            let mut shape: Vec<String> = segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => l.clone(),
                    Segment::Single => "*".into(),
                    Segment::Multi => "**".into(),
                })
                .collect();
            let mut named = Vec::new();
            for (offset, segment) in segments.iter().enumerate() {
                if *segment == Segment::Single || *segment == Segment::Multi {
                    let mut name = names
                        .get(offset)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| lower_camel(&var.field_path.replace('.', "_")));
                    while !used.insert(name.clone()) {
                        name.push('_');
                    }
                    parts[var.start + offset] = format!("{{{name}}}");
                    shape[offset] = format!("{{{name}}}");
                    named.push((name, *segment == Segment::Multi));
                }
            }
            let json_path = var
                .field_path
                .split('.')
                .map(lower_camel)
                .collect::<Vec<_>>()
                .join(".");
            let shape = shape.join("/");
            for (name, multi) in named {
                let mut description =
                    format!("A segment of the request field `{json_path}`, which is `{shape}`.");
                if multi {
                    description.push_str(" May span several segments.");
                }
                params.push(json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "description": description,
                    // A wildcard matches one segment or more, never none: an empty value makes
                    // another path (often another operation's), so it is not this parameter.
                    "schema": { "type": "string", "minLength": 1 },
                }));
            }
        }
        let mut path = format!("/{}", parts.join("/"));
        if let Some(verb) = &template.verb {
            path.push(':');
            path.push_str(verb);
        }
        Ok((path, params))
    }

    /// For each segment of a variable, the parameter name a resource pattern gives it.
    fn segment_names(&self, segments: &[Segment]) -> Vec<Option<String>> {
        for pattern in &self.patterns {
            if pattern.len() != segments.len() {
                continue;
            }
            let fits = pattern.iter().zip(segments).all(|(p, s)| match s {
                Segment::Literal(l) => p == l,
                Segment::Single => p.starts_with('{'),
                Segment::Multi => false,
            });
            if fits {
                return pattern
                    .iter()
                    .map(|p| {
                        p.strip_prefix('{')
                            .and_then(|p| p.strip_suffix('}'))
                            .map(lower_camel)
                    })
                    .collect();
            }
        }
        // No pattern: a wildcard after a collection literal is named after it (`operations/**`
        // → `operation`).
        let mut names = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            let previous = i.checked_sub(1).and_then(|j| match &segments[j] {
                Segment::Literal(l) => Some(singular(l)),
                _ => None,
            });
            names.push(match s {
                Segment::Literal(_) => None,
                _ => previous,
            });
        }
        names
    }

    /// Query parameters: every field of `message` not taken by the path or the body, nested
    /// messages as dotted names; maps, repeated messages and JSON-valued types cannot be query
    /// parameters and are left out.
    fn query_params(
        &mut self,
        message: &MessageDescriptor,
        json_prefix: &str,
        proto_prefix: &str,
        taken: &BTreeSet<String>,
        stack: &mut Vec<String>,
        out: &mut Vec<Value>,
    ) {
        stack.push(message.full_name().to_string());
        for field in message.fields() {
            let proto_path = format!("{proto_prefix}{}", field.name());
            if taken.contains(&proto_path) {
                continue;
            }
            let name = format!("{json_prefix}{}", field.json_name());
            let behaviours = self.behaviours(&field);
            let required = json_prefix.is_empty() && behaviours.contains(&REQUIRED);
            if field.is_map() {
                continue;
            }
            if let Kind::Message(nested) = field.kind()
                && !is_scalar_wkt(nested.full_name())
            {
                if field.is_list()
                    || is_json_wkt(nested.full_name())
                    || stack.iter().any(|s| s == nested.full_name())
                    || stack.len() > 4
                {
                    continue;
                }
                self.query_params(
                    &nested,
                    &format!("{name}."),
                    &format!("{proto_path}."),
                    taken,
                    stack,
                    out,
                );
                continue;
            }
            let mut param = Map::new();
            param.insert("name".into(), json!(name));
            param.insert("in".into(), json!("query"));
            if required {
                param.insert("required".into(), json!(true));
            }
            let description = self.field_description(&field, &behaviours);
            if !description.is_empty() {
                param.insert("description".into(), json!(description));
            }
            let item = self.kind_schema(&field.kind());
            let schema = if field.is_list() {
                json!({ "type": "array", "items": item })
            } else {
                item
            };
            param.insert("schema".into(), schema);
            out.push(Value::Object(param));
        }
        stack.pop();
    }

    fn request_body(
        &mut self,
        method: &MethodDescriptor,
        binding: &Binding,
        field: Option<&FieldDescriptor>,
        taken: &BTreeSet<String>,
    ) -> Value {
        let input = method.input();
        let schema = match field {
            // The named field: the resource of a Create or Update.
            Some(field) => {
                let mut schema = self.field_schema(field);
                if binding.http_method == http::Method::POST.as_str()
                    && let Kind::Message(resource) = field.kind()
                {
                    // A Create: the resource's REQUIRED fields must be there (an Update sends
                    // only what its mask names).
                    let required: Vec<String> = resource
                        .fields()
                        .filter(|f| {
                            let b = self.behaviours(f);
                            b.contains(&REQUIRED) && !b.contains(&OUTPUT_ONLY)
                        })
                        .map(|f| f.json_name().to_string())
                        .collect();
                    if !required.is_empty() {
                        schema = json!({ "allOf": [schema], "required": required });
                    }
                }
                schema
            }
            // `*`: the request message without the fields in the path.
            None => self.request_object(&input, taken),
        };
        let what = match field {
            Some(f) => format!("The request's `{}`.", f.json_name()),
            None => format!(
                "The `{}` without the fields in the path.",
                input.full_name()
            ),
        };
        if method.is_client_streaming() {
            json!({
                "required": true,
                "description": format!(
                    "{what} A stream of requests: one JSON object, or newline-delimited JSON \
                    (`application/x-ndjson`, one request per line), or CSV (`text/csv`) in the \
                    columns the `qilu … import` commands read (a header row, then one row per \
                    line; lists joined by `;`, enums by value name with or without their \
                    prefix; see docs/http.md): a row the CSV reader cannot read is REJECTED in \
                    the answer with its problems; the other request fields as query parameters."
                ),
                // Only what the transcoder takes (crates/common/src/http/transcode.rs, `upload`;
                // CSV through crates/common/src/import_csv.rs, the imports' CSV reader).
                "content": {
                    "application/json": { "schema": schema.clone() },
                    "application/x-ndjson": { "schema": schema },
                    "text/csv": { "schema": { "type": "string" } },
                },
            })
        } else {
            json!({
                "required": true,
                "description": what,
                "content": { "application/json": { "schema": schema } },
            })
        }
    }

    /// `message` as an inline object without the fields in `taken`, its REQUIRED fields
    /// required.
    fn request_object(&mut self, message: &MessageDescriptor, taken: &BTreeSet<String>) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            if taken.contains(field.name()) {
                continue;
            }
            if self.behaviours(&field).contains(&REQUIRED) {
                required.push(json!(field.json_name()));
            }
            let schema = self.field_schema(&field);
            properties.insert(field.json_name().to_string(), schema);
        }
        let mut object = Map::new();
        object.insert("type".into(), json!("object"));
        object.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            object.insert("required".into(), Value::Array(required));
        }
        object.insert("additionalProperties".into(), json!(false));
        Value::Object(object)
    }

    fn responses(&mut self, method: &MethodDescriptor, binding: &Binding, comment: &str) -> Value {
        let output = method.output();
        let message = self.message_ref(&output);
        let ok = if method.is_server_streaming() {
            // Written at the end (`document`), when some operation streams.
            self.schemas
                .entry(STREAM_ERROR.into())
                .or_insert(Value::Null);
            json!({
                "description": format!(
                    "A stream of `{}` as newline-delimited JSON, one message per line; a \
                    stream that fails after it started ends with a `{{\"error\": …}}` line.",
                    output.full_name()
                ),
                "content": {
                    "application/x-ndjson": {
                        "schema": { "oneOf": [message, schema_ref(STREAM_ERROR)] },
                    },
                },
            })
        } else {
            json!({
                "description": format!("`{}`.", output.full_name()),
                "content": { "application/json": { "schema": message } },
            })
        };
        // Errors: the codes an RPC's "Errors:" line names, beyond those of every method.
        let errors = comment
            .split_once("Errors:")
            .map(|(_, e)| e)
            .unwrap_or_default();
        let writes = binding.http_method != http::Method::GET.as_str();
        let mut out = Map::new();
        out.insert("200".into(), ok);
        out.insert("400".into(), response_ref("BadRequest"));
        out.insert("401".into(), response_ref("Unauthenticated"));
        out.insert("403".into(), response_ref("PermissionDenied"));
        if errors.contains("NOT_FOUND") || method.parent_service().full_name() == OPERATIONS {
            out.insert("404".into(), response_ref("NotFound"));
        }
        if errors.contains("ALREADY_EXISTS") || writes {
            out.insert("409".into(), response_ref("Conflict"));
        }
        out.insert("default".into(), response_ref("Error"));
        Value::Object(out)
    }

    /// The schema of one field: its type (array or map when repeated), description and the
    /// behaviours JSON Schema can say (`required` is said by the request that holds it).
    fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        let base = if field.is_map() {
            let value = match field.kind() {
                Kind::Message(entry) => self.kind_schema(&entry.map_entry_value_field().kind()),
                _ => json!({}),
            };
            json!({ "type": "object", "additionalProperties": value })
        } else if field.is_list() {
            json!({ "type": "array", "items": self.kind_schema(&field.kind()) })
        } else {
            self.kind_schema(&field.kind())
        };
        let behaviours = self.behaviours(field);
        let mut schema = match base {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let description = self.field_description(field, &behaviours);
        if !description.is_empty() {
            schema.insert("description".into(), json!(description));
        }
        if behaviours.contains(&OUTPUT_ONLY) {
            schema.insert("readOnly".into(), json!(true));
        }
        if behaviours.contains(&INPUT_ONLY) {
            schema.insert("writeOnly".into(), json!(true));
        }
        Value::Object(schema)
    }

    /// A field's comment and the behaviours JSON Schema keywords do not carry.
    fn field_description(&mut self, field: &FieldDescriptor, behaviours: &[i32]) -> String {
        let mut description = self.comment(&field.parent_file(), field.path());
        let mut notes = Vec::new();
        if behaviours.contains(&REQUIRED) {
            notes.push("Required.");
        }
        if behaviours.contains(&OUTPUT_ONLY) {
            notes.push("Output only: set by the server, ignored in requests.");
        }
        if behaviours.contains(&IMMUTABLE) {
            notes.push("Immutable: set on create, never changed by an update.");
        }
        if behaviours.contains(&IDENTIFIER) {
            notes.push("Identifier: the resource name.");
        }
        if let Some(oneof) = field.containing_oneof()
            && !oneof.is_synthetic()
        {
            let others: Vec<String> = oneof
                .fields()
                .map(|f| format!("`{}`", f.json_name()))
                .collect();
            description.push_str(&format!(
                "{}At most one of {} (oneof `{}`).",
                if description.is_empty() { "" } else { "\n\n" },
                others.join(", "),
                oneof.name()
            ));
        }
        if !notes.is_empty() {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&notes.join(" "));
        }
        description
    }

    fn kind_schema(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double | Kind::Float => json!({
                "oneOf": [
                    { "type": "number" },
                    { "type": "string", "enum": ["NaN", "Infinity", "-Infinity"] },
                ],
            }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" })
            }
            Kind::Uint64 | Kind::Fixed64 => {
                json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" })
            }
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Message(message) => self.message_ref(message),
            Kind::Enum(e) => self.enum_ref(e),
        }
    }

    /// A reference to `message`'s schema (queued), or the inline schema of a well-known type
    /// with a JSON form of its own.
    fn message_ref(&mut self, message: &MessageDescriptor) -> Value {
        let name = message.full_name();
        match name {
            "google.protobuf.Timestamp" => {
                return json!({ "type": "string", "format": "date-time" });
            }
            "google.protobuf.Duration" => {
                return json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$" });
            }
            "google.protobuf.FieldMask" => {
                return json!({
                    "type": "string",
                    "description": "Field paths, lowerCamelCase, comma-separated.",
                });
            }
            "google.protobuf.Empty" => {
                return json!({ "type": "object", "additionalProperties": false });
            }
            "google.protobuf.Struct" => return json!({ "type": "object" }),
            "google.protobuf.ListValue" => return json!({ "type": "array" }),
            "google.protobuf.Value" => return json!({ "description": "Any JSON value." }),
            ANY => {
                // Written at the end (`document`).
                self.schemas.entry(ANY.into()).or_insert(Value::Null);
                return schema_ref(ANY);
            }
            _ => {}
        }
        if is_scalar_wkt(name)
            && let Some(value) = message.get_field_by_name("value")
        {
            return self.kind_schema(&value.kind());
        }
        if !self.schemas.contains_key(name) {
            self.schemas.insert(name.to_string(), Value::Null);
            self.pending.push(Pending::Message(message.clone()));
        }
        schema_ref(name)
    }

    fn enum_ref(&mut self, e: &EnumDescriptor) -> Value {
        let name = e.full_name();
        if name == "google.protobuf.NullValue" {
            return json!({ "type": "null" });
        }
        if !self.schemas.contains_key(name) {
            self.schemas.insert(name.to_string(), Value::Null);
            self.pending.push(Pending::Enum(e.clone()));
        }
        schema_ref(name)
    }

    fn write_pending(&mut self) {
        while let Some(next) = self.pending.pop() {
            let (name, schema) = match next {
                Pending::Message(m) => (m.full_name().to_string(), self.message_schema(&m)),
                Pending::Enum(e) => (e.full_name().to_string(), self.enum_schema(&e)),
            };
            self.schemas.insert(name, schema);
        }
    }

    /// A message as an object: properties by JSON name, none required (responses leave
    /// defaults out), unknown properties refused (as the server refuses them).
    fn message_schema(&mut self, message: &MessageDescriptor) -> Value {
        let mut properties = Map::new();
        for field in message.fields() {
            let schema = self.field_schema(&field);
            properties.insert(field.json_name().to_string(), schema);
        }
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        let description = self.comment(&message.parent_file(), message.path());
        if !description.is_empty() {
            schema.insert("description".into(), json!(description));
        }
        schema.insert("properties".into(), Value::Object(properties));
        schema.insert("additionalProperties".into(), json!(false));
        Value::Object(schema)
    }

    fn enum_schema(&mut self, e: &EnumDescriptor) -> Value {
        let mut description = self.comment(&e.parent_file(), e.path());
        let mut values = Vec::new();
        let mut first = true;
        for value in e.values() {
            let comment = self.comment(&e.parent_file(), value.path());
            if !comment.is_empty() {
                let separator = match (description.is_empty(), first) {
                    (true, _) => "",
                    (false, true) => "\n\n",
                    (false, false) => "\n",
                };
                first = false;
                description.push_str(&format!(
                    "{separator}- `{}`: {}",
                    value.name(),
                    comment.replace('\n', " ")
                ));
            }
            values.push(json!(value.name()));
        }
        let mut schema = Map::new();
        schema.insert("type".into(), json!("string"));
        if !description.is_empty() {
            schema.insert("description".into(), json!(description));
        }
        schema.insert("enum".into(), Value::Array(values));
        Value::Object(schema)
    }

    fn behaviours(&self, field: &FieldDescriptor) -> Vec<i32> {
        let Some(ext) = self.pool.get_extension_by_name("google.api.field_behavior") else {
            return Vec::new();
        };
        match &*field.options().get_extension(&ext) {
            PValue::List(values) => values.iter().filter_map(PValue::as_enum_number).collect(),
            _ => Vec::new(),
        }
    }

    fn service_comment(&mut self, service: &ServiceDescriptor) -> String {
        self.comment(&service.parent_file(), service.path())
    }

    fn method_comment(&mut self, method: &MethodDescriptor) -> String {
        self.comment(&method.parent_file(), method.path())
    }

    /// The leading comment at `path` in `file`, one space of indentation taken off each line.
    fn comment(&mut self, file: &FileDescriptor, path: &[i32]) -> String {
        let comments = self
            .comments
            .entry(file.name().to_string())
            .or_insert_with(|| {
                let proto = file.file_descriptor_proto();
                proto
                    .source_code_info
                    .iter()
                    .flat_map(|info| info.location.iter())
                    .filter_map(|l| {
                        l.leading_comments
                            .as_ref()
                            .map(|c| (l.path.clone(), clean_comment(c)))
                    })
                    .collect()
            });
        comments.get(path).cloned().unwrap_or_default()
    }
}

const INFO_DESCRIPTION: &str = "Every RPC of Qilu's gRPC services, transcoded from its \
AIP-127 HTTP binding (`google.api.http`) and served on the same address as gRPC, through the \
same authentication, roles, limits, idempotency, metrics and tracing.\n\n\
Bodies and responses follow the proto3 JSON mapping: lowerCamelCase field names; fields at \
their default value left out of responses; 64-bit integers as strings; enums by value name; \
timestamps in RFC 3339. Path parameters are the segments of resource names \
(`/v1/enterprises/{enterprise}` sets `name` to `enterprises/{enterprise}`); fields in neither \
the path nor the body are query parameters, nested ones by dotted names (`years.fromYear`), \
repeated ones repeated (`names=a&names=b`).\n\n\
Errors are `google.rpc.Status` objects (`code`, `message`, `details` with `@type`) with the \
HTTP status of AIP-193 (INVALID_ARGUMENT, FAILED_PRECONDITION and OUT_OF_RANGE 400; \
UNAUTHENTICATED 401; PERMISSION_DENIED 403; NOT_FOUND 404; ALREADY_EXISTS and ABORTED 409; \
RESOURCE_EXHAUSTED 429; UNAVAILABLE 503; INTERNAL 500). Server streams (the change feeds, \
snapshots) are newline-delimited JSON; bulk imports take newline-delimited JSON or CSV. \
docs/http.md has the conventions.";

fn error_responses() -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": schema_ref(STATUS) } },
        })
    };
    json!({
        "BadRequest": error(
            "INVALID_ARGUMENT (field violations in a `google.rpc.BadRequest` detail), \
            FAILED_PRECONDITION (a `google.rpc.PreconditionFailure`) or OUT_OF_RANGE; also a \
            body that is not JSON, has unknown fields or wrong types."
        ),
        "Unauthenticated": error("UNAUTHENTICATED: no bearer token, or one that does not verify."),
        "PermissionDenied": error("PERMISSION_DENIED: the token's roles may not call this."),
        "NotFound": error("NOT_FOUND (a `google.rpc.ResourceInfo` detail names the resource)."),
        "Conflict": error(
            "ALREADY_EXISTS, or ABORTED (a stale `etag` or a concurrent modification: read \
            again and retry)."
        ),
        "Error": error(
            "Any other error as a `google.rpc.Status`: RESOURCE_EXHAUSTED 429, UNAVAILABLE 503 \
            (retry), INTERNAL 500, … (AIP-193). `details` carry a `google.rpc.ErrorInfo` whose \
            `reason` is a `qilu.common.v1.ErrorReason` value."
        ),
    })
}

/// The first sentence of a comment (or the method name), on one line.
fn summary(comment: &str, fallback: &str) -> String {
    let flat = comment.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return fallback.to_string();
    }
    match flat.find(". ") {
        Some(i) => flat[..=i].to_string(),
        None => flat,
    }
}

fn clean_comment(comment: &str) -> String {
    comment
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The field at a dotted path from `message`.
fn field_by_path(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current.get_field_by_name(part)?;
        if parts.peek().is_none() {
            return Some(field);
        }
        current = field.kind().as_message()?.clone();
    }
    None
}

/// Every `google.api.resource` pattern in the pool, split on '/'.
fn resource_patterns(pool: &DescriptorPool) -> Vec<Vec<String>> {
    let Some(ext) = pool.get_extension_by_name("google.api.resource") else {
        return Vec::new();
    };
    let mut patterns = BTreeSet::new();
    for message in pool.all_messages() {
        let options = message.options();
        if !options.has_extension(&ext) {
            continue;
        }
        if let PValue::Message(resource) = &*options.get_extension(&ext)
            && let Some(PValue::List(list)) = resource.get_field_by_name("pattern").as_deref()
        {
            for p in list.iter().filter_map(PValue::as_str) {
                patterns.insert(p.split('/').map(str::to_string).collect::<Vec<_>>());
            }
        }
    }
    patterns.into_iter().collect()
}

/// `leading_cohort` → `leadingCohort`.
fn lower_camel(s: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `operations` → `operation`, `policies` → `policy`.
fn singular(collection: &str) -> String {
    if let Some(stem) = collection.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = collection.strip_suffix('s') {
        stem.to_string()
    } else {
        collection.to_string()
    }
}

/// Well-known types whose JSON form is a scalar, usable as a query parameter.
fn is_scalar_wkt(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// Well-known types whose JSON form is an object or any value: never a query parameter.
fn is_json_wkt(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.Struct"
            | "google.protobuf.Value"
            | "google.protobuf.ListValue"
            | "google.protobuf.Any"
            | "google.protobuf.Empty"
    )
}
