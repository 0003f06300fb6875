//! High-tech enterprise certificates (高新技术企业证书) under the 2016 national recognition
//! measures (国科发火〔2016〕32号): validity, annual reports and revocation.
//!
//! What is stored are the facts that happened: the issue date, each annual-report filing, and a
//! revocation an officer recorded. Everything that follows from the passage of time — a report
//! becoming MISSED at the end of 31 May, the second miss revoking the certificate, expiry after
//! three years — is **derived on read** from those facts and `today` (programme time zone) by the
//! pure functions here, so a certificate reads EXPIRED or REVOKED on the right day without any
//! write. The one derived value that is stored, `lapse_date`, is exact for the same reason: it
//! depends only on stored facts (see [`lapse_date`]) and is recomputed on every write.
//!
//! This module never does I/O and never reads the clock: every function takes `today`.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::enterprise::EnterpriseState;

/// Years a certificate is valid (2016 measures, art. 15: "资格自颁发证书之日起有效期为三年").
pub const VALIDITY_YEARS: i32 = 3;
/// Missed annual reports that revoke a certificate (2016 measures, art. 19(3) as applied by the
/// programme: two reports not filed on time).
pub const MISSES_THAT_REVOKE: usize = 2;
/// Month and day of the annual-report deadline in the year after the report year (2016 measures,
/// art. 16: "每年5月底前").
pub const REPORT_DUE: (u32, u32) = (5, 31);
/// Earliest issue date accepted: certificates in the `GR` numbering started with the 2008
/// measures; anything older is a data-entry error (and long expired).
pub const EARLIEST_ISSUE: (i32, u32, u32) = (2008, 1, 1);
/// Longest certificate number (characters), per the contract.
pub const MAX_NUMBER_CHARS: usize = 32;
/// Longest issuing authority (characters).
pub const MAX_AUTHORITY_CHARS: usize = 200;
/// Longest revocation reason (characters), per the contract.
pub const MAX_REASON_CHARS: usize = 2000;

/// `date` plus `years` calendar years; 29 February maps to 1 March when the target year has no
/// 29 February (the contract's rule for `expiry_date`).
pub fn add_years(date: NaiveDate, years: i32) -> NaiveDate {
    let year = date.year() + years;
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 3, 1))
        .unwrap_or(date)
}

/// The first day a certificate issued on `issue` is no longer valid: the issue date plus three
/// years (valid while today is before it).
pub fn expiry_date(issue: NaiveDate) -> NaiveDate {
    add_years(issue, VALIDITY_YEARS)
}

/// The fiscal years a certificate reports on: the issue year and the two after it — the three
/// fiscal years its validity (and the tax preference) covers. A certificate issued in December
/// 2023 reports on 2023, 2024 and 2025.
pub fn report_years(issue: NaiveDate) -> std::ops::RangeInclusive<i32> {
    issue.year()..=issue.year() + VALIDITY_YEARS - 1
}

/// The due date of the report on `year`: 31 May of the following year (end of that day).
pub fn due_date(year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year + 1, REPORT_DUE.0, REPORT_DUE.1).unwrap_or(NaiveDate::MAX)
}

/// The earliest day a report on `year` can be filed: once the year is over.
pub fn earliest_filing(year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year + 1, 1, 1).unwrap_or(NaiveDate::MAX)
}

/// Why a certificate was revoked (`qilu.registry.v1.RevocationGround`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Ground {
    /// Fraud in the application.
    Fraud,
    /// A major accident or serious environmental violation.
    MajorIncident,
    /// Two annual reports not filed on time (derived by the server, never recorded by a caller).
    MissedAnnualReports,
    /// Any other lawful ground, explained in the reason.
    Other,
}

impl Ground {
    /// The proto number.
    pub fn code(self) -> i32 {
        match self {
            Ground::Fraud => 1,
            Ground::MajorIncident => 2,
            Ground::MissedAnnualReports => 3,
            Ground::Other => 4,
        }
    }

