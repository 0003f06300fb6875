//! Unit tests of `allocation`, kept beside it so the rules read without them.

use proptest::prelude::*;

use super::*;

const IT: i32 = 1;
const BIO: i32 = 2;
const EQUIP: i32 = 3;
const ENERGY: i32 = 4;

fn cand(name: &str, field: i32, score: i64, requested: i64) -> Candidate {
    Candidate {
        application: format!("programs/p/applications/{name}"),
        enterprise: "enterprises/X".into(),
        achievement: format!("achievements/{name}"),
        field,
        bucket: BucketKey::BUDGET,
        requested_fen: requested,
        score: Score {
            sum: score,
            count: 1,
        },
        decided_at_us: 0,
        exclusion: None,
    }
}

fn project(budget: i64, priority: &[(i32, i64)]) -> Program {
    Program {
        kind: Kind::Project {
            budget_fen: budget,
            per_project_cap_fen: 0,
        },
        priority: priority
            .iter()
            .map(|&(field, basis_points)| PriorityShare {
                field,
                basis_points,
            })
            .collect(),
        threshold_millipoints: 60_000,
    }
}

fn outcome_of<'a>(a: &'a Allocation, name: &str) -> &'a Entry {
    a.entries
        .iter()
        .find(|e| e.application.ends_with(&format!("/{name}")))
        .unwrap()
}

#[test]
fn a_priority_reserve_is_filled_from_its_own_field_before_the_open_pool() {
    // Budget 100, biomedicine reserve 20 %. The two best are energy; the biomedicine one
    // ranks third but is funded from its reserve.
    let program = project(100, &[(BIO, 2000)]);
    let cands = vec![
        cand("e1", ENERGY, 95, 40),
        cand("e2", ENERGY, 90, 40),
        cand("b1", BIO, 80, 20),
        cand("e3", ENERGY, 85, 20),
    ];
    let a = allocate(&program, &cands);
    assert_eq!(outcome_of(&a, "b1").outcome, Outcome::Funded);
    assert_eq!(
        outcome_of(&a, "b1").pool.as_deref(),
        Some("budget/BIOMEDICINE")
    );
    assert_eq!(outcome_of(&a, "e1").outcome, Outcome::Funded);
    assert_eq!(outcome_of(&a, "e2").outcome, Outcome::Funded);
    assert_eq!(outcome_of(&a, "e3").outcome, Outcome::NotSelected);
    assert!(
        outcome_of(&a, "e3").reason.contains("budget was used"),
        "{}",
        outcome_of(&a, "e3").reason
    );
    assert_eq!(a.totals.amount_fen, 100);
    assert_eq!(a.totals.priority_amount_fen, 20);
}

#[test]
fn an_unfilled_reserve_returns_to_the_open_pool() {
    // No biomedicine application: its 30 % goes to the open pool.
    let program = project(100, &[(BIO, 3000)]);
    let cands = vec![cand("e1", ENERGY, 95, 60), cand("e2", ENERGY, 90, 40)];
    let a = allocate(&program, &cands);
    assert!(a.entries.iter().all(|e| e.outcome == Outcome::Funded));
    let bio = a.pools.iter().find(|p| p.field == Some(BIO)).unwrap();
    assert_eq!((bio.reserved, bio.used, bio.returned_to_open), (30, 0, 30));
    let open = a.pools.iter().find(|p| p.field.is_none()).unwrap();
    assert_eq!(
        (open.reserved, open.returned_to_open, open.used),
        (70, 30, 100)
    );
}

#[test]
fn priority_applications_also_compete_in_the_open_pool() {
    let program = project(100, &[(IT, 1000)]);
    let cands = vec![
        cand("i1", IT, 99, 10),
        cand("i2", IT, 98, 50),
        cand("e1", ENERGY, 50, 50),
    ];
    let mut p = program.clone();
    p.threshold_millipoints = 0;
    let a = allocate(&p, &cands);
    assert_eq!(
        outcome_of(&a, "i1").pool.as_deref(),
        Some("budget/NEW_GENERATION_INFORMATION_TECHNOLOGY")
    );
    assert_eq!(outcome_of(&a, "i2").pool.as_deref(), Some("budget/open"));
    assert_eq!(outcome_of(&a, "e1").outcome, Outcome::NotSelected);
}

#[test]
fn money_is_funded_strictly_down_the_ranking_skipping_what_does_not_fit() {
    let program = project(100, &[]);
    let cands = vec![
        cand("a", ENERGY, 95, 70),
        cand("b", ENERGY, 90, 40),
        cand("c", ENERGY, 85, 30),
    ];
    let a = allocate(&program, &cands);
    assert_eq!(outcome_of(&a, "a").outcome, Outcome::Funded);
    assert_eq!(outcome_of(&a, "b").outcome, Outcome::NotSelected);
    assert_eq!(outcome_of(&a, "c").outcome, Outcome::Funded);
    assert_eq!(a.totals.budget_left_fen, 0);
}

