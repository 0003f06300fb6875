//! Filing a certificate's annual report.

use qilu_common::input::{check_etag, etag};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;

use crate::api::RegistryApi;
use crate::api::enterprises::check_own;
use crate::convert::certification::{filed_date, parse_filing, parse_name, to_proto};
use crate::domain::certification::Filing;
use crate::store::certificate as store;

use super::{load_in, record, refresh_certified};

pub(in crate::api) async fn file_annual_report(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::FileAnnualReportRequest,
) -> Result<pb::HighTechCertificate, ApiError> {
    let (uscc, number) = parse_name(&req.name, "name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let today = api.today();
    let (year, given) = parse_filing(&req)?;
    if given.is_some() && ctx.enterprise_scope().is_some() {
        return Err(ApiError::PermissionDenied(
            "an enterprise token files on the day it calls; only officers record filed_date".into(),
        ));
    }
    let filing = Filing {
        year,
        filed_date: filed_date(given, today)?,
        filed_by: ctx.caller.subject.clone(),
    };

    let mut tx =
        match WriteTx::begin::<pb::HighTechCertificate>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = load_in(tx.conn(), &uscc, &number).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let updated = current.file(filing, given.is_some(), today, tx.now_us())?;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(etag::concurrent(&current.name()));
    }
    record(&mut tx, &updated, today, api.time_zone)?;
    refresh_certified(&mut tx, uscc.as_str(), today).await?;
    let response = to_proto(&updated, today, api.time_zone);
    tx.commit(&response).await?;
    Ok(response)
}