    /// From the proto number.
    pub fn from_code(code: i32) -> Option<Ground> {
        match code {
            1 => Some(Ground::Fraud),
            2 => Some(Ground::MajorIncident),
            3 => Some(Ground::MissedAnnualReports),
            4 => Some(Ground::Other),
            _ => None,
        }
    }
}

/// One annual report as filed (a fact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filing {
    /// The fiscal year reported on.
    pub year: i32,
    /// The day it was filed (programme time zone).
    pub filed_date: NaiveDate,
    /// Who recorded it (the caller's `sub`).
    pub filed_by: String,
}

/// A revocation an officer recorded (a fact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The ground (never `MissedAnnualReports`: that one is derived).
    pub ground: Ground,
    /// The reason in words.
    pub reason: String,
    /// The day of the revocation (programme time zone): not valid from this day on.
    pub date: NaiveDate,
    /// When it was recorded, µs.
    pub time_us: i64,
}

/// A certificate as stored: the facts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// Holder's USCC.
    pub uscc: String,
    /// Certificate number, upper-case letters and digits, unique across the registry.
    pub number: String,
    /// Issue date.
    pub issue_date: NaiveDate,
    /// Recognising authority (may be empty).
    pub issuing_authority: String,
    /// `qilu.common.v1.HighTechField` number (1-8).
    pub technology_field: i32,
    /// Annual reports filed, ascending by year, at most one per year.
    pub filings: Vec<Filing>,
    /// A recorded revocation, if any.
    pub revocation: Option<Revocation>,
    /// Recorded, µs.
    pub create_time_us: i64,
    /// Last changed, µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Certificate {
    /// Resource name `enterprises/{uscc}/highTechCertificates/{number}`.
    pub fn name(&self) -> String {
        certificate_name(&self.uscc, &self.number)
    }

    /// Expiry date (first day not valid).
    pub fn expiry_date(&self) -> NaiveDate {
        expiry_date(self.issue_date)
    }

    /// The filing for `year`, if any.
    pub fn filing(&self, year: i32) -> Option<&Filing> {
        self.filings.iter().find(|f| f.year == year)
    }
}

/// Resource name of a certificate.
pub fn certificate_name(uscc: &str, number: &str) -> String {
    format!("enterprises/{uscc}/highTechCertificates/{number}")
}

/// Filing state of one report as of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReportState {
    /// Not filed and the deadline has not passed.
    Pending,
    /// Filed on or before the due date.
    Filed,
    /// The due date passed without a filing; a later filing does not change this.
    Missed,
}

/// One report year as of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportStatus {
    /// The fiscal year.
    pub year: i32,
    /// Its due date.
    pub due_date: NaiveDate,
    /// Its state.
    pub state: ReportState,
    /// The filing, if one was recorded (on time or late).
    pub filing: Option<Filing>,
}

/// Certificate state as of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateState {
    /// Within its three years and not revoked.
    Valid,
    /// Past its expiry date (and not revoked before it).
    Expired,
    /// Revoked before expiry.
    Revoked,
}

/// Why a certificate reads REVOKED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationView {
    /// The ground.
    pub ground: Ground,
    /// The reason in words.
    pub reason: String,
    /// The first day not valid.
    pub date: NaiveDate,
    /// When an officer recorded it, µs; `None` for the derived missed-reports revocation.
    pub recorded_time_us: Option<i64>,
}

/// Everything about a certificate as of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The state.
    pub state: CertificateState,
    /// One entry per report year, ascending.
    pub reports: Vec<ReportStatus>,
    /// How many reports are MISSED.
    pub missed: usize,
    /// Set exactly when `state` is REVOKED.
    pub revocation: Option<RevocationView>,
}

/// The state of each report year of a certificate issued on `issue`, as of `today`.
pub fn report_statuses(
    issue: NaiveDate,
    filings: &[Filing],
    today: NaiveDate,
) -> Vec<ReportStatus> {
    report_years(issue)
        .map(|year| {
            let due = due_date(year);
            let filing = filings.iter().find(|f| f.year == year).cloned();
            let state = match &filing {
                Some(f) if f.filed_date <= due => ReportState::Filed,
                // Filed late: stays MISSED and counts (contract), from the day after the due date.
                Some(_) => ReportState::Missed,
                None if today > due => ReportState::Missed,
                None => ReportState::Pending,
            };
            ReportStatus {
                year,
                due_date: due,
                state,
                filing,
            }
        })
        .collect()
}

