//! LeadingCohort: create (a newer cohort becomes the current one), get, list.

use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::registry as pb;

use super::{cohort_view, load_cohort, sync_leading};
use crate::api::RegistryApi;
use crate::convert::leading::{
    COHORT_TYPE, parse_cohort_filter, parse_cohort_name, parse_new_cohort,
};
use crate::domain::leading::Cohort;
use crate::store::leading as store;

pub(in crate::api) async fn create(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateLeadingCohortRequest,
) -> Result<pb::LeadingCohort, ApiError> {
    let input = parse_new_cohort(&req)?;
    let mut tx =
        match WriteTx::begin::<pb::LeadingCohort>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let cohort = Cohort {
        year: input.year,
        description: input.description,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert_cohort(tx.conn(), &cohort).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: COHORT_TYPE,
                name: cohort.name(),
            }
        } else {
            e.into()
        });
    }
    let published = cohort_view(tx.conn(), &cohort).await?;
    tx.record(&cohort.name(), &cohort, &published)?;
    // A newer cohort becomes the current one: last cohort's members stop being "leading".
    let marked = store::leading_enterprises(tx.conn()).await?;
    sync_leading(&mut tx, &marked, api.today()).await?;
    let response = cohort_view(tx.conn(), &cohort).await?;
    tx.commit(&response).await?;
    tracing::info!(cohort = %cohort.name(), "leading cohort created");
    Ok(response)
}

pub(in crate::api) async fn get(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetLeadingCohortRequest,
) -> Result<pb::LeadingCohort, ApiError> {
    let year = parse_cohort_name(&req.name, "name")?;
    let cohort = load_cohort(&api.db, year).await?;
    cohort_view(&api.db, &cohort).await
}

pub(in crate::api) async fn list(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListLeadingCohortsRequest,
) -> Result<pb::ListLeadingCohortsResponse, ApiError> {
    let filter = parse_cohort_filter(&req.filter)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, "")?;
    let after: Option<i32> = page.after()?;
    let mut rows = store::list_cohorts(&api.db, &filter, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&last.year)?,
        _ => String::new(),
    };
    let mut leading_cohorts = Vec::with_capacity(rows.len());
    for c in &rows {
        leading_cohorts.push(cohort_view(&api.db, c).await?);
    }
    Ok(pb::ListLeadingCohortsResponse {
        leading_cohorts,
        next_page_token,
    })
}
