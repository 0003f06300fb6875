//! The statutory ceilings on a year's awards (`domain::ceiling`), applied where programs commit
//! to quotas and where awards are made. Both reads run inside the caller's `WriteTx`, which
//! holds the audit lock, so two programs of one year cannot open (or allocate) past a ceiling
//! by racing each other.

use qilu_common::ApiError;
use sea_orm::ConnectionTrait;

use crate::domain::allocation::{BucketKey, Cap, Outcome};
use crate::domain::application::outcome_code;
use crate::domain::ceiling;
use crate::domain::program::{Kind, Program, State};
use crate::domain::refusal::StageRefused;
use crate::store::{
    application as application_store, ceiling as ceiling_store, program as program_store,
};

/// The year's other AWARD programs, those for which `counts` holds.
async fn others_of_year(
    conn: &impl ConnectionTrait,
    program: &Program,
    counts: impl Fn(State) -> bool,
) -> Result<Vec<Program>, ApiError> {
    let year = program.settings.year;
    Ok(program_store::in_years(conn, year, year)
        .await?
        .into_iter()
        .filter(|p| p.kind == Kind::Award && p.id != program.id && counts(p.state))
        .collect())
}

/// FAILED_PRECONDITION (`STATUTORY_CEILING_EXCEEDED`) when `program`'s quotas, added to those
/// of its year's committed (non-DRAFT) AWARD programs, exceed a ceiling in force for the year.
/// A PROJECT program has no quotas and always passes.
pub(super) async fn check_quotas(
    conn: &impl ConnectionTrait,
    program: &Program,
) -> Result<(), ApiError> {
    if program.kind != Kind::Award || program.settings.award_quotas.is_empty() {
        return Ok(());
    }
    let ceilings = ceiling_store::all(conn).await?;
    if ceiling::in_force(&ceilings, program.settings.year).is_empty() {
        return Ok(());
    }
    let others: Vec<(String, Vec<_>)> = others_of_year(conn, program, |s| s != State::Draft)
        .await?
        .into_iter()
        .map(|p| (p.name(), p.settings.award_quotas))
        .collect();
    match ceiling::first_breach(
        &ceilings,
        program.settings.year,
        &program.settings.award_quotas,
        &others,
    ) {
        None => Ok(()),
        Some(breach) => Err(StageRefused::CeilingExceeded {
            program: program.name(),
            breach: Box::new(breach),
        }
        .into()),
    }
}

/// The allocator caps the ceilings leave `program` after the awards other programs of its year
/// have already made (their latest allocation's AWARDED applications). Empty for a PROJECT.
pub(super) async fn allocation_caps(
    conn: &impl ConnectionTrait,
    program: &Program,
) -> Result<Vec<Cap>, ApiError> {
    if program.kind != Kind::Award {
        return Ok(Vec::new());
    }
    let ceilings = ceiling_store::all(conn).await?;
    if ceiling::in_force(&ceilings, program.settings.year).is_empty() {
        return Ok(Vec::new());
    }
    let awarded = outcome_code(Outcome::Awarded);
    let mut made = Vec::new();
    let allocated = |s| matches!(s, State::Allocated | State::Publicized | State::Final);
    for other in others_of_year(conn, program, allocated).await? {
        made.extend(
            application_store::of_program(conn, &other.id, false)
                .await?
                .into_iter()
                .filter(|a| a.outcome == awarded)
                .map(|a| BucketKey {
                    category: a.category,
                    grade: a.grade,
                }),
        );
    }
    Ok(ceiling::allocation_caps(
        &ceilings,
        program.settings.year,
        &program.settings.award_quotas,
        &made,
    ))
}
