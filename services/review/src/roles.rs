//! Who may call each review RPC — the one table, checked by the middleware before any handler
//! runs. Resource-level rules ("own only", "assigned", blind review) are enforced in the
//! handlers; the comment on each row repeats the contract's wording.

use qilu_common::auth::{EVERY_ROLE, MethodRoles, Role, RoleTable};

/// Who may follow the change feed: the roles that may read achievements, less the expert, whose
/// reads depend on its assignments (which the feed's per-change check cannot consult). Each
/// caller sees only the changes its reads allow (`api::changes`).
const FEED_ROLES: &[Role] = &[
    Role::Admin,
    Role::Officer,
    Role::Auditor,
    Role::Service,
    Role::Enterprise,
];

/// The role table of `AchievementReviewService`. Every RPC of the contract appears here (a test checks against
/// the descriptor set); a method missing from it is refused for everyone.
pub const ROLE_TABLE: RoleTable = &[
    // admin; enterprise (own only).
    MethodRoles {
        method: "CreateAchievement",
        roles: &[Role::Admin, Role::Enterprise],
    },
    // admin, officer, auditor, service; enterprise (own only); expert (assigned).
    MethodRoles {
        method: "GetAchievement",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer, auditor, service; enterprise (own only); expert (assigned).
    MethodRoles {
        method: "ListAchievements",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin; enterprise (own only).
    MethodRoles {
        method: "UpdateAchievement",
        roles: &[Role::Admin, Role::Enterprise],
    },
    // admin; enterprise (own only).
    MethodRoles {
        method: "SubmitAchievement",
        roles: &[Role::Admin, Role::Enterprise],
    },
    // admin; enterprise (own only).
    MethodRoles {
        method: "WithdrawAchievement",
        roles: &[Role::Admin, Role::Enterprise],
    },
    // admin; enterprise (own only).
    MethodRoles {
        method: "DeleteAchievement",
        roles: &[Role::Admin, Role::Enterprise],
    },
    // admin.
    MethodRoles {
        method: "CreateVetoRuleSet",
        roles: &[Role::Admin],
    },
    // every authenticated role.
    MethodRoles {
        method: "GetVetoRuleSet",
        roles: EVERY_ROLE,
    },
    // every authenticated role.
    MethodRoles {
        method: "ListVetoRuleSets",
        roles: EVERY_ROLE,
    },
    // admin.
    MethodRoles {
        method: "ActivateVetoRuleSet",
        roles: &[Role::Admin],
    },
    // admin.
    MethodRoles {
        method: "DeleteVetoRuleSet",
        roles: &[Role::Admin],
    },
    // admin, officer, auditor; enterprise (own only); expert (assigned).
    MethodRoles {
        method: "ScreenAchievement",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
        ],
    },
    // admin.
    MethodRoles {
        method: "CreateExpert",
        roles: &[Role::Admin],
    },
    // admin, officer, auditor; expert (own only).
    MethodRoles {
        method: "GetExpert",
        roles: &[Role::Admin, Role::Officer, Role::Expert, Role::Auditor],
    },
    // admin, officer, auditor.
    MethodRoles {
        method: "ListExperts",
        roles: &[Role::Admin, Role::Officer, Role::Auditor],
    },
    // admin; expert (own only, not `load_limit` or `state`).
    MethodRoles {
        method: "UpdateExpert",
        roles: &[Role::Admin, Role::Expert],
    },
    // admin; expert (own only).
    MethodRoles {
        method: "DeclareConflict",
        roles: &[Role::Admin, Role::Expert],
    },
    // admin (automatic or manual), officer (automatic only).
    MethodRoles {
        method: "AssignReviewers",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin.
    MethodRoles {
        method: "CancelReview",
        roles: &[Role::Admin],
    },
    // admin.
    MethodRoles {
        method: "ReassignReview",
        roles: &[Role::Admin],
    },
    // expert (the assigned expert only).
    MethodRoles {
        method: "SubmitReview",
        roles: &[Role::Expert],
    },
    // admin, officer, auditor; expert (assigned, blind rule); enterprise (own, after the decision, expert redacted).
    MethodRoles {
        method: "GetReview",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
        ],
    },
    // admin, officer, auditor; expert (assigned, blind rule); enterprise (own, after the decision, expert redacted).
    MethodRoles {
        method: "ListReviews",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
        ],
    },
    // admin, officer.
    MethodRoles {
        method: "FinalizeDecision",
        roles: &[Role::Admin, Role::Officer],
    },
    // enterprise (own only); admin on its behalf.
    MethodRoles {
        method: "AppealVeto",
        roles: &[Role::Admin, Role::Enterprise],
    },
    // admin.
    MethodRoles {
        method: "ResolveAppeal",
        roles: &[Role::Admin],
    },
    // service, admin, officer, auditor.
    MethodRoles {
        method: "BatchGetAchievementStatus",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "ListChanges",
        roles: FEED_ROLES,
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "WatchChanges",
        roles: FEED_ROLES,
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "GetChangeFeedHead",
        roles: FEED_ROLES,
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "ExportSnapshot",
        roles: FEED_ROLES,
    },
    // admin, auditor.
    MethodRoles {
        method: "ListAuditEvents",
        roles: &[Role::Admin, Role::Auditor],
    },
    // admin, auditor.
    MethodRoles {
        method: "VerifyAuditChain",
        roles: &[Role::Admin, Role::Auditor],
    },
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message;

    use super::ROLE_TABLE;

    #[test]
    fn the_table_lists_every_rpc_of_the_contract_and_nothing_else() {
        let set = prost_types::FileDescriptorSet::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
        let contract: BTreeSet<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "qilu.review.v1")
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == "AchievementReviewService")
            .flat_map(|s| &s.method)
            .map(|m| m.name().to_string())
            .collect();
        let table: BTreeSet<String> = ROLE_TABLE.iter().map(|m| m.method.to_string()).collect();
        assert_eq!(table.len(), ROLE_TABLE.len(), "a method appears twice");
        assert_eq!(contract, table);
    }
}
