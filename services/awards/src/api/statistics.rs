//! `GetFieldDistribution`: awards and money by field, per program or per year, against the
//! target shares and year over year, from each program's latest allocation revision.

use qilu_common::CallContext;
use std::collections::BTreeMap;

use qilu_common::ApiError;
use qilu_proto::awards as pb;

use super::AwardsApi;
use crate::convert::distribution::{Scope, year_to_proto};
use crate::domain::distribution::{self, Counted, YearRow};
use crate::domain::program::{Program, State};
use crate::domain::refusal::StageRefused;
use crate::domain::run::Run;
use crate::store::{program as program_store, run as run_store};

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
    match Scope::parse(&req)? {
        Scope::Program(id) => {
            let p = api.load_program(&api.db, &id).await?;
            let run = run_store::latest(&api.db, id.as_str())
                .await?
                .ok_or_else(|| StageRefused::NotAllocated {
                    program: p.name(),
                    state: p.state,
                })?;
            let year = p.settings.year;
            let r = row(year, &[(p, run)]);
            Ok(pb::FieldDistribution {
                years: vec![year_to_proto(r)],
            })
        }
        Scope::Years {
            start,
            end,
            kind,
            include_provisional,
        } => {
            let counts = |s: State| {
                s == State::Final
                    || include_provisional && matches!(s, State::Allocated | State::Publicized)
            };
            // The year before the range too, for the first year's change.
            let programs = program_store::in_years(&api.db, start - 1, end).await?;
            let mut by_year: BTreeMap<i32, Vec<(Program, Run)>> = BTreeMap::new();
            for p in programs {
                if !counts(p.state) || kind.is_some_and(|k| k != p.kind) {
                    continue;
                }
                if let Some(run) = run_store::latest(&api.db, &p.id).await? {
                    by_year.entry(p.settings.year).or_default().push((p, run));
                }
            }
            let mut previous = by_year.get(&(start - 1)).map(|c| row(start - 1, c));
            let mut years = Vec::new();
            for year in start..=end {
                let mut r = row(year, by_year.get(&year).map_or(&[][..], Vec::as_slice));
                distribution::compare(&mut r, previous.as_ref());
                previous = Some(r.clone());
                years.push(year_to_proto(r));
            }
            Ok(pb::FieldDistribution { years })
        }
    }
}
