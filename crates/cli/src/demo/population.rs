//! The demo's enterprises: 16 cities × 20 firms with deterministic codes, names, sectors and
//! figures (a fixed seed), as import rows.

use super::*;

/// The cohort year the demo selects leading enterprises for; figures are of the two years before.
pub(super) const COHORT_YEAR: i32 = 2025;
/// Enterprises per prefecture-level city.
pub(super) const PER_CITY: usize = 20;

/// Shandong's 16 prefecture-level cities: GB/T 2260 prefix, Chinese name.
pub(super) const CITIES: [(&str, &str); 16] = [
    ("3701", "济南"),
    ("3702", "青岛"),
    ("3703", "淄博"),
    ("3704", "枣庄"),
    ("3705", "东营"),
    ("3706", "烟台"),
    ("3707", "潍坊"),
    ("3708", "济宁"),
    ("3709", "泰安"),
    ("3710", "威海"),
    ("3711", "日照"),
    ("3713", "临沂"),
    ("3714", "德州"),
    ("3715", "聊城"),
    ("3716", "滨州"),
    ("3717", "菏泽"),
];

/// What an enterprise does: name suffix, state high-tech field, green category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sector {
    Hydrogen,
    Solar,
    Storage,
    Materials,
    Environment,
    Biomedicine,
    Electronics,
    Equipment,
    EnergyServices,
}

impl Sector {
    const ALL: [Sector; 9] = [
        Sector::Hydrogen,
        Sector::Solar,
        Sector::Storage,
        Sector::Materials,
        Sector::Environment,
        Sector::Biomedicine,
        Sector::Electronics,
        Sector::Equipment,
        Sector::EnergyServices,
    ];

    pub(super) fn suffix(self) -> &'static str {
        match self {
            Sector::Hydrogen => "氢能科技有限公司",
            Sector::Solar => "光伏能源有限公司",
            Sector::Storage => "储能技术有限公司",
            Sector::Materials => "新材料股份有限公司",
            Sector::Environment => "环保科技有限公司",
            Sector::Biomedicine => "生物医药有限公司",
            Sector::Electronics => "电子信息技术有限公司",
            Sector::Equipment => "智能装备有限公司",
            Sector::EnergyServices => "节能服务有限公司",
        }
    }

    pub(super) fn fields(self) -> Vec<i32> {
        use HighTechField as F;
        let f: &[F] = match self {
            Sector::Hydrogen => &[F::NewEnergyAndEnergySaving, F::NewMaterials],
            Sector::Solar | Sector::Storage => &[F::NewEnergyAndEnergySaving],
            Sector::Materials => &[F::NewMaterials],
            Sector::Environment => &[F::ResourcesAndEnvironment],
            Sector::Biomedicine => &[F::BiologyAndNewMedicine],
            Sector::Electronics => &[F::ElectronicInformation],
            Sector::Equipment => &[F::AdvancedManufacturingAndAutomation],
            Sector::EnergyServices => &[F::HighTechServices, F::NewEnergyAndEnergySaving],
        };
        f.iter().map(|x| *x as i32).collect()
    }

    pub(super) fn green(self) -> GreenCategory {
        match self {
            Sector::Hydrogen | Sector::Solar | Sector::Storage => GreenCategory::CleanEnergy,
            Sector::Materials | Sector::Equipment => GreenCategory::CleanProduction,
            Sector::Environment => GreenCategory::EnergySavingAndEnvironmentalProtection,
            Sector::EnergyServices => GreenCategory::GreenServices,
            Sector::Electronics => GreenCategory::GreenInfrastructureUpgrade,
            Sector::Biomedicine => GreenCategory::Unspecified,
        }
    }
}

/// splitmix64: a tiny deterministic generator, so the demo data are the same on every run.
#[derive(Debug)]
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1).max(1) as u64;
        lo + (self.next() % span) as i64
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// One generated enterprise.
#[derive(Debug, Clone)]
pub(super) struct Firm {
    pub(super) uscc: String,
    pub(super) name: String,
    pub(super) sector: Sector,
}

