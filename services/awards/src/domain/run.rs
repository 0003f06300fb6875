//! A stored allocation run: the candidates exactly as the allocator saw them (with the registry
//! and review facts fetched at run time), the result, and the digest of the inputs. A revision
//! caused by an upheld objection re-runs the allocator on the previous revision's candidates
//! with the objection's remedy applied — no new peer calls — so the revision is explained by
//! one change only and is deterministic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::allocation::{self, Allocation, Candidate, Cap};
use super::program::Program;

/// One revision of a program's allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The program id.
    pub program_id: String,
    /// 1 for the allocation run; +1 per upheld objection.
    pub revision: i32,
    /// `programs/{p}/objections/{o}` for revisions ≥ 2.
    pub revised_by_objection: Option<String>,
    /// The allocator's input, in application-name order.
    pub candidates: Vec<Candidate>,
    /// The statutory ceilings as they stood for this program when it was allocated: what is
    /// left of each after the awards other programs of the year had made
    /// (`domain::ceiling::allocation_caps`). A revision keeps its predecessor's, so an
    /// objection changes one thing only.
    #[serde(default)]
    pub ceiling_caps: Vec<Cap>,
    /// The allocator's output.
    pub result: Allocation,
    /// Lower-case hex SHA-256 of the canonical inputs.
    pub input_digest: String,
    /// Who ran it.
    pub run_by: String,
    /// When, µs.
    pub run_time_us: i64,
    /// What the results publish beside the names, by application name: the enterprise's
    /// registered name and the achievement's title at run time. Not an allocator input (not in
    /// the digest). Empty for runs made before it was recorded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Label>,
    /// True when the entries are stored as rows of their own (`store::run`), not in this
    /// document (`result.entries` is then empty until loaded).
    #[serde(default)]
    pub entries_in_rows: bool,
}

/// The names a published result shows for one application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The enterprise's registered name.
    pub enterprise_display_name: String,
    /// The achievement's title.
    pub achievement_title: String,
}

/// Canonical inputs: the allocation settings and every candidate, as JSON with a fixed field
/// order (serde emits struct fields in declaration order), candidates sorted by name.
pub fn input_digest(program: &Program, candidates: &[Candidate], ceiling_caps: &[Cap]) -> String {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| a.application.cmp(&b.application));
    let settings = &program.settings;
    let canonical = serde_json::json!({
        "program": program.name(),
        "kind": program.kind,
        "award_quotas": settings.award_quotas,
        "quota_caps": settings.quota_caps,
        "budget_fen": settings.budget_fen,
        "per_project_cap_fen": settings.per_project_cap_fen,
        "priority_fields": settings.priority_fields,
        "score_threshold_millipoints": settings.score_threshold_millipoints,
        "candidates": sorted,
        "ceiling_caps": ceiling_caps,
    });
    let mut h = Sha256::new();
    h.update(canonical.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Runs the allocator, with the program's own caps and `ceiling_caps`, and packs the revision.
pub fn run(
    program: &Program,
    mut candidates: Vec<Candidate>,
    ceiling_caps: Vec<Cap>,
    revision: i32,
    revised_by_objection: Option<String>,
    run_by: &str,
    run_time_us: i64,
) -> Run {
    candidates.sort_by(|a, b| a.application.cmp(&b.application));
    let mut allocator_program = program.allocator_program();
    if let allocation::Kind::Award { caps, .. } = &mut allocator_program.kind {
        caps.extend(ceiling_caps.iter().cloned());
    }
    let result = allocation::allocate(&allocator_program, &candidates);
    Run {
        program_id: program.id.clone(),
        revision,
        revised_by_objection,
        input_digest: input_digest(program, &candidates, &ceiling_caps),
        candidates,
        ceiling_caps,
        result,
        run_by: run_by.to_string(),
        run_time_us,
        labels: BTreeMap::new(),
        entries_in_rows: false,
    }
}
