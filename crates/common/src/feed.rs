//! The change feed every service serves (`ListChanges`, `WatchChanges`, `ExportSnapshot`,
//! `GetChangeFeedHead`): its committed changes in commit order, resumable from any cursor, with
//! each resource's published state after the change, so other government systems can follow it.
//!
//! Built on the audit log, not on a table of its own: every mutation appends one audit event per
//! changed resource in the same transaction, numbered by a gap-free sequence in commit order
//! (writers append under one lock), and each event carries the resource's published state
//! (`audit_event.state_type` / `state_proto`, see [`crate::write::Published`]). So the feed can
//! neither miss a change nor see one that was rolled back, and a cursor is simply the sequence of
//! the last change seen. Changes that time makes (a certificate expiring) are written by the
//! service's sweep ([`crate::sweep`]) as ordinary audited writes, so they are changes too.
//!
//! A service describes its feed with a [`FeedSpec`]: its resource types (by the collection path
//! of their names) and how an event becomes its `Change` message for a given caller (decoding the
//! published state into the message's `new_state` oneof, and hiding or redacting what that
//! caller may not read). Everything else lives here, once:
//!
//! - **Cursor**: `c` + the sequence as 16 lower-case hex digits. Fixed width, so cursors also
//!   compare as strings in commit order. Clients must treat it as opaque.
//! - **Kind**: a resource's first event is its creation (`CREATED`); later events are `UPDATED`;
//!   an event written by a `Delete…` method is `DELETED`.
//! - **Consistency**: a read first takes the newest committed sequence `h`, then reads events
//!   `≤ h`: every one of them is already visible, so a page never has a hole that fills later.
//! - **Watching** polls the database every [`POLL_INTERVAL`] (works across replicas, no notifier
//!   to lose) and stops when the client goes away. When the server begins shutting down the
//!   stream ends at once with UNAVAILABLE naming the cursor to resume from (also in
//!   `ErrorInfo.metadata["resume_cursor"]`), so a subscriber never holds up the drain.
//! - **Snapshots**: [`export`] streams the newest change of every resource (not deleted) as of
//!   the head it reads first, and names that head's cursor: events up to it never change, so a
//!   follower that loads the snapshot and then follows the feed from its cursor misses nothing
//!   and sees nothing twice, however many writes race the export.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryOrder, QuerySelect};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::codegen::BoxStream;

use crate::audit::{self, entity as audit_entity};
use crate::auth::Caller;
use crate::context::{CallContext, Shutdown};
use crate::error::ApiError;
use crate::filter::{Filter, FilterField, Kind, Op, Value};
use crate::pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::time::to_timestamp;

/// How often a watcher looks for new changes once caught up.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// A watcher with nothing to send sends an empty message this often (the contract: at least
/// every 30 seconds), carrying the cursor past any filtered-out changes.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Most changes in one `WatchChanges` message.
const WATCH_BATCH: u64 = 500;
/// Most events one read examines: bounds the work of a heavily filtered page. The cursor still
/// advances past everything examined.
const SCAN_BUDGET: u64 = 10_000;
/// Events fetched per round trip while scanning.
const SCAN_CHUNK: u64 = 1000;
/// Resources per message of a snapshot export.
const EXPORT_BATCH: u64 = 500;

/// Kind of change, numbered as every service's `ChangeKind` enum numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The resource's first event.
    Created = 1,
    /// A later event.
    Updated = 2,
    /// An event written by a `Delete…` method.
    Deleted = 3,
}

impl ChangeKind {
    /// The enum value names of the contract, by number.
    fn from_name(name: &str) -> Option<i32> {
        match name {
            "CHANGE_KIND_CREATED" => Some(1),
            "CHANGE_KIND_UPDATED" => Some(2),
            "CHANGE_KIND_DELETED" => Some(3),
            _ => None,
        }
    }
}

/// What every `Change` message carries besides the new state.
#[derive(Debug, Clone)]
pub struct ChangeHead {
    /// Cursor of this change.
    pub cursor: String,
    /// Sequence in commit order.
    pub sequence: i64,
    /// Resource name.
    pub resource: String,
    /// Resource type, e.g. `registry.qilu.gov.cn/Enterprise`.
    pub resource_type: &'static str,
    /// Kind of change.
    pub kind: ChangeKind,
    /// Commit time.
    pub commit_time: prost_types::Timestamp,
    /// The RPC that made it (or the sweep).
    pub method: String,
}