#[test]
fn below_threshold_and_run_time_exclusions_never_qualify() {
    let program = project(1000, &[]);
    let mut vetoed = cand("v", ENERGY, 99, 10);
    vetoed.exclusion = Some("achievement vetoed since applying".into());
    let cands = vec![
        vetoed,
        cand("low", ENERGY, 59, 10),
        cand("ok", ENERGY, 60, 10),
    ];
    let a = allocate(&program, &cands);
    assert_eq!(outcome_of(&a, "v").outcome, Outcome::Excluded);
    assert!(outcome_of(&a, "v").reason.contains("vetoed"));
    assert_eq!(outcome_of(&a, "low").outcome, Outcome::Excluded);
    assert!(outcome_of(&a, "low").reason.contains("below the threshold"));
    assert_eq!(outcome_of(&a, "ok").outcome, Outcome::Funded);
    // Excluded entries come last, by name.
    let names: Vec<&str> = a.entries.iter().map(|e| e.application.as_str()).collect();
    assert_eq!(
        names,
        [
            "programs/p/applications/ok",
            "programs/p/applications/low",
            "programs/p/applications/v"
        ]
    );
}

#[test]
fn ties_are_broken_by_decision_time_then_name() {
    let program = project(10, &[]);
    let mut a1 = cand("b-later", ENERGY, 80, 10);
    a1.decided_at_us = 2;
    let mut a2 = cand("c-earlier", ENERGY, 80, 10);
    a2.decided_at_us = 1;
    let mut a3 = cand("a-earlier", ENERGY, 80, 10);
    a3.decided_at_us = 1;
    let a = allocate(&program, &[a1, a2, a3]);
    assert_eq!(outcome_of(&a, "a-earlier").rank, 1);
    assert_eq!(outcome_of(&a, "c-earlier").rank, 2);
    assert_eq!(outcome_of(&a, "b-later").rank, 3);
    assert_eq!(outcome_of(&a, "a-earlier").outcome, Outcome::Funded);
}

#[test]
fn scores_compare_exactly_not_by_rounded_millipoints() {
    // 200/3 = 66.6667 vs 66.666 (66666/1000): 200/3 is higher.
    let program = project(10, &[]);
    let mut x = cand("x", ENERGY, 0, 10);
    x.score = Score { sum: 200, count: 3 };
    let mut y = cand("y", ENERGY, 0, 10);
    y.score = Score {
        sum: 66_666,
        count: 1000,
    };
    let a = allocate(&program, &[y, x]);
    assert_eq!(outcome_of(&a, "x").rank, 1);
}

#[test]
fn award_seats_respect_quotas_and_caps_across_buckets() {
    let first = |cat| BucketKey {
        category: cat,
        grade: 2,
    };
    let program = Program {
        kind: Kind::Award {
            quotas: vec![
                Quota {
                    bucket: first(3),
                    seats: 2,
                    amount_fen: 30_000_000,
                },
                Quota {
                    bucket: first(4),
                    seats: 2,
                    amount_fen: 30_000_000,
                },
            ],
            caps: vec![Cap {
                description: "first prizes ≤ 3 a year".into(),
                categories: vec![],
                grades: vec![2],
                limit: 3,
            }],
        },
        priority: vec![],
        threshold_millipoints: 0,
    };
    let mut cands = Vec::new();
    for (i, cat) in [3, 3, 3, 4, 4].into_iter().enumerate() {
        let mut c = cand(&format!("n{i}"), ENERGY, 90 - i as i64, 0);
        c.bucket = first(cat);
        cands.push(c);
    }
    let a = allocate(&program, &cands);
    let awarded = a
        .entries
        .iter()
        .filter(|e| e.outcome == Outcome::Awarded)
        .count();
    assert_eq!(awarded, 3);
    assert_eq!(a.caps[0].used, 3);
    let n4 = outcome_of(&a, "n4");
    assert_eq!(n4.outcome, Outcome::NotSelected);
    assert!(n4.reason.contains("cap"), "{}", n4.reason);
    assert_eq!(outcome_of(&a, "n0").amount_fen, 30_000_000);
}

#[test]
fn design_story_priority_shares_split_an_award_bucket() {
    // 20 seats, IT 15 %, biomedicine 10 %, equipment 15 %: 3, 2, 3 reserved and 12 open.
    let bucket = BucketKey {
        category: 4,
        grade: 3,
    };
    let program = Program {
        kind: Kind::Award {
            quotas: vec![Quota {
                bucket,
                seats: 20,
                amount_fen: 20_000_000,
            }],
            caps: vec![],
        },
        priority: vec![
            PriorityShare {
                field: IT,
                basis_points: 1500,
            },
            PriorityShare {
                field: BIO,
                basis_points: 1000,
            },
            PriorityShare {
                field: EQUIP,
                basis_points: 1500,
            },
        ],
        threshold_millipoints: 0,
    };
    let a = allocate(&program, &[]);
    let reserved: Vec<i64> = a.pools.iter().map(|p| p.reserved).collect();
    assert_eq!(reserved, [3, 2, 3, 12]);
    assert_eq!(
        a.pools[1].pool_id,
        "SCIENCE_TECHNOLOGY_PROGRESS/SECOND/BIOMEDICINE"
    );
}

