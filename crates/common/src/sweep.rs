//! The sweep: the changes that the passing of time makes, written as ordinary audited changes.
//!
//! Some of what a service's Get returns depends on "today": a certificate is EXPIRED after its
//! expiry date, an enterprise stops being `high_tech_certified` with it, a milestone becomes
//! OVERDUE, an objection window closes. Get derives that as of today, so no write happens when
//! the date turns, and the change feed (which serves the audit log) would never hear of it. The
//! sweep closes that gap: it reads each such resource as Get would today, compares it with the
//! published state of the resource's newest audit event (what the feed last said), and records
//! the difference as a change, through [`WriteTx`] like any write, with the actor
//! [`SYSTEM_ACTOR`] and the method `<service>/SweepTimeDrivenChanges`.
//!
//! - **Exactly once.** Candidates are compared outside any write (cheap, on the pool), then each
//!   chunk that differs is read and compared again *inside* one write, which holds the chain
//!   lock: a second replica sweeping at the same moment finds the first one's events and writes
//!   nothing, so one transition is one change however many replicas sweep.
//! - **Idempotent and resumable.** Nothing is remembered between sweeps but the audit log
//!   itself: a sweep that fails half way (the database went away) has committed whole chunks or
//!   nothing of a chunk, and the next sweep finds only what is still different.
//! - **When.** At start, then daily at `sweep.daily_at` in the programme time zone, read from the
//!   service's [`Clock`] (so tests that move "today" can sweep on demand with
//!   [`Sweeper::run`]); a failed sweep is retried after `sweep.retry_seconds`. So a time-driven
//!   change reaches the feed at most one sweep interval (a day) after the date it takes effect.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use sea_orm::DatabaseConnection;

use crate::clock::Clock;
use crate::config::SweepConfig;
use crate::context::Shutdown;
use crate::error::ApiError;
use crate::feed;
use crate::write::{LeaseConn, Published, WriteTx};

/// The audit actor of the sweep's changes.
pub const SYSTEM_ACTOR: &str = "system:sweep";
/// Candidates compared per round trip, and at most this many resources per sweep write.
const CHUNK: u64 = 500;

/// One resource as Get would return it today, ready to record.
#[derive(Debug, Clone)]
pub struct Current {
    /// Resource name.
    pub resource: String,
    /// Its stored record as the audit's `state_json` holds it.
    pub state_json: String,
    /// Its published state (the message Get returns to a reader who may see all of it).
    pub published: Published,
}

/// One family of resources whose state as read depends on the date.
#[async_trait::async_trait]
pub trait TimeDriven: Send + Sync + 'static {
    /// Family name, for logs and reports (e.g. `highTechCertificates`).
    fn family(&self) -> &'static str;

    /// The family's resources after resource `after` (the last one of the previous page; empty =
    /// from the start), at most `limit`, each as read on `today`, in an order the family resumes
    /// from that name (its own key order: page by an index, not by sorting the table). A family may leave out resources whose
    /// state cannot depend on the date (a revoked enterprise's certificates, say).
    async fn page(
        &self,
        db: &DatabaseConnection,
        today: NaiveDate,
        after: &str,
        limit: u64,
    ) -> Result<Vec<Current>, ApiError>;

    /// Exactly `resources` (names the family gave), as read on `today` inside the sweep's write.
    async fn these(
        &self,
        conn: &LeaseConn,
        today: NaiveDate,
        resources: &[String],
    ) -> Result<Vec<Current>, ApiError>;
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// The programme date swept for.
    pub date: NaiveDate,
    /// Resources compared.
    pub examined: u64,
    /// Changes written (resources whose state as read today differed from the feed's).
    pub changed: u64,
}

/// A service's sweep: runs on demand ([`Sweeper::run`]) and on its schedule
/// ([`Sweeper::spawn`]). Clones share one sweep at a time.
#[derive(Clone)]
pub struct Sweeper {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    clock: Clock,
    zone: Tz,
    method: String,
    families: Vec<Box<dyn TimeDriven>>,
    running: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper")
            .field("method", &self.inner.method)
            .finish()
    }
}

