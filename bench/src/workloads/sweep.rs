//! The registry's daily sweep (`qilu_common::sweep`) over `--sweep-certificates` certificates,
//! each held by its own enterprise, on PostgreSQL, run in-process (the sweep is no RPC):
//!
//! - **first sweep**: the rows were loaded straight into the tables, without audit events, so it
//!   records every certificate and every holder: the cost of a day on which everything changes;
//! - **quiet day**: the next sweep, same date: it compares everything and writes nothing — what
//!   most nights cost;
//! - **expiry day**: the next date, on which one certificate in ten expires (and its holder stops
//!   being high-tech certified): it compares everything and writes those.
//!
//! Each row reports the sweep's wall time; the note says how many resources it examined and
//! changed.

use chrono::NaiveDate;
use qilu_common::Clock;
use qilu_common::app::ServiceApp;
use qilu_registry::domain::certification::{Certificate, Filing};
use qilu_registry::domain::enterprise::{Enterprise, EnterpriseFields, EnterpriseState};
use qilu_registry::domain::uscc::{KnownExceptions, Uscc};
use qilu_registry::store::{certificate as cert_store, changes as changes_store};
use sea_orm::EntityTrait;

use super::*;

fn date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").with_context(|| format!("date {s}"))
}

/// Enterprise `n` and its certificate: one in ten issued 2023-06-01 (expiring 2026-06-01), the
/// rest 2025-06-01; every report due by then filed, so only expiry moves a state.
fn fixture(n: u64) -> Result<(Enterprise, Certificate)> {
    let code = uscc("MW", n);
    let uscc = Uscc::parse(&code, &KnownExceptions::default())
        .map_err(|e| anyhow!("generated USCC {code}: {e:?}"))?;
    let enterprise = Enterprise {
        uscc,
        fields: EnterpriseFields {
            display_name: format!("山东绿色低碳科技有限公司MW{n}"),
            legal_representative: "张三".into(),
            established_date: date("2012-03-15")?,
            address: "山东省济南市历下区经十路".into(),
            zone: None,
            technology_fields: vec![],
            green_category: 0,
        },
        state: EnterpriseState::Active,
        high_tech_certified: true,
        leading: false,
        create_time_us: 1,
        update_time_us: 1,
        version: 1,
        state_change: None,
    };
    let (issue, years): (&str, &[i32]) = if n.is_multiple_of(10) {
        ("2023-06-01", &[2023, 2024, 2025])
    } else {
        ("2025-06-01", &[2025])
    };
    let filings = years
        .iter()
        .map(|&year| {
            Ok(Filing {
                year,
                filed_date: date(&format!("{}-03-01", year + 1))?,
                filed_by: "bench".into(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let certificate = Certificate {
        uscc: code,
        number: format!("GRMW{n:08}"),
        issue_date: date(issue)?,
        issuing_authority: "山东省高新技术企业认定管理机构".into(),
        technology_field: 3,
        filings,
        revocation: None,
        create_time_us: 1,
        update_time_us: 1,
        version: 1,
    };
    Ok((enterprise, certificate))
}

pub(super) async fn sweep_rows(args: &Args, url: &str) -> Result<Vec<Row>> {
    let count = args.sweep_certificates;
    let db = sea_orm::Database::connect(url).await?;
    Registry::migrate(&db).await?;
    eprintln!("sweep: loading {count} enterprises and certificates");
    let mut start = 0;
    while start < count {
        let end = (start + 1000).min(count);
        let (enterprises, certificates): (Vec<_>, Vec<_>) = (start..end)
            .map(fixture)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        changes_store::insert_enterprises(&db, &enterprises).await?;
        let rows = certificates
            .iter()
            .map(cert_store::to_active)
            .collect::<Result<Vec<_>, _>>()?;
        cert_store::Entity::insert_many(rows).exec(&db).await?;
        start = end;
    }
    let zone = chrono_tz::Asia::Shanghai;
    let mut rows = Vec::new();
    for (label, day, expect_changes) in [
        (
            "first sweep, records every resource",
            "2026-05-31",
            Some(2 * count),
        ),
        ("quiet day, nothing changes", "2026-05-31", Some(0)),
        (
            "expiry day, 1 in 10 expire",
            "2026-06-01",
            Some(2 * count.div_ceil(10)),
        ),
    ] {
        let sweeper = qilu_registry::sweeper(db.clone(), Clock::fixed_on(date(day)?), zone);
        eprintln!("sweep: {label}");
        let started = Instant::now();
        let report = sweeper
            .run()
            .await
            .map_err(|e| anyhow!("sweep on {day}: {e}"))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if expect_changes.is_some_and(|n| n != report.changed) {
            bail!(
                "sweep on {day} ({label}) changed {} resources, expected {expect_changes:?}",
                report.changed
            );
        }
        rows.push(Row {
            name: format!("Sweep {count} certificates: {label} (PG)"),
            value: ms,
            unit: "ms",
            p50: None,
            p99: None,
            anchor: None,
            target: "(none)".into(),
            verdict: Verdict::Info,
            calls: 0,
            cpu_us: None,
            note: format!(
                "examined {}, changed {}, {:.0} resources/s",
                report.examined,
                report.changed,
                report.examined as f64 / (ms / 1000.0)
            ),
        });
    }
    db.close().await?;
    Ok(rows)
}