/// The derived missed-reports revocation, if the second miss (as of `today`) happened before
/// expiry: its first non-valid day (the day after the second missed due date) and the years.
fn missed_reports_revocation(
    issue: NaiveDate,
    reports: &[ReportStatus],
) -> Option<(NaiveDate, Vec<i32>)> {
    let missed: Vec<&ReportStatus> = reports
        .iter()
        .filter(|r| r.state == ReportState::Missed)
        .collect();
    let second = missed.get(MISSES_THAT_REVOKE - 1)?;
    let effective = second.due_date.succ_opt()?;
    // A certificate that has already expired is not revoked any more: REVOKED means "revoked
    // before expiry".
    (effective < expiry_date(issue)).then(|| {
        (
            effective,
            missed
                .iter()
                .take(MISSES_THAT_REVOKE)
                .map(|r| r.year)
                .collect(),
        )
    })
}

/// The certificate as of `today`.
pub fn status(cert: &Certificate, today: NaiveDate) -> Status {
    let reports = report_statuses(cert.issue_date, &cert.filings, today);
    let missed = reports
        .iter()
        .filter(|r| r.state == ReportState::Missed)
        .count();
    let revocation = if let Some(r) = &cert.revocation {
        Some(RevocationView {
            ground: r.ground,
            reason: r.reason.clone(),
            date: r.date,
            recorded_time_us: Some(r.time_us),
        })
    } else {
        missed_reports_revocation(cert.issue_date, &reports).map(|(date, years)| {
            let listed: Vec<String> = years
                .iter()
                .map(|y| format!("{y} (due {})", due_date(*y)))
                .collect();
            RevocationView {
                ground: Ground::MissedAnnualReports,
                reason: format!(
                    "two annual reports missed: {}; revoked from {date}",
                    listed.join(", ")
                ),
                date,
                recorded_time_us: None,
            }
        })
    };
    let state = match &revocation {
        Some(_) => CertificateState::Revoked,
        None if today >= cert.expiry_date() => CertificateState::Expired,
        None => CertificateState::Valid,
    };
    Status {
        state,
        reports,
        missed,
        revocation,
    }
}

/// The first day the certificate is not valid *given the facts stored so far*: the earliest of
/// its expiry, a recorded revocation, and the derived missed-reports revocation assuming no
/// further report is filed on time. `status(cert, d).state == Valid` exactly when `d` is before
/// it, until the next write (only an on-time filing can move it, and only later). Stored so that
/// "valid today" is a plain comparison in SQL (`lapse_date > today`).
pub fn lapse_date(cert: &Certificate) -> NaiveDate {
    let expiry = cert.expiry_date();
    if let Some(r) = &cert.revocation {
        return r.date.min(expiry);
    }
    // As of the end of time, every report not filed on time is missed.
    let reports = report_statuses(cert.issue_date, &cert.filings, NaiveDate::MAX);
    match missed_reports_revocation(cert.issue_date, &reports) {
        Some((date, _)) => date.min(expiry),
        None => expiry,
    }
}

