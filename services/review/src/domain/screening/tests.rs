//! Unit tests of `screening`, kept beside it so the rules read without them.

use super::super::green::ProductEnergy;
use super::*;

const OWNER: &str = "91370100MA3C000011";

fn rules() -> Rules {
    Rules {
        industry_scope: ["25", "26", "30", "31", "32", "44"]
            .iter()
            .map(|c| ScopeEntry {
                code: (*c).into(),
                description: format!("division {c}"),
            })
            .collect(),
        annual_energy_threshold_kgce: 5_000_000,
        unit_energy_limits: vec![UnitEnergyLimit {
            product_code: "crude-steel".into(),
            product_unit: "t".into(),
            limit_gce: 545_000,
            source: "GB 21256-2013".into(),
        }],
        closure_list: vec![
            ClosureEntry {
                entry_id: "zibo-coke-01".into(),
                enterprise: None,
                industry_code: Some("2521".into()),
                product_code: Some("coke".into()),
                description: "small coke ovens".into(),
                source: "closure notice (test)".into(),
            },
            ClosureEntry {
                entry_id: "listed-owner".into(),
                enterprise: Some("91370100MA3C00009X".into()),
                industry_code: None,
                product_code: None,
                description: "enterprise to be closed".into(),
                source: "closure notice (test)".into(),
            },
        ],
    }
}

fn run(data: &GreenData) -> Verdict {
    run_as(OWNER, data)
}

fn run_as(owner: &str, data: &GreenData) -> Verdict {
    let r = rules();
    screen(
        RuleSetRef {
            name: "vetoRuleSets/test",
            version: 3,
            description: "test rules",
            rules: &r,
        },
        owner,
        data,
        42,
    )
}

fn data(code: Option<&str>, kgce: Option<i64>) -> GreenData {
    GreenData {
        industry_code: code.map(str::to_string),
        annual_energy_kgce: kgce,
        ..Default::default()
    }
}

fn steel(unit: &str, gce: Option<i64>) -> GreenData {
    GreenData {
        products: vec![ProductEnergy {
            product_code: "crude-steel".into(),
            product_unit: unit.into(),
            unit_energy_gce: gce,
        }],
        ..data(Some("3110"), Some(1_000_000))
    }
}

#[test]
fn annual_energy_against_scope_and_threshold() {
    use Outcome::*;
    // (what, industry code, annual kgce, outcome, deciding rule)
    type Case<'a> = (&'a str, Option<&'a str>, Option<i64>, Outcome, &'a str);
    let cases: &[Case<'_>] = &[
        (
            "in scope, far over",
            Some("31"),
            Some(12_000_000),
            Veto,
            "annual-energy",
        ),
        (
            "in scope, at threshold",
            Some("3120"),
            Some(5_000_000),
            Veto,
            "annual-energy",
        ),
        (
            "in scope, just over",
            Some("26"),
            Some(5_000_001),
            Veto,
            "annual-energy",
        ),
        (
            "in scope, just under",
            Some("26"),
            Some(4_999_999),
            Pass,
            "",
        ),
        ("in scope, far under", Some("44"), Some(10), Pass, ""),
        ("in scope, zero is a figure", Some("30"), Some(0), Pass, ""),
        ("out of scope, over", Some("27"), Some(50_000_000), Pass, ""),
        (
            "out of scope (prefix, not substring)",
            Some("1310"),
            Some(50_000_000),
            Pass,
            "",
        ),
        (
            "out of scope, no energy needed",
            Some("2710"),
            None,
            Pass,
            "",
        ),
        (
            "in scope, energy missing",
            Some("3210"),
            None,
            NeedsReview,
            "annual-energy",
        ),
        (
            "code missing, over",
            None,
            Some(5_000_000),
            NeedsReview,
            "annual-energy",
        ),
        (
            "code missing, under",
            None,
            Some(4_999_999),
            NeedsReview,
            "industry-code",
        ),
        (
            "everything missing",
            None,
            None,
            NeedsReview,
            "annual-energy",
        ),
    ];
    for (what, code, kgce, outcome, rule) in cases {
        let v = run(&data(*code, *kgce));
        assert_eq!(v.outcome, *outcome, "{what}: {v:#?}");
        assert_eq!(v.rule_id, *rule, "{what}");
        assert_eq!(v.rule_set_version, 3);
        assert_eq!(v.inputs, data(*code, *kgce), "{what}: inputs kept");
    }
}

