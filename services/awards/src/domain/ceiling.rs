//! Statutory ceilings on a year's provincial S&T awards, across every AWARD program of that
//! year: first prizes ≤ 35, natural science + technological invention + S&T progress ≤ 300,
//! top award ≤ 2, young scientist ≤ 10, international cooperation ≤ 5 (docs/rules.md, "Shandong
//! provincial science and technology awards"). The numbers are versioned data with their source
//! (`store/ceiling.rs` seeds them); this module only decides, without I/O:
//!
//! - which version of each ceiling is in force for a programme year ([`in_force`]);
//! - whether a program's quotas, added to those of the year's other *committed* programs, stay
//!   within every ceiling ([`first_breach`]). Committed means every stage after DRAFT (OPEN,
//!   CLOSED, ALLOCATED, PUBLICIZED, FINAL): once a program has opened its quotas are a public
//!   promise, while a DRAFT is a plan that may still shrink; so drafts never block each other,
//!   and the check runs on create and update (the draft against the committed programs) and
//!   again when a draft opens (by then others may have opened first);
//! - how many awards are left under each ceiling for one program's allocation, after the
//!   awards already made that year in other programs ([`allocation_caps`]), so the year's
//!   awarded total never exceeds a ceiling even if a ceiling was lowered after programs opened.
//!
//! What it must never do: hard-code a limit (they arrive as [`Ceiling`] values), or count a
//! program against itself.

use serde::{Deserialize, Serialize};

use super::allocation::{BucketKey, Cap};
use super::program::AwardQuota;

/// One version of a statutory ceiling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ceiling {
    /// Stable key, e.g. `first-prizes`; versions of one ceiling share it.
    pub key: String,
    /// Version, from 1; the highest in force for a year wins.
    pub version: i64,
    /// What it limits, e.g. "first prizes ≤ 35 a year".
    pub description: String,
    /// `AwardCategory` numbers covered (empty = every category).
    pub categories: Vec<i32>,
    /// `AwardGrade` numbers covered (empty = every grade).
    pub grades: Vec<i32>,
    /// Most awards a programme year may make under it.
    pub limit: i64,
    /// First programme year it applies to (inclusive).
    pub effective_from_year: i32,
    /// Last programme year it applies to (inclusive); 0 = open-ended.
    pub effective_to_year: i32,
    /// Where the number comes from.
    pub source: String,
}

impl Ceiling {
    /// Whether awards of `(category, grade)` count against it.
    pub fn covers(&self, category: i32, grade: i32) -> bool {
        (self.categories.is_empty() || self.categories.contains(&category))
            && (self.grades.is_empty() || self.grades.contains(&grade))
    }

    /// Whether it applies to programme `year`.
    pub fn applies_to(&self, year: i32) -> bool {
        self.effective_from_year <= year
            && (self.effective_to_year == 0 || year <= self.effective_to_year)
    }

    /// The seats of `quotas` it covers.
    pub fn seats(&self, quotas: &[AwardQuota]) -> i64 {
        quotas
            .iter()
            .filter(|q| self.covers(q.category, q.grade))
            .map(|q| i64::from(q.quota.max(0)))
            .sum()
    }

    /// How the ceiling is cited: `first-prizes v1`.
    pub fn citation(&self) -> String {
        format!("{} v{}", self.key, self.version)
    }
}

/// For each key, the highest version that applies to `year`, in key order.
pub fn in_force(all: &[Ceiling], year: i32) -> Vec<Ceiling> {
    let mut best: std::collections::BTreeMap<&str, &Ceiling> = std::collections::BTreeMap::new();
    for c in all.iter().filter(|c| c.applies_to(year)) {
        match best.get(c.key.as_str()) {
            Some(b) if b.version >= c.version => {}
            _ => {
                best.insert(c.key.as_str(), c);
            }
        }
    }
    best.into_values().cloned().collect()
}

/// A ceiling a year's quotas would exceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// The ceiling.
    pub ceiling: Ceiling,
    /// The programme year.
    pub year: i32,
    /// The year's total with this program.
    pub total: i64,
    /// This program's part of it.
    pub this_program: i64,
    /// The other committed programs' parts, `(programs/{id}, seats)`, those with seats only.
    pub others: Vec<(String, i64)>,
}