/// Whether a certificate number has the contract's shape: 1-32 upper-case ASCII letters and
/// digits (callers upper-case first).
pub fn is_valid_number(number: &str) -> bool {
    !number.is_empty()
        && number.len() <= MAX_NUMBER_CHARS
        && number
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Why a certificate write is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateRefused {
    /// Certificates are recorded only for active enterprises.
    HolderNotActive {
        /// The enterprise's resource name.
        holder: String,
        /// Its state.
        state: EnterpriseState,
    },
    /// The report year is not one the certificate reports on.
    OutsideValidity {
        /// The certificate's name.
        name: String,
        /// The years it reports on.
        years: std::ops::RangeInclusive<i32>,
        /// The year asked for.
        year: i32,
    },
    /// A recorded revocation: nothing more is filed.
    Revoked {
        /// The certificate's name.
        name: String,
    },
    /// The filing would still leave it revoked for two missed reports (a late filing does not
    /// undo a miss).
    RevokedForMissedReports {
        /// The certificate's name.
        name: String,
    },
    /// The year was reported on already.
    AlreadyFiled {
        /// The certificate's name.
        name: String,
        /// The year.
        year: i32,
        /// When it was filed.
        filed_date: NaiveDate,
    },
    /// The year reported on has not ended on the filing date.
    YearNotEnded {
        /// The year.
        year: i32,
        /// The first day it can be filed.
        earliest: NaiveDate,
        /// The filing date.
        filed_date: NaiveDate,
        /// Whether the caller gave the filing date (else it is today).
        date_given: bool,
    },
    /// Only a valid certificate is revoked.
    NotValid {
        /// The certificate's name.
        name: String,
        /// Its state today.
        state: CertificateState,
    },
}

/// Whether `holder` (its name and state) may be given a certificate.
pub fn may_hold(holder: String, state: EnterpriseState) -> Result<(), CertificateRefused> {
    if state == EnterpriseState::Active {
        Ok(())
    } else {
        Err(CertificateRefused::HolderNotActive { holder, state })
    }
}

impl Certificate {
    /// This certificate with the report on `filing.year` filed (a new version at `now_us`), as
    /// of `today`; `date_given` says whether the filing date was the caller's.
    pub fn file(
        &self,
        filing: Filing,
        date_given: bool,
        today: NaiveDate,
        now_us: i64,
    ) -> Result<Certificate, CertificateRefused> {
        let years = report_years(self.issue_date);
        if !years.contains(&filing.year) {
            return Err(CertificateRefused::OutsideValidity {
                name: self.name(),
                years,
                year: filing.year,
            });
        }
        if self.revocation.is_some() {
            return Err(CertificateRefused::Revoked { name: self.name() });
        }
        if let Some(f) = self.filing(filing.year) {
            return Err(CertificateRefused::AlreadyFiled {
                name: self.name(),
                year: filing.year,
                filed_date: f.filed_date,
            });
        }
        let earliest = earliest_filing(filing.year);
        if filing.filed_date < earliest {
            return Err(CertificateRefused::YearNotEnded {
                year: filing.year,
                earliest,
                filed_date: filing.filed_date,
                date_given,
            });
        }
        let on_time = filing.filed_date <= due_date(filing.year);
        let mut updated = self.clone();
        updated.filings.push(filing);
        updated.filings.sort_by_key(|f| f.year);
        // A certificate revoked for two missed reports stays revoked: a late filing does not
        // undo a miss, so it is refused. A filing that was in fact on time (an officer's record
        // of a paper filing the registry did not know of, or a migrated certificate's history)
        // is a fact that only ever removes a miss, so it is accepted even while other misses
        // still revoke the certificate: a history of several on-time reports is recorded one
        // report at a time.
        if !on_time && status(&updated, today).state == CertificateState::Revoked {
            return Err(CertificateRefused::RevokedForMissedReports { name: self.name() });
        }
        updated.version = self.version + 1;
        updated.update_time_us = now_us;
        Ok(updated)
    }

    /// This certificate revoked on `today` for `ground` (a new version at `now_us`); only a
    /// certificate valid today can be revoked.
    pub fn revoke(
        &self,
        ground: Ground,
        reason: String,
        today: NaiveDate,
        now_us: i64,
    ) -> Result<Certificate, CertificateRefused> {
        let state = status(self, today).state;
        if state != CertificateState::Valid {
            return Err(CertificateRefused::NotValid {
                name: self.name(),
                state,
            });
        }
        let mut updated = self.clone();
        updated.revocation = Some(Revocation {
            ground,
            reason,
            date: today,
            time_us: now_us,
        });
        updated.version = self.version + 1;
        updated.update_time_us = now_us;
        Ok(updated)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cert(issue: &str, filed: &[(i32, &str)]) -> Certificate {
        Certificate {
            uscc: "91350100M000100Y43".into(),
            number: "GR202337000001".into(),
            issue_date: d(issue),
            issuing_authority: String::new(),
            technology_field: 4,
            filings: filed
                .iter()
                .map(|(y, f)| Filing {
                    year: *y,
                    filed_date: d(f),
                    filed_by: "officer".into(),
                })
                .collect(),
            revocation: None,
            create_time_us: 0,
            update_time_us: 0,
            version: 1,
        }
    }

    fn filing(year: i32, on: &str) -> Filing {
        Filing {
            year,
            filed_date: d(on),
            filed_by: "officer".into(),
        }
    }

    /// The refusal's variant name, for tables.
    fn refusal(r: Result<Certificate, CertificateRefused>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(CertificateRefused::HolderNotActive { .. }) => "holder not active",
            Err(CertificateRefused::OutsideValidity { .. }) => "outside validity",
            Err(CertificateRefused::Revoked { .. }) => "revoked",
            Err(CertificateRefused::RevokedForMissedReports { .. }) => "revoked for misses",
            Err(CertificateRefused::AlreadyFiled { .. }) => "already filed",
            Err(CertificateRefused::YearNotEnded { .. }) => "year not ended",
            Err(CertificateRefused::NotValid { .. }) => "not valid",
        }
    }

    #[test]
    fn filings_are_refused_in_the_contracts_order() {
        let revoked = {
            let mut c = cert("2023-03-15", &[]);
            c.revocation = Some(Revocation {
                ground: Ground::Fraud,
                reason: "x".into(),
                date: d("2024-01-10"),
                time_us: 1,
            });
            c
        };
        let today = d("2024-03-01");
        for (c, f, expected) in [
            (cert("2023-03-15", &[]), filing(2023, "2024-03-01"), "ok"),
            (
                cert("2023-03-15", &[]),
                filing(2026, "2024-03-01"),
                "outside validity",
            ),
            (revoked, filing(2023, "2024-03-01"), "revoked"),
            (
                cert("2023-03-15", &[(2023, "2024-02-01")]),
                filing(2023, "2024-03-01"),
                "already filed",
            ),
            (
                cert("2023-03-15", &[]),
                filing(2024, "2024-03-01"),
                "year not ended",
            ),
        ] {
            assert_eq!(refusal(c.file(f, false, today, 9)), expected);
        }
        // Two misses (2023 and 2024 reports) revoked it from 2025-06-01; a late filing of the
        // second one does not bring it back, an officer's record of an on-time one does.
        let missed = cert("2023-03-15", &[]);
        let later = d("2025-07-01");
        let late = missed.file(filing(2024, "2025-07-01"), false, later, 9);
        assert_eq!(refusal(late), "revoked for misses");
        let on_time = missed.file(filing(2024, "2025-05-30"), true, later, 9);
        assert_eq!(on_time.map(|c| (c.version, c.update_time_us)), Ok((2, 9)));
    }

    #[test]
    fn an_on_time_history_is_recorded_one_report_at_a_time() {
        // Issued 2023-12-01 and recorded in Qilu only in December 2026: all three reports read
        // MISSED, so it reads REVOKED. Its history, filed on time, is recorded report by report;
        // the first two are accepted while other misses still revoke it, and once the history
        // is complete it reads as it always was: valid until its expiry.
        let today = d("2026-11-20");
        let c = cert("2023-12-01", &[]);
        assert_eq!(status(&c, today).state, CertificateState::Revoked);
        let c = c.file(filing(2023, "2024-05-10"), true, today, 1).unwrap();
        assert_eq!(status(&c, today).state, CertificateState::Revoked);
        let c = c.file(filing(2024, "2025-04-30"), true, today, 2).unwrap();
        assert_eq!(status(&c, today).state, CertificateState::Valid);
        let c = c.file(filing(2025, "2026-05-31"), true, today, 3).unwrap();
        let s = status(&c, today);
        assert_eq!((s.state, s.missed), (CertificateState::Valid, 0));
        assert_eq!(lapse_date(&c), d("2026-12-01"));
        // A late report in the history still counts as missed and is refused while it revokes.
        let late = cert("2023-12-01", &[]).file(filing(2023, "2024-06-10"), true, today, 1);
        assert_eq!(refusal(late), "revoked for misses");
    }

    #[test]
    fn only_a_valid_certificate_is_revoked_and_only_active_enterprises_hold_one() {
        let c = cert("2023-03-15", &[(2023, "2024-03-01")]);
        let revoked = c.revoke(Ground::Fraud, "x".into(), d("2024-04-01"), 7);
        let revoked = revoked.unwrap();
        assert_eq!(
            status(&revoked, d("2024-04-01")).state,
            CertificateState::Revoked
        );
        assert_eq!(revoked.version, 2);
        let again = revoked.revoke(Ground::Fraud, "y".into(), d("2024-04-02"), 8);
        assert_eq!(refusal(again), "not valid");
        let expired = c.revoke(Ground::Fraud, "x".into(), d("2026-03-15"), 7);
        assert_eq!(refusal(expired), "not valid");
        assert!(may_hold("enterprises/x".into(), EnterpriseState::Active).is_ok());
        assert!(may_hold("enterprises/x".into(), EnterpriseState::Revoked).is_err());
    }

    #[test]
    fn expiry_is_issue_plus_three_years_with_leap_day_to_first_of_march() {
        for (issue, expiry) in [
            ("2023-12-01", "2026-12-01"),
            ("2023-01-01", "2026-01-01"),
            ("2024-02-29", "2027-03-01"),
            ("2024-02-28", "2027-02-28"),
            ("2021-03-01", "2024-03-01"),
        ] {
            assert_eq!(expiry_date(d(issue)), d(expiry), "{issue}");
        }
    }

    #[test]
    fn reports_cover_the_issue_year_and_the_two_after_due_end_of_may() {
        assert_eq!(
            report_years(d("2023-12-01")).collect::<Vec<_>>(),
            [2023, 2024, 2025]
        );
        assert_eq!(due_date(2023), d("2024-05-31"));
        assert_eq!(earliest_filing(2023), d("2024-01-01"));
    }

    #[test]
    fn a_report_is_pending_through_31_may_and_missed_from_1_june() {
        let c = cert("2023-12-01", &[]);
        let table = [
            ("2024-05-30", ReportState::Pending),
            ("2024-05-31", ReportState::Pending),
            ("2024-06-01", ReportState::Missed),
        ];
        for (today, expected) in table {
            assert_eq!(status(&c, d(today)).reports[0].state, expected, "{today}");
        }
    }

    #[test]
    fn filing_on_the_due_date_is_on_time_and_the_day_after_is_late_but_missed() {
        let on_time = cert("2023-12-01", &[(2023, "2024-05-31")]);
        let late = cert("2023-12-01", &[(2023, "2024-06-01")]);
        let today = d("2024-07-01");
        assert_eq!(status(&on_time, today).reports[0].state, ReportState::Filed);
        assert_eq!(status(&on_time, today).missed, 0);
        assert_eq!(status(&late, today).reports[0].state, ReportState::Missed);
        assert_eq!(status(&late, today).missed, 1);
        // A filing is FILED as soon as it is recorded, even before the deadline.
        let early = cert("2023-12-01", &[(2023, "2024-02-01")]);
        assert_eq!(
            status(&early, d("2024-02-02")).reports[0].state,
            ReportState::Filed
        );
    }

    #[test]
    fn the_second_miss_revokes_from_the_day_after_its_due_date() {
        // Issued 2023-12-01, expires 2026-12-01; 2023 and 2024 missed.
        let c = cert("2023-12-01", &[]);
        let table = [
            ("2024-06-01", CertificateState::Valid, 1),
            ("2025-05-31", CertificateState::Valid, 1),
            ("2025-06-01", CertificateState::Revoked, 2),
            ("2027-01-01", CertificateState::Revoked, 3),
        ];
        for (today, state, missed) in table {
            let s = status(&c, d(today));
            assert_eq!((s.state, s.missed), (state, missed), "{today}");
        }
        let s = status(&c, d("2025-06-01"));
        let r = s.revocation.unwrap();
        assert_eq!(r.ground, Ground::MissedAnnualReports);
        assert_eq!(r.date, d("2025-06-01"));
        assert_eq!(r.recorded_time_us, None);
        assert!(r.reason.contains("2023 (due 2024-05-31)"), "{}", r.reason);
        assert_eq!(lapse_date(&c), d("2025-06-01"));
    }

    #[test]
    fn one_miss_and_on_time_reports_keep_it_valid_until_expiry() {
        let c = cert("2023-12-01", &[(2024, "2025-05-20"), (2025, "2026-04-01")]);
        let s = status(&c, d("2026-11-30"));
        assert_eq!(s.state, CertificateState::Valid);
        assert_eq!(s.missed, 1);
        assert_eq!(status(&c, d("2026-12-01")).state, CertificateState::Expired);
        assert_eq!(lapse_date(&c), d("2026-12-01"));
    }

    #[test]
    fn a_late_filing_does_not_undo_a_miss() {
        // 2023 filed late, 2024 missed: two misses.
        let c = cert("2023-12-01", &[(2023, "2024-08-01")]);
        assert_eq!(status(&c, d("2025-06-01")).state, CertificateState::Revoked);
    }

    #[test]
    fn a_second_miss_after_expiry_leaves_it_expired_not_revoked() {
        // Issued 2023-01-01, expires 2026-01-01. 2023 missed (from 2024-06-01), 2024 filed,
        // 2025 missed only from 2026-06-01, after expiry.
        let c = cert("2023-01-01", &[(2024, "2025-03-01")]);
        assert_eq!(status(&c, d("2025-12-31")).state, CertificateState::Valid);
        let s = status(&c, d("2026-06-01"));
        assert_eq!((s.state, s.missed), (CertificateState::Expired, 2));
        assert_eq!(s.revocation, None);
        assert_eq!(lapse_date(&c), d("2026-01-01"));
    }

    #[test]
    fn a_recorded_revocation_wins_and_sets_the_lapse_date() {
        let mut c = cert("2023-12-01", &[]);
        c.revocation = Some(Revocation {
            ground: Ground::Fraud,
            reason: "鲁科字〔2024〕1号".into(),
            date: d("2024-03-01"),
            time_us: 7,
        });
        let s = status(&c, d("2024-03-01"));
        assert_eq!(s.state, CertificateState::Revoked);
        assert_eq!(s.revocation.unwrap().ground, Ground::Fraud);
        assert_eq!(lapse_date(&c), d("2024-03-01"));
    }

    #[test]
    fn the_lapse_date_agrees_with_the_state_on_every_day() {
        let certs = [
            cert("2023-12-01", &[]),
            cert("2023-12-01", &[(2023, "2024-05-31")]),
            cert("2023-01-01", &[(2024, "2025-03-01")]),
            cert("2024-02-29", &[(2024, "2025-01-02"), (2025, "2026-05-31")]),
        ];
        for c in &certs {
            let lapse = lapse_date(c);
            let mut day = c.issue_date;
            while day < d("2028-01-01") {
                let valid = status(c, day).state == CertificateState::Valid;
                assert_eq!(valid, day < lapse, "{} on {day}", c.issue_date);
                day = day.succ_opt().unwrap();
            }
        }
    }

    #[test]
    fn certificate_numbers_are_upper_case_letters_and_digits_up_to_32() {
        assert!(is_valid_number("GR202337001234"));
        assert!(is_valid_number(&"A".repeat(32)));
        assert!(!is_valid_number(&"A".repeat(33)));
        assert!(!is_valid_number(""));
        assert!(!is_valid_number("gr2023"));
        assert!(!is_valid_number("GR-2023"));
        assert!(!is_valid_number("GR２０２３"));
    }

    #[test]
    fn ground_codes_round_trip() {
        for g in [
            Ground::Fraud,
            Ground::MajorIncident,
            Ground::MissedAnnualReports,
            Ground::Other,
        ] {
            assert_eq!(Ground::from_code(g.code()), Some(g));
        }
        assert_eq!(Ground::from_code(0), None);
    }
}
