//! Allocation: the pure allocator on the input of `services/awards/benches/allocate.rs`, timed
//! in-process (no RPC).

use super::*;

use qilu_awards::domain::allocation::{
    BucketKey, Candidate, Cap, Kind, PriorityShare, Program, Quota, Score, allocate,
};

/// The same deterministic generator (xorshift) as the awards bench, so the figures compare.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(super) fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

pub(super) fn candidates(n: usize, rng: &mut Rng) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let bucket = BucketKey {
                category: 2 + rng.below(3) as i32,
                grade: 2 + rng.below(3) as i32,
            };
            let count = 3 + rng.below(5);
            Candidate {
                application: format!("programs/bench/applications/a{i:07}"),
                enterprise: format!("enterprises/E{i:07}"),
                achievement: format!("achievements/a{i:07}"),
                field: 1 + rng.below(10) as i32,
                bucket,
                requested_fen: 10_000_000 + rng.below(490_000_000),
                score: Score {
                    sum: (50 + rng.below(50)) * count,
                    count,
                },
                decided_at_us: rng.below(1_000_000_000),
                exclusion: (rng.below(50) == 0).then(|| "achievement vetoed".to_string()),
            }
        })
        .collect()
}

pub(super) fn award_program() -> Program {
    let mut quotas = Vec::new();
    for category in 2..=4 {
        for grade in 2..=4 {
            quotas.push(Quota {
                bucket: BucketKey { category, grade },
                seats: 35,
                amount_fen: 20_000_000,
            });
        }
    }
    Program {
        kind: Kind::Award {
            quotas,
            caps: vec![
                Cap {
                    description: "natural science + invention + progress ≤ 300".into(),
                    categories: vec![2, 3, 4],
                    grades: vec![],
                    limit: 300,
                },
                Cap {
                    description: "first prizes ≤ 35".into(),
                    categories: vec![],
                    grades: vec![2],
                    limit: 35,
                },
            ],
        },
        priority: vec![
            PriorityShare {
                field: 1,
                basis_points: 1500,
            },
            PriorityShare {
                field: 2,
                basis_points: 1000,
            },
            PriorityShare {
                field: 3,
                basis_points: 1500,
            },
        ],
        threshold_millipoints: 60_000,
    }
}

/// Median wall time of `runs` allocations of 100,000 award applications, ms.
pub(super) fn allocation_ms(runs: usize) -> f64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let input = candidates(100_000, &mut rng);
    let program = award_program();
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            black_box(allocate(black_box(&program), black_box(&input)));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
