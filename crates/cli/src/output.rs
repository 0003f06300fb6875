//! Printing results: a readable table (default) or JSON (`--output json`).
//!
//! JSON is the proto3 JSON mapping of the message itself, made by re-reading the message through
//! the file descriptor set the server also serves for reflection, so every field is there with
//! its proto name (`display_name`, not `displayName`), enums by name, timestamps in RFC 3339,
//! 64-bit integers as numbers.

use std::sync::OnceLock;

use clap::ValueEnum;
use comfy_table::{Table, presets};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// JSON for programs (proto3 JSON mapping, proto field names).
    Json,
}

fn pool() -> Result<&'static DescriptorPool, String> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("descriptor set: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// `message` (of the protobuf type `full_name`) as proto3 JSON.
pub fn to_json<M: prost::Message>(full_name: &str, message: &M) -> Result<Value, String> {
    let descriptor = pool()?
        .get_message_by_name(full_name)
        .ok_or_else(|| format!("unknown message type {full_name}"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| format!("re-reading {full_name}: {e}"))?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
        .stringify_64_bit_integers(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| format!("JSON of {full_name}: {e}"))
}

/// Several messages as a JSON array.
pub fn to_json_array<M: prost::Message>(full_name: &str, messages: &[M]) -> Result<Value, String> {
    messages
        .iter()
        .map(|m| to_json(full_name, m))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// Prints a JSON value, pretty.
pub fn print_json(value: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

/// A table with a header row.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(header.iter().copied());
    table
}

/// A two-column field/value table for one resource.
pub fn fields(rows: &[(&str, String)]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    for (k, v) in rows {
        table.add_row(vec![(*k).to_string(), v.clone()]);
    }
    table
}

/// An enum value's name without its type prefix (`ENTERPRISE_STATE_ACTIVE` → `ACTIVE`), or the
/// number when unknown.
pub fn short(name: Option<&str>, prefix: &str, number: i32) -> String {
    match name {
        Some(n) => n.strip_prefix(prefix).unwrap_or(n).to_string(),
        None => number.to_string(),
    }
}

/// Yuan from fen, with thousands separators (`123456789` → `1,234,567.89`).
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    let whole = (fen / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", fen % 100)
}

/// A timestamp as RFC 3339 UTC (seconds), empty when unset.
pub fn time(t: Option<&prost_types::Timestamp>) -> String {
    match t {
        None => String::new(),
        Some(t) => {
            let days = t.seconds.div_euclid(86_400);
            let secs = t.seconds.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                secs / 3600,
                secs % 3600 / 60,
                secs % 60
            )
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_time_read_naturally() {
        assert_eq!(yuan(1_000_000_000_000), "10,000,000,000.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(-123_456), "-1,234.56");
        let t = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        assert_eq!(time(Some(&t)), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn json_uses_proto_names_and_enum_names() {
        let e = qilu_proto::registry::Enterprise {
            uscc: "91350100M000100Y43".into(),
            display_name: "示例".into(),
            state: 1,
            ..Default::default()
        };
        let v = to_json("qilu.registry.v1.Enterprise", &e).unwrap_or_default();
        assert_eq!(v["display_name"], "示例");
        assert_eq!(v["state"], "ENTERPRISE_STATE_ACTIVE");
    }
}
