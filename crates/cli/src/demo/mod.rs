//! `qilu dev --demo`: loads a realistic programme year (docs/design.md §9) through the public RPCs,
//! exactly as operators, enterprises and experts would, so a newcomer sees a populated suite.
//!
//! Everything is generated deterministically (a fixed seed, fixed dates) and every mutation
//! carries a `request_id` derived from what it does, so a second run on the same data directory
//! replays the first run's answers instead of writing anything twice.

use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::Config;
use qilu_proto::awards as apb;
use qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient;
use qilu_proto::common::{GreenCategory, HighTechField, IndustryField};
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review as vpb;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_uscc::{check_character, organization_code_check_character};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::client::describe;

mod awards;
mod population;
mod registry;
mod review;

use awards::*;
use population::*;
use registry::*;
use review::*;

/// A UUID derived from what a request does, so a repeated demo run replays it.
fn rid(key: &str) -> String {
    let digest = Sha256::digest(format!("qilu-demo-v1:{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn amount(value: i64, reference: &str) -> Option<rpb::ReportedAmount> {
    Some(rpb::ReportedAmount {
        value,
        source: rpb::FigureSource::AuditedStatement as i32,
        reference: reference.to_string(),
        update_time: None,
    })
}

fn flag(value: bool, reference: &str) -> Option<rpb::ReportedFlag> {
    Some(rpb::ReportedFlag {
        value,
        source: rpb::FigureSource::AuditedStatement as i32,
        reference: reference.to_string(),
        update_time: None,
    })
}

/// What the demo loaded, for the closing printout.
#[derive(Debug, Default)]
struct Loaded {
    lines: Vec<String>,
}

struct Demo {
    channel: Channel,
    config: Config,
    admin: String,
}

impl Demo {
    fn token(&self, subject: &str, role: Role, claim: Option<&str>) -> Result<String, String> {
        mint_hs256(
            &self.config.auth,
            &TokenRequest {
                subject: subject.to_string(),
                roles: vec![role],
                enterprise: (role == Role::Enterprise).then(|| claim.unwrap_or("").to_string()),
                expert: (role == Role::Expert).then(|| claim.unwrap_or("").to_string()),
                ttl_seconds: 3600,
            },
        )
    }

    fn req<T>(token: &str, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Ok(value) = format!("Bearer {token}").parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    fn admin<T>(&self, message: T) -> Request<T> {
        Self::req(&self.admin, message)
    }

    fn registry(&self) -> EnterpriseRegistryServiceClient<Channel> {
        EnterpriseRegistryServiceClient::new(self.channel.clone())
    }

    fn review(&self) -> AchievementReviewServiceClient<Channel> {
        AchievementReviewServiceClient::new(self.channel.clone())
    }

    fn awards(&self) -> AwardAllocationServiceClient<Channel> {
        AwardAllocationServiceClient::new(self.channel.clone())
    }
}

/// `step: CODE: message` (with field violations) for a failed demo call.
fn at(step: &str) -> impl Fn(Status) -> String + '_ {
    move |s| format!("demo step {step:?} failed: {}", describe(&s))
}

/// Loads the programme year into the suite at `addr`; returns what was loaded, line by line.
pub async fn load(config: &Config, addr: &str) -> Result<Vec<String>, String> {
    let channel = tonic::transport::Endpoint::from_shared(addr.to_string())
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("demo: cannot connect to {addr}: {e}"))?;
    let admin = mint_hs256(
        &config.auth,
        &TokenRequest {
            subject: "demo-admin".into(),
            roles: vec![Role::Admin],
            enterprise: None,
            expert: None,
            ttl_seconds: 3600,
        },
    )?;
    let demo = Demo {
        channel,
        config: config.clone(),
        admin,
    };
    let mut loaded = Loaded::default();
    let firms = registry_year(&demo, &mut loaded).await?;
    let approved = review_year(&demo, &firms, &mut loaded).await?;
    awards_year(&demo, &approved, &mut loaded).await?;
    Ok(loaded.lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qilu_uscc::{KnownExceptions, Verdict, check};

    #[test]
    fn generated_codes_are_valid_shandong_codes_and_unique() {
        let (firms, rows) = firms();
        assert_eq!(firms.len(), 16 * PER_CITY + 1);
        assert_eq!(rows.len(), firms.len());
        let mut seen = std::collections::HashSet::new();
        for f in &firms {
            let report = check(&f.uscc, &KnownExceptions::new(Vec::<String>::new()));
            assert_eq!(report.verdict, Verdict::Valid, "{}", f.uscc);
            assert!(report.organization_code_check_passed, "{}", f.uscc);
            assert!(f.uscc[2..].starts_with("37"), "{}", f.uscc);
            assert!(seen.insert(f.uscc.clone()));
        }
        // Deterministic: the same data on every run.
        assert_eq!(super::firms().0[5].uscc, firms[5].uscc);
        assert_eq!(rid("x"), rid("x"));
        assert_ne!(rid("x"), rid("y"));
    }
}
