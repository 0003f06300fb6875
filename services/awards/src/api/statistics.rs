//! `GetFieldDistribution`: awards and money by field, per program or per year, against the
//! target shares and year over year, from each program's latest allocation revision.

use qilu_common::CallContext;
use std::collections::BTreeMap;

use qilu_common::ApiError;
use qilu_proto::awards as pb;

use super::AwardsApi;
use crate::convert::parse_program_name;
use crate::domain::distribution::{self, Counted, YearRow};
use crate::domain::program::{self, Kind, Program, State};
use crate::domain::run::Run;
use crate::store::{program as program_store, run as run_store};

/// Widest year range.
const MAX_YEARS: i32 = 50;

fn to_proto(r: YearRow) -> pb::YearDistribution {
    pb::YearDistribution {
        year: r.year,
        programs: r.programs,
        total_count: r.total_count,
        total_amount_fen: r.total_amount_fen,
        fields: r
            .fields
            .into_iter()
            .map(|f| pb::FieldShare {
                field: f.field,
                priority: f.priority,
                applications: f.applications,
                count: f.count,
                amount_fen: f.amount_fen,
                count_share_basis_points: f.count_share_bp,
                amount_share_basis_points: f.amount_share_bp,
                target_share_basis_points: f.target_share_bp,
                has_previous_year: f.has_previous_year,
                count_share_change_basis_points: f.count_share_change_bp,
                amount_share_change_basis_points: f.amount_share_change_bp,
            })
            .collect(),
    }
}

fn row(year: i32, counted: &[(Program, Run)]) -> YearRow {
    let c: Vec<Counted<'_>> = counted
        .iter()
        .map(|(p, r)| Counted {
            program: p,
            entries: &r.result.entries,
        })
        .collect();
    distribution::year_row(year, &c)
}

pub(super) async fn get_field_distribution(
    api: &AwardsApi,
    _ctx: &CallContext,
    req: pb::GetFieldDistributionRequest,
) -> Result<pb::FieldDistribution, ApiError> {
    match req.scope {
        Some(pb::get_field_distribution_request::Scope::Program(name)) => {
            let id = parse_program_name(&name, "program")?;
            let p = api.load_program(&api.db, &id).await?;
            let run = run_store::latest(&api.db, &id).await?.ok_or_else(|| {
                ApiError::precondition(
                    "PROGRAM_NOT_ALLOCATED",
                    p.name(),
                    format!(
                        "{} is {}; it has no allocation yet",
                        p.name(),
                        p.state.as_str()
                    ),
                )
            })?;
            let year = p.settings.year;
            let r = row(year, &[(p, run)]);
            Ok(pb::FieldDistribution {
                years: vec![to_proto(r)],
            })
        }
        Some(pb::get_field_distribution_request::Scope::Years(range)) => {
            // Programs only exist for these years, and inside them the range arithmetic below
            // (the width, the year before the start) cannot overflow.
            for (field, year) in [
                ("years.start_year", range.start_year),
                ("years.end_year", range.end_year),
            ] {
                if !program::YEARS.contains(&year) {
                    return Err(ApiError::invalid(
                        field,
                        "YEAR_OUT_OF_RANGE",
                        format!(
                            "programme years run from {} to {}",
                            program::YEARS.start(),
                            program::YEARS.end()
                        ),
                    ));
                }
            }
            if range.end_year < range.start_year {
                return Err(ApiError::invalid(
                    "years.end_year",
                    "BEFORE_START",
                    "end_year is before start_year",
                ));
            }
            if range.end_year - range.start_year > MAX_YEARS {
                return Err(ApiError::invalid(
                    "years.end_year",
                    "RANGE_TOO_WIDE",
                    format!("at most {MAX_YEARS} years after start_year"),
                ));
            }
            let kind = match req.kind {
                0 => None,
                k => Some(
                    Kind::from_code(k)
                        .ok_or_else(|| ApiError::invalid("kind", "UNKNOWN", "not a ProgramKind"))?,
                ),
            };
            let counts = |s: State| {
                s == State::Final
                    || req.include_provisional && matches!(s, State::Allocated | State::Publicized)
            };
            // The year before the range too, for the first year's change.
            let programs =
                program_store::in_years(&api.db, range.start_year - 1, range.end_year).await?;
            let mut by_year: BTreeMap<i32, Vec<(Program, Run)>> = BTreeMap::new();
            for p in programs {
                if !counts(p.state) || kind.is_some_and(|k| k != p.kind) {
                    continue;
                }
                if let Some(run) = run_store::latest(&api.db, &p.id).await? {
                    by_year.entry(p.settings.year).or_default().push((p, run));
                }
            }
            let mut previous = by_year
                .get(&(range.start_year - 1))
                .map(|c| row(range.start_year - 1, c));
            let mut years = Vec::new();
            for year in range.start_year..=range.end_year {
                let mut r = row(year, by_year.get(&year).map_or(&[][..], Vec::as_slice));
                distribution::compare(&mut r, previous.as_ref());
                previous = Some(r.clone());
                years.push(to_proto(r));
            }
            Ok(pb::FieldDistribution { years })
        }
        None => Err(ApiError::invalid(
            "scope",
            "REQUIRED",
            "set program or years",
        )),
    }
}