impl Breach {
    /// A sentence an official can act on.
    pub fn describe(&self) -> String {
        let others = if self.others.is_empty() {
            String::new()
        } else {
            format!(
                " + {}",
                self.others
                    .iter()
                    .map(|(name, n)| format!("{n} in {name}"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            )
        };
        // The figures first, the citation last: a long source may be cut from the message (the
        // PreconditionFailure keeps the ceiling's name), the numbers never are.
        format!(
            "statutory ceiling \"{}\" exceeded for programme year {}: total {} against a limit \
             of {} ({} in this program{others}); {}; source: {}",
            self.ceiling.description,
            self.year,
            self.total,
            self.ceiling.limit,
            self.this_program,
            self.ceiling.citation(),
            self.ceiling.source,
        )
    }

    /// The PreconditionFailure subject: `awardCeilings/{key}/years/{year}`.
    pub fn subject(&self) -> String {
        format!("awardCeilings/{}/years/{}", self.ceiling.key, self.year)
    }
}

/// The first ceiling (in key order) that `quotas` of a program in `year`, added to `others`
/// (the year's other committed programs: `(programs/{id}, quotas)`), would exceed.
pub fn first_breach(
    ceilings: &[Ceiling],
    year: i32,
    quotas: &[AwardQuota],
    others: &[(String, Vec<AwardQuota>)],
) -> Option<Breach> {
    in_force(ceilings, year).into_iter().find_map(|c| {
        let this_program = c.seats(quotas);
        let others: Vec<(String, i64)> = others
            .iter()
            .map(|(name, q)| (name.clone(), c.seats(q)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let total = this_program + others.iter().map(|(_, n)| n).sum::<i64>();
        (total > c.limit && this_program > 0).then_some(Breach {
            ceiling: c,
            year,
            total,
            this_program,
            others,
        })
    })
}

/// The allocator caps for one program of `year`: for each ceiling in force, the awards left
/// after `awarded_elsewhere` (the `(category, grade)` of every award already made that year in
/// other programs), never below zero. A ceiling this program's buckets do not touch is left out.
pub fn allocation_caps(
    ceilings: &[Ceiling],
    year: i32,
    quotas: &[AwardQuota],
    awarded_elsewhere: &[BucketKey],
) -> Vec<Cap> {
    in_force(ceilings, year)
        .into_iter()
        .filter(|c| c.seats(quotas) > 0)
        .map(|c| {
            let used = awarded_elsewhere
                .iter()
                .filter(|b| c.covers(b.category, b.grade))
                .count() as i64;
            let left = (c.limit - used).max(0);
            Cap {
                description: format!(
                    "statutory ceiling {} ({}): {} of {} already awarded in other {year} programs, {left} left",
                    c.description,
                    c.citation(),
                    used,
                    c.limit
                ),
                categories: c.categories.clone(),
                grades: c.grades.clone(),
                limit: left,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TOP: i32 = 1;
    const NATURAL: i32 = 2;
    const INVENTION: i32 = 3;
    const PROGRESS: i32 = 4;
    const FIRST: i32 = 2;
    const SECOND: i32 = 3;

    fn ceiling(key: &str, version: i64, categories: &[i32], grades: &[i32], limit: i64) -> Ceiling {
        Ceiling {
            key: key.into(),
            version,
            description: format!("{key} ≤ {limit}"),
            categories: categories.to_vec(),
            grades: grades.to_vec(),
            limit,
            effective_from_year: 2021,
            effective_to_year: 0,
            source: "test".into(),
        }
    }

    fn quota(category: i32, grade: i32, n: i32) -> AwardQuota {
        AwardQuota {
            category,
            grade,
            quota: n,
            amount_fen: 1,
        }
    }

    fn seeded() -> Vec<Ceiling> {
        vec![
            ceiling("first-prizes", 1, &[], &[FIRST], 35),
            ceiling(
                "three-categories",
                1,
                &[NATURAL, INVENTION, PROGRESS],
                &[],
                300,
            ),
            ceiling("top-award", 1, &[TOP], &[], 2),
        ]
    }

    #[test]
    fn the_highest_applicable_version_of_each_key_is_in_force() {
        let mut all = seeded();
        let mut lowered = ceiling("first-prizes", 2, &[], &[FIRST], 30);
        lowered.effective_from_year = 2025;
        all.push(lowered);
        let mut expired = ceiling("top-award", 3, &[TOP], &[], 9);
        expired.effective_to_year = 2022;
        all.push(expired);
        let limits = |year| {
            in_force(&all, year)
                .into_iter()
                .map(|c| (c.key, c.limit))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            limits(2024),
            [
                ("first-prizes".to_string(), 35),
                ("three-categories".to_string(), 300),
                ("top-award".to_string(), 2)
            ]
        );
        assert_eq!(limits(2025)[0], ("first-prizes".to_string(), 30));
        assert_eq!(limits(2022)[2], ("top-award".to_string(), 9));
        assert!(limits(2020).is_empty());
    }

    #[test]
    fn quotas_of_committed_programs_add_up_against_each_ceiling() {
        let c = seeded();
        let others = vec![(
            "programs/a".to_string(),
            vec![quota(NATURAL, FIRST, 20), quota(PROGRESS, SECOND, 100)],
        )];
        // 20 + 15 = 35: at the limit is allowed.
        assert_eq!(
            first_breach(&c, 2025, &[quota(INVENTION, FIRST, 15)], &others),
            None
        );
        let breach = first_breach(&c, 2025, &[quota(INVENTION, FIRST, 16)], &others).unwrap();
        assert_eq!(breach.ceiling.key, "first-prizes");
        assert_eq!((breach.total, breach.this_program), (36, 16));
        assert_eq!(breach.others, [("programs/a".to_string(), 20)]);
        assert_eq!(breach.subject(), "awardCeilings/first-prizes/years/2025");
        let text = breach.describe();
        for part in [
            "first-prizes v1",
            "2025",
            "total 36",
            "limit of 35",
            "programs/a",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        // The three categories together: 120 + 181 = 301 > 300.
        let breach = first_breach(&c, 2025, &[quota(NATURAL, SECOND, 181)], &others).unwrap();
        assert_eq!(breach.ceiling.key, "three-categories");
        assert_eq!(breach.total, 301);
        // A year without ceilings, and a program outside every ceiling, never breach.
        assert_eq!(
            first_breach(&c, 2020, &[quota(NATURAL, FIRST, 99)], &others),
            None
        );
        let over = vec![("programs/a".to_string(), vec![quota(NATURAL, FIRST, 40)])];
        assert_eq!(first_breach(&c, 2025, &[quota(TOP, 5, 1)], &over), None);
    }

    #[test]
    fn allocation_caps_leave_only_what_other_programs_did_not_award() {
        let c = seeded();
        let quotas = [quota(NATURAL, FIRST, 10), quota(NATURAL, SECOND, 10)];
        let awarded: Vec<BucketKey> = std::iter::repeat_n(
            BucketKey {
                category: PROGRESS,
                grade: FIRST,
            },
            30,
        )
        .chain(std::iter::repeat_n(
            BucketKey {
                category: TOP,
                grade: 5,
            },
            2,
        ))
        .collect();
        let caps = allocation_caps(&c, 2025, &quotas, &awarded);
        // The top award is not in this program's buckets: no cap for it.
        assert_eq!(caps.len(), 2);
        assert_eq!(caps[0].limit, 5);
        assert_eq!(caps[0].grades, [FIRST]);
        assert!(
            caps[0].description.contains("30 of 35"),
            "{}",
            caps[0].description
        );
        assert_eq!(caps[1].limit, 270);
        // Never below zero.
        let many = vec![
            BucketKey {
                category: NATURAL,
                grade: FIRST
            };
            40
        ];
        assert_eq!(allocation_caps(&c, 2025, &quotas, &many)[0].limit, 0);
    }
}
