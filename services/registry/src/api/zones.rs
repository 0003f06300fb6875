//! High-tech zones, industrial clusters and cluster progress.
//!
//! A cluster's target: its own `target_scale_fen` / `target_year` where set, otherwise the
//! CLUSTER_SCALE policy target in force for the cluster's own target year, or — when the cluster
//! sets no year — for the current programme year (so clusters that follow the policy follow a
//! new target once it supersedes the old one). Progress rules: `crate::domain::cluster`.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use qilu_common::error::FieldViolation;
use qilu_common::filter::{Condition, Filter, Op};
use qilu_common::pagination::PageRequest;
use qilu_common::time::{to_datetime, to_timestamp};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::common::GreenCategory;
use qilu_proto::registry as pb;
use sea_orm::{ConnectionTrait, DbErr};

use crate::convert::parse_enterprise_name;
use crate::domain::cluster::{
    self, Cluster, ClusterFields, EffectiveTarget, MAX_DESCRIPTION_CHARS, MAX_MEMBERS,
    PolicyDefault, Progress,
};
use crate::domain::figures::FigureKind;
use crate::domain::policy::{MAX_YEAR, MIN_YEAR};
use crate::domain::uscc::KnownExceptions;
use crate::domain::zone::{
    DivisionError, EARLIEST_APPROVAL, MAX_DISPLAY_NAME_CHARS, Zone, ZoneFields, ZoneLevel,
    parse_id, zone_city,
};
use crate::store::zones::{self as store, ClusterFilter, Cursor, Order, ZoneFilter};

use super::RegistryApi;
use super::policy::policy_target_name;

/// Resource type of zones in errors.
pub(super) const ZONE_TYPE: &str = "registry.qilu.gov.cn/Zone";
/// Resource type of clusters in errors.
pub(super) const CLUSTER_TYPE: &str = "registry.qilu.gov.cn/Cluster";

// ---------------------------------------------------------------------------------------------
// Shared parsing
// ---------------------------------------------------------------------------------------------

/// Parses `{collection}/{id}` in `field`.
fn parse_name(name: &str, collection: &str, field: &str) -> Result<String, ApiError> {
    let id = name
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "INVALID_RESOURCE_NAME",
                format!(
                    "expected {collection}/{{id}}, got {}",
                    qilu_common::limits::echo(name)
                ),
            )
        })?;
    parse_id(id).map_err(|e| ApiError::invalid(field, "INVALID_RESOURCE_NAME", e.to_string()))
}

/// Trimmed text of at most `max` characters. `multiline` admits line breaks and tabs; other
/// control characters are always refused.
fn text(
    raw: &str,
    at: &str,
    max: usize,
    required: bool,
    multiline: bool,
) -> Result<String, FieldViolation> {
    let value = raw.trim();
    if required && value.is_empty() {
        return Err(FieldViolation::new(at, "REQUIRED", "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FieldViolation::new(
            at,
            "TOO_LONG",
            format!("at most {max} characters"),
        ));
    }
    let bad = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'));
    if value.chars().any(bad) {
        return Err(FieldViolation::new(
            at,
            "CONTROL_CHARACTER",
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// The update mask's paths, refusing an empty mask.
fn mask_paths(
    mask: Option<&prost_types::FieldMask>,
    allowed: &[&str],
) -> Result<Vec<String>, ApiError> {
    let paths: Vec<String> = mask.map(|m| m.paths.clone()).unwrap_or_default();
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "update_mask",
            "REQUIRED",
            format!("name the fields to update: {}", allowed.join(", ")),
        ));
    }
    Ok(paths)
}

fn not_updatable(path: &str, allowed: &[&str]) -> FieldViolation {
    FieldViolation::new(
        "update_mask",
        "FIELD_NOT_UPDATABLE",
        format!(
            "{path:?} cannot be updated; updatable fields: {}",
            allowed.join(", ")
        ),
    )
}

/// `ORDER BY` for zones and clusters: `name` (default) or `display_name`, optional `desc`.
fn parse_order(raw: &str) -> Result<Order, ApiError> {
    qilu_common::limits::order_by(raw)?;
    let words: Vec<&str> = raw.split_whitespace().collect();
    let invalid = || {
        ApiError::invalid(
            "order_by",
            "INVALID_ORDER_BY",
            format!(
                "cannot order by {}; use name or display_name, optionally with desc",
                qilu_common::limits::echo(raw)
            ),
        )
    };
    let desc = match words.get(1).copied() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid()),
    };
    if words.len() > 2 {
        return Err(invalid());
    }
    match words.first().copied() {
        None | Some("name") => Ok(Order::Name { desc }),
        Some("display_name") => Ok(Order::DisplayName { desc }),
        Some(_) => Err(invalid()),
    }
}

