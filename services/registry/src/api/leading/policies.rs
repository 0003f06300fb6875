//! SupportPolicy (一企一策): create the one policy of a selected member, get, list, update,
//! record a review.

use qilu_common::input::check_etag;
use qilu_common::input::etag::concurrent;
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::registry as pb;

use super::{find_member, load_cohort, load_policy, write_member, write_policy};
use crate::api::RegistryApi;
use crate::api::enterprises::{check_own, not_found as enterprise_not_found};
use crate::convert::leading::policies::{
    parse_new_policy, parse_policy_filter, parse_policy_name, parse_review, parse_update,
    parse_update_mask, parse_update_name, policy_to_proto,
};
use crate::convert::parse_enterprise_name;
use crate::domain::support_policy::{
    PolicyRefused, PolicyState, Review, SupportPolicy, may_create, policy_name,
};
use crate::store::enterprise as enterprise_store;
use crate::store::leading::{self as store, PolicyCursor};

pub(in crate::api) async fn create(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateSupportPolicyRequest,
) -> Result<pb::SupportPolicy, ApiError> {
    let uscc = parse_enterprise_name(&req.parent, "parent", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let today = api.today();
    let input = parse_new_policy(&req, &uscc, &api.known_exceptions, today)?;
    let (uscc, year) = (uscc.as_str().to_string(), input.year);

    let mut tx =
        match WriteTx::begin::<pb::SupportPolicy>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    load_cohort(tx.conn(), year).await?;
    if enterprise_store::get(tx.conn(), &uscc).await?.is_none() {
        return Err(enterprise_not_found(&uscc));
    }
    let member = find_member(tx.conn(), year, &uscc).await?;
    let policy_exists = store::get_policy(tx.conn(), &uscc, year).await?.is_some();
    let member = may_create(member.as_ref(), policy_exists, &uscc, year)?;

    let policy = SupportPolicy {
        uscc: uscc.clone(),
        year,
        fields: input.fields,
        reviews: Vec::new(),
        state: PolicyState::Active,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert_policy(tx.conn(), &policy).await {
        return Err(if is_unique_violation(&e) {
            PolicyRefused::already_has_policy(&uscc, year).into()
        } else {
            e.into()
        });
    }
    tx.record(&policy.name(), &policy, &policy_to_proto(&policy, today))?;
    let updated_member = member.with_support_policy(policy_name(&uscc, year), now);
    write_member(&mut tx, &updated_member, member).await?;
    let response = policy_to_proto(&policy, today);
    tx.commit(&response).await?;
    tracing::info!(policy = %policy.name(), "support policy created");
    Ok(response)
}

pub(in crate::api) async fn get(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetSupportPolicyRequest,
) -> Result<pb::SupportPolicy, ApiError> {
    let (uscc, year) = parse_policy_name(&req.name, "name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let policy = load_policy(&api.db, uscc.as_str(), year).await?;
    Ok(policy_to_proto(&policy, api.today()))
}

pub(in crate::api) async fn list(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::ListSupportPoliciesRequest,
) -> Result<pb::ListSupportPoliciesResponse, ApiError> {
    let uscc = if req.parent == "enterprises/-" {
        if ctx.enterprise_scope().is_some() {
            return Err(ApiError::PermissionDenied(
                "an enterprise token may list only its own support policies".into(),
            ));
        }
        None
    } else {
        let u = parse_enterprise_name(&req.parent, "parent", &api.known_exceptions)?;
        check_own(ctx, u.as_str())?;
        Some(u.as_str().to_string())
    };
    let today = api.today();
    let mut filter = parse_policy_filter(&req.filter, today)?;
    filter.uscc = uscc;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.parent)?;
    let after: Option<PolicyCursor> = page.after()?;
    let mut rows = store::list_policies(&api.db, &filter, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let policies = rows
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let next_page_token = match (more, policies.last()) {
        (true, Some(last)) => page.next_token(&PolicyCursor {
            uscc: last.uscc.clone(),
            year: last.year,
        })?,
        _ => String::new(),
    };
    Ok(pb::ListSupportPoliciesResponse {
        support_policies: policies.iter().map(|p| policy_to_proto(p, today)).collect(),
        next_page_token,
    })
}

pub(in crate::api) async fn update(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::UpdateSupportPolicyRequest,
) -> Result<pb::SupportPolicy, ApiError> {
    let (uscc, year) = parse_update_name(&req, &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let mask = parse_update_mask(&req)?;
    let today = api.today();
    let uscc = uscc.as_str().to_string();

    let mut tx =
        match WriteTx::begin::<pb::SupportPolicy>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = load_policy(tx.conn(), &uscc, year).await?;
    let etag = req.support_policy.as_ref().map(|p| p.etag.as_str());
    check_etag(etag.unwrap_or_default(), &current.name(), current.version)?;
    let input = parse_update(&req, &mask, &current.fields.milestones, today)?;
    let updated = current.revised(input.apply(&current.fields), tx.now_us())?;
    if updated.fields == current.fields {
        // Sent back as read (or otherwise unchanged): nothing to write or audit, and the etag
        // stays; a retry with the request id still replays this answer.
        let response = policy_to_proto(&current, today);
        tx.commit_unchanged(&response).await?;
        return Ok(response);
    }
    write_policy(
        &mut tx,
        &updated,
        &current,
        input.milestones_changed(),
        today,
    )
    .await?;
    let response = policy_to_proto(&updated, today);
    tx.commit(&response).await?;
    Ok(response)
}

pub(in crate::api) async fn record_review(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::RecordSupportPolicyReviewRequest,
) -> Result<pb::SupportPolicy, ApiError> {
    let input = parse_review(&req, &api.known_exceptions)?;
    check_own(ctx, input.uscc.as_str())?;
    let (uscc, year) = (input.uscc.as_str().to_string(), input.year);

    let mut tx =
        match WriteTx::begin::<pb::SupportPolicy>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let current = load_policy(tx.conn(), &uscc, year).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let review = Review {
        conclusion: input.conclusion,
        comment: input.comment,
        reviewer: ctx.caller.subject.clone(),
        review_time_us: now,
    };
    let updated = current.reviewed(review.clone())?;
    if !store::update_policy_if_version(tx.conn(), &updated, current.version, false).await? {
        return Err(concurrent(&current.name()));
    }
    let sequence = i32::try_from(updated.reviews.len()).unwrap_or(i32::MAX);
    store::append_review(tx.conn(), &uscc, year, sequence, &review).await?;
    let response = policy_to_proto(&updated, api.today());
    tx.record(&updated.name(), &updated, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}
