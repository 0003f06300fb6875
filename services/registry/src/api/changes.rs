//! The change feed (`ListChanges`, `WatchChanges`): the registry's committed changes in commit
//! order, resumable from any cursor, so other government systems can follow the registry.
//!
//! Built on the audit log, not on a table of its own: every mutation appends one audit event
//! per changed resource in the same transaction, numbered by a gap-free sequence in commit order
//! (writers append under one lock). So the feed can neither miss a change nor see one that was
//! rolled back, and a cursor is simply the sequence of the last change seen.
//!
//! - **Cursor**: `c` + the sequence as 16 lower-case hex digits. Fixed width, so cursors also
//!   compare as strings in commit order. Clients must treat it as opaque.
//! - **Kind**: a resource's first event is its creation (`CREATED`); later events are
//!   `UPDATED`; an event written by a `Delete…` method is `DELETED` (the registry has none yet).
//! - **New state**: decoded from the event's state for enterprises. Other resource types carry
//!   their resource name and kind without `new_state` until their state can be decoded here
//!   (see `new_state`); a follower reads them with their Get method.
//! - **Consistency**: a read first takes the newest committed sequence `h`, then reads events
//!   `≤ h`: every one of them is already visible, so a page never has a hole that fills later.
//! - **Watching** polls the database every `POLL_INTERVAL` (works across replicas, no
//!   notifier to lose) and stops when the client goes away. When the server begins shutting
//!   down, the stream ends at once with UNAVAILABLE naming the cursor to resume from (also in
//!   `ErrorInfo.metadata["resume_cursor"]`), so a subscriber never holds up the drain.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;
use qilu_common::ApiError;
use qilu_common::audit::entity as audit_entity;
use qilu_common::context::{CallContext, Shutdown};
use qilu_common::filter::{Filter, FilterField, Kind, Op, Value};
use qilu_common::pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use qilu_common::time::to_timestamp;
use qilu_proto::registry as pb;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::codegen::BoxStream;

use crate::convert::ENTERPRISE_TYPE;
use crate::convert::certification::CERTIFICATE_TYPE;
use crate::convert::enterprise_to_proto;
use crate::convert::figures::ANNUAL_FIGURES_TYPE;
use crate::convert::zones::{CLUSTER_TYPE, ZONE_TYPE};
use crate::domain::enterprise::{Enterprise, EnterpriseFields, EnterpriseState, StateChange};
use crate::domain::uscc::{KnownExceptions, Uscc};
use crate::store::changes as store;

use super::RegistryApi;

/// How often a watcher looks for new changes once caught up.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// A watcher with nothing to send sends an empty message this often (the contract: at least
/// every 30 seconds), carrying the cursor past any filtered-out changes.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Most changes in one `WatchChanges` message.
const WATCH_BATCH: u64 = 500;
/// Most events one read examines: bounds the work of a heavily filtered page. The cursor still
/// advances past everything examined.
const SCAN_BUDGET: u64 = 10_000;
/// Events fetched per round trip while scanning.
const SCAN_CHUNK: u64 = 1000;

/// Resource types by the collection path of their names (AIP-122 patterns of the contract).
const RESOURCE_TYPES: &[(&str, &str)] = &[
    ("enterprises", ENTERPRISE_TYPE),
    ("enterprises/annualFigures", ANNUAL_FIGURES_TYPE),
    ("enterprises/highTechCertificates", CERTIFICATE_TYPE),
    (
        "enterprises/supportPolicies",
        "registry.qilu.gov.cn/SupportPolicy",
    ),
    ("leadingCohorts", "registry.qilu.gov.cn/LeadingCohort"),
    (
        "leadingCohorts/members",
        "registry.qilu.gov.cn/LeadingCohortMember",
    ),
    ("zones", ZONE_TYPE),
    ("clusters", CLUSTER_TYPE),
    ("policyTargets", "registry.qilu.gov.cn/PolicyTarget"),
];

/// The cursor after the change with `sequence` (0 = before the first change).
pub(super) fn encode_cursor(sequence: i64) -> String {
    format!("c{sequence:016x}")
}