fn filter_error(c: &Condition, why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid("filter", "INVALID_FILTER", format!("{}: {why}", c.field))
}

fn expect_op(c: &Condition, op: Op) -> Result<(), ApiError> {
    if c.op == op {
        Ok(())
    } else {
        Err(filter_error(
            c,
            format!("supports only {}", if op == Op::Has { ":" } else { "=" }),
        ))
    }
}

fn next_token(
    page: &PageRequest,
    more: bool,
    order: Order,
    last: Option<(&str, &str)>,
) -> Result<String, ApiError> {
    match (more, last) {
        (true, Some((id, display_name))) => page.next_token(&Cursor {
            display_name: matches!(order, Order::DisplayName { .. })
                .then(|| display_name.to_string()),
            id: id.to_string(),
        }),
        _ => Ok(String::new()),
    }
}

// ---------------------------------------------------------------------------------------------
// Zones
// ---------------------------------------------------------------------------------------------

/// Fields an UpdateZone mask may name.
const ZONE_FIELDS: &[&str] = &["display_name", "level", "division_code", "approval_date"];

fn zone_not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: ZONE_TYPE,
        name: crate::domain::zone::zone_name(id),
    }
}

fn zone_to_proto(z: &Zone, enterprise_count: i64) -> pb::Zone {
    pb::Zone {
        name: z.name(),
        display_name: z.fields.display_name.clone(),
        level: z.fields.level.code(),
        division_code: z.fields.division_code.clone(),
        city: z.city().to_string(),
        approval_date: z
            .fields
            .approval_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        enterprise_count: i32::try_from(enterprise_count).unwrap_or(i32::MAX),
        create_time: Some(to_timestamp(z.create_time_us)),
        update_time: Some(to_timestamp(z.update_time_us)),
        etag: z.etag(),
    }
}

/// Validates zone field `path` of `p` and writes it into `fields`.
fn apply_zone_field(
    fields: &mut ZoneFields,
    p: &pb::Zone,
    path: &str,
    today: NaiveDate,
) -> Result<(), FieldViolation> {
    let at = format!("zone.{path}");
    match path {
        "display_name" => {
            fields.display_name = text(&p.display_name, &at, MAX_DISPLAY_NAME_CHARS, true, false)?;
        }
        "level" => {
            fields.level = ZoneLevel::from_code(p.level).ok_or_else(|| {
                if p.level == 0 {
                    FieldViolation::new(&at, "REQUIRED", "national or provincial level is required")
                } else {
                    FieldViolation::new(
                        &at,
                        "UNKNOWN_ENUM_VALUE",
                        format!("{} is not a ZoneLevel", p.level),
                    )
                }
            })?;
        }
        "division_code" => {
            let raw = p.division_code.trim();
            if raw.is_empty() {
                return Err(FieldViolation::new(
                    &at,
                    "REQUIRED",
                    "the city's six-digit GB/T 2260 division code is required",
                ));
            }
            zone_city(raw).map_err(|e| {
                let reason = match e {
                    DivisionError::Malformed(_) => "INVALID_DIVISION_CODE",
                    DivisionError::NotShandong(_) => "NOT_IN_SHANDONG",
                };
                FieldViolation::new(&at, reason, e.to_string())
            })?;
            fields.division_code = raw.to_string();
        }
        "approval_date" => {
            let raw = p.approval_date.trim();
            fields.approval_date = if raw.is_empty() {
                None
            } else {
                // Strict ISO: chrono alone would also take "1991-3-6".
                let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                    .ok()
                    .filter(|d| d.format("%Y-%m-%d").to_string() == raw)
                    .ok_or_else(|| {
                        FieldViolation::new(
                            &at,
                            "INVALID_DATE",
                            format!(
                                "{} is not a date YYYY-MM-DD",
                                qilu_common::limits::echo(raw)
                            ),
                        )
                    })?;
                let (y, m, dd) = EARLIEST_APPROVAL;
                let earliest = NaiveDate::from_ymd_opt(y, m, dd).unwrap_or(NaiveDate::MIN);
                if d > today {
                    return Err(FieldViolation::new(
                        &at,
                        "IN_FUTURE",
                        format!("{d} is in the future"),
                    ));
                }
                if d < earliest {
                    return Err(FieldViolation::new(
                        &at,
                        "TOO_EARLY",
                        format!("{d} is before {earliest}"),
                    ));
                }
                Some(d)
            };
        }
        other => return Err(not_updatable(other, ZONE_FIELDS)),
    }
    Ok(())
}

