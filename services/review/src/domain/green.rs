//! Green data: what two-high screening reads. Every figure is optional because an absent figure
//! is *missing*, which is different from zero; quantities are integers in fixed units (kgce,
//! kWh, gce per product unit, kg), never floating point.

use serde::{Deserialize, Serialize};

/// Longest GB/T 4754 code: a 4-digit class.
pub const MAX_INDUSTRY_CODE_DIGITS: usize = 4;

/// The green data of an achievement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreenData {
    /// GB/T 4754-2017 division, group or class (2-4 digits); `None` = missing.
    pub industry_code: Option<String>,
    /// Annual comprehensive energy consumption, kgce.
    pub annual_energy_kgce: Option<i64>,
    /// Annual electricity, kWh.
    pub annual_electricity_kwh: Option<i64>,
    /// Unit energy of the main products.
    pub products: Vec<ProductEnergy>,
    /// Annual CO₂, kg.
    pub annual_co2_kg: Option<i64>,
    /// Main pollutants.
    pub pollutants: Vec<PollutantEmission>,
}

/// Unit energy consumption of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductEnergy {
    /// Product code as the rule set's limits name it.
    pub product_code: String,
    /// Unit of product, e.g. `t`.
    pub product_unit: String,
    /// gce per product unit; `None` = missing.
    pub unit_energy_gce: Option<i64>,
}

/// Annual emission of one pollutant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollutantEmission {
    /// `qilu.review.v1.Pollutant` number.
    pub pollutant: i32,
    /// Name when the pollutant is OTHER.
    pub other_name: String,
    /// kg a year; `None` = missing.
    pub annual_kg: Option<i64>,
}

/// `n` with thousands separators: 12000 → `12,000`.
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// kgce as tonnes of coal equivalent for people: 12,000,000 → `12,000 tce`,
/// 4,999,999 → `4,999.999 tce` (exact: 1 tce = 1,000 kgce).
pub fn tce(kgce: i64) -> String {
    let whole = kgce.div_euclid(1000);
    let rest = kgce.rem_euclid(1000);
    if rest == 0 {
        format!("{} tce", grouped(whole))
    } else {
        format!("{}.{rest:03} tce", grouped(whole))
    }
}

/// gce per unit for people: 545,000 → `545 kgce/t`, 545,001 → `545.001 kgce/t`.
pub fn unit_energy(gce: i64, unit: &str) -> String {
    let whole = gce.div_euclid(1000);
    let rest = gce.rem_euclid(1000);
    if rest == 0 {
        format!("{} kgce/{unit}", grouped(whole))
    } else {
        format!("{}.{rest:03} kgce/{unit}", grouped(whole))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_exactly() {
        for (kgce, text) in [
            (12_000_000, "12,000 tce"),
            (5_000_000, "5,000 tce"),
            (4_999_999, "4,999.999 tce"),
            (0, "0 tce"),
            (1, "0.001 tce"),
        ] {
            assert_eq!(tce(kgce), text);
        }
        assert_eq!(grouped(-1_234_567), "-1,234,567");
        assert_eq!(unit_energy(545_000, "t"), "545 kgce/t");
        assert_eq!(unit_energy(545_001, "t"), "545.001 kgce/t");
    }
}