/// A service's feed: its resource types and how an event becomes its `Change` message.
pub trait FeedSpec: Send + Sync + 'static {
    /// The service's `Change` message.
    type Change: Send + 'static;

    /// Resource types by the collection path of their names (`enterprises/annualFigures` for
    /// `enterprises/X/annualFigures/Y`), as the contract's AIP-122 patterns give them.
    fn resource_types(&self) -> &'static [(&'static str, &'static str)];

    /// The change `event` as `caller` sees it, or `None` when `caller` may not read the
    /// resource (the change is then skipped, as a filtered-out change is). `event` carries the
    /// published state (`state_type`, `state_proto`) to decode into the `new_state` oneof,
    /// redacted as the resource's Get would redact it for `caller`; `None` state for DELETED.
    fn change(
        &self,
        caller: &Caller,
        head: ChangeHead,
        event: &audit_entity::Model,
    ) -> Option<Self::Change>;
}

/// The cursor after the change with `sequence` (0 = before the first change).
pub fn encode_cursor(sequence: i64) -> String {
    format!("c{sequence:016x}")
}

/// The sequence a cursor stands for; empty = 0 (before the first change).
pub fn decode_cursor(raw: &str, field: &str) -> Result<i64, ApiError> {
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
                    crate::limits::echo(raw)
                ),
            )
        })
}

/// The resource type of a resource name among `types`, or "" when it matches no pattern.
pub fn resource_type_of(types: &[(&str, &'static str)], resource: &str) -> &'static str {
    // Collection segments sit at even positions: `enterprises/X/annualFigures/Y`.
    let collections: Vec<&str> = resource.split('/').step_by(2).collect();
    let path = collections.join("/");
    types
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, t)| *t)
        .unwrap_or("")
}

/// A parsed change-feed filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    resource_type: Option<String>,
    resource: Option<String>,
    kind: Option<i32>,
}

impl ChangeFilter {
    fn matches(&self, head: &ChangeHead) -> bool {
        self.resource_type
            .as_ref()
            .is_none_or(|t| t == head.resource_type)
            && self.resource.as_ref().is_none_or(|r| *r == head.resource)
            && self.kind.is_none_or(|k| k == head.kind as i32)
    }
}

/// Every operator, admitted by the table and checked in `parse_filter`: the fields take only
/// `=`, and another operator is refused with the reason `ListAuditEvents` gives for it
/// (`UNSUPPORTED_FILTER_OPERATOR`), not the table's `INVALID_FILTER`.
const ANY_OP: &[Op] = &[Op::Eq, Op::Ne, Op::Has, Op::Lt, Op::Le, Op::Gt, Op::Ge];

/// What the feed filters on (each service's changes.proto documents it).
const CHANGE_FILTER: &[FilterField] = &[
    FilterField::with("resource_type", ANY_OP, Kind::Text),
    FilterField::with("resource", ANY_OP, Kind::Text),
    FilterField::with(
        "kind",
        ANY_OP,
        Kind::Enum {
            type_name: "ChangeKind",
            from_name: ChangeKind::from_name,
        },
    ),
];

