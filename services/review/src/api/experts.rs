//! Experts: create, get, list, update (field mask + etag; an expert edits its own record but not
//! its load limit or state), and declared conflicts of interest (which cancel the expert's open
//! reviews of that enterprise's achievements in the same transaction).

use std::collections::{BTreeSet, HashMap};

use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::review as pb;
use sea_orm::ConnectionTrait;

use super::{ReviewApi, Scope};
use crate::convert::EXPERT_TYPE;
use crate::convert::expert::{
    DeclareConflict, UpdateExpert, expert_to_proto, list_filter, list_order, parse_create,
};
use crate::convert::review::review_to_proto;
use crate::domain::achievement::State;
use crate::domain::expert::{DeclaredConflict, Expert};
use crate::domain::ids::ExpertId;
use crate::domain::review::ReviewState;
use crate::store::expert as store;
use crate::store::{achievement as achievement_store, review as review_store};

pub(super) fn not_found(id: &ExpertId) -> ApiError {
    ApiError::NotFound {
        resource_type: EXPERT_TYPE,
        name: id.name(),
    }
}

pub(super) async fn load(conn: &impl ConnectionTrait, id: &ExpertId) -> Result<Expert, ApiError> {
    store::get(conn, id.as_str())
        .await?
        .ok_or_else(|| not_found(id))?
        .into_domain()
        .map_err(ApiError::internal)
}

/// An expert token may act only on its own record.
fn check_self(ctx: &CallContext, id: &ExpertId) -> Result<(), ApiError> {
    match Scope::of(ctx) {
        Scope::Staff => Ok(()),
        Scope::Expert(own) if own == id.as_str() => Ok(()),
        _ => Err(ApiError::PermissionDenied(
            "an expert token may access only its own expert record".into(),
        )),
    }
}

async fn open_reviews(conn: &impl ConnectionTrait, id: &ExpertId) -> Result<i64, ApiError> {
    Ok(review_store::open_counts(conn)
        .await?
        .get(id.as_str())
        .copied()
        .unwrap_or(0))
}

/// Records the experts `ids` again as their Get reads them now. A write that assigns, submits
/// or cancels reviews changes those experts' `open_reviews` without touching their rows; the
/// change feed serves the audit log, so without this event a follower would keep the old count.
/// Call it after the write's review changes, in the same write.
pub(super) async fn record_loads(
    tx: &mut WriteTx,
    ids: impl IntoIterator<Item = String>,
) -> Result<(), ApiError> {
    let ids: BTreeSet<String> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(());
    }
    let counts = review_store::open_counts(tx.conn()).await?;
    for id in ids {
        let expert = load(tx.conn(), &ExpertId::from_stored(id.as_str())).await?;
        let open = counts.get(&id).copied().unwrap_or(0);
        tx.record(&expert.name(), &expert, &expert_to_proto(&expert, open))?;
    }
    Ok(())
}

pub(super) async fn create_expert(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::CreateExpertRequest,
) -> Result<pb::Expert, ApiError> {
    let mut expert = parse_create(&req)?;
    let mut tx = match WriteTx::begin::<pb::Expert>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    expert.create_time_us = tx.now_us();
    expert.update_time_us = tx.now_us();
    if let Err(e) = store::insert(tx.conn(), &expert).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: EXPERT_TYPE,
                name: expert.name(),
            }
        } else {
            e.into()
        });
    }
    let response = expert_to_proto(&expert, 0);
    tx.record(&expert.name(), &expert, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn get_expert(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::GetExpertRequest,
) -> Result<pb::Expert, ApiError> {
    let id = ExpertId::parse_name(&req.name, "name")?;
    check_self(ctx, &id)?;
    let expert = load(&api.db, &id).await?;
    let open = open_reviews(&api.db, &id).await?;
    Ok(expert_to_proto(&expert, open))
}

/// The last row of a page: its open reviews (for load order) and id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Cursor {
    n: i64,
    id: String,
}