#[test]
fn each_missing_input_is_named_never_guessed() {
    let cases: Vec<(&str, GreenData, Vec<&str>)> = vec![
        (
            "no industry code",
            data(None, Some(10)),
            vec![INDUSTRY_CODE],
        ),
        (
            "no figures at all",
            data(None, None),
            vec![INDUSTRY_CODE, ANNUAL_ENERGY],
        ),
        (
            "in scope, no annual energy",
            data(Some("31"), None),
            vec![ANNUAL_ENERGY],
        ),
        (
            "limited product without unit energy",
            steel("t", None),
            vec!["green_data.products[0].unit_energy_gce"],
        ),
        (
            "limited product in another unit",
            steel("kg", Some(1)),
            vec!["green_data.products[0].product_unit"],
        ),
        (
            "closure entry needing the industry code",
            GreenData {
                products: vec![ProductEnergy {
                    product_code: "coke".into(),
                    product_unit: "t".into(),
                    unit_energy_gce: Some(1),
                }],
                ..data(None, Some(10))
            },
            vec![INDUSTRY_CODE],
        ),
    ];
    for (what, d, missing) in cases {
        let v = run(&d);
        assert_eq!(v.outcome, Outcome::NeedsReview, "{what}: {v:#?}");
        assert_eq!(v.missing_inputs, missing, "{what}");
        assert!(v.explanation.starts_with("Needs review: missing"), "{what}");
    }
}

#[test]
fn unit_energy_above_the_product_limit_vetoes_at_the_limit_passes() {
    for (gce, outcome) in [
        (545_000, Outcome::Pass),
        (544_999, Outcome::Pass),
        (545_001, Outcome::Veto),
        (900_000, Outcome::Veto),
    ] {
        let v = run(&steel("t", Some(gce)));
        assert_eq!(v.outcome, outcome, "{gce}: {v:#?}");
        if outcome == Outcome::Veto {
            assert_eq!(v.rule_id, "unit-energy/crude-steel");
            assert_eq!(v.source, "GB 21256-2013");
            assert_eq!(v.threshold, "> 545 kgce/t for crude-steel");
        }
    }
    // A product without a national limit is not judged on unit energy.
    let v = run(&GreenData {
        products: vec![ProductEnergy {
            product_code: "insulin".into(),
            product_unit: "kg".into(),
            unit_energy_gce: None,
        }],
        ..data(Some("2761"), None)
    });
    assert_eq!(v.outcome, Outcome::Pass, "{v:#?}");
}

#[test]
fn the_closure_list_vetoes_by_owner_or_by_industry_and_product() {
    let v = run_as("91370100MA3C00009X", &data(Some("2761"), Some(1)));
    assert_eq!(v.outcome, Outcome::Veto);
    assert_eq!(v.rule_id, "closure-list/listed-owner");
    assert_eq!(v.source, "closure notice (test)");

    let coke = |code: &str| GreenData {
        products: vec![ProductEnergy {
            product_code: "coke".into(),
            product_unit: "t".into(),
            unit_energy_gce: Some(1),
        }],
        ..data(Some(code), Some(1))
    };
    let v = run(&coke("2521"));
    assert_eq!(v.outcome, Outcome::Veto);
    assert_eq!(v.rule_id, "closure-list/zibo-coke-01");
    // Every matcher must match: coke outside 2521 is not this entry (but 25 is in scope,
    // and 1 kgce is far under the threshold).
    assert_eq!(run(&coke("2511")).outcome, Outcome::Pass);
}

#[test]
fn a_veto_outranks_missing_data_and_the_first_veto_decides() {
    let v = run(&GreenData {
        products: vec![ProductEnergy {
            product_code: "crude-steel".into(),
            product_unit: "t".into(),
            unit_energy_gce: Some(600_000),
        }],
        ..data(Some("31"), Some(12_000_000))
    });
    assert_eq!(v.outcome, Outcome::Veto);
    assert_eq!(v.rule_id, "unit-energy/crude-steel", "rule order decides");
    assert!(v.missing_inputs.is_empty());
    let ids: Vec<&str> = v.checks.iter().map(|c| c.rule_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "closure-list",
            "unit-energy/crude-steel",
            "annual-energy",
            "industry-code"
        ]
    );
    let v = run(&data(Some("31"), Some(12_000_000)));
    assert_eq!(
        v.explanation,
        "Vetoed: industry 31 (division 31) is two-high and 12,000 tce a year is at or above 5,000 tce (rule set vetoRuleSets/test v3)"
    );
    assert_eq!(v.threshold, ">= 5,000 tce in scope 31");
    assert_eq!(v.source, "test rules");
}

#[test]
fn a_pass_cites_the_rule_set_and_has_no_deciding_rule() {
    let v = run(&data(Some("2761"), Some(100_000)));
    assert_eq!(v.outcome, Outcome::Pass);
    assert!(v.rule_id.is_empty() && v.threshold.is_empty());
    assert_eq!(v.source, "test rules");
    assert_eq!(v.owner, format!("enterprises/{OWNER}"));
    assert_eq!(v.screen_time_us, 42);
}
