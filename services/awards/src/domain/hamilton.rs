//! The largest-remainder (Hamilton) method in exact integer arithmetic: split `size` units
//! (award seats, or a budget in fen) over pools in proportion to integer weights (basis points).
//!
//! Each pool first gets `floor(size × w_i / W)`; the units left over go one each to the pools
//! with the largest remainders `(size × w_i) mod W`, ties broken by the pools' fixed order
//! (earlier first). No floating point anywhere: `size × w_i` is computed in i128.
//!
//! Known and accepted (docs/rules.md, "Allocation across fields"): the Alabama paradox — with
//! weights 6:6:2, 10 seats split 4,4,2 but 11 seats split 5,5,1. The method is the one the
//! programme names; its quirk is documented rather than patched.

/// How one pool was sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// The pool's weight.
    pub weight: i64,
    /// `floor(size × weight / total_weight)`.
    pub whole_part: i64,
    /// `(size × weight) mod total_weight`.
    pub remainder: i64,
    /// Whether the pool received one of the leftover units.
    pub extra_unit: bool,
    /// `whole_part + extra_unit`.
    pub reserved: i64,
}

/// Splits `size` over `weights` (in pool order). Weights must be non-negative with a positive
/// sum; otherwise every pool gets nothing. The reserved units always sum to `size` (for a
/// non-negative `size` and a positive total weight).
pub fn split(size: i64, weights: &[i64]) -> Vec<Split> {
    let total: i128 = weights.iter().map(|&w| i128::from(w.max(0))).sum();
    if size <= 0 || total <= 0 || weights.iter().any(|&w| w < 0) {
        return weights
            .iter()
            .map(|&w| Split {
                weight: w,
                whole_part: 0,
                remainder: 0,
                extra_unit: false,
                reserved: 0,
            })
            .collect();
    }
    let mut splits: Vec<Split> = weights
        .iter()
        .map(|&w| {
            let product = i128::from(size) * i128::from(w);
            // Both fit in i64: whole ≤ size and remainder < total ≤ n × i64::MAX is bounded by
            // the weights' own range in practice (basis points); saturate defensively.
            let whole = i64::try_from(product / total).unwrap_or(i64::MAX);
            let remainder = i64::try_from(product % total).unwrap_or(i64::MAX);
            Split {
                weight: w,
                whole_part: whole,
                remainder,
                extra_unit: false,
                reserved: whole,
            }
        })
        .collect();
    let assigned: i64 = splits.iter().map(|s| s.whole_part).sum();
    let leftover = usize::try_from(size - assigned).unwrap_or(0);
    // Order pools by remainder descending, then by their fixed position.
    let mut order: Vec<usize> = (0..splits.len()).collect();
    order.sort_by(|&a, &b| {
        splits[b]
            .remainder
            .cmp(&splits[a].remainder)
            .then(a.cmp(&b))
    });
    for &i in order.iter().take(leftover) {
        splits[i].extra_unit = true;
        splits[i].reserved += 1;
    }
    splits
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reserved(size: i64, weights: &[i64]) -> Vec<i64> {
        split(size, weights).iter().map(|s| s.reserved).collect()
    }

    #[test]
    fn exact_quotas_need_no_leftover_units() {
        // 15% / 10% / 15% / 60% of 20 seats: 3, 2, 3, 12 exactly.
        let s = split(20, &[1500, 1000, 1500, 6000]);
        assert_eq!(
            s.iter().map(|s| s.reserved).collect::<Vec<_>>(),
            [3, 2, 3, 12]
        );
        assert!(s.iter().all(|s| s.remainder == 0 && !s.extra_unit));
    }

    #[test]
    fn fractional_quotas_go_to_the_largest_remainders() {
        // 7 seats at 15/10/15/60 %: exact quotas 1.05, 0.7, 1.05, 4.2 → wholes 1,0,1,4 (6);
        // the one leftover seat goes to the largest remainder: 0.7 (the 10 % pool).
        let s = split(7, &[1500, 1000, 1500, 6000]);
        assert_eq!(
            s.iter().map(|s| s.reserved).collect::<Vec<_>>(),
            [1, 1, 1, 4]
        );
        assert_eq!(
            s.iter().map(|s| s.remainder).collect::<Vec<_>>(),
            [500, 7000, 500, 2000]
        );
    }

    #[test]
    fn equal_remainders_are_broken_by_pool_order() {
        // 1 seat over three equal pools: the first pool wins the tie.
        assert_eq!(reserved(1, &[1, 1, 1]), [1, 0, 0]);
        assert_eq!(reserved(2, &[1, 1, 1]), [1, 1, 0]);
    }

    #[test]
    fn the_alabama_paradox_is_accepted_behaviour() {
        // docs/rules.md: weights 6:6:2 give 4,4,2 at 10 seats and 5,5,1 at 11 — the third pool
        // loses a seat when the house grows. Hamilton's method, as the programme names it.
        assert_eq!(reserved(10, &[6, 6, 2]), [4, 4, 2]);
        assert_eq!(reserved(11, &[6, 6, 2]), [5, 5, 1]);
    }

    #[test]
    fn money_splits_to_the_fen() {
        // 1,000,001 fen at 15 % / 85 %: 150,000.15 and 850,000.85 → 150,000 and 850,001.
        assert_eq!(reserved(1_000_001, &[1500, 8500]), [150_000, 850_001]);
    }

    #[test]
    fn degenerate_inputs_reserve_nothing() {
        assert_eq!(reserved(0, &[1, 2]), [0, 0]);
        assert_eq!(reserved(5, &[0, 0]), [0, 0]);
        assert_eq!(reserved(5, &[3, -1]), [0, 0]);
    }

    proptest! {
        #[test]
        fn reserved_units_always_sum_to_the_size_and_stay_within_one_of_the_quota(
            size in 0i64..1_000_000_000_000,
            weights in proptest::collection::vec(0i64..10_000, 1..8),
        ) {
            prop_assume!(weights.iter().sum::<i64>() > 0);
            let total: i128 = weights.iter().map(|&w| i128::from(w)).sum();
            let s = split(size, &weights);
            prop_assert_eq!(s.iter().map(|s| s.reserved).sum::<i64>(), size);
            for (split, &w) in s.iter().zip(&weights) {
                // Quota rule: floor(q) ≤ reserved ≤ floor(q) + 1.
                let floor = (i128::from(size) * i128::from(w) / total) as i64;
                prop_assert!(split.reserved == floor || split.reserved == floor + 1);
            }
        }
    }
}
