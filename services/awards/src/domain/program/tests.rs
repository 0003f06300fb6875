//! Unit tests of `program`, kept beside it so the rules read without them.

use super::*;

fn settings() -> Settings {
    Settings {
        display_name: "绿色项目 2024".into(),
        year: 2024,
        description: String::new(),
        award_quotas: vec![],
        quota_caps: vec![],
        budget_fen: 1_000_000,
        per_project_cap_fen: 0,
        priority_fields: vec![PriorityField {
            field: 2,
            basis_points: 1000,
        }],
        score_threshold_millipoints: 70_000,
        requires_high_tech_certification: false,
        deadlines: Deadlines::default(),
        objection_window_days: 10,
    }
}

#[test]
fn program_ids_follow_the_contract() {
    for ok in ["a", "green-projects-2024", &"a".repeat(63)] {
        assert!(valid_program_id(ok), "{ok}");
    }
    for bad in ["", "1abc", "Green", "a_b", &"a".repeat(64), "-a"] {
        assert!(!valid_program_id(bad), "{bad}");
    }
}

#[test]
fn shares_may_sum_to_exactly_the_whole_but_not_above() {
    let mut s = settings();
    s.priority_fields = vec![
        PriorityField {
            field: 1,
            basis_points: 5000,
        },
        PriorityField {
            field: 2,
            basis_points: 5000,
        },
    ];
    assert!(validate(Kind::Project, &s).is_empty());
    s.priority_fields[1].basis_points = 5001;
    let v = validate(Kind::Project, &s);
    assert_eq!(v[0].field, "priority_fields");
    assert_eq!(v[0].reason, "SHARES_ABOVE_WHOLE");
}

#[test]
fn quotas_are_award_only_unique_and_graded_as_the_category_is() {
    let mut s = settings();
    s.budget_fen = 0;
    s.award_quotas = vec![
        AwardQuota {
            category: 4,
            grade: 2,
            quota: 35,
            amount_fen: 30_000_000,
        },
        AwardQuota {
            category: 4,
            grade: 2,
            quota: 1,
            amount_fen: 0,
        },
        AwardQuota {
            category: 1,
            grade: 2,
            quota: 2,
            amount_fen: 0,
        },
        AwardQuota {
            category: 2,
            grade: 3,
            quota: 0,
            amount_fen: 0,
        },
    ];
    let fields: Vec<String> = validate(Kind::Award, &s)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "award_quotas[1]",
            "award_quotas[2].grade",
            "award_quotas[3].quota"
        ]
    );
    assert!(
        validate(Kind::Project, &s)
            .iter()
            .any(|v| v.field == "award_quotas")
    );
}

#[test]
fn threshold_budget_cap_window_and_dates_are_checked() {
    let mut s = settings();
    s.score_threshold_millipoints = 100_001;
    s.per_project_cap_fen = 2_000_000;
    s.objection_window_days = 61;
    s.deadlines.application_start_date = NaiveDate::from_ymd_opt(2024, 5, 2);
    s.deadlines.application_deadline = NaiveDate::from_ymd_opt(2024, 5, 1);
    let fields: Vec<String> = validate(Kind::Project, &s)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "per_project_cap_fen",
            "score_threshold_millipoints",
            "deadlines.application_deadline",
            "objection_window_days"
        ]
    );
}

#[test]
fn each_transition_moves_from_exactly_one_stage() {
    assert_eq!(State::Draft.transition(Transition::Open), Ok(State::Open));
    assert_eq!(
        State::Closed.transition(Transition::Allocate),
        Ok(State::Allocated)
    );
    assert!(State::Draft.transition(Transition::Close).is_err());
    assert!(State::Allocated.transition(Transition::Allocate).is_err());
    assert!(State::Final.transition(Transition::Finalize).is_err());
    for code in 1..=6 {
        assert_eq!(State::from_code(code).unwrap().code(), code);
    }
}

#[test]
fn the_application_window_is_inclusive_of_both_days() {
    let d = Deadlines {
        application_start_date: NaiveDate::from_ymd_opt(2024, 5, 1),
        application_deadline: NaiveDate::from_ymd_opt(2024, 5, 31),
        ..Deadlines::default()
    };
    let day = |m, dd| NaiveDate::from_ymd_opt(2024, m, dd).unwrap();
    assert!(outside_application_window(&d, day(4, 30)).is_some());
    assert!(outside_application_window(&d, day(5, 1)).is_none());
    assert!(outside_application_window(&d, day(5, 31)).is_none());
    assert!(outside_application_window(&d, day(6, 1)).is_some());
}

#[test]
fn the_objection_window_ends_at_the_end_of_day_in_the_programme_time_zone() {
    let tz: Tz = "Asia/Shanghai".parse().unwrap();
    // 2024-06-01 20:00 UTC is 2024-06-02 04:00 in Shanghai: publication day is June 2.
    let publish = chrono::Utc
        .with_ymd_and_hms(2024, 6, 1, 20, 0, 0)
        .unwrap()
        .timestamp_micros();
    let end = objection_window_end(publish, 10, tz);
    // End of 2024-06-12 in Shanghai = 2024-06-12T15:59:59.999999Z.
    let expected = chrono::Utc
        .with_ymd_and_hms(2024, 6, 12, 16, 0, 0)
        .unwrap()
        .timestamp_micros()
        - 1;
    assert_eq!(end, expected);
}
