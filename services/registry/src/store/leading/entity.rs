//! The sea-orm entities of leading cohorts, members, support policies, their milestones and
//! reviews: the tables as `migration` creates them.

/// `leading_cohort` rows.
pub mod cohort {
    use sea_orm::entity::prelude::*;

    /// One cohort.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leading_cohort")]
    pub struct Model {
        /// Programme year, the key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        /// Note.
        pub description: String,
        /// µs.
        pub create_time_us: i64,
        /// µs.
        pub update_time_us: i64,
        /// Optimistic-concurrency version.
        pub version: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `leading_cohort_member` rows.
pub mod member {
    use sea_orm::entity::prelude::*;

    /// One membership.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leading_cohort_member")]
    pub struct Model {
        /// Cohort year.
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        /// Enterprise USCC.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uscc: String,
        /// `MemberState` number.
        pub state: i32,
        /// The candidate at selection, JSON.
        pub ranking_json: String,
        /// Why selected.
        pub select_reason: String,
        /// Who selected.
        pub selected_by: String,
        /// µs.
        pub select_time_us: i64,
        /// Why deselected.
        pub deselect_reason: String,
        /// µs, 0 while selected.
        pub deselect_time_us: i64,
        /// Policy name or "".
        pub support_policy: String,
        /// µs.
        pub create_time_us: i64,
        /// µs.
        pub update_time_us: i64,
        /// Optimistic-concurrency version.
        pub version: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `support_policy` rows.
pub mod policy {
    use sea_orm::entity::prelude::*;

    /// One support policy (without milestones and reviews).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "support_policy")]
    pub struct Model {
        /// Enterprise USCC.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uscc: String,
        /// Cohort year (the id).
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        /// Title.
        pub title: String,
        /// Summary.
        pub summary: String,
        /// Measures as JSON (never queried).
        pub measures_json: String,
        /// Officer `sub`.
        pub responsible_officer: String,
        /// Officer name.
        pub responsible_officer_name: String,
        /// `SupportPolicyState` number.
        pub state: i32,
        /// µs.
        pub create_time_us: i64,
        /// µs.
        pub update_time_us: i64,
        /// Optimistic-concurrency version.
        pub version: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `support_policy_milestone` rows (replaced whole when the milestones change).
pub mod milestone {
    use sea_orm::entity::prelude::*;

    /// One milestone.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "support_policy_milestone")]
    pub struct Model {
        /// Enterprise USCC.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uscc: String,
        /// Cohort year.
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        /// Milestone id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub milestone_id: String,
        /// Position in the policy's list.
        pub position: i32,
        /// Title.
        pub title: String,
        /// `YYYY-MM-DD` (text compares as dates).
        pub due_date: String,
        /// `MilestoneState` number (never OVERDUE).
        pub state: i32,
        /// `YYYY-MM-DD` or "".
        pub completed_date: String,
        /// Note.
        pub note: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `support_policy_review` rows: append-only.
pub mod review {
    use sea_orm::entity::prelude::*;

    /// One review.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "support_policy_review")]
    pub struct Model {
        /// Enterprise USCC.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uscc: String,
        /// Cohort year.
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        /// 1, 2, … in order of recording.
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i32,
        /// `PolicyReviewConclusion` number.
        pub conclusion: i32,
        /// Findings.
        pub comment: String,
        /// Reviewer `sub`.
        pub reviewer: String,
        /// µs.
        pub review_time_us: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