pub(super) async fn list_experts(
    api: &ReviewApi,
    _ctx: &CallContext,
    req: pb::ListExpertsRequest,
) -> Result<pb::ListExpertsResponse, ApiError> {
    let filter = list_filter(&req.filter)?;
    let order = list_order(&req.order_by)?;
    let (by_load, desc) = (order.by_load, order.desc);
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    let counts: HashMap<String, i64> = review_store::open_counts(&api.db).await?;
    // Experts number in the hundreds: order by load in memory, where the load is known.
    let mut rows: Vec<(i64, store::Model)> = store::all_matching(&api.db, &filter)
        .await?
        .into_iter()
        .map(|m| {
            (
                if by_load {
                    counts.get(&m.id).copied().unwrap_or(0)
                } else {
                    0
                },
                m,
            )
        })
        .collect();
    rows.sort_by(|(n1, a), (n2, b)| (n1, &a.id).cmp(&(n2, &b.id)));
    if desc {
        rows.reverse();
    }
    if let Some(c) = after {
        rows.retain(|(n, m)| {
            let key = (*n, m.id.as_str());
            let last = (c.n, c.id.as_str());
            if desc { key < last } else { key > last }
        });
    }
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some((n, m))) => page.next_token(&Cursor {
            n: *n,
            id: m.id.clone(),
        })?,
        _ => String::new(),
    };
    let experts = rows
        .into_iter()
        .map(|(_, m)| {
            let open = counts.get(&m.id).copied().unwrap_or(0);
            m.into_domain().map(|e| expert_to_proto(&e, open))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(pb::ListExpertsResponse {
        experts,
        next_page_token,
    })
}

pub(super) async fn update_expert(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::UpdateExpertRequest,
) -> Result<pb::Expert, ApiError> {
    let update = UpdateExpert::parse(&req)?;
    let id = update.id.clone();
    check_self(ctx, &id)?;
    if Scope::of(ctx) != Scope::Staff && update.touches_admin_fields() {
        return Err(ApiError::PermissionDenied(
            "only an admin may change an expert's load_limit or state".into(),
        ));
    }
    let mut tx = match WriteTx::begin::<pb::Expert>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = load(tx.conn(), &id).await?;
    check_etag(update.etag, &current.name(), current.version)?;
    let mut updated = update.apply_update(&current)?;
    if updated == current {
        // Sent back as read (or otherwise unchanged): nothing to write or audit, and the etag
        // stays; a retry with the request id still replays this answer.
        let open = open_reviews(tx.conn(), &id).await?;
        let response = expert_to_proto(&current, open);
        tx.commit_unchanged(&response).await?;
        return Ok(response);
    }
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let open = open_reviews(tx.conn(), &id).await?;
    let response = expert_to_proto(&updated, open);
    tx.record(&updated.name(), &updated, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn declare_conflict(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::DeclareConflictRequest,
) -> Result<pb::Expert, ApiError> {
    let DeclareConflict {
        expert: id,
        enterprise,
        reason,
    } = DeclareConflict::parse(&req)?;
    check_self(ctx, &id)?;
    let mut tx = match WriteTx::begin::<pb::Expert>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let now = tx.now_us();
    let current = load(tx.conn(), &id).await?;
    let mut updated = current.clone();
    updated.declared_conflicts.push(DeclaredConflict {
        enterprise: enterprise.clone(),
        reason,
        declared_by: ctx.caller.subject.clone(),
        declare_time_us: now,
    });
    updated.version = current.version + 1;
    updated.update_time_us = now;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    // The expert's open reviews of that enterprise's achievements are cancelled now.
    let owned = achievement_store::ids_owned_in(
        tx.conn(),
        &enterprise,
        &[State::Submitted, State::UnderReview],
    )
    .await?;
    for model in review_store::open_of_expert_on(tx.conn(), id.as_str(), &owned).await? {
        let review = model.into_domain().map_err(ApiError::internal)?;
        let mut cancelled = review.clone();
        cancelled.state = ReviewState::Cancelled;
        cancelled.cancel_reason =
            format!("conflict declared with the owner enterprises/{enterprise}");
        cancelled.update_time_us = now;
        cancelled.version = review.version + 1;
        if !review_store::update_if_version(tx.conn(), &cancelled, review.version).await? {
            return Err(concurrent(&review.name()));
        }
        tx.record(
            &cancelled.name(),
            &cancelled,
            &review_to_proto(&cancelled, false),
        )?;
    }
    let open = open_reviews(tx.conn(), &id).await?;
    let response = expert_to_proto(&updated, open);
    tx.record(&updated.name(), &updated, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}
