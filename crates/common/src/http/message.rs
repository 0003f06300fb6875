//! The request and response messages of the HTTP/JSON side: a request message built from the
//! path variables, the query string and the JSON body (proto3 JSON mapping, prost-reflect),
//! refusals that name the field at fault, gRPC framing, and a response message written as JSON.

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, SerializeOptions,
};
use serde_json::{Map, Value};
use tonic::body::Body;

use crate::error::{ApiError, FieldViolation};

/// The media type of a request, lower case, without parameters.
pub(super) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

pub(super) fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let media = content_type(headers);
    if media.is_empty() || media == "application/json" || media.ends_with("+json") {
        return Ok(());
    }
    Err(ApiError::invalid(
        "content-type",
        "UNSUPPORTED_MEDIA_TYPE",
        format!("the body must be application/json; got {media:?}"),
    ))
}

/// The body, refused past `limit` bytes. A body over the limit is still read (and dropped), up
/// to [`DRAIN_FACTOR`] times the limit, so that an HTTP/1.1 client that is still sending gets
/// the 400 instead of a connection closed under it.
pub(super) async fn read_limited(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut kept = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::invalid(
                "body",
                "MALFORMED_REQUEST",
                format!("the body could not be read: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            kept.extend_from_slice(&data);
        } else if total > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
    }
    if total > limit {
        return Err(ApiError::invalid(
            "body",
            "REQUEST_BODY_TOO_LARGE",
            format!(
                "the body is larger than this server accepts ({limit} bytes, server.max_message_bytes)"
            ),
        ));
    }
    Ok(kept.freeze())
}

/// How far past the limit an oversized body is drained before the answer.
pub(super) const DRAIN_FACTOR: usize = 4;

pub(super) fn parse_json(bytes: &[u8], field: &str) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid(field, "MALFORMED_REQUEST", format!("not valid JSON: {e}")))
}

/// Puts `value` at `path` in `object`, creating objects on the way (an array when `repeated`).
pub(super) fn set_path(
    object: &mut Map<String, Value>,
    path: &[String],
    value: Value,
    repeated: bool,
) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    let mut here = object;
    for name in init {
        let entry = here
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        here = next;
    }
    if repeated {
        match here.get_mut(last) {
            Some(Value::Array(items)) => items.push(value),
            _ => {
                here.insert(last.clone(), Value::Array(vec![value]));
            }
        }
    } else {
        here.insert(last.clone(), value);
    }
}

/// Well-known message types written as a JSON string (and so settable from a query parameter).
pub(super) const STRING_WKT: &[&str] = &[
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
];

/// A query parameter resolved against the request message.
#[derive(Debug)]
pub(super) struct QueryField {
    /// The path as written (JSON or proto names), e.g. `["pageSize"]`.
    pub(super) names: Vec<String>,
    /// The proto name of the top-level field, e.g. `page_size`.
    pub(super) canonical_first: String,
    /// The value as JSON of the field's type.
    pub(super) value: Value,
    /// Whether the field is repeated (each occurrence adds an element).
    pub(super) repeated: bool,
}

/// A query parameter as the JSON value of the field it names: `pageSize=10` → `["pageSize"]`,
/// `"10"`. Names are the fields' JSON or proto names, dotted through singular messages.
pub(super) fn query_value(
    input: &MessageDescriptor,
    key: &str,
    raw: &str,
) -> Result<QueryField, ApiError> {
    let unknown = || {
        ApiError::invalid(
            key.to_string(),
            "UNKNOWN_FIELD",
            format!("`{key}` is not a field of {}", input.name()),
        )
    };
    let mut desc = input.clone();
    let mut names = Vec::new();
    let mut canonical_first = String::new();
    let segments: Vec<&str> = key.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let field = desc
            .get_field_by_name(segment)
            .or_else(|| desc.get_field_by_json_name(segment))
            .ok_or_else(unknown)?;
        // The name as the caller wrote it (both are valid JSON keys), so that an error about
        // the value names the parameter the caller sent.
        names.push((*segment).to_string());
        if i == 0 {
            canonical_first = field.name().to_string();
        }
        let last = i + 1 == segments.len();
        let kind = field.kind();
        if !last {
            match kind {
                Kind::Message(m) if !field.is_list() && !field.is_map() => desc = m,
                _ => return Err(unknown()),
            }
            continue;
        }
        if field.is_map() {
            return Err(ApiError::invalid(
                key.to_string(),
                "MALFORMED_REQUEST",
                format!("`{key}` is a map: send it in a JSON body"),
            ));
        }
        let value = match kind {
            Kind::Bool => Value::Bool(parse_bool(key, raw)?),
            Kind::Message(m) if m.full_name() == "google.protobuf.BoolValue" => {
                Value::Bool(parse_bool(key, raw)?)
            }
            Kind::Message(m) if STRING_WKT.contains(&m.full_name()) => Value::String(raw.into()),
            Kind::Message(_) => {
                return Err(ApiError::invalid(
                    key.to_string(),
                    "MALFORMED_REQUEST",
                    format!("`{key}` is a message: set its fields (`{key}.field=…`) instead"),
                ));
            }
            _ => Value::String(raw.into()),
        };
        return Ok(QueryField {
            names,
            canonical_first,
            value,
            repeated: field.is_list(),
        });
    }
    Err(unknown())
}

pub(super) fn parse_bool(key: &str, raw: &str) -> Result<bool, ApiError> {
    match raw {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid(
            key.to_string(),
            "MALFORMED_REQUEST",
            format!("`{key}` takes true or false, got {raw:?}"),
        )),
    }
}

