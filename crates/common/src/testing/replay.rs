//! Replay isolation, checked the same way for every mutating RPC of every service: caller A
//! performs a request with request id X; caller B — another principal — sends the identical
//! request with X and must get its own treatment (refused by the handler's authorization or
//! rules, or its own fresh result), never A's stored response.
//!
//! The RPCs to cover come from the descriptor set: every method whose request message has a
//! `request_id` field. A service's test declares its cases with [`isolation_cases!`](crate::isolation_cases),
//! which also writes the test comparing them with [`mutating_rpcs`], so a new mutating RPC
//! without an isolation case fails. What stays in each service is only what is its own: how to
//! build a valid request for each RPC, the state it needs first, and which outcome B gets.

use std::collections::BTreeSet;
use std::future::Future;

use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::{Code, Status};

use crate::auth::Role;
use crate::testing::TestServer;

/// The methods of `package.service` whose request message has a `request_id` field.
pub fn mutating_rpcs(package: &str, service: &str) -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(qilu_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let with_request_id: BTreeSet<String> = set
        .file
        .iter()
        .flat_map(|f| {
            f.message_type
                .iter()
                .filter(|m| m.field.iter().any(|x| x.name() == "request_id"))
                .map(move |m| format!(".{}.{}", f.package(), m.name()))
        })
        .collect();
    set.file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| &f.service)
        .filter(|s| s.name() == service)
        .flat_map(|s| &s.method)
        .filter(|m| with_request_id.contains(m.input_type()))
        .map(|m| m.name().to_string())
        .collect()
}

/// Asserts that `cases` name each method of [`mutating_rpcs`]`(package, service)` exactly once.
pub fn assert_every_rpc_covered(package: &str, service: &str, cases: &[&str]) {
    let rpcs = mutating_rpcs(package, service);
    let covered: BTreeSet<String> = cases.iter().map(|c| c.to_string()).collect();
    assert_eq!(covered.len(), cases.len(), "a case appears twice");
    assert_eq!(covered, rpcs);
}

/// Declares a service's isolation cases: each `scenario => "Method"` becomes a test on both
/// backends (see [`on_both_backends!`](crate::on_both_backends)), and
/// `every_mutating_rpc_has_an_isolation_case` checks the methods against the descriptor set.
/// Further scenarios of the same module that are not per-RPC cases go after `also:`.
///
/// ```text
/// isolation_cases!("qilu.review.v1", "AchievementReviewService",
///     cases: { create_achievement => "CreateAchievement", ... },
///     also: { a_retry_while_the_registry_is_down_replays },
/// );
/// ```
#[macro_export]
macro_rules! isolation_cases {
    (
        $package:literal, $service:literal,
        cases: { $($name:ident => $method:literal),* $(,)? }
        $(, also: { $($extra:ident),* $(,)? })? $(,)?
    ) => {
        $crate::on_both_backends!($($name,)* $($($extra,)*)?);

        #[test]
        fn every_mutating_rpc_has_an_isolation_case() {
            $crate::testing::replay::assert_every_rpc_covered(
                $package,
                $service,
                &[$($method),*],
            );
        }
    };
}

/// The call [`assert_isolated`] repeats: `client.rpc(request as the principal)`, the response
/// encoded so that A's and B's answers compare byte for byte.
///
/// ```text
/// assert_isolated(db, "SubmitAchievement", &x, &a, &b, Expect::Refused(Code::NotFound),
///     isolation_call!(env.client(), submit_achievement, req)).await;
/// ```
#[macro_export]
macro_rules! isolation_call {
    ($client:expr, $rpc:ident, $req:expr) => {{
        let client = $client;
        let req = $req;
        move |p: $crate::testing::replay::Principal| {
            let mut c = client.clone();
            let r = req.clone();
            async move { $crate::testing::replay::encoded(c.$rpc(p.request(r)).await) }
        }
    }};
}

/// A unary call's result with the response encoded, as [`assert_isolated`] compares them.
pub fn encoded<T: Message>(result: Result<tonic::Response<T>, Status>) -> Result<Vec<u8>, Status> {
    result.map(|r| r.into_inner().encode_to_vec())
}

/// An authenticated caller: the bearer header value and its subject (the audit log's actor).
#[derive(Debug, Clone)]
pub struct Principal {
    /// `Bearer …`.
    pub bearer: String,
    /// The token's `sub`.
    pub subject: String,
}

impl Principal {
    /// A caller of `server` with these roles and claims.
    pub fn new(
        server: &TestServer,
        subject: &str,
        roles: &[Role],
        enterprise: Option<&str>,
        expert: Option<&str>,
    ) -> Principal {
        Principal {
            bearer: server.bearer(subject, roles, enterprise, expert),
            subject: subject.to_string(),
        }
    }

    /// An enterprise token for `uscc` (subject `enterprise-{uscc}`).
    pub fn enterprise(server: &TestServer, uscc: &str) -> Principal {
        Self::new(
            server,
            &format!("enterprise-{uscc}"),
            &[Role::Enterprise],
            Some(uscc),
            None,
        )
    }

    /// An expert token for `id` (subject `expert-{id}`).
    pub fn expert(server: &TestServer, id: &str) -> Principal {
        Self::new(
            server,
            &format!("expert-{id}"),
            &[Role::Expert],
            None,
            Some(id),
        )
    }

