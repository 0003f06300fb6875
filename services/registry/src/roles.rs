//! Who may call each registry RPC — the one table, checked by the middleware before any handler
//! runs. Resource-level rules ("own only", "assigned", blind review) are enforced in the
//! handlers; the comment on each row repeats the contract's wording.

use qilu_common::auth::{EVERY_ROLE, MethodRoles, Role, RoleTable};

/// The role table of `EnterpriseRegistryService`. Every RPC of the contract appears here (a test checks against
/// the descriptor set); a method missing from it is refused for everyone.
pub const ROLE_TABLE: RoleTable = &[
    // admin, officer.
    MethodRoles {
        method: "CreateEnterprise",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "GetEnterprise",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "ListEnterprises",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer; enterprise (own only).
    MethodRoles {
        method: "UpdateEnterprise",
        roles: &[Role::Admin, Role::Officer, Role::Enterprise],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "BatchGetEnterprises",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // every authenticated role.
    MethodRoles {
        method: "ValidateUscc",
        roles: EVERY_ROLE,
    },
    // admin, officer.
    MethodRoles {
        method: "RevokeEnterprise",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "DeregisterEnterprise",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "ImportEnterprises",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "ImportHighTechCertificates",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "ImportAnnualFigures",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "CreateImport",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "GetImport",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "ListImports",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "AppendImportRows",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "StartImport",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "ListImportRowResults",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "GetAnnualFigures",
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
        method: "ListAnnualFigures",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer; enterprise (own only, source ENTERPRISE_DECLARATION only).
    MethodRoles {
        method: "UpdateAnnualFigures",
        roles: &[Role::Admin, Role::Officer, Role::Enterprise],
    },
    // admin, officer.
    MethodRoles {
        method: "CreateHighTechCertificate",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "GetHighTechCertificate",
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
        method: "ListHighTechCertificates",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer; enterprise (own only).
    MethodRoles {
        method: "FileAnnualReport",
        roles: &[Role::Admin, Role::Officer, Role::Enterprise],
    },
    // admin, officer.
    MethodRoles {
        method: "RevokeHighTechCertificate",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "EvaluateEligibility",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin.
    MethodRoles {
        method: "CreateLeadingCohort",
        roles: &[Role::Admin],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "GetLeadingCohort",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "ListLeadingCohorts",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer, auditor.
    MethodRoles {
        method: "RankLeadingCandidates",
        roles: &[Role::Admin, Role::Officer, Role::Auditor],
    },
    // admin.
    MethodRoles {
        method: "SelectLeadingEnterprise",
        roles: &[Role::Admin],
    },
    // admin.
    MethodRoles {
        method: "DeselectLeadingEnterprise",
        roles: &[Role::Admin],
    },
    // admin, officer, auditor, service; enterprise (own only).
    MethodRoles {
        method: "GetLeadingCohortMember",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "ListLeadingCohortMembers",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer.
    MethodRoles {
        method: "CreateSupportPolicy",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer, auditor; enterprise (own only).
    MethodRoles {
        method: "GetSupportPolicy",
        roles: &[Role::Admin, Role::Officer, Role::Enterprise, Role::Auditor],
    },
    // admin, officer, auditor; enterprise (own only).
    MethodRoles {
        method: "ListSupportPolicies",
        roles: &[Role::Admin, Role::Officer, Role::Enterprise, Role::Auditor],
    },
    // admin, officer.
    MethodRoles {
        method: "UpdateSupportPolicy",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "RecordSupportPolicyReview",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "CreateZone",
        roles: &[Role::Admin, Role::Officer],
    },
    // every authenticated role.
    MethodRoles {
        method: "GetZone",
        roles: EVERY_ROLE,
    },
    // every authenticated role.
    MethodRoles {
        method: "ListZones",
        roles: EVERY_ROLE,
    },
    // admin, officer.
    MethodRoles {
        method: "UpdateZone",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer.
    MethodRoles {
        method: "CreateCluster",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer, auditor, service; enterprise (clusters it belongs to).
    MethodRoles {
        method: "GetCluster",
        roles: &[
            Role::Admin,
            Role::Officer,
            Role::Enterprise,
            Role::Auditor,
            Role::Service,
        ],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "ListClusters",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer.
    MethodRoles {
        method: "UpdateCluster",
        roles: &[Role::Admin, Role::Officer],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "GetClusterProgress",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin.
    MethodRoles {
        method: "CreatePolicyTarget",
        roles: &[Role::Admin],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "GetPolicyTarget",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "ListPolicyTargets",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer, auditor.
    MethodRoles {
        method: "GetProgrammeStatistics",
        roles: &[Role::Admin, Role::Officer, Role::Auditor],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "ListChanges",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "WatchChanges",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "GetChangeFeedHead",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
    },
    // admin, officer, auditor, service.
    MethodRoles {
        method: "ExportSnapshot",
        roles: &[Role::Admin, Role::Officer, Role::Auditor, Role::Service],
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