pub(super) async fn create_zone(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateZoneRequest,
) -> Result<pb::Zone, ApiError> {
    let mut violations = Vec::new();
    let id = parse_id(&req.zone_id)
        .map_err(|e| violations.push(FieldViolation::new("zone_id", "INVALID_ID", e.to_string())))
        .ok();
    let Some(input) = req.zone.as_ref() else {
        violations.push(FieldViolation::new("zone", "REQUIRED", "zone is required"));
        return Err(ApiError::InvalidArgument(violations));
    };
    let mut fields = ZoneFields {
        display_name: String::new(),
        level: ZoneLevel::National,
        division_code: String::new(),
        approval_date: None,
    };
    let today = api.today();
    for path in ZONE_FIELDS {
        if let Err(v) = apply_zone_field(&mut fields, input, path, today) {
            violations.push(v);
        }
    }
    let (Some(id), true) = (id, violations.is_empty()) else {
        return Err(ApiError::InvalidArgument(violations));
    };

    let mut tx = match WriteTx::begin::<pb::Zone>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let now = tx.now_us();
    let zone = Zone {
        id,
        fields,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert_zone(tx.conn(), &zone).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: ZONE_TYPE,
                name: zone.name(),
            }
        } else {
            e.into()
        });
    }
    // Enterprises may name a zone before it is registered: count them from the start.
    let count = enterprise_count(tx.conn(), &zone.name()).await?;
    let response = zone_to_proto(&zone, count);
    tx.record(&zone.name(), &zone)?;
    tx.commit(&response).await?;
    tracing::info!(zone = %zone.name(), "zone registered");
    Ok(response)
}

async fn enterprise_count(conn: &impl ConnectionTrait, name: &str) -> Result<i64, ApiError> {
    let counts = store::active_enterprise_counts(conn, &[name.to_string()]).await?;
    Ok(counts.get(name).copied().unwrap_or(0))
}

async fn load_zone(conn: &impl ConnectionTrait, id: &str) -> Result<Zone, ApiError> {
    store::get_zone(conn, id)
        .await?
        .ok_or_else(|| zone_not_found(id))?
        .into_domain()
        .map_err(ApiError::internal)
}

pub(super) async fn get_zone(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetZoneRequest,
) -> Result<pb::Zone, ApiError> {
    let id = parse_name(&req.name, "zones", "name")?;
    let zone = load_zone(&api.db, &id).await?;
    let count = enterprise_count(&api.db, &zone.name()).await?;
    Ok(zone_to_proto(&zone, count))
}

fn parse_zone_filter(raw: &str) -> Result<ZoneFilter, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&["level", "city", "display_name"])?;
    let mut out = ZoneFilter::default();
    for c in filter.conditions() {
        match c.field.as_str() {
            "level" => {
                expect_op(c, Op::Eq)?;
                let level = pb::ZoneLevel::from_str_name(&c.value)
                    .filter(|l| *l != pb::ZoneLevel::Unspecified)
                    .ok_or_else(|| filter_error(c, format!("{:?} is not a ZoneLevel", c.value)))?;
                out.level = Some(level as i32);
            }
            "city" => {
                expect_op(c, Op::Eq)?;
                out.city = Some(c.value.clone());
            }
            "display_name" => {
                expect_op(c, Op::Has)?;
                out.name_contains = Some(c.value.clone());
            }
            _ => {}
        }
    }
    Ok(out)
}

pub(super) async fn list_zones(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListZonesRequest,
) -> Result<pb::ListZonesResponse, ApiError> {
    let filter = parse_zone_filter(&req.filter)?;
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    let mut rows = store::list_zones(&api.db, &filter, order, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = next_token(
        &page,
        more,
        order,
        rows.last()
            .map(|r| (r.id.as_str(), r.display_name.as_str())),
    )?;
    let zones = rows
        .into_iter()
        .map(|m| m.into_domain())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let names: Vec<String> = zones.iter().map(Zone::name).collect();
    let counts = store::active_enterprise_counts(&api.db, &names).await?;
    Ok(pb::ListZonesResponse {
        zones: zones
            .iter()
            .map(|z| zone_to_proto(z, counts.get(&z.name()).copied().unwrap_or(0)))
            .collect(),
        next_page_token,
    })
}

pub(super) async fn update_zone(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::UpdateZoneRequest,
) -> Result<pb::Zone, ApiError> {
    let Some(input) = req.zone.as_ref() else {
        return Err(ApiError::invalid("zone", "REQUIRED", "zone is required"));
    };
    let id = parse_name(&input.name, "zones", "zone.name")?;
    let paths = mask_paths(req.update_mask.as_ref(), ZONE_FIELDS)?;
    let today = api.today();

    let mut tx = match WriteTx::begin::<pb::Zone>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = load_zone(tx.conn(), &id).await?;
    if !input.etag.is_empty() && input.etag != current.etag() {
        return Err(ApiError::Aborted(format!(
            "{} changed since etag {} was read; read it again and retry",
            current.name(),
            input.etag
        )));
    }
    let mut updated = current.clone();
    let violations: Vec<FieldViolation> = paths
        .iter()
        .filter_map(|path| apply_zone_field(&mut updated.fields, input, path, today).err())
        .collect();
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_zone_if_version(tx.conn(), &updated, current.version).await? {
        return Err(ApiError::Aborted(format!(
            "{} changed concurrently; retry",
            current.name()
        )));
    }
    let count = enterprise_count(tx.conn(), &updated.name()).await?;
    let response = zone_to_proto(&updated, count);
    tx.record(&updated.name(), &updated)?;
    tx.commit(&response).await?;
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------------

/// Fields an UpdateCluster mask may name.
const CLUSTER_FIELDS: &[&str] = &[
    "display_name",
    "green_category",
    "description",
    "members",
    "target_scale_fen",
    "target_year",
    "start_year",
];

fn cluster_not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: CLUSTER_TYPE,
        name: cluster::cluster_name(id),
    }
}