/// Parses an AIP-160 feed filter: a conjunction of `=` on `resource_type` (one of `types`),
/// `resource` and `kind`.
pub fn parse_filter(raw: &str, types: &[(&str, &'static str)]) -> Result<ChangeFilter, ApiError> {
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
                if !types.iter().any(|(_, known)| *known == t) {
                    return Err(ApiError::invalid(
                        "filter",
                        "INVALID_FILTER",
                        format!(
                            "resource_type: {:?} is not a resource type of this service; use one of {}",
                            t,
                            types.iter().map(|(_, t)| *t).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                out.resource_type = Some(t);
            }
            ("resource", Value::Text(r)) => out.resource = Some(r),
            ("kind", Value::Enum(k)) => out.kind = Some(k),
            _ => {}
        }
    }
    Ok(out)
}

fn head_of(
    types: &[(&str, &'static str)],
    event: &audit_entity::Model,
    first: &HashMap<String, i64>,
) -> ChangeHead {
    let method_name = event.method.rsplit('/').next().unwrap_or("");
    let kind = if method_name.starts_with("Delete") {
        ChangeKind::Deleted
    } else if first.get(&event.resource) == Some(&event.sequence) {
        ChangeKind::Created
    } else {
        ChangeKind::Updated
    };
    ChangeHead {
        cursor: encode_cursor(event.sequence),
        sequence: event.sequence,
        resource: event.resource.clone(),
        resource_type: resource_type_of(types, &event.resource),
        kind,
        commit_time: to_timestamp(event.commit_time_us),
        method: event.method.clone(),
    }
}

/// One read of the feed.
#[derive(Debug)]
pub struct Page<C> {
    /// The matching changes the caller may see, in commit order.
    pub changes: Vec<C>,
    /// Cursor after the last change examined (matching or not): the next read starts after it.
    pub next_cursor: String,
    /// The read reached the newest change committed when it began.
    pub caught_up: bool,
    position: i64,
}

/// Up to `size` matching changes after `after`, examining at most `SCAN_BUDGET` events.
async fn read_page<S: FeedSpec>(
    conn: &impl ConnectionTrait,
    spec: &S,
    caller: &Caller,
    after: i64,
    filter: &ChangeFilter,
    size: u64,
) -> Result<Page<S::Change>, ApiError> {
    let head = head_sequence(conn).await?;
    let mut position = after.min(head);
    let mut changes = Vec::new();
    let mut scanned = 0u64;
    let types = spec.resource_types();
    while position < head && (changes.len() as u64) < size && scanned < SCAN_BUDGET {
        let limit = SCAN_CHUNK.min(SCAN_BUDGET - scanned);
        let events = events_after(conn, position, head, filter.resource.as_deref(), limit).await?;
        scanned += events.len() as u64;
        let first = first_sequences(conn, events.iter().map(|e| e.resource.as_str())).await?;
        let mut full = false;
        for event in &events {
            position = event.sequence;
            let head = head_of(types, event, &first);
            if filter.matches(&head)
                && let Some(change) = spec.change(caller, head, event)
            {
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
        next_cursor: encode_cursor(position),
        caught_up: position >= head,
        position,
    })
}

/// Parses the common request parts: the cursor (not beyond the newest change) and the filter.
async fn parse_start<S: FeedSpec>(
    db: &DatabaseConnection,
    spec: &S,
    after_cursor: &str,
    filter: &str,
) -> Result<(i64, ChangeFilter), ApiError> {
    let filter = parse_filter(filter, spec.resource_types())?;
    let after = decode_cursor(after_cursor, "after_cursor")?;
    if after > 0 {
        let head = head_sequence(db).await?;
        if after > head {
            return Err(ApiError::invalid(
                "after_cursor",
                "UNKNOWN_CURSOR",
                format!(
                    "{after_cursor:?} is after the newest change ({}); it does not come from this service's feed",
                    encode_cursor(head)
                ),
            ));
        }
    }
    Ok((after, filter))
}

/// `ListChanges`: one page after `after_cursor`.
pub async fn list<S: FeedSpec>(
    db: &DatabaseConnection,
    spec: &S,
    ctx: &CallContext,
    after_cursor: &str,
    page_size: i32,
    filter: &str,
) -> Result<Page<S::Change>, ApiError> {
    let size = match page_size {
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
    let (after, filter) = parse_start(db, spec, after_cursor, filter).await?;
    read_page(db, spec, &ctx.caller, after, &filter, size).await
}

/// `WatchChanges`: the backlog after `after_cursor`, then new changes as they commit, each
/// batch (or heartbeat) turned into the service's message by `message(changes, cursor)`.
pub async fn watch<S, M>(
    db: &DatabaseConnection,
    spec: S,
    ctx: &CallContext,
    after_cursor: &str,
    filter: &str,
    message: fn(Vec<S::Change>, String) -> M,
) -> Result<BoxStream<M>, ApiError>
where
    S: FeedSpec,
    M: Send + 'static,
{
    let (after, filter) = parse_start(db, &spec, after_cursor, filter).await?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(follow(
        db.clone(),
        spec,
        ctx.caller.clone(),
        after,
        filter,
        tx,
        message,
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
#[allow(clippy::too_many_arguments)]
async fn follow<S: FeedSpec, M: Send + 'static>(
    db: DatabaseConnection,
    spec: S,
    caller: Caller,
    mut position: i64,
    filter: ChangeFilter,
    tx: mpsc::Sender<Result<M, Status>>,
    message: fn(Vec<S::Change>, String) -> M,
    shutdown: Shutdown,
) {
    let mut last_sent = tokio::time::Instant::now();
    loop {
        if shutdown.is_started() {
            return end_for_shutdown(&tx, position).await;
        }
        let page = match read_page(&db, &spec, &caller, position, &filter, WATCH_BATCH).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "change feed watcher stopped");
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        if !page.changes.is_empty() || last_sent.elapsed() >= HEARTBEAT_INTERVAL {
            let batch = message(page.changes, page.next_cursor);
            // A client that stopped reading must not keep the watcher past shutdown; the page
            // it was not sent is not skipped: the resume cursor stays before it.
            tokio::select! {
                sent = tx.send(Ok(batch)) => {
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
async fn end_for_shutdown<M>(tx: &mpsc::Sender<Result<M, Status>>, position: i64) {
    tracing::info!(cursor = %encode_cursor(position), "change feed watcher ended for shutdown");
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        tx.send(Err(shutting_down(position))),
    )
    .await;
}

/// The feed's head: the cursor after the newest committed change, its sequence and commit time
/// (`None` for an empty log). Following from this cursor is "start now".
pub async fn head(
    db: &DatabaseConnection,
) -> Result<(String, i64, Option<prost_types::Timestamp>), ApiError> {
    let sequence = head_sequence(db).await?;
    let commit_time = if sequence > 0 {
        audit_entity::Entity::find_by_id(sequence)
            .one(db)
            .await?
            .map(|e| to_timestamp(e.commit_time_us))
    } else {
        None
    };
    Ok((encode_cursor(sequence), sequence, commit_time))
}

/// `ExportSnapshot`: the newest change of every resource `filter` selects (deleted ones left
/// out) as of the feed's head when the export began, in resource-name order, `EXPORT_BATCH` per
/// message; `message(changes, cursor)` builds the service's message, every one naming the same
/// cursor: follow the feed from it to continue. Only `resource_type` and `resource` filter a
/// snapshot; a `kind` term is refused.
pub async fn export<S, M>(
    db: &DatabaseConnection,
    spec: S,
    ctx: &CallContext,
    filter: &str,
    message: fn(Vec<S::Change>, String) -> M,
) -> Result<BoxStream<M>, ApiError>
where
    S: FeedSpec,
    M: Send + 'static,
{
    let filter = parse_filter(filter, spec.resource_types())?;
    if filter.kind.is_some() {
        return Err(ApiError::invalid(
            "filter",
            "INVALID_FILTER",
            "a snapshot holds each resource's newest change; filter it by resource_type or resource, not kind",
        ));
    }
    let up_to = head_sequence(db).await?;
    let (lo, hi) = name_range(spec.resource_types(), &filter);
    let (tx, rx) = mpsc::channel(4);
    let db = db.clone();
    let caller = ctx.caller.clone();
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        let cursor = encode_cursor(up_to);
        let mut after = String::new();
        let mut sent_any = false;
        loop {
            if shutdown.is_started() {
                let _ = tx
                    .send(Err(ApiError::ShuttingDown {
                        message: "server shutting down; export again".into(),
                        metadata: vec![],
                    }
                    .into()))
                    .await;
                return;
            }
            let batch =
                match snapshot_batch(&db, &spec, &caller, &filter, up_to, &lo, &hi, &after).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!(error = %e, "snapshot export stopped");
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
            let Some((last, changes)) = batch else {
                break;
            };
            after = last;
            if changes.is_empty() {
                continue;
            }
            sent_any = true;
            if tx.send(Ok(message(changes, cursor.clone()))).await.is_err() {
                return;
            }
        }
        if !sent_any {
            // An empty snapshot still names its cursor.
            let _ = tx.send(Ok(message(Vec::new(), cursor))).await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// The resource-name range a filter confines a snapshot to: `[lo, hi)`, `hi` empty = unbounded.
/// Names of one type all start with its first collection segment and a slash.
fn name_range(types: &[(&str, &'static str)], filter: &ChangeFilter) -> (String, String) {
    if let Some(resource) = &filter.resource {
        // One name: `snapshot_batch` compares it for equality (a NUL-terminated upper bound is
        // not a string PostgreSQL accepts).
        return (resource.clone(), String::new());
    }
    if let Some(t) = &filter.resource_type
        && let Some((path, _)) = types.iter().find(|(_, known)| known == t)
    {
        let first = path.split('/').next().unwrap_or("");
        // '0' follows '/' in ASCII: every `first/…` name sorts in [`first/`, `first0`).
        return (format!("{first}/"), format!("{first}0"));
    }
    (String::new(), String::new())
}

/// The next batch of a snapshot after resource name `after`: the last name examined and the
/// changes to send (after filtering and visibility), or `None` when no resource is left.
#[allow(clippy::too_many_arguments)]
async fn snapshot_batch<S: FeedSpec>(
    db: &DatabaseConnection,
    spec: &S,
    caller: &Caller,
    filter: &ChangeFilter,
    up_to: i64,
    lo: &str,
    hi: &str,
    after: &str,
) -> Result<Option<(String, Vec<S::Change>)>, ApiError> {
    let mut query = audit_entity::Entity::find()
        .select_only()
        .column(audit_entity::Column::Resource)
        .column_as(audit_entity::Column::Sequence.max(), "last_sequence")
        .filter(audit_entity::Column::Sequence.lte(up_to))
        .filter(audit_entity::Column::Resource.gt(after))
        .filter(audit_entity::Column::Resource.gte(lo));
    if !hi.is_empty() {
        query = query.filter(audit_entity::Column::Resource.lt(hi));
    }
    if let Some(resource) = &filter.resource {
        query = query.filter(audit_entity::Column::Resource.eq(resource.as_str()));
    }
    let rows: Vec<(String, Option<i64>)> = query
        .group_by(audit_entity::Column::Resource)
        .order_by_asc(audit_entity::Column::Resource)
        .limit(EXPORT_BATCH)
        .into_tuple()
        .all(db)
        .await?;
    let Some((last, _)) = rows.last() else {
        return Ok(None);
    };
    let last = last.clone();
    let sequences: Vec<i64> = rows.iter().filter_map(|(_, s)| *s).collect();
    let mut events = audit_entity::Entity::find()
        .filter(audit_entity::Column::Sequence.is_in(sequences))
        .all(db)
        .await?;
    events.sort_by(|a, b| a.resource.cmp(&b.resource));
    let first = first_sequences(db, events.iter().map(|e| e.resource.as_str())).await?;
    let types = spec.resource_types();
    let changes = events
        .iter()
        .map(|e| (e, head_of(types, e, &first)))
        .filter(|(_, h)| h.kind != ChangeKind::Deleted && filter.matches(h))
        .filter_map(|(e, h)| spec.change(caller, h, e))
        .collect();
    Ok(Some((last, changes)))
}

/// The newest committed sequence of the audit log (0 when empty). Events up to it are all
/// visible once it is: writers append under one lock and commit in sequence order.
pub async fn head_sequence(conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
    Ok(audit::read_head(conn, false).await?.sequence)
}

/// Up to `limit` audit events with `after < sequence <= up_to`, in sequence order; only those
/// of `resource` when given.
pub async fn events_after(
    conn: &impl ConnectionTrait,
    after: i64,
    up_to: i64,
    resource: Option<&str>,
    limit: u64,
) -> Result<Vec<audit_entity::Model>, DbErr> {
    let mut query = audit_entity::Entity::find()
        .filter(audit_entity::Column::Sequence.gt(after))
        .filter(audit_entity::Column::Sequence.lte(up_to));
    if let Some(r) = resource {
        query = query.filter(audit_entity::Column::Resource.eq(r));
    }
    query
        .order_by_asc(audit_entity::Column::Sequence)
        .limit(limit)
        .all(conn)
        .await
}

/// The sequence of the first event of each of `resources` (its creation), by resource.
/// One grouped query over the `(resource, sequence)` index.
pub async fn first_sequences<'a>(
    conn: &impl ConnectionTrait,
    resources: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, i64>, DbErr> {
    let mut resources: Vec<&str> = resources.into_iter().collect();
    resources.sort_unstable();
    resources.dedup();
    if resources.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<i64>)> = audit_entity::Entity::find()
        .select_only()
        .column(audit_entity::Column::Resource)
        .column_as(audit_entity::Column::Sequence.min(), "first_sequence")
        .filter(audit_entity::Column::Resource.is_in(resources))
        .group_by(audit_entity::Column::Resource)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(r, s)| s.map(|s| (r, s)))
        .collect())
}

/// The newest event of each of `resources` that has one, by resource: what the feed last said
/// about it. Two queries over the `(resource, sequence)` index.
pub async fn latest_events(
    conn: &impl ConnectionTrait,
    resources: &[String],
) -> Result<HashMap<String, audit_entity::Model>, DbErr> {
    if resources.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<i64>)> = audit_entity::Entity::find()
        .select_only()
        .column(audit_entity::Column::Resource)
        .column_as(audit_entity::Column::Sequence.max(), "last_sequence")
        .filter(audit_entity::Column::Resource.is_in(resources.iter().map(String::as_str)))
        .group_by(audit_entity::Column::Resource)
        .into_tuple()
        .all(conn)
        .await?;
    let sequences: Vec<i64> = rows.into_iter().filter_map(|(_, s)| s).collect();
    Ok(audit_entity::Entity::find()
        .filter(audit_entity::Column::Sequence.is_in(sequences))
        .all(conn)
        .await?
        .into_iter()
        .map(|e| (e.resource.clone(), e))
        .collect())
}

/// Decodes the published state of `event` as message `M`, when that is what it holds.
pub fn decode_state<M: prost::Message + prost::Name + Default>(
    event: &audit_entity::Model,
) -> Option<M> {
    if event.state_type != M::full_name() {
        return None;
    }
    let decoded = M::decode(event.state_proto.as_deref().unwrap_or_default());
    if let Err(e) = &decoded {
        tracing::warn!(sequence = event.sequence, resource = %event.resource, error = %e,
            "published state does not decode");
    }
    decoded.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPES: &[(&str, &str)] = &[
        ("enterprises", "registry.qilu.gov.cn/Enterprise"),
        (
            "enterprises/annualFigures",
            "registry.qilu.gov.cn/AnnualFigures",
        ),
        ("zones", "registry.qilu.gov.cn/Zone"),
    ];

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
        assert_eq!(
            resource_type_of(TYPES, "enterprises/X/annualFigures/2024"),
            "registry.qilu.gov.cn/AnnualFigures"
        );
        assert_eq!(
            resource_type_of(TYPES, "enterprises/X"),
            "registry.qilu.gov.cn/Enterprise"
        );
        assert_eq!(resource_type_of(TYPES, "widgets/1"), "");
    }

    #[test]
    fn filters_accept_the_three_documented_fields() {
        let f = parse_filter(
            r#"resource_type = "registry.qilu.gov.cn/Zone" AND kind = CHANGE_KIND_CREATED"#,
            TYPES,
        );
        assert_eq!(f.ok().and_then(|f| f.kind), Some(1));
        assert!(parse_filter("kind = CREATED", TYPES).is_err());
        assert!(parse_filter(r#"resource_type = "Zone""#, TYPES).is_err());
        assert!(parse_filter(r#"actor = "x""#, TYPES).is_err());
        let Err(ApiError::InvalidArgument(v)) = parse_filter(r#"resource != "zones/a""#, TYPES)
        else {
            panic!("only = is supported");
        };
        assert_eq!(v[0].reason, "UNSUPPORTED_FILTER_OPERATOR");
    }

    #[test]
    fn snapshot_ranges_hold_exactly_one_family() {
        let f = parse_filter(
            r#"resource_type = "registry.qilu.gov.cn/Enterprise""#,
            TYPES,
        );
        let (lo, hi) = name_range(TYPES, &f.unwrap_or_default());
        assert!(lo.as_str() <= "enterprises/9135" && "enterprises/9135" < hi.as_str());
        assert!("enterprises0" >= hi.as_str() && "enterprise/" < lo.as_str());
        assert!("zones/a" >= hi.as_str());
        // One resource: compared for equality, and never a bound PostgreSQL refuses (a NUL made
        // `resource = "..."` snapshots INTERNAL there).
        let one = parse_filter(r#"resource = "enterprises/9135""#, TYPES).unwrap_or_default();
        let (lo, hi) = name_range(TYPES, &one);
        assert_eq!((lo.as_str(), hi.as_str()), ("enterprises/9135", ""));
    }
}
