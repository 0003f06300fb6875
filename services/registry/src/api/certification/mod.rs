//! High-tech certificates (`certificates`), their annual reports (`reports`) and the
//! eligibility check (`eligibility`).
//!
//! A certificate's state, its annual reports' states and the two-missed-reports revocation are
//! derived on read from the stored facts and today in the programme time zone
//! (`domain::certification::status`); no background job and no later write is needed for a
//! certificate to read EXPIRED or REVOKED on the right day. Every mutation here also brings the
//! holder's `high_tech_certified` column up to date (true exactly while it holds a certificate
//! whose lapse date is after today) in the same transaction, with its own audit event.

pub(super) mod certificates;
pub(super) mod eligibility;
pub(super) mod import;
pub(super) mod reports;

use crate::convert::certification::to_proto;
use crate::convert::enterprise_to_proto;
use chrono::NaiveDate;
use qilu_common::ApiError;
use qilu_common::input::etag;
use qilu_common::sweep::Current;
use qilu_common::write::Published;
use qilu_common::write::WriteTx;
use serde::Serialize;

use crate::convert::certification::CERTIFICATE_TYPE;
use crate::domain::certification::{self as cert, Certificate, CertificateState, certificate_name};
use crate::domain::uscc::Uscc;
use crate::store::certificate as store;
use crate::store::enterprise as enterprise_store;

use super::enterprises::not_found as enterprise_not_found;

fn not_found(name: String) -> ApiError {
    ApiError::NotFound {
        resource_type: CERTIFICATE_TYPE,
        name,
    }
}

/// What the audit log keeps for a certificate: the stored facts and what they mean today.
#[derive(Serialize)]
struct AuditView<'a> {
    #[serde(flatten)]
    certificate: &'a Certificate,
    expiry_date: NaiveDate,
    lapse_date: NaiveDate,
    state: CertificateState,
    missed_report_count: usize,
}

/// `c` as read on `today`: its audit record and its published state (what Get returns).
pub(crate) fn current(
    c: &Certificate,
    today: NaiveDate,
    zone: chrono_tz::Tz,
) -> Result<Current, ApiError> {
    let status = cert::status(c, today);
    let state_json = serde_json::to_string(&AuditView {
        certificate: c,
        expiry_date: c.expiry_date(),
        lapse_date: cert::lapse_date(c),
        state: status.state,
        missed_report_count: status.missed,
    })
    .map_err(ApiError::internal)?;
    Ok(Current {
        resource: c.name(),
        state_json,
        published: Published::of(&to_proto(c, today, zone)),
    })
}

/// Records `c`, as of `today`, in the write's audit log.
pub(super) fn record(
    tx: &mut WriteTx,
    c: &Certificate,
    today: NaiveDate,
    zone: chrono_tz::Tz,
) -> Result<(), ApiError> {
    let c = current(c, today, zone)?;
    tx.record_published(&c.resource, c.state_json, c.published);
    Ok(())
}

/// Sets the holder's `high_tech_certified` to whether it holds a valid certificate on `today`
/// (after this transaction's certificate writes), bumping its version and auditing it when it
/// changes.
pub(super) async fn refresh_certified(
    tx: &mut WriteTx,
    uscc: &str,
    today: NaiveDate,
) -> Result<(), ApiError> {
    let Some(model) = enterprise_store::get(tx.conn(), uscc).await? else {
        return Err(enterprise_not_found(uscc));
    };
    let enterprise = model.into_domain().map_err(ApiError::internal)?;
    let certified = !store::valid_holders(tx.conn(), &[uscc.to_string()], today)
        .await?
        .is_empty();
    if certified == enterprise.high_tech_certified {
        return Ok(());
    }
    let mut updated = enterprise.clone();
    updated.high_tech_certified = certified;
    updated.version = enterprise.version + 1;
    updated.update_time_us = tx.now_us();
    if !enterprise_store::update_if_version(tx.conn(), &updated, enterprise.version).await? {
        return Err(etag::concurrent(&updated.name()));
    }
    let published = enterprise_to_proto(&updated);
    tx.record(&updated.name(), &updated, &published)?;
    Ok(())
}

/// Certificate `number` of `uscc` (another holder's certificate of that number is not found).
async fn load_in(
    conn: &impl sea_orm::ConnectionTrait,
    uscc: &Uscc,
    number: &str,
) -> Result<Certificate, ApiError> {
    let name = certificate_name(uscc.as_str(), number);
    let model = store::get(conn, number)
        .await?
        .filter(|m| m.uscc == uscc.as_str())
        .ok_or_else(|| not_found(name))?;
    model.into_domain().map_err(ApiError::internal)
}