fn enterprise_name(uscc: &str) -> String {
    format!("enterprises/{uscc}")
}

/// A cluster as the API shows it; `target` is its effective target, if one resolves.
fn cluster_to_proto(c: &Cluster, target: Option<&EffectiveTarget>) -> pb::Cluster {
    pb::Cluster {
        name: c.name(),
        display_name: c.fields.display_name.clone(),
        green_category: c.fields.green_category,
        description: c.fields.description.clone(),
        members: c
            .fields
            .members
            .iter()
            .map(|u| enterprise_name(u))
            .collect(),
        target_scale_fen: c.fields.target_scale_fen,
        target_year: c.fields.target_year,
        effective_target_scale_fen: target
            .map(|t| t.scale_fen)
            .or(c.fields.target_scale_fen)
            .unwrap_or(0),
        effective_target_year: target.map(|t| t.year).or(c.fields.target_year).unwrap_or(0),
        target_source: target.map(|t| t.source.clone()).unwrap_or_default(),
        start_year: c.fields.start_year,
        create_time: Some(to_timestamp(c.create_time_us)),
        update_time: Some(to_timestamp(c.update_time_us)),
        etag: c.etag(),
    }
}

/// The CLUSTER_SCALE policy target in force for `year`, as a cluster's fallback.
async fn policy_default(
    conn: &impl ConnectionTrait,
    year: i32,
) -> Result<Option<PolicyDefault>, DbErr> {
    Ok(
        crate::store::policy::in_force(conn, crate::store::policy::kind::CLUSTER_SCALE, year)
            .await?
            .map(|m| PolicyDefault {
                name: policy_target_name(&m.id),
                value_fen: m.value,
                target_year: m.target_year,
            }),
    )
}

/// The effective target of a cluster with `fields` (see the module doc for the lookup year).
async fn resolve_target(
    conn: &impl ConnectionTrait,
    fields: &ClusterFields,
    current_year: i32,
) -> Result<Option<EffectiveTarget>, DbErr> {
    let policy = match (fields.target_scale_fen, fields.target_year) {
        (Some(_), Some(_)) => None,
        (_, own_year) => policy_default(conn, own_year.unwrap_or(current_year)).await?,
    };
    Ok(cluster::effective_target(
        fields.target_scale_fen,
        fields.target_year,
        policy.as_ref(),
    ))
}

fn no_target(name: &str, fields: &ClusterFields, current_year: i32) -> ApiError {
    let year = fields.target_year.unwrap_or(current_year);
    ApiError::precondition(
        "NO_CLUSTER_SCALE_TARGET",
        name,
        format!(
            "no CLUSTER_SCALE policy target with a target year is in force for {year}; \
             set target_scale_fen and target_year on the cluster or record a policy target"
        ),
    )
}

/// Parsed member list: (index in the request, USCC), in request order.
type Members = Vec<(usize, String)>;

fn parse_members(
    names: &[String],
    known: &KnownExceptions,
) -> Result<Members, Vec<FieldViolation>> {
    if names.len() > MAX_MEMBERS {
        return Err(vec![FieldViolation::new(
            "cluster.members",
            "TOO_MANY",
            format!("at most {MAX_MEMBERS} members, got {}", names.len()),
        )]);
    }
    let mut violations = Vec::new();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let at = format!("cluster.members[{i}]");
        match parse_enterprise_name(name.trim(), &at, known) {
            Ok(u) => {
                let code = u.as_str().to_string();
                if seen.insert(code.clone()) {
                    out.push((i, code));
                } else {
                    violations.push(FieldViolation::new(
                        at,
                        "DUPLICATE",
                        format!("{} is listed more than once", enterprise_name(&code)),
                    ));
                }
            }
            Err(ApiError::InvalidArgument(v)) => violations.extend(v),
            Err(other) => violations.push(FieldViolation::new(at, "INVALID", other.to_string())),
        }
    }
    if violations.is_empty() {
        Ok(out)
    } else {
        Err(violations)
    }
}

