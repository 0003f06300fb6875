//! Policy targets (dated, versioned data): create (optionally superseding an earlier target in
//! the same transaction), get, list. Targets are never edited otherwise: the only change a
//! stored target ever sees is being marked superseded by its successor.

use qilu_common::input::etag::concurrent;
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::registry as pb;

use crate::convert::policy::{
    POLICY_TARGET_TYPE, not_found, parse_draft, parse_list_filter, parse_order, parse_target_name,
    to_proto,
};
use crate::domain::policy::{StoredTarget, YearRange, may_record};
use crate::store::policy::{self as store, Cursor, Model, Order};

use super::RegistryApi;

/// Resource name `policyTargets/{id}` (other resources cite the target they were measured by).
pub(super) use crate::convert::policy::policy_target_name;

fn stored(m: &Model) -> StoredTarget {
    StoredTarget {
        id: m.id.clone(),
        kind: m.kind,
        range: YearRange::from_stored(m.effective_from_year, m.effective_to_year),
        superseded_by: m.superseded_by.clone(),
    }
}

pub(super) async fn create_policy_target(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreatePolicyTargetRequest,
) -> Result<pb::PolicyTarget, ApiError> {
    let draft = parse_draft(&req, api.today())?;

    let mut tx =
        match WriteTx::begin::<pb::PolicyTarget>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let kind = draft.kind.code();
    let superseded = match &draft.supersedes {
        Some(old_id) => store::get(tx.conn(), old_id).await?,
        None => None,
    };
    let in_force: Vec<StoredTarget> = store::not_superseded(tx.conn(), kind)
        .await?
        .iter()
        .map(stored)
        .collect();
    let superseded_view = superseded.as_ref().map(stored);
    may_record(
        draft.kind,
        draft.range(),
        draft
            .supersedes
            .as_deref()
            .map(|id| (id, superseded_view.as_ref())),
        &in_force,
    )?;

    let id = draft.id.clone().unwrap_or_else(|| {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!(
            "{}-{}-{}",
            draft.kind.slug(),
            draft.effective_from_year,
            &suffix[..8]
        )
    });
    let row = Model {
        id: id.clone(),
        kind,
        value: draft.value,
        effective_from_year: draft.effective_from_year,
        effective_to_year: draft.effective_to_year,
        target_year: draft.target_year,
        source: draft.source,
        source_date: draft.source_date,
        note: draft.note,
        supersedes: superseded
            .as_ref()
            .map(|s| policy_target_name(&s.id))
            .unwrap_or_default(),
        superseded_by: String::new(),
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert(tx.conn(), row.clone()).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: POLICY_TARGET_TYPE,
                name: policy_target_name(&id),
            }
        } else {
            e.into()
        });
    }
    tx.record(&policy_target_name(&id), &row, &to_proto(&row))?;
    if let Some(old) = superseded {
        let by = policy_target_name(&id);
        if !store::supersede(tx.conn(), &old.id, &by, old.version, now).await? {
            return Err(concurrent(&policy_target_name(&old.id)));
        }
        let updated = Model {
            superseded_by: by,
            update_time_us: now,
            version: old.version + 1,
            ..old
        };
        tx.record(
            &policy_target_name(&updated.id),
            &updated,
            &to_proto(&updated),
        )?;
    }
    let response = to_proto(&row);
    tx.commit(&response).await?;
    tracing::info!(policy_target = %response.name, "policy target recorded");
    Ok(response)
}

pub(super) async fn get_policy_target(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetPolicyTargetRequest,
) -> Result<pb::PolicyTarget, ApiError> {
    let id = parse_target_name(&req.name, "name")?;
    let row = store::get(&api.db, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(to_proto(&row))
}

pub(super) async fn list_policy_targets(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListPolicyTargetsRequest,
) -> Result<pb::ListPolicyTargetsResponse, ApiError> {
    let filter = parse_list_filter(&req.filter)?;
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    let mut rows = store::list(&api.db, &filter, order, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&Cursor {
            key: match order {
                Order::EffectiveFromYear { .. } => i64::from(last.effective_from_year),
                Order::CreateTime { .. } => last.create_time_us,
            },
            id: last.id.clone(),
        })?,
        _ => String::new(),
    };
    Ok(pb::ListPolicyTargetsResponse {
        policy_targets: rows.iter().map(to_proto).collect(),
        next_page_token,
    })
}