fn arb_program_and_candidates() -> impl Strategy<Value = (Program, Vec<Candidate>)> {
    let award = (
        proptest::collection::vec((1i32..=6, 1i32..=5, 0i64..6, 0i64..1000), 1..5),
        proptest::collection::vec(
            (
                proptest::option::of(1i32..=6),
                proptest::option::of(1i32..=5),
                0i64..8,
            ),
            0..3,
        ),
    )
        .prop_map(|(quotas, caps)| Kind::Award {
            quotas: quotas
                .into_iter()
                .map(|(c, g, seats, amount)| Quota {
                    bucket: BucketKey {
                        category: c,
                        grade: g,
                    },
                    seats,
                    amount_fen: amount,
                })
                .collect(),
            caps: caps
                .into_iter()
                .map(|(c, g, limit)| Cap {
                    description: "cap".into(),
                    categories: c.into_iter().collect(),
                    grades: g.into_iter().collect(),
                    limit,
                })
                .collect(),
        });
    let proj = (0i64..1_000_000, 0i64..300_000).prop_map(|(b, cap)| Kind::Project {
        budget_fen: b,
        per_project_cap_fen: cap,
    });
    (
        prop_oneof![award, proj],
        proptest::collection::vec((1i32..=10, 0i64..3000), 0..4),
        0i64..100_000,
        proptest::collection::vec(
            (
                1i32..=10,
                1i32..=6,
                1i32..=5,
                0i64..500_000,
                0i64..400,
                1i64..5,
                0i64..5,
                proptest::bool::weighted(0.1),
            ),
            0..60,
        ),
    )
        .prop_map(|(kind, prio, threshold, cands)| {
            let is_project = matches!(kind, Kind::Project { .. });
            let program = Program {
                kind,
                priority: prio
                    .into_iter()
                    .map(|(field, basis_points)| PriorityShare {
                        field,
                        basis_points,
                    })
                    .collect(),
                threshold_millipoints: threshold,
            };
            let candidates = cands
                .into_iter()
                .enumerate()
                .map(|(i, (field, c, g, req, sum, count, t, ex))| Candidate {
                    application: format!("programs/p/applications/a{i:03}"),
                    enterprise: "enterprises/X".into(),
                    achievement: format!("achievements/{i}"),
                    field,
                    bucket: if is_project {
                        BucketKey::BUDGET
                    } else {
                        BucketKey {
                            category: c,
                            grade: g,
                        }
                    },
                    requested_fen: req,
                    score: Score {
                        sum: sum * count / 4,
                        count,
                    },
                    decided_at_us: t,
                    exclusion: ex.then(|| "vetoed".to_string()),
                })
                .collect();
            (program, candidates)
        })
}

proptest! {
    #[test]
    fn quotas_caps_and_budget_are_never_exceeded_and_every_application_gets_one_outcome(
        (program, candidates) in arb_program_and_candidates()
    ) {
        let a = allocate(&program, &candidates);
        prop_assert_eq!(a.entries.len(), candidates.len());
        let names: BTreeSet<&str> = a.entries.iter().map(|e| e.application.as_str()).collect();
        prop_assert_eq!(names.len(), candidates.len());
        for b in &a.buckets {
            prop_assert!(b.used <= b.size, "bucket {:?} used {} of {}", b.bucket, b.used, b.size);
        }
        for c in &a.caps {
            prop_assert!(c.used <= c.limit.max(0));
        }
        match &program.kind {
            Kind::Project { budget_fen, per_project_cap_fen } => {
                prop_assert!(a.totals.amount_fen <= (*budget_fen).max(0));
                for e in &a.entries {
                    if *per_project_cap_fen > 0 {
                        prop_assert!(e.amount_fen <= *per_project_cap_fen);
                    }
                    prop_assert!(e.amount_fen <= e.requested_fen.max(0));
                }
            }
            Kind::Award { quotas, .. } => {
                for q in quotas {
                    let n = a.entries.iter().filter(|e| e.bucket == q.bucket && e.outcome == Outcome::Awarded).count() as i64;
                    prop_assert!(n <= q.seats.max(0));
                }
            }
        }
        for e in &a.entries {
            prop_assert!(!e.reason.is_empty());
            let selected = matches!(e.outcome, Outcome::Awarded | Outcome::Funded);
            prop_assert_eq!(selected, e.pool.is_some());
            if e.outcome == Outcome::Excluded { prop_assert_eq!(e.rank, 0); }
        }
        for p in &a.pools {
            let capacity = p.reserved + if p.field.is_none() { p.returned_to_open } else { 0 };
            prop_assert!(p.used <= capacity, "pool {} used {} of {}", p.pool_id, p.used, capacity);
        }
    }

    #[test]
    fn the_same_input_gives_the_same_allocation((program, candidates) in arb_program_and_candidates()) {
        let first = allocate(&program, &candidates);
        let mut shuffled = candidates.clone();
        shuffled.reverse();
        let second = allocate(&program, &shuffled);
        prop_assert_eq!(&first, &allocate(&program, &candidates));
        // Input order does not matter either.
        prop_assert_eq!(first, second);
    }
}