/// Refuses members that are not registered, naming each by its index in the request.
async fn check_members_exist(
    conn: &impl ConnectionTrait,
    members: &Members,
) -> Result<(), ApiError> {
    let codes: Vec<String> = members.iter().map(|(_, u)| u.clone()).collect();
    let mut found = HashSet::new();
    for chunk in codes.chunks(500) {
        for row in crate::store::enterprise::get_many(conn, chunk).await? {
            found.insert(row.uscc);
        }
    }
    let violations: Vec<FieldViolation> = members
        .iter()
        .filter(|(_, u)| !found.contains(u))
        .map(|(i, u)| {
            FieldViolation::new(
                format!("cluster.members[{i}]"),
                "UNKNOWN_ENTERPRISE",
                format!("{} is not registered", enterprise_name(u)),
            )
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(violations))
    }
}

/// Years a cluster names: within the sanity bounds.
fn check_year(year: i32, at: &str) -> Result<i32, FieldViolation> {
    if (MIN_YEAR..=MAX_YEAR).contains(&year) {
        Ok(year)
    } else {
        Err(FieldViolation::new(
            at,
            "OUT_OF_RANGE",
            format!("{year} is outside {MIN_YEAR}-{MAX_YEAR}"),
        ))
    }
}

/// What applying a mask path needs besides the input.
struct ClusterContext<'a> {
    known: &'a KnownExceptions,
    current_year: i32,
    /// `start_year` when the input gives 0: the year of creation.
    default_start_year: i32,
}

/// Validates cluster field `path` of `p` into `fields`; a parsed member list is returned for
/// the existence check.
fn apply_cluster_field(
    fields: &mut ClusterFields,
    p: &pb::Cluster,
    path: &str,
    cx: &ClusterContext<'_>,
    members: &mut Option<Members>,
) -> Result<(), Vec<FieldViolation>> {
    let at = format!("cluster.{path}");
    let one = |v: FieldViolation| vec![v];
    match path {
        "display_name" => {
            fields.display_name =
                text(&p.display_name, &at, MAX_DISPLAY_NAME_CHARS, true, false).map_err(one)?;
        }
        "green_category" => match GreenCategory::try_from(p.green_category) {
            Ok(GreenCategory::Unspecified) => {
                return Err(one(FieldViolation::new(
                    at,
                    "REQUIRED",
                    "a cluster's green field is required",
                )));
            }
            Ok(_) => fields.green_category = p.green_category,
            Err(_) => {
                return Err(one(FieldViolation::new(
                    at,
                    "UNKNOWN_ENUM_VALUE",
                    format!("{} is not a green category", p.green_category),
                )));
            }
        },
        "description" => {
            fields.description =
                text(&p.description, &at, MAX_DESCRIPTION_CHARS, false, true).map_err(one)?;
        }
        "members" => {
            let parsed = parse_members(&p.members, cx.known)?;
            let mut codes: Vec<String> = parsed.iter().map(|(_, u)| u.clone()).collect();
            codes.sort_unstable();
            fields.members = codes;
            *members = Some(parsed);
        }
        "target_scale_fen" => {
            if let Some(v) = p.target_scale_fen
                && v <= 0
            {
                return Err(one(FieldViolation::new(
                    at,
                    "NOT_POSITIVE",
                    format!("a target scale is a positive amount of fen, got {v}"),
                )));
            }
            fields.target_scale_fen = p.target_scale_fen;
        }
        "target_year" => {
            fields.target_year = match p.target_year {
                Some(y) => Some(check_year(y, &at).map_err(one)?),
                None => None,
            };
        }
        "start_year" => {
            fields.start_year = match p.start_year {
                0 => cx.default_start_year,
                y => {
                    let y = check_year(y, &at).map_err(one)?;
                    if y > cx.current_year {
                        return Err(one(FieldViolation::new(
                            at,
                            "IN_FUTURE",
                            format!("a cluster established in {y} is in the future"),
                        )));
                    }
                    y
                }
            };
        }
        other => return Err(one(not_updatable(other, CLUSTER_FIELDS))),
    }
    Ok(())
}

/// Rules between fields: an own target year is not before the start year.
fn check_cluster(fields: &ClusterFields) -> Result<(), ApiError> {
    match fields.target_year {
        Some(y) if y < fields.start_year => Err(ApiError::invalid(
            "cluster.target_year",
            "BEFORE_START_YEAR",
            format!(
                "the target year {y} is before the cluster's start year {}",
                fields.start_year
            ),
        )),
        _ => Ok(()),
    }
}

