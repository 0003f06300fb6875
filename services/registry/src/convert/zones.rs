//! High-tech zones and industrial clusters as the API shows them and as requests describe
//! them: names, fields (create and update mask), members, list filters and order.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::filter::{Filter, FilterField, Kind, Op, Value};
use qilu_common::input::mask::not_updatable;
use qilu_common::input::name::{self, IdRule};
use qilu_common::input::{OrderBy, Text, Violations, required};
use qilu_common::time::to_timestamp;
use qilu_proto::common::GreenCategory;
use qilu_proto::registry as pb;

use crate::domain::cluster::ClusterRefused;
use crate::domain::cluster::{
    Cluster, ClusterFields, EffectiveTarget, MAX_DESCRIPTION_CHARS, MAX_MEMBERS, Progress,
};
use crate::domain::policy::{MAX_YEAR, MIN_YEAR};
use crate::domain::uscc::KnownExceptions;
use crate::domain::zone::{
    DivisionError, EARLIEST_APPROVAL, MAX_DISPLAY_NAME_CHARS, Zone, ZoneFields, ZoneLevel,
    parse_id, zone_city,
};
use crate::store::statistics::RevenueSource;
use crate::store::zones::{ClusterFilter, Order, ZoneFilter};

use super::{enterprise_name, parse_enterprise_name};

/// Resource type of zones in errors.
pub const ZONE_TYPE: &str = "registry.qilu.gov.cn/Zone";
/// Resource type of clusters in errors.
pub const CLUSTER_TYPE: &str = "registry.qilu.gov.cn/Cluster";
/// Fields an UpdateZone mask may name (and a create sets).
pub const ZONE_FIELDS: &[&str] = &["display_name", "level", "division_code", "approval_date"];
/// Fields an UpdateCluster mask may name (and a create sets).
pub const CLUSTER_FIELDS: &[&str] = &[
    "display_name",
    "green_category",
    "description",
    "members",
    "target_scale_fen",
    "target_year",
    "start_year",
];

/// The id in `zones/{zone}`.
pub fn parse_zone_name(raw: &str, field: &str) -> Result<String, ApiError> {
    id_in(raw, "zones/{zone}", field)
}

/// The id in `clusters/{cluster}`.
pub fn parse_cluster_name(raw: &str, field: &str) -> Result<String, ApiError> {
    id_in(raw, "clusters/{cluster}", field)
}

fn id_in(raw: &str, pattern: &str, field: &str) -> Result<String, ApiError> {
    name::single(
        raw,
        pattern,
        field,
        IdRule::Custom(|id| parse_id(id).is_ok()),
    )
    .map(str::to_string)
    .map_err(|mut v| {
        // The released contract answers an empty name as a malformed one.
        v.reason = "INVALID_RESOURCE_NAME".into();
        ApiError::InvalidArgument(vec![v])
    })
}

/// A bare id of a create request (`zone_id`, `cluster_id`).
fn parse_new_id(raw: &str, field: &str) -> Result<String, FieldViolation> {
    parse_id(raw).map_err(|e| FieldViolation::new(field, "INVALID_ID", e.to_string()))
}