    /// A staff token with one role and subject `subject`.
    pub fn staff(server: &TestServer, subject: &str, role: Role) -> Principal {
        Self::new(server, subject, &[role], None, None)
    }

    /// Two different staff callers with the same role (subjects `{role}-a` and `{role}-b`).
    pub fn pair(server: &TestServer, role: Role) -> (Principal, Principal) {
        (
            Self::staff(server, &format!("{role}-a"), role),
            Self::staff(server, &format!("{role}-b"), role),
        )
    }

    /// `message` as a request from this caller.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.bearer.parse().expect("header"));
        request
    }
}

/// What caller B must get for A's request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Refused with this code (its authorization or the resource's state said no); nothing
    /// written for B.
    Refused(Code),
    /// Its own fresh result (a response other than A's), stored as a second record under B's
    /// own scope and replayed to B's own retry.
    Fresh,
    /// Its own fresh result that is, byte for byte, A's answer: an Update that B's run finds
    /// already made changes nothing and answers the state as it is. Told apart from a replay
    /// by B's own record (a replay stores none), replayed to B's own retry.
    FreshUnchanged,
}

async fn count(db: &DatabaseConnection, sql: &str, value: &str) -> i64 {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => sql.replace('?', "$1"),
        _ => sql.to_string(),
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [value.into()]))
        .await
        .expect("count query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("count")
}

/// Runs the isolation check for one RPC. `call` sends the identical request (request id
/// `request_id`) as the given caller and returns the encoded response.
pub async fn assert_isolated<F, Fut>(
    db: &DatabaseConnection,
    method: &str,
    request_id: &str,
    a: &Principal,
    b: &Principal,
    expect: Expect,
    call: F,
) where
    F: Fn(Principal) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, Status>>,
{
    let records = "SELECT COUNT(*) FROM idempotency WHERE request_id = ?";
    let by_actor = "SELECT COUNT(*) FROM audit_event WHERE actor = ?";
    let first = call(a.clone())
        .await
        .unwrap_or_else(|s| panic!("{method}: caller A's request failed: {s:?}"));
    let again = call(a.clone())
        .await
        .unwrap_or_else(|s| panic!("{method}: caller A's retry failed: {s:?}"));
    assert_eq!(again, first, "{method}: A's retry must replay A's response");
    assert_eq!(count(db, records, request_id).await, 1, "{method}");
    let b_events = count(db, by_actor, &b.subject).await;

    let got = call(b.clone()).await;
    match expect {
        Expect::Refused(code) => {
            let status = got.err().unwrap_or_else(|| {
                panic!("{method}: caller B reusing A's request id must be refused with {code:?}")
            });
            assert_eq!(status.code(), code, "{method}: {status:?}");
            assert_eq!(
                count(db, records, request_id).await,
                1,
                "{method}: nothing stored for B"
            );
            assert_eq!(
                count(db, by_actor, &b.subject).await,
                b_events,
                "{method}: nothing written for B"
            );
        }
        Expect::Fresh | Expect::FreshUnchanged => {
            let mine = got.unwrap_or_else(|s| {
                panic!("{method}: caller B's own request must run fresh: {s:?}")
            });
            if expect == Expect::Fresh {
                assert_ne!(mine, first, "{method}: B got A's stored response");
            }
            assert_eq!(
                count(db, records, request_id).await,
                2,
                "{method}: B's result is stored under B's own scope"
            );
            let replayed = call(b.clone())
                .await
                .unwrap_or_else(|s| panic!("{method}: caller B's retry failed: {s:?}"));
            assert_eq!(replayed, mine, "{method}: B's retry replays B's response");
        }
    }
    // A still gets its own response.
    let last = call(a.clone())
        .await
        .unwrap_or_else(|s| panic!("{method}: caller A's late retry failed: {s:?}"));
    assert_eq!(last, first, "{method}: A's record is untouched by B");
}

/// A new request id.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutating_rpcs_are_the_methods_whose_request_has_a_request_id() {
        let rpcs = mutating_rpcs("qilu.review.v1", "AchievementReviewService");
        assert!(rpcs.contains("CreateAchievement"), "{rpcs:?}");
        assert!(rpcs.contains("SubmitReview"), "{rpcs:?}");
        assert!(!rpcs.contains("GetAchievement"), "{rpcs:?}");
        assert!(!rpcs.contains("ListAchievements"), "{rpcs:?}");
        // Another package's service of the same name would not count; an unknown one is empty.
        assert!(mutating_rpcs("qilu.awards.v1", "AchievementReviewService").is_empty());
    }

    #[test]
    fn the_covered_list_must_match_exactly() {
        let all: Vec<String> = mutating_rpcs("qilu.awards.v1", "AwardAllocationService")
            .into_iter()
            .collect();
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_every_rpc_covered("qilu.awards.v1", "AwardAllocationService", &names);

        let missing = std::panic::catch_unwind(|| {
            assert_every_rpc_covered("qilu.awards.v1", "AwardAllocationService", &names[1..])
        });
        assert!(missing.is_err(), "a missing case fails");
        let mut twice = names.clone();
        twice.push(names[0]);
        let duplicate = std::panic::catch_unwind(|| {
            assert_every_rpc_covered("qilu.awards.v1", "AwardAllocationService", &twice)
        });
        assert!(duplicate.is_err(), "a case listed twice fails");
    }
}