pub(super) async fn create_cluster(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateClusterRequest,
) -> Result<pb::Cluster, ApiError> {
    let mut violations = Vec::new();
    let id = parse_id(&req.cluster_id)
        .map_err(|e| {
            violations.push(FieldViolation::new(
                "cluster_id",
                "INVALID_ID",
                e.to_string(),
            ))
        })
        .ok();
    let Some(input) = req.cluster.as_ref() else {
        violations.push(FieldViolation::new(
            "cluster",
            "REQUIRED",
            "cluster is required",
        ));
        return Err(ApiError::InvalidArgument(violations));
    };
    let current_year = api.today().year();
    let cx = ClusterContext {
        known: &api.known_exceptions,
        current_year,
        default_start_year: current_year,
    };
    let mut fields = ClusterFields {
        display_name: String::new(),
        green_category: 0,
        description: String::new(),
        members: Vec::new(),
        target_scale_fen: None,
        target_year: None,
        start_year: current_year,
    };
    let mut members = None;
    for path in CLUSTER_FIELDS {
        if let Err(v) = apply_cluster_field(&mut fields, input, path, &cx, &mut members) {
            violations.extend(v);
        }
    }
    let (Some(id), true) = (id, violations.is_empty()) else {
        return Err(ApiError::InvalidArgument(violations));
    };
    check_cluster(&fields)?;

    let mut tx = match WriteTx::begin::<pb::Cluster>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    if let Some(members) = &members {
        check_members_exist(tx.conn(), members).await?;
    }
    let now = tx.now_us();
    let cluster = Cluster {
        id,
        fields,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    let target = resolve_target(tx.conn(), &cluster.fields, current_year)
        .await?
        .ok_or_else(|| no_target(&cluster.name(), &cluster.fields, current_year))?;
    if let Err(e) = store::insert_cluster(tx.conn(), &cluster).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: CLUSTER_TYPE,
                name: cluster.name(),
            }
        } else {
            e.into()
        });
    }
    let response = cluster_to_proto(&cluster, Some(&target));
    tx.record(&cluster.name(), &cluster)?;
    tx.commit(&response).await?;
    tracing::info!(cluster = %cluster.name(), target_source = %target.source, "cluster registered");
    Ok(response)
}

async fn load_cluster(conn: &impl ConnectionTrait, id: &str) -> Result<Cluster, ApiError> {
    store::get_cluster(conn, id)
        .await?
        .ok_or_else(|| cluster_not_found(id))
}

pub(super) async fn get_cluster(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetClusterRequest,
) -> Result<pb::Cluster, ApiError> {
    let id = parse_name(&req.name, "clusters", "name")?;
    let found = store::get_cluster(&api.db, &id).await?;
    // An enterprise sees only clusters it belongs to; whether another cluster exists is not
    // its business either, so a missing one is refused the same way.
    if let Some(own) = ctx.enterprise_scope()
        && !found.as_ref().is_some_and(|c| c.has_member(own))
    {
        return Err(ApiError::PermissionDenied(
            "an enterprise token may read only the clusters its enterprise belongs to".into(),
        ));
    }
    let cluster = found.ok_or_else(|| cluster_not_found(&id))?;
    let target = resolve_target(&api.db, &cluster.fields, api.today().year()).await?;
    Ok(cluster_to_proto(&cluster, target.as_ref()))
}

fn parse_cluster_filter(
    raw: &str,
    known: &KnownExceptions,
) -> Result<(ClusterFilter, Option<i32>), ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&[
        "green_category",
        "members",
        "effective_target_year",
        "display_name",
    ])?;
    let mut out = ClusterFilter::default();
    let mut year = None;
    for c in filter.conditions() {
        match c.field.as_str() {
            "green_category" => {
                expect_op(c, Op::Eq)?;
                let g = GreenCategory::from_str_name(&c.value)
                    .filter(|g| *g != GreenCategory::Unspecified)
                    .ok_or_else(|| {
                        filter_error(c, format!("{:?} is not a GreenCategory", c.value))
                    })?;
                out.green_category = Some(g as i32);
            }
            "members" => {
                if c.op != Op::Eq && c.op != Op::Has {
                    return Err(filter_error(c, "supports = or :"));
                }
                let uscc = parse_enterprise_name(&c.value, "filter", known).map_err(|_| {
                    filter_error(c, format!("{:?} is not enterprises/{{uscc}}", c.value))
                })?;
                out.member = Some(uscc.as_str().to_string());
            }
            "effective_target_year" => {
                expect_op(c, Op::Eq)?;
                year = Some(
                    c.value
                        .parse()
                        .map_err(|_| filter_error(c, format!("{:?} is not a year", c.value)))?,
                );
            }
            "display_name" => {
                expect_op(c, Op::Has)?;
                out.name_contains = Some(c.value.clone());
            }
            _ => {}
        }
    }
    Ok((out, year))
}