/// A GB 32100 code: `91` (market regulation, enterprise), the division, a GB 11714 organisation
/// code with its own check character, and the GB 32100 check character.
pub(super) fn make_uscc(division: &str, serial: usize) -> String {
    let org8 = format!("MA3D{serial:04}");
    let org_check = organization_code_check_character(&org8).unwrap_or('0');
    let body = format!("91{division}{org8}{org_check}");
    let check = check_character(&body).unwrap_or('0');
    format!("{body}{check}")
}

pub(super) const TRADE: [&str; 24] = [
    "华", "鲁", "泰", "齐", "瑞", "恒", "信", "海", "明", "正", "新", "通", "润", "宏", "盛", "达",
    "源", "嘉", "丰", "岱", "沂", "蓝", "峰", "诚",
];
pub(super) const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "孙", "周", "吴", "徐", "马",
];
pub(super) const GIVEN: [&str; 12] = [
    "建国", "海涛", "丽娜", "志强", "晓东", "春华", "文静", "国栋", "雪梅", "立新", "宏伟", "秀英",
];
pub(super) const ROADS: [&str; 8] = [
    "科技路",
    "创新大道",
    "高新路",
    "工业南路",
    "经十路",
    "海尔路",
    "新材料大道",
    "环保路",
];

/// The enterprises of the demo: 16 cities × 20, plus a Laiwu-coded steelworks (3712, now Jinan)
/// whose achievement rule screening vetoes.
pub(super) fn firms() -> (Vec<Firm>, Vec<rpb::ImportEnterpriseRow>) {
    let mut rng = Rng(0x51_4C55_2021);
    let mut firms = Vec::new();
    let mut rows = Vec::new();
    let mut serial = 1;
    let steel = Firm {
        uscc: make_uscc("371202", serial),
        name: "济南钢城特钢有限公司".into(),
        sector: Sector::Equipment,
    };
    rows.push(rpb::ImportEnterpriseRow {
        row_number: serial as i64,
        enterprise: Some(rpb::Enterprise {
            uscc: steel.uscc.clone(),
            display_name: steel.name.clone(),
            legal_representative: "钢建国".into(),
            established_date: "1998-06-18".into(),
            address: "济南市钢城区钢都大街1号".into(),
            technology_fields: vec![HighTechField::AdvancedManufacturingAndAutomation as i32],
            ..Default::default()
        }),
    });
    firms.push(steel);
    for (prefix, city) in CITIES {
        for k in 0..PER_CITY {
            serial += 1;
            let sector = Sector::ALL[(k + serial) % Sector::ALL.len()];
            let division = format!("{prefix}{:02}", 2 + k % 4);
            let uscc = make_uscc(&division, serial);
            let name = format!(
                "{city}{}{}{}",
                rng.pick(&TRADE),
                rng.pick(&TRADE),
                sector.suffix()
            );
            let zone = match (prefix, k % 3) {
                ("3701", 0 | 1) => "zones/jinan",
                ("3702", 0 | 1) => "zones/qingdao",
                _ => "",
            };
            let established = format!(
                "{}-{:02}-{:02}",
                rng.range(1998, 2021),
                rng.range(1, 12),
                rng.range(1, 28)
            );
            rows.push(rpb::ImportEnterpriseRow {
                row_number: serial as i64,
                enterprise: Some(rpb::Enterprise {
                    uscc: uscc.clone(),
                    display_name: name.clone(),
                    legal_representative: format!("{}{}", rng.pick(&SURNAMES), rng.pick(&GIVEN)),
                    established_date: established,
                    address: format!("{city}市{}{}号", rng.pick(&ROADS), rng.range(1, 2999)),
                    zone: zone.to_string(),
                    technology_fields: sector.fields(),
                    green_category: sector.green() as i32,
                    ..Default::default()
                }),
            });
            firms.push(Firm { uscc, name, sector });
        }
    }
    (firms, rows)
}
