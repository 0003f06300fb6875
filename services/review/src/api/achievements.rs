//! Achievements: create (owner checked in the registry), get, list, update (drafts only),
//! submit (registry check, then rule screening with the active rule set: VETO → VETOED at once)
//! and withdraw.

use qilu_common::filter::{Filter, Op};
use qilu_common::idempotency;
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::common::IndustryField;
use qilu_proto::review as pb;

use super::{ReviewApi, Scope, new_id};
use crate::convert::{self, achievement_to_proto, parse_achievement_name};
use crate::domain::achievement::{Achievement, MAX_REASON_CHARS, State};
use crate::domain::review::ReviewState;
use crate::domain::screening::{self, RuleSetRef};
use crate::domain::{appeal, decision};
use crate::store::achievement::{self as store, Cursor, ListFilter, Order};
use crate::store::{review as review_store, rule_set as rule_set_store};

/// Enterprise callers see expert names redacted.
pub(super) fn redact_for(ctx: &CallContext) -> bool {
    matches!(Scope::of(ctx), Scope::Enterprise(_))
}

/// An enterprise caller may act only on its own achievements (NOT_FOUND otherwise, as if the
/// achievement did not exist).
pub(super) fn check_own(ctx: &CallContext, a: &Achievement) -> Result<(), ApiError> {
    match Scope::of(ctx) {
        Scope::Enterprise(own) if own != a.owner => Err(super::achievement_not_found(&a.id)),
        _ => Ok(()),
    }
}

fn wrong_state(a: &Achievement, kind: &str, what: &str) -> ApiError {
    ApiError::precondition(
        kind,
        a.name(),
        format!("{} is {}; {what}", a.name(), a.state.as_str()),
    )
}

pub(super) async fn create_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::CreateAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let Some(input) = req.achievement.as_ref() else {
        return Err(ApiError::invalid(
            "achievement",
            "REQUIRED",
            "achievement is required",
        ));
    };
    let mut violations = Vec::new();
    let owner = convert::parse_enterprise(&input.owner, "achievement.owner")
        .map_err(|v| violations.push(v))
        .ok();
    let fields = convert::parse_achievement_fields(input, "achievement")
        .map_err(|v| violations.extend(v))
        .ok();
    let (Some(owner), Some(fields)) = (owner, fields) else {
        return Err(ApiError::InvalidArgument(violations));
    };
    if let Scope::Enterprise(own) = Scope::of(ctx)
        && own != owner
    {
        return Err(ApiError::PermissionDenied(
            "an enterprise token may create achievements only for its own enterprise".into(),
        ));
    }
    // A retry of a completed create replays without the registry (which may be down now).
    if let Some(previous) =
        idempotency::previous::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await?
    {
        return Ok(previous);
    }
    // The registry first: nothing is written when it is down or says no.
    api.check_registered(ctx, &owner, "achievement.owner")
        .await?;

    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let achievement = Achievement {
        id: new_id(),
        owner,
        fields,
        state: State::Draft,
        screening: None,
        review_round: 0,
        decision: None,
        previous_decisions: Vec::new(),
        appeal: None,
        appeal_deadline: None,
        withdraw_reason: String::new(),
        submit_time_us: None,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    store::insert(tx.conn(), &achievement).await?;
    let response = achievement_to_proto(&achievement, redact_for(ctx));
    tx.record(&achievement.name(), &achievement)?;
    tx.commit(&response).await?;
    tracing::info!(achievement = %achievement.name(), owner = %achievement.owner, "achievement drafted");
    Ok(response)
}

pub(super) async fn get_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::GetAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let id = parse_achievement_name(&req.name, "name")?;
    let a = api.visible_achievement(&api.db, ctx, &id).await?;
    Ok(achievement_to_proto(&a, redact_for(ctx)))
}

fn parse_list_filter(raw: &str) -> Result<ListFilter, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&[
        "owner",
        "state",
        "industry_field",
        "screening.outcome",
        "title",
    ])?;
    let mut out = ListFilter::default();
    for c in filter.conditions() {
        let bad = |why: String| {
            ApiError::invalid("filter", "INVALID_FILTER", format!("{}: {why}", c.field))
        };
        let want = if c.field == "title" { Op::Has } else { Op::Eq };
        if c.op != want {
            return Err(bad(format!(
                "supports only {}",
                if want == Op::Has { ":" } else { "=" }
            )));
        }
        match c.field.as_str() {
            "owner" => {
                let uscc = convert::parse_enterprise(&c.value, "filter")
                    .map_err(|v| bad(v.description))?;
                out.owner = Some(uscc);
            }
            "state" => {
                let s = pb::AchievementState::from_str_name(&c.value)
                    .filter(|s| *s != pb::AchievementState::Unspecified)
                    .ok_or_else(|| bad(format!("{:?} is not an AchievementState", c.value)))?;
                out.state = Some(s as i32);
            }
            "industry_field" => {
                let f = IndustryField::from_str_name(&c.value)
                    .filter(|f| *f != IndustryField::Unspecified)
                    .ok_or_else(|| bad(format!("{:?} is not an IndustryField", c.value)))?;
                out.industry_field = Some(f as i32);
            }
            "screening.outcome" => {
                let o = pb::ScreeningOutcome::from_str_name(&c.value)
                    .filter(|o| *o != pb::ScreeningOutcome::Unspecified)
                    .ok_or_else(|| bad(format!("{:?} is not a ScreeningOutcome", c.value)))?;
                out.screening_outcome = Some(o as i32);
            }
            _ => out.title_contains = Some(c.value.clone()),
        }
    }
    Ok(out)
}