/// The JSON as the message, refusing unknown fields and wrong types with the path of the field
/// at fault (`enterprise.establishedDate`); `line` prefixes the path for NDJSON uploads.
pub(super) fn to_message(
    desc: MessageDescriptor,
    value: Value,
    line: Option<usize>,
) -> Result<DynamicMessage, ApiError> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(value, &mut track);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    DynamicMessage::deserialize_with_options(desc, deserializer, &options).map_err(|e| {
        let text = e.to_string();
        let mut path = track.path().to_string();
        // prost-reflect names an unknown field in its message and stops at the enclosing one.
        let unknown = text
            .strip_prefix("unrecognized field name '")
            .and_then(|rest| rest.strip_suffix('\''));
        if let Some(name) = unknown {
            path = match path.as_str() {
                "." | "" => name.to_string(),
                p => format!("{p}.{name}"),
            };
        }
        let field = match (line, path.as_str()) {
            (Some(n), "." | "") => format!("line {n}"),
            (Some(n), p) => format!("line {n}: {p}"),
            (None, "." | "") => "body".to_string(),
            (None, p) => p.to_string(),
        };
        let reason = if unknown.is_some() {
            "UNKNOWN_FIELD"
        } else {
            "MALFORMED_REQUEST"
        };
        ApiError::InvalidArgument(vec![FieldViolation::new(field, reason, text)])
    })
}

/// A gRPC message frame: uncompressed flag, length, message.
pub(super) fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.freeze()
}

/// Takes one whole frame off the front of `data`, if there is one.
pub(super) fn next_frame(data: &mut Bytes) -> Option<Result<Bytes, String>> {
    if data.len() < 5 {
        return None;
    }
    if data[0] != 0 {
        return Some(Err("a compressed gRPC frame (none was asked for)".into()));
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if data.len() < 5 + len {
        return None;
    }
    data.advance(5);
    Some(Ok(data.split_to(len)))
}

/// A response message as JSON (proto3 mapping, lowerCamelCase names, 64-bit integers as strings,
/// default values left out), or one field of it (`response_body`).
pub(super) fn message_json(
    desc: &MessageDescriptor,
    bytes: &[u8],
    response_body: Option<&str>,
) -> Result<Vec<u8>, String> {
    let message = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    let options = SerializeOptions::new();
    match response_body {
        Some(field) => {
            let value = message
                .get_field_by_name(field)
                .ok_or_else(|| format!("no field {field}"))?;
            let Some(inner) = value.as_message() else {
                return Err(format!("response_body {field} is not a message"));
            };
            inner
                .serialize_with_options(&mut serializer, &options)
                .map_err(|e| e.to_string())?;
        }
        None => message
            .serialize_with_options(&mut serializer, &options)
            .map_err(|e| e.to_string())?,
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn registry_input(name: &str) -> MessageDescriptor {
        let pool = prost_reflect::DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
        pool.get_message_by_name(&format!("qilu.registry.v1.{name}"))
            .unwrap()
    }

    #[test]
    fn query_parameters_take_json_or_proto_names() {
        let input = registry_input("ListEnterprisesRequest");
        let q = query_value(&input, "pageSize", "10").unwrap();
        assert_eq!(q.names, ["pageSize"]);
        assert_eq!(q.canonical_first, "page_size");
        assert_eq!(q.value, Value::String("10".into()));
        assert!(!q.repeated);
        let q = query_value(&input, "page_size", "10").unwrap();
        assert_eq!(q.canonical_first, "page_size");
        let err = query_value(&input, "pageSise", "10").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument: pageSise: `pageSise` is not a field of ListEnterprisesRequest"
        );
    }

    #[test]
    fn wrong_types_and_unknown_fields_name_the_field() {
        let input = registry_input("ListEnterprisesRequest");
        let err =
            to_message(input.clone(), serde_json::json!({"pageSize": "ten"}), None).unwrap_err();
        let ApiError::InvalidArgument(v) = err else {
            panic!("not invalid")
        };
        assert_eq!(v[0].field, "pageSize");
        assert_eq!(v[0].reason, "MALFORMED_REQUEST");
        let err = to_message(input, serde_json::json!({"nope": 1}), Some(3)).unwrap_err();
        let ApiError::InvalidArgument(v) = err else {
            panic!("not invalid")
        };
        assert_eq!(v[0].reason, "UNKNOWN_FIELD");
        assert!(v[0].field.starts_with("line 3"), "{}", v[0].field);
    }

    #[test]
    fn frames_round_trip() {
        let mut data = frame(b"abc");
        data = Bytes::from([&data[..], &frame(b"")[..], &[0, 0][..]].concat());
        assert_eq!(next_frame(&mut data).unwrap().unwrap(), Bytes::from("abc"));
        assert_eq!(next_frame(&mut data).unwrap().unwrap(), Bytes::new());
        assert!(next_frame(&mut data).is_none());
    }

    #[test]
    fn nested_paths_build_objects() {
        let mut object = Map::new();
        set_path(
            &mut object,
            &["enterprise".into(), "name".into()],
            Value::String("enterprises/X".into()),
            false,
        );
        set_path(
            &mut object,
            &["names".into()],
            Value::String("a".into()),
            true,
        );
        set_path(
            &mut object,
            &["names".into()],
            Value::String("b".into()),
            true,
        );
        assert_eq!(
            Value::Object(object),
            serde_json::json!({"enterprise": {"name": "enterprises/X"}, "names": ["a", "b"]})
        );
    }
}