pub(super) async fn list_clusters(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListClustersRequest,
) -> Result<pb::ListClustersResponse, ApiError> {
    let (mut filter, target_year) = parse_cluster_filter(&req.filter, &api.known_exceptions)?;
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    let current_year = api.today().year();
    // Clusters without their own year take the year of the policy target in force now.
    let default = policy_default(&api.db, current_year).await?;
    if let Some(year) = target_year {
        let policy_matches = default.as_ref().is_some_and(|d| d.target_year == year);
        filter.effective_target_year = Some((year, policy_matches));
    }
    let mut clusters = store::list_clusters(&api.db, &filter, order, after, page.size + 1).await?;
    let more = clusters.len() as u64 > page.size;
    clusters.truncate(page.size as usize);
    let next_page_token = next_token(
        &page,
        more,
        order,
        clusters
            .last()
            .map(|c| (c.id.as_str(), c.fields.display_name.as_str())),
    )?;
    // One policy lookup per distinct year, not per cluster.
    let mut by_year: HashMap<i32, Option<PolicyDefault>> = HashMap::new();
    by_year.insert(current_year, default);
    let mut out = Vec::with_capacity(clusters.len());
    for c in &clusters {
        let year = c.fields.target_year.unwrap_or(current_year);
        if let std::collections::hash_map::Entry::Vacant(slot) = by_year.entry(year) {
            slot.insert(policy_default(&api.db, year).await?);
        }
        let policy = by_year.get(&year).and_then(Option::as_ref);
        let target =
            cluster::effective_target(c.fields.target_scale_fen, c.fields.target_year, policy);
        out.push(cluster_to_proto(c, target.as_ref()));
    }
    Ok(pb::ListClustersResponse {
        clusters: out,
        next_page_token,
    })
}

