//! Round trips (AIP-134 read-modify-write), checked the same way for every `Update*` RPC of
//! every service: a resource read with Get and sent back with Update exactly as it was read,
//! under a mask of every field a caller may write, is accepted and changes nothing: the next
//! Get equals the first. Generated clients do exactly this, so a computed value that Update
//! refuses (a milestone read as OVERDUE, say) breaks every one of them.
//!
//! The RPCs to cover and the masks come from the descriptor set: every method of the service
//! named `Update…`, its resource the message it returns, and the mask every field of that
//! message that is not `OUTPUT_ONLY`, `IMMUTABLE` or `IDENTIFIER` (nor `etag`, which an Update
//! checks rather than writes). A service's test declares its cases with
//! [`round_trip_cases!`](crate::round_trip_cases), which also writes the test comparing them
//! with [`update_rpcs`], so a new Update RPC without a round-trip case fails.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{DescriptorPool, MessageDescriptor, Value};

/// `google.api.FieldBehavior` numbers of the behaviours that make a field unwritable by Update.
const OUTPUT_ONLY: i32 = 3;
const IMMUTABLE: i32 = 5;
const IDENTIFIER: i32 = 8;

fn pool() -> DescriptorPool {
    DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).expect("descriptor set")
}

/// The `Update…` methods of `package.service`, each with the full name of the resource message
/// it returns.
pub fn update_rpcs(package: &str, service: &str) -> BTreeMap<String, String> {
    let pool = pool();
    let service = pool
        .get_service_by_name(&format!("{package}.{service}"))
        .unwrap_or_else(|| panic!("no service {package}.{service} in the descriptor set"));
    service
        .methods()
        .filter(|m| m.name().starts_with("Update"))
        .map(|m| (m.name().to_string(), m.output().full_name().to_string()))
        .collect()
}

fn behaviours(pool: &DescriptorPool, field: &prost_reflect::FieldDescriptor) -> Vec<i32> {
    let Some(ext) = pool.get_extension_by_name("google.api.field_behavior") else {
        return Vec::new();
    };
    let options = field.options();
    match &*options.get_extension(&ext) {
        Value::List(values) => values.iter().filter_map(Value::as_enum_number).collect(),
        _ => Vec::new(),
    }
}

fn message(pool: &DescriptorPool, full_name: &str) -> MessageDescriptor {
    pool.get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("no message {full_name} in the descriptor set"))
}

/// The top-level fields of the message `resource` (a full name, e.g.
/// `qilu.registry.v1.SupportPolicy`) that an Update may write, in field-number order.
pub fn writable_paths(resource: &str) -> Vec<String> {
    let pool = pool();
    message(&pool, resource)
        .fields()
        .filter(|f| f.name() != "etag")
        .filter(|f| {
            !behaviours(&pool, f)
                .iter()
                .any(|b| [OUTPUT_ONLY, IMMUTABLE, IDENTIFIER].contains(b))
        })
        .map(|f| f.name().to_string())
        .collect()
}

/// The mask of [`writable_paths`]`(resource)`: every field a caller may write.
pub fn full_mask(resource: &str) -> prost_types::FieldMask {
    prost_types::FieldMask {
        paths: writable_paths(resource),
    }
}

/// Asserts that `cases` name each method of [`update_rpcs`]`(package, service)` exactly once.
pub fn assert_every_update_covered(package: &str, service: &str, cases: &[&str]) {
    let rpcs: BTreeSet<String> = update_rpcs(package, service).into_keys().collect();
    let covered: BTreeSet<String> = cases.iter().map(|c| c.to_string()).collect();
    assert_eq!(covered.len(), cases.len(), "a case appears twice");
    assert_eq!(
        covered, rpcs,
        "every Update RPC of {package}.{service} needs a round-trip case (and only those)"
    );
}

/// Declares a service's round-trip cases: each `scenario => "UpdateMethod"` becomes a test on
/// both backends (see [`on_both_backends!`](crate::on_both_backends)), and
/// `every_update_rpc_has_a_round_trip_case` checks the methods against the descriptor set.
/// Further scenarios that are not one RPC's case go after `also:`.
///
/// ```text
/// round_trip_cases!("qilu.review.v1", "AchievementReviewService",
///     cases: { achievement => "UpdateAchievement", expert => "UpdateExpert" },
/// );
/// ```
#[macro_export]
macro_rules! round_trip_cases {
    (
        $package:literal, $service:literal,
        cases: { $($name:ident => $method:literal),* $(,)? }
        $(, also: { $($extra:ident),* $(,)? })? $(,)?
    ) => {
        $crate::on_both_backends!($($name,)* $($($extra,)*)?);

        #[test]
        fn every_update_rpc_has_a_round_trip_case() {
            $crate::testing::round_trip::assert_every_update_covered(
                $package,
                $service,
                &[$($method),*],
            );
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_leave_out_what_a_caller_cannot_write() {
        let paths = writable_paths("qilu.registry.v1.SupportPolicy");
        assert_eq!(
            paths,
            [
                "title",
                "summary",
                "measures",
                "responsible_officer",
                "responsible_officer_name",
                "milestones"
            ]
        );
        let rpcs = update_rpcs("qilu.registry.v1", "EnterpriseRegistryService");
        assert_eq!(
            rpcs.get("UpdateSupportPolicy").map(String::as_str),
            Some("qilu.registry.v1.SupportPolicy")
        );
    }
}