/// The sequence a cursor stands for; empty = 0 (before the first change).
fn decode_cursor(raw: &str, field: &str) -> Result<i64, ApiError> {
    if raw.is_empty() {
        return Ok(0);
    }
    raw.strip_prefix('c')
        .filter(|hex| {
            hex.len() == 16
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "INVALID_CURSOR",
                format!(
                    "{} is not a change-feed cursor; pass a cursor the feed returned",
                    qilu_common::limits::echo(raw)
                ),
            )
        })
}

/// The resource type of a resource name, or "" when it matches no pattern of the contract.
fn resource_type_of(resource: &str) -> &'static str {
    // Collection segments sit at even positions: `enterprises/X/annualFigures/Y`.
    let collections: Vec<&str> = resource.split('/').step_by(2).collect();
    let path = collections.join("/");
    RESOURCE_TYPES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, t)| *t)
        .unwrap_or("")
}

/// A parsed change-feed filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ChangeFilter {
    resource_type: Option<String>,
    resource: Option<String>,
    kind: Option<pb::ChangeKind>,
}

impl ChangeFilter {
    fn matches(&self, change: &pb::Change) -> bool {
        self.resource_type
            .as_ref()
            .is_none_or(|t| *t == change.resource_type)
            && self.resource.as_ref().is_none_or(|r| *r == change.resource)
            && self.kind.is_none_or(|k| k as i32 == change.kind)
    }
}

/// Every operator, admitted by the table and checked in `parse_filter`: the fields take only
/// `=`, and another operator is refused with the reason `ListAuditEvents` gives for it
/// (`UNSUPPORTED_FILTER_OPERATOR`), not the table's `INVALID_FILTER`.
const ANY_OP: &[Op] = &[Op::Eq, Op::Ne, Op::Has, Op::Lt, Op::Le, Op::Gt, Op::Ge];

/// What `ListChanges` / `WatchChanges` filter on (changes.proto documents each).
const CHANGE_FILTER: &[FilterField] = &[
    FilterField::with("resource_type", ANY_OP, Kind::Text),
    FilterField::with("resource", ANY_OP, Kind::Text),
    FilterField::with(
        "kind",
        ANY_OP,
        Kind::Enum {
            type_name: "ChangeKind",
            from_name: |s| pb::ChangeKind::from_str_name(s).map(|k| k as i32),
        },
    ),
];