impl Sweeper {
    /// The sweep of the service named `service` (e.g. `qilu.registry.v1.EnterpriseRegistryService`)
    /// over `families`, dating with `clock` in `zone`.
    pub fn new(
        db: DatabaseConnection,
        clock: Clock,
        zone: Tz,
        service: &str,
        families: Vec<Box<dyn TimeDriven>>,
    ) -> Sweeper {
        Sweeper {
            inner: Arc::new(Inner {
                db,
                clock,
                zone,
                method: format!("{service}/SweepTimeDrivenChanges"),
                families,
                running: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Sweeps now, for today as the clock has it, and says what changed.
    pub async fn run(&self) -> Result<SweepReport, ApiError> {
        let _one_at_a_time = self.inner.running.lock().await;
        let today = self.inner.clock.today(self.inner.zone);
        let mut report = SweepReport {
            date: today,
            ..SweepReport::default()
        };
        for family in &self.inner.families {
            let mut after = String::new();
            loop {
                let page = family.page(&self.inner.db, today, &after, CHUNK).await?;
                let Some(last) = page.last() else {
                    break;
                };
                after = last.resource.clone();
                report.examined += page.len() as u64;
                let differing = differing(&self.inner.db, &page).await?;
                if !differing.is_empty() {
                    report.changed += self.write(family.as_ref(), today, &differing).await?;
                }
                if (page.len() as u64) < CHUNK {
                    break;
                }
            }
        }
        if report.changed > 0 {
            tracing::info!(date = %report.date, examined = report.examined, changed = report.changed,
                "sweep wrote the changes time made");
        }
        Ok(report)
    }

    /// Records, in one write, those of `resources` that still differ once the chain lock is held.
    async fn write(
        &self,
        family: &dyn TimeDriven,
        today: NaiveDate,
        resources: &[String],
    ) -> Result<u64, ApiError> {
        let mut tx = WriteTx::system(&self.inner.db, SYSTEM_ACTOR, &self.inner.method).await?;
        let current = family.these(tx.conn(), today, resources).await?;
        let mut written = 0;
        for c in differing_items(tx.conn(), current).await? {
            tx.record_published(&c.resource, c.state_json, c.published);
            written += 1;
        }
        if tx.has_events() {
            tx.commit(&()).await?;
        }
        // Otherwise another replica wrote them first; dropping the write ends it unchanged.
        Ok(written)
    }

    /// Runs the sweep at start and then daily at `config.daily_at` (programme time zone, by the
    /// service's clock) until `shutdown`; a failed sweep is retried after `retry_seconds`.
    pub fn spawn(self, config: &SweepConfig, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let at = config.daily_at();
        let retry = Duration::from_secs(config.retry_seconds);
        tokio::spawn(async move {
            let mut due = self.inner.clock.now_us();
            loop {
                let wait = Duration::from_micros(
                    u64::try_from(due - self.inner.clock.now_us()).unwrap_or(0),
                )
                // A clock a test moves is read again at least every second.
                .min(Duration::from_secs(1));
                if !wait.is_zero() {
                    tokio::select! {
                        () = shutdown.started() => return,
                        () = tokio::time::sleep(wait) => continue,
                    }
                }
                if shutdown.is_started() {
                    return;
                }
                due = match self.run().await {
                    Ok(_) => next_run(self.inner.clock.now_us(), at, self.inner.zone),
                    Err(e) => {
                        tracing::warn!(error = %e, retry_seconds = retry.as_secs(), "sweep failed; will retry");
                        self.inner.clock.now_us() + retry.as_micros() as i64
                    }
                };
            }
        })
    }
}

/// The next `at` (local time in `zone`) strictly after `now_us`, in µs since the epoch.
pub fn next_run(now_us: i64, at: NaiveTime, zone: Tz) -> i64 {
    let now = crate::time::to_datetime(now_us).map(|t| t.with_timezone(&zone));
    let Some(now) = now else {
        return now_us + 86_400_000_000;
    };
    let mut day = now.date_naive();
    for _ in 0..3 {
        if let Some(t) = zone
            .from_local_datetime(&day.and_time(at))
            .earliest()
            .filter(|t| *t > now)
        {
            return t.timestamp_micros();
        }
        day = day.succ_opt().unwrap_or(day);
    }
    now_us + 86_400_000_000
}

/// The names among `page` whose state differs from the published state of their newest event.
async fn differing(db: &DatabaseConnection, page: &[Current]) -> Result<Vec<String>, ApiError> {
    let names: Vec<String> = page.iter().map(|c| c.resource.clone()).collect();
    let latest = feed::latest_events(db, &names).await?;
    Ok(page
        .iter()
        .filter(|c| !same(latest.get(&c.resource), &c.published))
        .map(|c| c.resource.clone())
        .collect())
}

/// The items among `current` that differ from their newest event, read on `conn`.
async fn differing_items(
    conn: &LeaseConn,
    current: Vec<Current>,
) -> Result<Vec<Current>, ApiError> {
    let names: Vec<String> = current.iter().map(|c| c.resource.clone()).collect();
    let latest = feed::latest_events(conn, &names).await?;
    Ok(current
        .into_iter()
        .filter(|c| !same(latest.get(&c.resource), &c.published))
        .collect())
}

fn same(event: Option<&crate::audit::entity::Model>, published: &Published) -> bool {
    event.is_some_and(|e| {
        e.state_type == published.type_name
            && e.state_proto.as_deref().unwrap_or_default() == published.bytes.as_slice()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_run_is_the_next_local_time_of_day() {
        let zone: Tz = chrono_tz::Asia::Shanghai;
        let at = NaiveTime::from_hms_opt(0, 5, 0).unwrap_or_default();
        // 2026-12-07 10:00 in Shanghai is 02:00 UTC.
        let now = zone
            .with_ymd_and_hms(2026, 12, 7, 10, 0, 0)
            .single()
            .map(|t| t.timestamp_micros())
            .unwrap_or_default();
        let next = zone
            .with_ymd_and_hms(2026, 12, 8, 0, 5, 0)
            .single()
            .map(|t| t.timestamp_micros())
            .unwrap_or_default();
        assert_eq!(next_run(now, at, zone), next);
        // Exactly at the time: the next day's.
        assert_eq!(
            next_run(next, at, zone),
            next + 86_400_000_000,
            "a run at 00:05 schedules the next for tomorrow"
        );
    }
}
