//! The closed-loop load generator: N callers, each issuing one call after another, for a warm-up
//! and then a measured window; every measured call's latency is kept, so p50/p99 are exact.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What one measured run produced.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Calls (or rows) per second over the measured window.
    pub rate: f64,
    /// Median latency of one call, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Calls completed in the measured window.
    pub calls: u64,
    /// Failed calls (warm-up included); the first error is in `first_error`.
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// CPU time of the in-process servers per measured call, µs (threads `bench-server*` and
    /// SQLite's `sqlx-sqlite-worker*`): a cost figure that other load on the machine does not
    /// move the way it moves throughput.
    pub server_cpu_us: f64,
}

/// CPU time (user + system) of this process's server threads so far, µs: `/proc/self/task/*/stat`
/// in clock ticks of USER_HZ (100 on Linux).
pub fn server_cpu_us() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let mut ticks: u64 = 0;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ... ; comm may contain spaces, so split after the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        if !(comm.starts_with("bench-server") || comm.starts_with("sqlx-sqlite")) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the comm: state is field 3, utime 14, stime 15 (1-based in proc(5)).
        let utime = fields
            .get(11)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let stime = fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        ticks += utime + stime;
    }
    ticks as f64 * 10_000.0
}

/// The exact `q` quantile (nearest rank) of sorted microsecond samples, in ms.
pub fn quantile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

/// Runs `callers` closed-loop callers of `call(caller, seq)` (seq is unique across callers) for
/// `warmup`, then measures for `measure`.
pub async fn run<F, Fut>(callers: usize, warmup: Duration, measure: Duration, call: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    let seq = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let measure_from = start + warmup;
    let measure_until = measure_from + measure;
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = server_cpu_us();
        tokio::time::sleep_until(measure_until.into()).await;
        server_cpu_us() - before
    });
    let mut tasks = Vec::with_capacity(callers);
    for caller in 0..callers {
        let call = call.clone();
        let seq = seq.clone();
        let errors = errors.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples: Vec<u64> = Vec::with_capacity(4096);
            let mut first_error = None;
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let began = Instant::now();
                if began >= measure_until {
                    break;
                }
                let result = call(caller, n).await;
                let ended = Instant::now();
                if let Err(e) = result {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                    // A broken workload should end the run quickly, not spin.
                    if errors.load(Ordering::Relaxed) > 100 {
                        stop.store(true, Ordering::Relaxed);
                    }
                    continue;
                }
                if began >= measure_from && ended <= measure_until {
                    samples.push(ended.duration_since(began).as_micros() as u64);
                }
            }
            (samples, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok((samples, err)) => {
                all.extend(samples);
                if first_error.is_none() {
                    first_error = err;
                }
            }
            Err(e) => {
                first_error.get_or_insert(format!("caller task failed: {e}"));
            }
        }
    }
    all.sort_unstable();
    let cpu = cpu.await.unwrap_or(f64::NAN);
    Stats {
        rate: all.len() as f64 / measure.as_secs_f64(),
        p50_ms: quantile_ms(&all, 0.50),
        p99_ms: quantile_ms(&all, 0.99),
        calls: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        first_error,
        server_cpu_us: cpu / all.len().max(1) as f64,
    }
}

/// Runs exactly `total` calls over `callers` callers (work that cannot repeat, e.g. one
/// application per achievement); the rate is `total / elapsed`.
pub async fn run_count<F, Fut>(callers: usize, total: u64, call: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    let seq = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let cpu_before = server_cpu_us();
    let mut tasks = Vec::with_capacity(callers);
    for caller in 0..callers {
        let call = call.clone();
        let seq = seq.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut first_error = None;
            loop {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let began = Instant::now();
                match call(caller, n).await {
                    Ok(()) => samples.push(began.elapsed().as_micros() as u64),
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(e);
                    }
                }
            }
            (samples, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok((samples, err)) => {
                all.extend(samples);
                if first_error.is_none() {
                    first_error = err;
                }
            }
            Err(e) => {
                first_error.get_or_insert(format!("caller task failed: {e}"));
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = server_cpu_us() - cpu_before;
    all.sort_unstable();
    Stats {
        rate: all.len() as f64 / elapsed,
        p50_ms: quantile_ms(&all, 0.50),
        p99_ms: quantile_ms(&all, 0.99),
        calls: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        first_error,
        server_cpu_us: cpu / all.len().max(1) as f64,
    }
}

/// The run with the median rate of `runs` (its p50/p99 go with it), errors summed over all.
pub fn median(mut runs: Vec<Stats>) -> Option<Stats> {
    if runs.is_empty() {
        return None;
    }
    let errors: u64 = runs.iter().map(|s| s.errors).sum();
    let first_error = runs.iter().find_map(|s| s.first_error.clone());
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let mut mid = runs.swap_remove(runs.len() / 2);
    mid.errors = errors;
    mid.first_error = first_error;
    Some(mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let samples: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(quantile_ms(&samples, 0.5), 50.0);
        assert_eq!(quantile_ms(&samples, 0.99), 99.0);
        assert_eq!(quantile_ms(&[7000], 0.99), 7.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }

    #[test]
    fn the_median_run_keeps_its_latencies_and_all_errors() {
        let s = |rate: f64, errors: u64| Stats {
            rate,
            p50_ms: rate / 10.0,
            p99_ms: rate,
            calls: 1,
            errors,
            first_error: (errors > 0).then(|| format!("e{rate}")),
            server_cpu_us: 1.0,
        };
        let m = median(vec![s(30.0, 0), s(10.0, 1), s(20.0, 0)]).unwrap_or_else(|| s(0.0, 0));
        assert_eq!(m.rate, 20.0);
        assert_eq!(m.p50_ms, 2.0);
        assert_eq!(m.errors, 1);
        assert_eq!(m.first_error.as_deref(), Some("e10"));
    }
}
