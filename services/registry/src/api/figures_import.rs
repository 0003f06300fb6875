//! `ImportAnnualFigures`: one enterprise's figures for one year per row, through the history
//! import driver (`api::bulk`), written exactly as `UpdateAnnualFigures` writes them with
//! `allow_missing` and a mask of the figures the row sets: every figure validated with its
//! source, parts never above their wholes, each change audited and in the change feed.

use std::collections::HashMap;

use chrono::Datelike;
use qilu_common::write::WriteTx;
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;
use tonic::Streaming;

use super::RegistryApi;
use super::bulk::{self, Family, Options, Summary, problems_of};
use super::figures::EARLIEST_WRITABLE_YEAR;
use crate::convert::figures::{figures_name, input_of, parse_input, parse_name, to_proto};
use crate::domain::figures::{AnnualFigures, FigureKind, Reported};
use crate::domain::import::{Effect, Problem};
use crate::domain::uscc::{KnownExceptions, Uscc};
use crate::store::figures as store;

/// A figures row that passed every check needing no database.
pub(super) struct FiguresRow {
    uscc: Uscc,
    year: i32,
    /// Each figure the row sets: value, source, reference.
    writes: Vec<(FigureKind, (i64, i32, String))>,
}

/// The figures rows of one run.
pub(super) struct Figures {
    latest_year: i32,
    known: KnownExceptions,
    /// Enterprise-years taken by valid rows of this run, with the row that took each.
    taken: HashMap<String, i64>,
}

impl Figures {
    /// The figures rows of a new run.
    pub(super) fn for_run(api: &RegistryApi) -> Figures {
        Figures {
            latest_year: api.today().year() + 1,
            known: api.known_exceptions.clone(),
            taken: HashMap::new(),
        }
    }
}

impl Family for Figures {
    type Message = pb::ImportAnnualFiguresRequest;
    type Row = pb::ImportAnnualFiguresRow;
    type Valid = FiguresRow;
    type Response = pb::ImportAnnualFiguresResponse;

    fn options(m: &Self::Message) -> Options {
        Options {
            request_id: m.request_id.clone(),
            validate_only: m.validate_only,
            rejected_rows_only: m.rejected_rows_only,
        }
    }

    fn fingerprint(o: &Options) -> Self::Message {
        pb::ImportAnnualFiguresRequest {
            rows: Vec::new(),
            request_id: o.request_id.clone(),
            validate_only: o.validate_only,
            rejected_rows_only: o.rejected_rows_only,
        }
    }

    fn rows(m: Self::Message) -> Vec<Self::Row> {
        m.rows
    }

    fn row_number(row: &Self::Row) -> i64 {
        row.row_number
    }

    fn parse(
        &mut self,
        row: Self::Row,
        result: &mut pb::ImportRowResult,
    ) -> Result<FiguresRow, Vec<Problem>> {
        let Some(input) = &row.annual_figures else {
            return Err(vec![Problem::new(
                "annual_figures",
                "annual_figures is required",
            )]);
        };
        let mut problems = Vec::new();
        let name = match parse_name(&input.name, "annual_figures.name", &self.known) {
            Ok((uscc, year)) if (EARLIEST_WRITABLE_YEAR..=self.latest_year).contains(&year) => {
                result.uscc = uscc.as_str().to_string();
                result.name = figures_name(uscc.as_str(), year);
                Some((uscc, year))
            }
            Ok((_, year)) => {
                problems.push(Problem::new(
                    "annual_figures.name",
                    format!(
                        "figures can be written for {EARLIEST_WRITABLE_YEAR}-{}, not {year}",
                        self.latest_year
                    ),
                ));
                None
            }
            Err(e) => {
                problems.extend(problems_of(e, "annual_figures.name"));
                None
            }
        };
        let mut violations = Vec::new();
        let mut writes = Vec::new();
        for kind in FigureKind::ALL {
            if input_of(input, kind).is_some()
                && let Some(write) = parse_input(input, kind, &mut violations)
            {
                writes.push((kind, write));
            }
        }
        problems.extend(
            violations
                .into_iter()
                .map(|v| Problem::new(v.field, v.description)),
        );
        if writes.is_empty() && problems.is_empty() {
            problems.push(Problem::new(
                "annual_figures",
                "a row sets at least one figure, each with its source",
            ));
        }
        let (Some((uscc, year)), true) = (name, problems.is_empty()) else {
            result.name.clear();
            return Err(problems);
        };
        let key = figures_name(uscc.as_str(), year);
        if let Some(earlier) = self.taken.get(&key) {
            return Err(vec![Problem::new(
                "annual_figures.name",
                format!("{key} is already imported by row {earlier} of this import"),
            )]);
        }
        self.taken.insert(key, row.row_number);
        Ok(FiguresRow { uscc, year, writes })
    }

    async fn apply(
        &self,
        tx: &mut WriteTx,
        row: &FiguresRow,
    ) -> Result<Result<(Effect, String), Vec<Problem>>, ApiError> {
        let uscc = row.uscc.as_str();
        let name = figures_name(uscc, row.year);
        if crate::store::enterprise::get(tx.conn(), uscc)
            .await?
            .is_none()
        {
            return Ok(Err(vec![Problem::new(
                "annual_figures.name",
                format!("enterprises/{uscc} is not registered: import the enterprise first"),
            )]));
        }
        let now = tx.now_us();
        let current = store::get(tx.conn(), uscc, row.year).await?;
        let unchanged = current.as_ref().is_some_and(|c| {
            row.writes.iter().all(|(kind, (value, source, reference))| {
                c.figures.get(kind).is_some_and(|r| {
                    r.value == *value && r.source == *source && r.reference == *reference
                })
            })
        });
        if unchanged {
            return Ok(Ok((Effect::Unchanged, name)));
        }
        let effect = if current.is_some() {
            Effect::Update
        } else {
            Effect::Create
        };
        let mut updated = current.unwrap_or_else(|| AnnualFigures {
            uscc: uscc.to_string(),
            year: row.year,
            figures: Default::default(),
            create_time_us: now,
            update_time_us: now,
            version: 0,
        });
        let kinds: Vec<FigureKind> = row.writes.iter().map(|(kind, _)| *kind).collect();
        for (kind, (value, source, reference)) in &row.writes {
            updated.figures.insert(
                *kind,
                Reported {
                    value: *value,
                    source: *source,
                    reference: reference.clone(),
                    update_time_us: now,
                },
            );
        }
        if let Err(refused) = updated.check_parts(&kinds) {
            return Ok(Err(problems_of(refused.into(), "annual_figures")));
        }
        updated.version += 1;
        updated.update_time_us = now;
        store::write(tx.conn(), &updated, &kinds).await?;
        tx.record(&name, &updated, &to_proto(&updated))?;
        Ok(Ok((effect, name)))
    }

    fn row_field() -> &'static str {
        "annual_figures"
    }

    fn response(s: Summary) -> Self::Response {
        pb::ImportAnnualFiguresResponse {
            received_count: s.received_count,
            accepted_count: bulk::accepted(&s),
            created_count: s.created_count,
            updated_count: s.updated_count,
            unchanged_count: s.unchanged_count,
            rejected_count: s.rejected_count,
            row_results: s.row_results,
            validate_only: s.validate_only,
            last_change_cursor: s.last_change_cursor,
        }
    }
}

pub(super) async fn import_annual_figures(
    api: &RegistryApi,
    ctx: &CallContext,
    req: Streaming<pb::ImportAnnualFiguresRequest>,
) -> Result<pb::ImportAnnualFiguresResponse, ApiError> {
    bulk::run(api, ctx, req, Figures::for_run(api)).await
}
