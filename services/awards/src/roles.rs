//! Who may call each awards RPC — the one table, checked by the middleware before any handler
//! runs. Resource-level rules ("own only", "assigned", blind review) are enforced in the
//! handlers; the comment on each row repeats the contract's wording.

use qilu_common::auth::{MethodRoles, Role, RoleTable};

/// The role table of `AwardAllocationService`. Every RPC of the contract appears here (a test checks against
/// the descriptor set); a method missing from it is refused for everyone.
pub const ROLE_TABLE: RoleTable = &[
    // admin.
    MethodRoles {
        method: "CreateProgram",
        roles: &[Role::Admin],
    },
    // admin, officer, auditor, service; enterprise, expert and public (not DRAFT).
    MethodRoles {
        method: "GetProgram",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
            Role::Public,
        ],
    },
    // admin, officer, auditor, service; enterprise, expert and public (not DRAFT).
    MethodRoles {
        method: "ListPrograms",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
            Role::Public,
        ],
    },
    // admin.
    MethodRoles {
        method: "UpdateProgram",
        roles: &[Role::Admin],
    },
    // admin.
    MethodRoles {
        method: "DeleteProgram",
        roles: &[Role::Admin],
    },
    // admin.
    MethodRoles {
        method: "OpenProgram",
        roles: &[Role::Admin],
    },
    // admin.
    MethodRoles {
        method: "CloseProgram",
        roles: &[Role::Admin],
    },
    // admin (run or preview), officer and auditor (preview only).
    MethodRoles {
        method: "AllocateProgram",
        roles: &[Role::Admin, Role::Officer, Role::Auditor],
    },
    // admin.
    MethodRoles {
        method: "StartAllocation",
        roles: &[Role::Admin],
    },
    // admin, officer, auditor; once PUBLICIZED or FINAL also enterprise, expert, service, public.
    MethodRoles {
        method: "GetAllocation",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
            Role::Public,
        ],
    },
    // as for GetAllocation.
    MethodRoles {
        method: "ListAllocationEntries",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
            Role::Public,
        ],
    },
    // as for GetAllocation.
    MethodRoles {
        method: "ListAllocationRevisions",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
            Role::Public,
        ],
    },
    // admin.
    MethodRoles {
        method: "PublishResults",
        roles: &[Role::Admin],
    },
    // admin.
    MethodRoles {
        method: "FinalizeProgram",
        roles: &[Role::Admin],
    },
    // enterprise (own only); admin on its behalf.
    MethodRoles {
        method: "CreateApplication",
        roles: &[Role::Admin, Role::Enterprise],
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "GetApplication",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "ListApplications",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // enterprise (own only); admin.
    MethodRoles {
        method: "WithdrawApplication",
        roles: &[Role::Admin, Role::Enterprise],
    },
    // enterprise, expert, officer, admin.
    MethodRoles {
        method: "FileObjection",
        roles: &[Role::Admin, Role::Officer, Role::Expert, Role::Enterprise],
    },
    // admin, auditor, officer; enterprise and expert (own objections only).
    MethodRoles {
        method: "GetObjection",
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
        method: "ResolveObjection",
        roles: &[Role::Admin],
    },
    // admin, auditor, officer; enterprise and expert (own objections only).
    MethodRoles {
        method: "ListObjections",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
        ],
    },
    // admin, officer, auditor.
    MethodRoles {
        method: "GetFieldDistribution",
        roles: &[Role::Admin, Role::Officer, Role::Auditor],
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
    // admin, officer, auditor, service; enterprise and expert (only what they may read).
    MethodRoles {
        method: "ListChanges",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer, auditor, service; enterprise and expert (only what they may read).
    MethodRoles {
        method: "WatchChanges",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer, auditor, service; enterprise and expert (only what they may read).
    MethodRoles {
        method: "GetChangeFeedHead",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer, auditor, service; enterprise and expert (only what they may read).
    MethodRoles {
        method: "ExportSnapshot",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Expert,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
];