fn parse_order(raw: &str) -> Result<Order, ApiError> {
    qilu_common::limits::order_by(raw)?;
    let words: Vec<&str> = raw.split_whitespace().collect();
    let desc = match words.get(1).copied() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "order_by",
                "INVALID_ORDER_BY",
                format!("expected asc or desc, got {other:?}"),
            ));
        }
    };
    match (words.first().copied(), words.len() <= 2) {
        (None, _) => Ok(Order::CreateTime { desc: false }),
        (Some("create_time"), true) => Ok(Order::CreateTime { desc }),
        (Some("submit_time"), true) => Ok(Order::SubmitTime { desc }),
        _ => Err(ApiError::invalid(
            "order_by",
            "INVALID_ORDER_BY",
            format!(
                "cannot order by {}; use create_time or submit_time, optionally with desc",
                qilu_common::limits::echo(raw)
            ),
        )),
    }
}

pub(super) async fn list_achievements(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ListAchievementsRequest,
) -> Result<pb::ListAchievementsResponse, ApiError> {
    let mut filter = parse_list_filter(&req.filter)?;
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    match Scope::of(ctx) {
        Scope::Staff => {}
        Scope::Enterprise(own) => {
            if filter.owner.as_ref().is_some_and(|o| *o != own) {
                // Another enterprise's achievements: there is nothing this caller may see.
                return Ok(pb::ListAchievementsResponse::default());
            }
            filter.owner = Some(own);
        }
        Scope::Expert(expert) => {
            let mut ids: Vec<String> = review_store::of_expert(&api.db, &expert)
                .await?
                .into_iter()
                .filter(|r| r.state != ReviewState::Cancelled.code())
                .map(|r| r.achievement_id)
                .collect();
            ids.sort();
            ids.dedup();
            filter.only_ids = Some(ids);
        }
    }
    let mut rows = store::list(&api.db, &filter, order, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&Cursor {
            t: match order {
                Order::CreateTime { .. } => last.create_time_us,
                Order::SubmitTime { .. } => last.submit_time_us,
            },
            id: last.id.clone(),
        })?,
        _ => String::new(),
    };
    let redact = redact_for(ctx);
    let achievements = rows
        .into_iter()
        .map(|m| m.into_domain().map(|a| achievement_to_proto(&a, redact)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(pb::ListAchievementsResponse {
        achievements,
        next_page_token,
    })
}

pub(super) async fn update_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::UpdateAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let Some(input) = req.achievement.as_ref() else {
        return Err(ApiError::invalid(
            "achievement",
            "REQUIRED",
            "achievement is required",
        ));
    };
    let id = parse_achievement_name(&input.name, "achievement.name")?;
    let paths: Vec<String> = req
        .update_mask
        .as_ref()
        .map(|m| m.paths.clone())
        .unwrap_or_default();
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "update_mask",
            "REQUIRED",
            format!(
                "name the fields to update: {}",
                convert::ACHIEVEMENT_FIELDS.join(", ")
            ),
        ));
    }
    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_own(ctx, &current)?;
    check_etag(&input.etag, &current.name(), current.version)?;
    if current.state != State::Draft {
        return Err(wrong_state(
            &current,
            "ACHIEVEMENT_NOT_DRAFT",
            "only a DRAFT can be updated",
        ));
    }
    let mut updated = current.clone();
    let mut violations = Vec::new();
    for path in &paths {
        if let Err(v) =
            convert::apply_achievement_field(&mut updated.fields, input, path, "achievement")
        {
            violations.extend(v);
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = achievement_to_proto(&updated, redact_for(ctx));
    tx.record(&updated.name(), &updated)?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn submit_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::SubmitAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let id = parse_achievement_name(&req.name, "name")?;
    // Read first to learn the owner, then ask the registry before any write transaction opens.
    let before = api.load_achievement(&api.db, &id).await?;
    check_own(ctx, &before)?;
    // A retry of a completed submit replays without the registry (which may be down now).
    if let Some(previous) =
        idempotency::previous::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await?
    {
        return Ok(previous);
    }
    if before.state == State::Draft {
        api.check_registered(ctx, &before.owner, "name").await?;
    }

    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    if current.state != State::Draft || current.owner != before.owner {
        return Err(wrong_state(
            &current,
            "ACHIEVEMENT_NOT_DRAFT",
            "only a DRAFT can be submitted",
        ));
    }
    let rule_set = rule_set_store::active(tx.conn())
        .await?
        .ok_or_else(|| {
            ApiError::precondition(
                "NO_ACTIVE_RULE_SET",
                "vetoRuleSets",
                "no veto rule set is active; an admin must activate one",
            )
        })?
        .into_domain()
        .map_err(ApiError::internal)?;
    let now = tx.now_us();
    let rule_set_name = rule_set.name();
    let verdict = screening::screen(
        RuleSetRef {
            name: &rule_set_name,
            version: rule_set.version,
            description: &rule_set.description,
            rules: &rule_set.rules,
        },
        &current.owner,
        &current.fields.green_data,
        now,
    );
    let mut updated = current.clone();
    updated.review_round = current.review_round.max(1);
    updated.submit_time_us = Some(now);
    if verdict.outcome == screening::Outcome::Veto {
        // One-vote veto by rule: final at once, unless an appeal succeeds.
        updated.state = State::Vetoed;
        updated.decision = Some(decision::rule_veto(updated.review_round, &verdict));
        updated.appeal_deadline = Some(appeal::deadline(now, api.time_zone).to_string());
    } else {
        updated.state = State::Submitted;
    }
    updated.screening = Some(verdict);
    updated.version = current.version + 1;
    updated.update_time_us = now;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = achievement_to_proto(&updated, redact_for(ctx));
    tx.record(&updated.name(), &updated)?;
    tx.commit(&response).await?;
    tracing::info!(
        achievement = %updated.name(),
        state = updated.state.as_str(),
        rule_set = %rule_set_name,
        "achievement submitted and screened"
    );
    Ok(response)
}

pub(super) async fn withdraw_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::WithdrawAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let id = parse_achievement_name(&req.name, "name")?;
    let reason = convert::text(&req.reason, "reason", MAX_REASON_CHARS, false)
        .map_err(|v| ApiError::InvalidArgument(vec![v]))?;
    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_own(ctx, &current)?;
    check_etag(&req.etag, &current.name(), current.version)?;
    if !current.state.withdrawable() {
        return Err(wrong_state(
            &current,
            "ACHIEVEMENT_NOT_WITHDRAWABLE",
            "only DRAFT, SUBMITTED or UNDER_REVIEW can be withdrawn",
        ));
    }
    let now = tx.now_us();
    // Open reviews are cancelled with the achievement.
    for model in review_store::of_round(tx.conn(), &id, current.review_round).await? {
        let review = model.into_domain().map_err(ApiError::internal)?;
        if review.state != ReviewState::Assigned {
            continue;
        }
        let mut cancelled = review.clone();
        cancelled.state = ReviewState::Cancelled;
        cancelled.cancel_reason = "achievement withdrawn".into();
        cancelled.update_time_us = now;
        cancelled.version = review.version + 1;
        if !review_store::update_if_version(tx.conn(), &cancelled, review.version).await? {
            return Err(concurrent(&review.name()));
        }
        tx.record(&cancelled.name(), &cancelled)?;
    }
    let mut updated = current.clone();
    updated.state = State::Withdrawn;
    updated.withdraw_reason = reason;
    updated.version = current.version + 1;
    updated.update_time_us = now;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = achievement_to_proto(&updated, redact_for(ctx));
    tx.record(&updated.name(), &updated)?;
    tx.commit(&response).await?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_and_orders_parse_or_name_the_problem() {
        let f = parse_list_filter(
            r#"owner = "enterprises/91350100M000100Y43" AND state = ACHIEVEMENT_STATE_UNDER_REVIEW AND title:"氢""#,
        );
        let f = f.ok();
        assert_eq!(f.as_ref().and_then(|f| f.state), Some(3));
        assert_eq!(
            f.as_ref().and_then(|f| f.title_contains.clone()).as_deref(),
            Some("氢")
        );
        assert!(parse_list_filter("state = OPEN").is_err());
        assert!(parse_list_filter("title = x").is_err());
        assert!(parse_list_filter("colour = red").is_err());
        assert!(matches!(
            parse_order("submit_time desc"),
            Ok(Order::SubmitTime { desc: true })
        ));
        assert!(parse_order("title").is_err());
    }
}
