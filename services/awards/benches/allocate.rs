//! Benchmark (docs/design.md §8): allocation of 100,000 generated applications must take under one
//! second of compute, with memory linear in the number of applications.
//!
//! `cargo bench -p qilu-awards --bench allocate` prints, for 25,000 / 50,000 / 100,000
//! applications of a project program and of an award program, the median of several runs and
//! the peak resident memory growth. A plain harness (no extra crates): it measures, it does not
//! assert a time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use qilu_awards::domain::allocation::{
    BucketKey, Candidate, Cap, Kind, PriorityShare, Program, Quota, Score, allocate,
};

/// A small deterministic generator (xorshift), so every run allocates the same input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

fn candidates(n: usize, award: bool, rng: &mut Rng) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let bucket = if award {
                BucketKey {
                    category: 2 + rng.below(3) as i32,
                    grade: 2 + rng.below(3) as i32,
                }
            } else {
                BucketKey::BUDGET
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

fn program(award: bool) -> Program {
    let priority = vec![
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
    ];
    let kind = if award {
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
        Kind::Award {
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
        }
    } else {
        Kind::Project {
            budget_fen: 5_000_000_000_000,
            per_project_cap_fen: 300_000_000,
        }
    };
    Program {
        kind,
        priority,
        threshold_millipoints: 60_000,
    }
}

/// Resident set size in KiB (Linux), for memory growth.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    println!("allocation benchmark (median of 7 runs; peak RSS from /proc/self/status VmHWM)");
    for award in [false, true] {
        for n in [25_000usize, 50_000, 100_000] {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            let input = candidates(n, award, &mut rng);
            let program = program(award);
            let before = rss_kib();
            let mut times: Vec<Duration> = (0..7)
                .map(|_| {
                    let start = Instant::now();
                    black_box(allocate(black_box(&program), black_box(&input)));
                    start.elapsed()
                })
                .collect();
            times.sort();
            let after = rss_kib();
            println!(
                "{:>7} {:<7} applications: median {:>8.1} ms  (min {:.1}, max {:.1})  peak RSS +{} KiB",
                n,
                if award { "award" } else { "project" },
                times[3].as_secs_f64() * 1e3,
                times[0].as_secs_f64() * 1e3,
                times[6].as_secs_f64() * 1e3,
                after.saturating_sub(before)
            );
        }
    }
}