pub(super) async fn update_cluster(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::UpdateClusterRequest,
) -> Result<pb::Cluster, ApiError> {
    let Some(input) = req.cluster.as_ref() else {
        return Err(ApiError::invalid(
            "cluster",
            "REQUIRED",
            "cluster is required",
        ));
    };
    let id = parse_name(&input.name, "clusters", "cluster.name")?;
    let paths = mask_paths(req.update_mask.as_ref(), CLUSTER_FIELDS)?;
    let current_year = api.today().year();

    let mut tx = match WriteTx::begin::<pb::Cluster>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = load_cluster(tx.conn(), &id).await?;
    if !input.etag.is_empty() && input.etag != current.etag() {
        return Err(ApiError::Aborted(format!(
            "{} changed since etag {} was read; read it again and retry",
            current.name(),
            input.etag
        )));
    }
    let created_year = to_datetime(current.create_time_us)
        .map(|t| t.with_timezone(&api.time_zone).year())
        .unwrap_or(current_year);
    let cx = ClusterContext {
        known: &api.known_exceptions,
        current_year,
        default_start_year: created_year,
    };
    let mut updated = current.clone();
    let mut members = None;
    let mut violations = Vec::new();
    for path in &paths {
        if let Err(v) = apply_cluster_field(&mut updated.fields, input, path, &cx, &mut members) {
            violations.extend(v);
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    check_cluster(&updated.fields)?;
    if let Some(members) = &members {
        check_members_exist(tx.conn(), members).await?;
    }
    let target = resolve_target(tx.conn(), &updated.fields, current_year)
        .await?
        .ok_or_else(|| no_target(&updated.name(), &updated.fields, current_year))?;
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    let members_changed = updated.fields.members != current.fields.members;
    if !store::update_cluster_if_version(tx.conn(), &updated, current.version, members_changed)
        .await?
    {
        return Err(ApiError::Aborted(format!(
            "{} changed concurrently; retry",
            current.name()
        )));
    }
    let response = cluster_to_proto(&updated, Some(&target));
    tx.record(&updated.name(), &updated)?;
    tx.commit(&response).await?;
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------------------

/// A cluster's progress counting revenue figures up to `as_of_year` (all years when `None`),
/// against its effective target; `None` when no target resolves. Also what programme
/// statistics use to count clusters on track.
pub(super) async fn cluster_progress(
    conn: &impl ConnectionTrait,
    cluster: &Cluster,
    as_of_year: Option<i32>,
    current_year: i32,
) -> Result<Option<Progress>, DbErr> {
    let Some(target) = resolve_target(conn, &cluster.fields, current_year).await? else {
        return Ok(None);
    };
    let latest = crate::store::figures::latest_value(
        conn,
        &cluster.fields.members,
        FigureKind::RevenueFen,
        as_of_year.unwrap_or(i32::MAX),
    )
    .await?;
    Ok(Some(cluster::progress(
        &cluster.fields.members,
        &latest,
        &target,
        cluster.fields.start_year,
    )))
}

/// "FIGURE_SOURCE_AUDITED_STATEMENT: reference" for a member's counted revenue figure.
async fn revenue_source(
    conn: &impl ConnectionTrait,
    uscc: &str,
    year: i32,
) -> Result<String, DbErr> {
    let Some(figures) = crate::store::figures::get(conn, uscc, year).await? else {
        return Ok(String::new());
    };
    Ok(figures
        .figures
        .get(&FigureKind::RevenueFen)
        .map(|r| {
            let source = pb::FigureSource::try_from(r.source)
                .map(|s| s.as_str_name())
                .unwrap_or("FIGURE_SOURCE_UNSPECIFIED");
            if r.reference.is_empty() {
                source.to_string()
            } else {
                format!("{source}: {}", r.reference)
            }
        })
        .unwrap_or_default())
}

pub(super) async fn get_cluster_progress(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetClusterProgressRequest,
) -> Result<pb::ClusterProgress, ApiError> {
    let id = parse_name(&req.name, "clusters", "name")?;
    let as_of_year = match req.as_of_year {
        0 => None,
        y => Some(check_year(y, "as_of_year").map_err(|v| ApiError::InvalidArgument(vec![v]))?),
    };
    let current_year = api.today().year();
    let cluster = load_cluster(&api.db, &id).await?;
    let progress = cluster_progress(&api.db, &cluster, as_of_year, current_year)
        .await?
        .ok_or_else(|| no_target(&cluster.name(), &cluster.fields, current_year))?;
    let mut members = Vec::with_capacity(progress.reporting.len());
    for m in &progress.reporting {
        members.push(pb::MemberRevenue {
            enterprise: enterprise_name(&m.uscc),
            year: m.year,
            revenue_fen: m.revenue_fen,
            source: revenue_source(&api.db, &m.uscc, m.year).await?,
        });
    }
    let saturate = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    Ok(pb::ClusterProgress {
        cluster: cluster.name(),
        display_name: cluster.fields.display_name.clone(),
        as_of_year: progress.as_of_year,
        member_count: i32::try_from(progress.member_count).unwrap_or(i32::MAX),
        members_reporting: i32::try_from(progress.reporting.len()).unwrap_or(i32::MAX),
        revenue_fen: saturate(progress.revenue_fen),
        target_scale_fen: progress.target_scale_fen,
        target_year: progress.target_year,
        progress_basis_points: saturate(progress.progress_basis_points),
        target_reached: progress.target_reached,
        on_track: progress.on_track,
        members,
        members_missing_revenue: progress
            .missing
            .iter()
            .map(|u| enterprise_name(u))
            .collect(),
        explanation: progress.explanation(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_and_cluster_orders_parse_or_name_the_problem() {
        assert_eq!(parse_order("").ok(), Some(Order::Name { desc: false }));
        assert_eq!(
            parse_order("display_name desc").ok(),
            Some(Order::DisplayName { desc: true })
        );
        assert!(parse_order("city").is_err());
        assert!(parse_order("name desc extra").is_err());
    }

    #[test]
    fn zone_filters_take_level_names_cities_and_substrings() {
        let f = parse_zone_filter(
            r#"level = ZONE_LEVEL_NATIONAL AND city = "Jinan" AND display_name:"济南""#,
        )
        .ok();
        assert_eq!(f.as_ref().and_then(|f| f.level), Some(1));
        assert_eq!(
            f.as_ref().and_then(|f| f.city.clone()).as_deref(),
            Some("Jinan")
        );
        assert!(parse_zone_filter("level = NATIONAL").is_err());
        assert!(parse_zone_filter("display_name = \"x\"").is_err());
        assert!(parse_zone_filter("division_code = 370100").is_err());
    }

    #[test]
    fn names_need_their_collection_and_a_valid_id() {
        assert_eq!(
            parse_name("zones/jinan", "zones", "name").ok().as_deref(),
            Some("jinan")
        );
        assert!(parse_name("jinan", "zones", "name").is_err());
        assert!(parse_name("clusters/jinan", "zones", "name").is_err());
        assert!(parse_name("zones/Jinan", "zones", "name").is_err());
        assert!(parse_name("zonesx/jinan", "zones", "name").is_err());
    }

    #[test]
    fn members_are_parsed_deduplicated_and_indexed() {
        let known = KnownExceptions::default();
        let a = "enterprises/91350100M000100Y43".to_string();
        let b = "enterprises/91110000600037341L".to_string();
        let ok = parse_members(&[a.clone(), b.clone()], &known).ok();
        assert_eq!(ok.map(|m| m.len()), Some(2));
        let err = parse_members(&[a.clone(), "nonsense".into(), a], &known).err();
        let fields: Vec<(String, String)> = err
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.field, v.reason))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "cluster.members[1]".to_string(),
                    "INVALID_RESOURCE_NAME".to_string()
                ),
                ("cluster.members[2]".to_string(), "DUPLICATE".to_string()),
            ]
        );
    }
}