fn parse_filter(raw: &str) -> Result<ChangeFilter, ApiError> {
    let mut out = ChangeFilter::default();
    for term in Filter::typed(raw, CHANGE_FILTER)? {
        if term.op != Op::Eq {
            return Err(ApiError::invalid(
                "filter",
                "UNSUPPORTED_FILTER_OPERATOR",
                format!("{} supports only `=`", term.field),
            ));
        }
        match (term.field, term.value) {
            ("resource_type", Value::Text(t)) => {
                if !RESOURCE_TYPES.iter().any(|(_, known)| *known == t) {
                    return Err(ApiError::invalid(
                        "filter",
                        "INVALID_FILTER",
                        format!(
                            "resource_type: {:?} is not a registry resource type; use one of {}",
                            t,
                            RESOURCE_TYPES
                                .iter()
                                .map(|(_, t)| *t)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                out.resource_type = Some(t);
            }
            ("resource", Value::Text(r)) => out.resource = Some(r),
            ("kind", Value::Enum(k)) => out.kind = pb::ChangeKind::try_from(k).ok(),
            _ => {}
        }
    }
    Ok(out)
}

/// An enterprise's audit state as `Enterprise`'s `Serialize` writes it. Lenient on purpose: a
/// state that no longer decodes only loses `new_state`, never the change itself.
#[derive(Debug, Deserialize)]
struct EnterpriseJson {
    uscc: String,
    display_name: String,
    #[serde(default)]
    legal_representative: String,
    established_date: NaiveDate,
    #[serde(default)]
    address: String,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    technology_fields: Vec<i32>,
    #[serde(default)]
    green_category: i32,
    state: String,
    #[serde(default)]
    high_tech_certified: bool,
    #[serde(default)]
    leading: bool,
    create_time_us: i64,
    update_time_us: i64,
    version: i64,
    #[serde(default)]
    state_change: Option<StateChangeJson>,
}

#[derive(Debug, Deserialize)]
struct StateChangeJson {
    reason: String,
    change_time_us: i64,
    effective_date: NaiveDate,
}

fn decode_enterprise(state_json: &str) -> Option<pb::Enterprise> {
    let j: EnterpriseJson = serde_json::from_str(state_json).ok()?;
    // An allow-listed pilot code was accepted when written; admit it again as such.
    let uscc = Uscc::parse(&j.uscc, &KnownExceptions::default())
        .or_else(|_| Uscc::parse(&j.uscc, &KnownExceptions::new([j.uscc.as_str()])))
        .ok()?;
    let state = match j.state.as_str() {
        "ACTIVE" => EnterpriseState::Active,
        "REVOKED" => EnterpriseState::Revoked,
        "DEREGISTERED" => EnterpriseState::Deregistered,
        _ => return None,
    };
    let enterprise = Enterprise {
        uscc,
        fields: EnterpriseFields {
            display_name: j.display_name,
            legal_representative: j.legal_representative,
            established_date: j.established_date,
            address: j.address,
            zone: j.zone,
            technology_fields: j.technology_fields,
            green_category: j.green_category,
        },
        state,
        high_tech_certified: j.high_tech_certified,
        leading: j.leading,
        create_time_us: j.create_time_us,
        update_time_us: j.update_time_us,
        version: j.version,
        state_change: j.state_change.map(|c| StateChange {
            reason: c.reason,
            change_time_us: c.change_time_us,
            effective_date: c.effective_date,
        }),
    };
    Some(enterprise_to_proto(&enterprise))
}

/// The resource's state after the change, for the types whose audit state decodes here.
/// Owners of other resource types add their arm (their audit state → their proto message).
fn new_state(resource_type: &str, event: &audit_entity::Model) -> Option<pb::change::NewState> {
    let decoded = match resource_type {
        ENTERPRISE_TYPE => {
            decode_enterprise(&event.state_json).map(pb::change::NewState::Enterprise)
        }
        _ => return None,
    };
    if decoded.is_none() {
        tracing::warn!(
            sequence = event.sequence,
            resource = %event.resource,
            "audit state does not decode; change sent without new_state"
        );
    }
    decoded
}

fn to_change(event: &audit_entity::Model, first: &HashMap<String, i64>) -> pb::Change {
    let resource_type = resource_type_of(&event.resource);
    let method_name = event.method.rsplit('/').next().unwrap_or("");
    let kind = if method_name.starts_with("Delete") {
        pb::ChangeKind::Deleted
    } else if first.get(&event.resource) == Some(&event.sequence) {
        pb::ChangeKind::Created
    } else {
        pb::ChangeKind::Updated
    };
    pb::Change {
        cursor: encode_cursor(event.sequence),
        sequence: event.sequence,
        resource: event.resource.clone(),
        resource_type: resource_type.to_string(),
        kind: kind as i32,
        commit_time: Some(to_timestamp(event.commit_time_us)),
        method: event.method.clone(),
        new_state: if kind == pb::ChangeKind::Deleted {
            None
        } else {
            new_state(resource_type, event)
        },
    }
}

/// One read of the feed.
#[derive(Debug)]
struct Page {
    changes: Vec<pb::Change>,
    /// Sequence of the last change examined (matching or not): the next read starts after it.
    position: i64,
    /// The read reached the newest change committed when it began.
    caught_up: bool,
}

/// Up to `size` matching changes after `after`, examining at most `SCAN_BUDGET` events.
async fn read_page(
    conn: &impl ConnectionTrait,
    after: i64,
    filter: &ChangeFilter,
    size: u64,
) -> Result<Page, ApiError> {
    let head = store::head_sequence(conn).await?;
    let mut position = after.min(head);
    let mut changes = Vec::new();
    let mut scanned = 0u64;
    while position < head && (changes.len() as u64) < size && scanned < SCAN_BUDGET {
        let limit = SCAN_CHUNK.min(SCAN_BUDGET - scanned);
        let events =
            store::events_after(conn, position, head, filter.resource.as_deref(), limit).await?;
        scanned += events.len() as u64;
        let mut resources: Vec<String> = events.iter().map(|e| e.resource.clone()).collect();
        resources.sort_unstable();
        resources.dedup();
        let first = store::first_sequences(conn, &resources).await?;
        let mut full = false;
        for event in &events {
            let change = to_change(event, &first);
            position = event.sequence;
            if filter.matches(&change) {
                changes.push(change);
                if changes.len() as u64 >= size {
                    full = true;
                    break;
                }
            }
        }
        if !full && (events.len() as u64) < limit {
            // Fewer than asked: nothing else matches up to `head`.
            position = head;
        }
    }
    Ok(Page {
        changes,
        position,
        caught_up: position >= head,
    })
}

/// Parses the common request parts: the cursor (not beyond the newest change) and the filter.
async fn parse_start(
    db: &DatabaseConnection,
    after_cursor: &str,
    filter: &str,
) -> Result<(i64, ChangeFilter), ApiError> {
    let filter = parse_filter(filter)?;
    let after = decode_cursor(after_cursor, "after_cursor")?;
    if after > 0 {
        let head = store::head_sequence(db).await?;
        if after > head {
            return Err(ApiError::invalid(
                "after_cursor",
                "UNKNOWN_CURSOR",
                format!(
                    "{after_cursor:?} is after the newest change ({}); it does not come from this registry",
                    encode_cursor(head)
                ),
            ));
        }
    }
    Ok((after, filter))
}

pub(super) async fn list_changes(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListChangesRequest,
) -> Result<pb::ListChangesResponse, ApiError> {
    let size = match req.page_size {
        n if n < 0 => {
            return Err(ApiError::invalid(
                "page_size",
                "OUT_OF_RANGE",
                "page_size must not be negative",
            ));
        }
        0 => DEFAULT_PAGE_SIZE,
        n => (n as u64).min(MAX_PAGE_SIZE),
    };
    let (after, filter) = parse_start(&api.db, &req.after_cursor, &req.filter).await?;
    let page = read_page(&api.db, after, &filter, size).await?;
    Ok(pb::ListChangesResponse {
        changes: page.changes,
        next_cursor: encode_cursor(page.position),
        caught_up: page.caught_up,
    })
}

pub(super) async fn watch_changes(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::WatchChangesRequest,
) -> Result<BoxStream<pb::WatchChangesResponse>, ApiError> {
    let (after, filter) = parse_start(&api.db, &req.after_cursor, &req.filter).await?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(follow(
        api.db.clone(),
        after,
        filter,
        tx,
        ctx.shutdown.clone(),
    ));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// How a watch ends when the server shuts down: UNAVAILABLE (retry elsewhere or later) with
/// the cursor of the last change the client was sent or skipped.
fn shutting_down(position: i64) -> Status {
    let cursor = encode_cursor(position);
    ApiError::ShuttingDown {
        message: format!("server shutting down; resume from cursor {cursor}"),
        metadata: vec![("resume_cursor", cursor)],
    }
    .into()
}

/// Sends the backlog after `position`, then new changes as they commit, until the client goes
/// away (the receiver is dropped), the database fails (the error ends the stream; the client
/// resumes from its last cursor) or the server begins shutting down.
async fn follow(
    db: DatabaseConnection,
    mut position: i64,
    filter: ChangeFilter,
    tx: mpsc::Sender<Result<pb::WatchChangesResponse, Status>>,
    shutdown: Shutdown,
) {
    let mut last_sent = tokio::time::Instant::now();
    loop {
        if shutdown.is_started() {
            return end_for_shutdown(&tx, position).await;
        }
        let page = match read_page(&db, position, &filter, WATCH_BATCH).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "change feed watcher stopped");
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        if !page.changes.is_empty() || last_sent.elapsed() >= HEARTBEAT_INTERVAL {
            let message = pb::WatchChangesResponse {
                changes: page.changes,
                cursor: encode_cursor(page.position),
            };
            // A client that stopped reading must not keep the watcher past shutdown; the page
            // it was not sent is not skipped: the resume cursor stays before it.
            tokio::select! {
                sent = tx.send(Ok(message)) => {
                    if sent.is_err() {
                        return;
                    }
                }
                () = shutdown.started() => return end_for_shutdown(&tx, position).await,
            }
            last_sent = tokio::time::Instant::now();
        }
        // Everything up to here was sent or did not match the filter.
        position = page.position;
        if page.caught_up {
            tokio::select! {
                () = tx.closed() => return,
                () = shutdown.started() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        } else if tx.is_closed() {
            return;
        }
    }
}

/// Ends a watch for shutdown: after the messages already queued, UNAVAILABLE with the cursor to
/// resume from. Waits at most a second for a client that stopped reading.
async fn end_for_shutdown(
    tx: &mpsc::Sender<Result<pb::WatchChangesResponse, Status>>,
    position: i64,
) {
    tracing::info!(cursor = %encode_cursor(position), "change feed watcher ended for shutdown");
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        tx.send(Err(shutting_down(position))),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_compare_in_commit_order() {
        for s in [0, 1, 9, 10, 255, 4096, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(s), "c").ok(), Some(s));
        }
        assert!(encode_cursor(9) < encode_cursor(10));
        assert!(encode_cursor(255) < encode_cursor(4096));
        assert_eq!(decode_cursor("", "c").ok(), Some(0));
        for bad in [
            "1",
            "c1",
            "C000000000000000a",
            "c000000000000000A",
            "cffffffffffffffff",
            "x0000000000000001",
        ] {
            assert!(decode_cursor(bad, "c").is_err(), "{bad}");
        }
    }

    #[test]
    fn resource_types_follow_the_name_patterns() {
        let cases = [
            (
                "enterprises/91350100M000100Y43",
                "registry.qilu.gov.cn/Enterprise",
            ),
            (
                "enterprises/X/annualFigures/2024",
                "registry.qilu.gov.cn/AnnualFigures",
            ),
            (
                "enterprises/X/highTechCertificates/7",
                "registry.qilu.gov.cn/HighTechCertificate",
            ),
            (
                "enterprises/X/supportPolicies/1",
                "registry.qilu.gov.cn/SupportPolicy",
            ),
            ("leadingCohorts/2025", "registry.qilu.gov.cn/LeadingCohort"),
            (
                "leadingCohorts/2025/members/X",
                "registry.qilu.gov.cn/LeadingCohortMember",
            ),
            ("zones/jinan", "registry.qilu.gov.cn/Zone"),
            ("clusters/h2", "registry.qilu.gov.cn/Cluster"),
            ("policyTargets/1", "registry.qilu.gov.cn/PolicyTarget"),
            ("widgets/1", ""),
        ];
        for (name, expected) in cases {
            assert_eq!(resource_type_of(name), expected, "{name}");
        }
    }

    #[test]
    fn filters_accept_the_three_documented_fields() {
        let f = parse_filter(
            r#"resource_type = "registry.qilu.gov.cn/Enterprise" AND kind = CHANGE_KIND_CREATED"#,
        )
        .ok();
        assert_eq!(
            f.as_ref().and_then(|f| f.kind),
            Some(pb::ChangeKind::Created)
        );
        assert!(parse_filter("kind = CREATED").is_err());
        assert!(parse_filter(r#"resource_type = "Enterprise""#).is_err());
        assert!(parse_filter(r#"actor = "x""#).is_err());
        let Err(ApiError::InvalidArgument(v)) = parse_filter(r#"resource != "zones/a""#) else {
            panic!("only = is supported");
        };
        assert_eq!(v[0].reason, "UNSUPPORTED_FILTER_OPERATOR");
    }
}