/// A zone as the API shows it, with the number of active enterprises that name it.
pub fn zone_to_proto(z: &Zone, enterprise_count: i64) -> pb::Zone {
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
pub fn apply_zone_field(
    fields: &mut ZoneFields,
    p: &pb::Zone,
    path: &str,
    today: NaiveDate,
) -> Result<(), FieldViolation> {
    let at = format!("zone.{path}");
    match path {
        "display_name" => {
            fields.display_name =
                Text::required(MAX_DISPLAY_NAME_CHARS).parse(&p.display_name, &at)?;
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

/// A cluster as the API shows it; `target` is its effective target, if one resolves.
pub fn cluster_to_proto(c: &Cluster, target: Option<&EffectiveTarget>) -> pb::Cluster {
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

/// Parsed member list: (index in the request, USCC), in request order.
pub type Members = Vec<(usize, String)>;

/// `cluster.members`: enterprise names, each registered code at most once.
pub fn parse_members(
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

/// Years a cluster names: within the sanity bounds.
pub fn check_year(year: i32, at: &str) -> Result<i32, FieldViolation> {
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
pub struct ClusterContext<'a> {
    /// USCC allow-list for member names.
    pub known: &'a KnownExceptions,
    /// The programme year today.
    pub current_year: i32,
    /// `start_year` when the input gives 0: the year of creation.
    pub default_start_year: i32,
}

/// Validates cluster field `path` of `p` into `fields`; a parsed member list is returned for
/// the existence check.
pub fn apply_cluster_field(
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
            fields.display_name = Text::required(MAX_DISPLAY_NAME_CHARS)
                .parse(&p.display_name, &at)
                .map_err(one)?;
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
            fields.description = Text::optional(MAX_DESCRIPTION_CHARS)
                .multiline()
                .parse(&p.description, &at)
                .map_err(one)?;
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

/// `CreateZoneRequest`: the new id and every field, all violations at once.
pub fn parse_new_zone(
    req: &pb::CreateZoneRequest,
    today: NaiveDate,
) -> Result<(String, ZoneFields), ApiError> {
    let mut violations = Violations::new();
    let id = violations.take(parse_new_id(&req.zone_id, "zone_id"));
    let input = violations.absorb(required(req.zone.as_ref(), "zone"))?;
    let mut fields = ZoneFields {
        display_name: String::new(),
        level: ZoneLevel::National,
        division_code: String::new(),
        approval_date: None,
    };
    if let Some(input) = input {
        for path in ZONE_FIELDS {
            violations.take(apply_zone_field(&mut fields, input, path, today));
        }
    }
    violations.into_result(id.map(|id| (id, fields)))
}

/// `CreateClusterRequest`: the new id, every field (a start year of 0 is `current_year`) and
/// the member list for the existence check, all violations at once.
pub fn parse_new_cluster(
    req: &pb::CreateClusterRequest,
    known: &KnownExceptions,
    current_year: i32,
) -> Result<(String, ClusterFields, Option<Members>), ApiError> {
    let mut violations = Violations::new();
    let id = violations.take(parse_new_id(&req.cluster_id, "cluster_id"));
    let input = violations.absorb(required(req.cluster.as_ref(), "cluster"))?;
    let cx = ClusterContext {
        known,
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
    if let Some(input) = input {
        for path in CLUSTER_FIELDS {
            violations.take_all(apply_cluster_field(
                &mut fields,
                input,
                path,
                &cx,
                &mut members,
            ));
        }
    }
    violations.into_result(id.map(|id| (id, fields, members)))
}

/// "FIGURE_SOURCE_AUDITED_STATEMENT: reference", as progress cites a member's counted figure.
pub fn cite(source: Option<&RevenueSource>) -> String {
    source
        .map(|r| {
            let name = pb::FigureSource::try_from(r.source)
                .map(|s| s.as_str_name())
                .unwrap_or("FIGURE_SOURCE_UNSPECIFIED");
            if r.reference.is_empty() {
                name.to_string()
            } else {
                format!("{name}: {}", r.reference)
            }
        })
        .unwrap_or_default()
}

/// A cluster's progress as the API shows it (`GetClusterProgress` and programme statistics),
/// each member's figure cited from `sources` by (USCC, year).
pub fn progress_to_proto(
    c: &Cluster,
    p: &Progress,
    sources: &HashMap<(String, i32), RevenueSource>,
) -> pb::ClusterProgress {
    let saturate = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    pb::ClusterProgress {
        cluster: c.name(),
        display_name: c.fields.display_name.clone(),
        as_of_year: p.as_of_year,
        member_count: i32::try_from(p.member_count).unwrap_or(i32::MAX),
        members_reporting: i32::try_from(p.reporting.len()).unwrap_or(i32::MAX),
        revenue_fen: saturate(p.revenue_fen),
        target_scale_fen: p.target_scale_fen,
        target_year: p.target_year,
        progress_basis_points: saturate(p.progress_basis_points),
        target_reached: p.target_reached,
        on_track: p.on_track,
        members: p
            .reporting
            .iter()
            .map(|m| pb::MemberRevenue {
                enterprise: enterprise_name(&m.uscc),
                year: m.year,
                revenue_fen: m.revenue_fen,
                source: cite(sources.get(&(m.uscc.clone(), m.year))),
            })
            .collect(),
        members_missing_revenue: p.missing.iter().map(|u| enterprise_name(u)).collect(),
        explanation: p.explanation(),
    }
}

/// What `ListZones` filters on (zone.proto documents each).
const ZONE_FILTER: &[FilterField] = &[
    FilterField::eq(
        "level",
        Kind::Enum {
            type_name: "ZoneLevel",
            from_name: |s| pb::ZoneLevel::from_str_name(s).map(|l| l as i32),
        },
    ),
    FilterField::eq("city", Kind::Text),
    FilterField::with("display_name", &[Op::Has], Kind::Text),
];

/// `ListZonesRequest.filter`.
pub fn parse_zone_filter(raw: &str) -> Result<ZoneFilter, ApiError> {
    let mut out = ZoneFilter::default();
    for term in Filter::typed(raw, ZONE_FILTER)? {
        match (term.field, term.value) {
            ("level", Value::Enum(level)) => out.level = Some(level),
            ("city", Value::Text(city)) => out.city = Some(city),
            ("display_name", Value::Text(part)) => out.name_contains = Some(part),
            _ => {}
        }
    }
    Ok(out)
}

/// What `ListClusters` filters on (cluster.proto documents each).
const CLUSTER_FILTER: &[FilterField] = &[
    FilterField::eq(
        "green_category",
        Kind::Enum {
            type_name: "GreenCategory",
            from_name: |s| GreenCategory::from_str_name(s).map(|g| g as i32),
        },
    ),
    FilterField::with("members", &[Op::Eq, Op::Has], Kind::Text),
    FilterField::eq("effective_target_year", Kind::Int),
    FilterField::with("display_name", &[Op::Has], Kind::Text),
];

/// `ListClustersRequest.filter`: what the store filters on, and the effective target year
/// asked for (which needs the policy in force to decide).
pub fn parse_cluster_filter(
    raw: &str,
    known: &KnownExceptions,
) -> Result<(ClusterFilter, Option<i32>), ApiError> {
    let bad = |field: &str, why: String| {
        ApiError::invalid("filter", "INVALID_FILTER", format!("{field}: {why}"))
    };
    let mut out = ClusterFilter::default();
    let mut year = None;
    for term in Filter::typed(raw, CLUSTER_FILTER)? {
        match (term.field, term.value) {
            ("green_category", Value::Enum(g)) => out.green_category = Some(g),
            ("members", Value::Text(name)) => {
                let uscc = parse_enterprise_name(&name, "filter", known)
                    .map_err(|_| bad("members", format!("{name:?} is not enterprises/{{uscc}}")))?;
                out.member = Some(uscc.as_str().to_string());
            }
            ("effective_target_year", Value::Int(y)) => {
                year = Some(
                    i32::try_from(y)
                        .map_err(|_| bad("effective_target_year", format!("{y} is not a year")))?,
                );
            }
            ("display_name", Value::Text(part)) => out.name_contains = Some(part),
            _ => {}
        }
    }
    Ok((out, year))
}

/// `order_by` of zones and clusters: `name` (default) or `display_name`, optionally `desc`.
pub fn parse_order(raw: &str) -> Result<Order, ApiError> {
    #[derive(Clone, Copy)]
    enum Key {
        Name,
        DisplayName,
    }
    let keys = [("name", Key::Name), ("display_name", Key::DisplayName)];
    let order = OrderBy::parse(raw, &keys, Key::Name)?;
    Ok(match order.key {
        Key::Name => Order::Name { desc: order.desc },
        Key::DisplayName => Order::DisplayName { desc: order.desc },
    })
}

/// The one mapping of a ClusterRefused to the API's answer.
impl From<ClusterRefused> for ApiError {
    fn from(refused: ClusterRefused) -> Self {
        match refused {
            ClusterRefused::TargetBeforeStart {
                target_year,
                start_year,
            } => ApiError::invalid(
                "cluster.target_year",
                "BEFORE_START_YEAR",
                format!(
                    "the target year {target_year} is before the cluster's start year {start_year}"
                ),
            ),
            ClusterRefused::NoTarget { name, year } => ApiError::precondition(
                "NO_CLUSTER_SCALE_TARGET",
                name,
                format!(
                    "no CLUSTER_SCALE policy target with a target year is in force for {year}; \
                     set target_scale_fen and target_year on the cluster or record a policy target"
                ),
            ),
        }
    }
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
            parse_zone_name("zones/jinan", "name").ok().as_deref(),
            Some("jinan")
        );
        assert!(parse_zone_name("jinan", "name").is_err());
        assert!(parse_zone_name("clusters/jinan", "name").is_err());
        assert!(parse_zone_name("zones/Jinan", "name").is_err());
        assert!(parse_zone_name("zonesx/jinan", "name").is_err());
        let Err(ApiError::InvalidArgument(v)) = parse_cluster_name("", "name") else {
            panic!("an empty name is refused");
        };
        assert_eq!(v[0].reason, "INVALID_RESOURCE_NAME");
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

    #[test]
    fn a_figure_is_cited_with_its_source_and_reference() {
        let audited = RevenueSource {
            source: pb::FigureSource::AuditedStatement as i32,
            reference: "鲁审字〔2024〕1号".into(),
        };
        assert_eq!(
            cite(Some(&audited)),
            "FIGURE_SOURCE_AUDITED_STATEMENT: 鲁审字〔2024〕1号"
        );
        let bare = RevenueSource {
            reference: String::new(),
            ..audited
        };
        assert_eq!(cite(Some(&bare)), "FIGURE_SOURCE_AUDITED_STATEMENT");
        assert_eq!(cite(None), "");
    }
}
