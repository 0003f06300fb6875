//! Authentication (bearer JWT) and authorization (one role table per service, checked for every
//! RPC before the handler runs). Health and reflection are the only unauthenticated paths.
//! Tokens and secrets never reach a log line.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::error::ApiError;

/// The roles of docs/design.md §3. Each RPC lists the roles allowed to call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Programme office: everything.
    Admin,
    /// Registry and programme staff.
    Officer,
    /// A reviewer; the token names the expert (`expert` claim).
    Expert,
    /// An applicant; the token names its USCC (`enterprise` claim) and it sees only its own.
    Enterprise,
    /// Read-only everything, including the audit log.
    Auditor,
    /// Another Qilu service calling on a caller's behalf.
    Service,
    /// Read-only access to what the programme publishes (a public portal's token): published
    /// allocation results and non-draft programs, nothing personal.
    Public,
}

impl Role {
    /// Every role, for exhaustive tests.
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Officer,
        Role::Expert,
        Role::Enterprise,
        Role::Auditor,
        Role::Service,
        Role::Public,
    ];

    /// The claim value, e.g. `officer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Officer => "officer",
            Role::Expert => "expert",
            Role::Enterprise => "enterprise",
            Role::Auditor => "auditor",
            Role::Service => "service",
            Role::Public => "public",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Roles allowed on one RPC of a service. Each service keeps one table of these, covering every
/// RPC of its contract (a test checks against the descriptor set).
#[derive(Debug, Clone, Copy)]
pub struct MethodRoles {
    /// Method name without the service, e.g. `CreateEnterprise`.
    pub method: &'static str,
    /// Who may call it.
    pub roles: &'static [Role],
}

/// A service's role table.
pub type RoleTable = &'static [MethodRoles];

/// Shorthand for every role (e.g. `ValidateUscc`).
pub const EVERY_ROLE: &[Role] = &Role::ALL;

/// The JWT claims Qilu reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Subject: a person or system account id.
    pub sub: String,
    /// Role claim values.
    pub roles: Vec<String>,
    /// For `enterprise` tokens: the USCC acted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<String>,
    /// For `expert` tokens: the expert id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert: Option<String>,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
}

/// The authenticated caller, as handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `sub` claim.
    pub subject: String,
    /// Recognised roles (unknown role strings are dropped).
    pub roles: Vec<Role>,
    /// USCC for enterprise callers.
    pub enterprise: Option<String>,
    /// Expert id for expert callers.
    pub expert: Option<String>,
}

impl Caller {
    /// Staff roles see across enterprises; only a pure `enterprise` or `expert` token is scoped.
    pub fn is_staff(&self) -> bool {
        self.roles.iter().any(|r| {
            matches!(
                r,
                Role::Admin | Role::Officer | Role::Auditor | Role::Service
            )
        })
    }
}

/// Verifies bearer tokens against the configured keys.
#[derive(Clone)]
pub struct Authenticator {
    keys: Vec<(DecodingKey, Validation)>,
    leeway_seconds: u64,
    /// Tokens whose signature and claims verified, by their exact text.
    verified: Arc<Mutex<HashMap<Box<str>, Verified>>>,
}

/// At most this many verified tokens are remembered; when full, the memory is emptied and
/// refills with the tokens in use (a caller reuses one token for many calls).
pub const VERIFIED_TOKENS: usize = 4096;

/// A token that verified: who it names, and the time checks that can still change.
#[derive(Debug, Clone)]
struct Verified {
    caller: Caller,
    /// `exp` claim.
    exp: u64,
    /// When it verified (seconds since the epoch). Its `nbf` and `iat` were not in the future
    /// then (with leeway), so they are not at any later time.
    verified_at: u64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.len())
            .field("leeway_seconds", &self.leeway_seconds)
            .field(
                "verified_tokens",
                &self
                    .verified
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len(),
            )
            .finish()
    }
}

impl Authenticator {
    /// Builds the verifier from config: the HS256 secret and/or RS256/EdDSA public keys.
    pub fn from_config(config: &AuthConfig) -> Result<Authenticator, String> {
        let mut keys = Vec::new();
        let validation = |alg: Algorithm| {
            let mut v = Validation::new(alg);
            v.set_issuer(&[config.issuer.as_str()]);
            v.set_audience(&[config.audience.as_str()]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            // A token is refused before its `nbf` (and, below, before its `iat`), with the same
            // leeway for clock skew as `exp`.
            v.validate_nbf = true;
            v.leeway = config.leeway_seconds;
            v
        };
        if let Some(secret) = config.hs256_secret.as_deref().filter(|s| !s.is_empty()) {
            let key = DecodingKey::from_secret(secret.as_bytes())
                .map_err(|e| format!("auth.hs256_secret: {e}"))?;
            keys.push((key, validation(Algorithm::HS256)));
        }
        for path in &config.public_key_paths {
            keys.push(load_public_key(path).map(|(k, alg)| (k, validation(alg)))?);
        }
        if keys.is_empty() {
            return Err(
                "auth: no key configured (auth.hs256_secret or auth.public_key_paths)".into(),
            );
        }
        Ok(Authenticator {
            keys,
            leeway_seconds: config.leeway_seconds,
            verified: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Checks an `authorization` header value and returns the caller.
    ///
    /// A token verified before is not verified again: its signature and its `iss`, `aud`, `nbf`
    /// and `iat` cannot have changed, so only `exp` is checked again, against the clock (and a
    /// clock that went back behind the first verification verifies it again in full). That
    /// saves the signature check and JSON decoding on every call after a caller's first
    /// (4 % of the registry's CPU per GetEnterprise, BENCHMARKS.md).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        self.authenticate_at(authorization, unix_now())
    }

    fn authenticate_at(&self, authorization: Option<&str>, now: u64) -> Result<Caller, ApiError> {
        let header = authorization
            .ok_or_else(|| ApiError::Unauthenticated("missing authorization header".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::Unauthenticated("authorization must be `Bearer <token>`".into())
            })?
            .trim();
        {
            let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(known) = verified.get(token) {
                if known.exp < now.saturating_sub(self.leeway_seconds) {
                    verified.remove(token);
                    return Err(ApiError::Unauthenticated(
                        "invalid token: token expired (exp is in the past)".into(),
                    ));
                }
                if now >= known.verified_at {
                    return Ok(known.caller.clone());
                }
                verified.remove(token);
            }
        }
        let (caller, exp) = self.verify(token, now)?;
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(
            token.into(),
            Verified {
                caller: caller.clone(),
                exp,
                verified_at: now,
            },
        );
        Ok(caller)
    }

    /// Verifies the signature and every claim: the caller and the `exp` claim.
    fn verify(&self, token: &str, now: u64) -> Result<(Caller, u64), ApiError> {
        // A key that verified the signature but refused a claim explains the refusal best.
        let mut refusal: Option<String> = None;
        let mut last_error = String::from("no key accepted the token");
        for (key, validation) in &self.keys {
            match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) => {
                    if data.claims.iat > now.saturating_add(self.leeway_seconds) {
                        return Err(ApiError::Unauthenticated(format!(
                            "invalid token: issued in the future (iat is {}s ahead of this server's clock)",
                            data.claims.iat - now
                        )));
                    }
                    let exp = data.claims.exp;
                    return Ok((caller_from(data.claims), exp));
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind;
                    let message = match e.kind() {
                        ErrorKind::ExpiredSignature => "token expired (exp is in the past)".into(),
                        ErrorKind::ImmatureSignature => {
                            "token not valid yet (nbf is in the future)".into()
                        }
                        _ => e.to_string(),
                    };
                    if matches!(
                        e.kind(),
                        ErrorKind::ExpiredSignature
                            | ErrorKind::ImmatureSignature
                            | ErrorKind::InvalidIssuer
                            | ErrorKind::InvalidAudience
                            | ErrorKind::MissingRequiredClaim(_)
                    ) && refusal.is_none()
                    {
                        refusal = Some(message.clone());
                    }
                    last_error = message;
                }
            }
        }
        Err(ApiError::Unauthenticated(format!(
            "invalid token: {}",
            refusal.unwrap_or(last_error)
        )))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn caller_from(claims: Claims) -> Caller {
    Caller {
        subject: claims.sub,
        roles: claims.roles.iter().filter_map(|r| r.parse().ok()).collect(),
        enterprise: claims.enterprise.map(|u| u.trim().to_uppercase()),
        expert: claims.expert,
    }
}

fn load_public_key(path: &Path) -> Result<(DecodingKey, Algorithm), String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("auth.public_key_paths: cannot read {}: {e}", path.display()))?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((key, Algorithm::RS256));
    }
    DecodingKey::from_ed_pem(&pem)
        .map(|k| (k, Algorithm::EdDSA))
        .map_err(|e| {
            format!(
                "auth.public_key_paths: {} is neither an RSA nor an Ed25519 public key: {e}",
                path.display()
            )
        })
}

/// What a development token is minted for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Subject.
    pub subject: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// USCC for enterprise tokens.
    pub enterprise: Option<String>,
    /// Expert id for expert tokens.
    pub expert: Option<String>,
    /// Lifetime in seconds.
    pub ttl_seconds: u64,
}

/// Mints an HS256 token from the configured development secret (`qilu token`, `qilu dev`, tests,
/// and service-to-service calls in development).
pub fn mint_hs256(config: &AuthConfig, request: &TokenRequest) -> Result<String, String> {
    let secret = config
        .hs256_secret
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or("auth.hs256_secret is not set; production tokens come from the identity provider")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = Claims {
        sub: request.subject.clone(),
        roles: request
            .roles
            .iter()
            .map(|r| r.as_str().to_string())
            .collect(),
        enterprise: request.enterprise.clone(),
        expert: request.expert.clone(),
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        exp: now + request.ttl_seconds,
        iat: now,
    };
    let key = EncodingKey::from_secret(secret.as_bytes())
        .map_err(|e| format!("auth.hs256_secret: {e}"))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| format!("cannot sign token: {e}"))
}

/// Decides whether `caller` may call `method` of a service with role table `table`. A method
/// missing from the table is refused: a new RPC is closed until someone writes its roles down.
pub fn authorize(table: RoleTable, method: &str, caller: &Caller) -> Result<(), ApiError> {
    let entry = table.iter().find(|m| m.method == method).ok_or_else(|| {
        ApiError::PermissionDenied(format!("{method} has no entry in the role table"))
    })?;
    if caller.roles.iter().any(|r| entry.roles.contains(r)) {
        Ok(())
    } else {
        let allowed: Vec<&str> = entry.roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::PermissionDenied(format!(
            "{method} needs one of the roles [{}]",
            allowed.join(", ")
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            hs256_secret: Some("test-secret".into()),
            public_key_paths: vec![],
            issuer: "qilu".into(),
            audience: "qilu".into(),
            leeway_seconds: 0,
        }
    }

    fn token(roles: Vec<Role>, ttl: u64) -> String {
        mint_hs256(
            &config(),
            &TokenRequest {
                subject: "u1".into(),
                roles,
                enterprise: Some("91350100m000100y43".into()),
                expert: None,
                ttl_seconds: ttl,
            },
        )
        .unwrap()
    }

    #[test]
    fn a_minted_token_authenticates() {
        let auth = Authenticator::from_config(&config()).unwrap();
        let caller = auth
            .authenticate(Some(&format!(
                "Bearer {}",
                token(vec![Role::Enterprise], 60)
            )))
            .unwrap();
        assert_eq!(caller.roles, vec![Role::Enterprise]);
        assert_eq!(caller.enterprise.as_deref(), Some("91350100M000100Y43"));
        assert!(!caller.is_staff());
    }

    fn remembered(auth: &Authenticator) -> usize {
        auth.verified.lock().unwrap().len()
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let auth = Authenticator::from_config(&config()).unwrap();
        let header = format!("Bearer {}", token(vec![Role::Officer], 60));
        let now = unix_now();
        let first = auth.authenticate_at(Some(&header), now).unwrap();
        assert_eq!(remembered(&auth), 1);
        // Later calls answer from memory, with the same caller, until `exp` (+ leeway 0).
        assert_eq!(
            auth.authenticate_at(Some(&header), now + 30).unwrap(),
            first
        );
        assert_eq!(
            auth.authenticate_at(Some(&header), now + 60).unwrap(),
            first
        );
        match auth.authenticate_at(Some(&header), now + 61) {
            Err(ApiError::Unauthenticated(m)) => assert!(m.contains("expired"), "{m}"),
            other => panic!("an expired remembered token must be refused: {other:?}"),
        }
        assert_eq!(remembered(&auth), 0);
    }

    #[test]
    fn a_clock_gone_back_verifies_the_token_again() {
        let auth = Authenticator::from_config(&config()).unwrap();
        let header = format!("Bearer {}", token(vec![Role::Officer], 60));
        let now = unix_now();
        auth.authenticate_at(Some(&header), now).unwrap();
        // Before the first verification the token's `iat` is in the future: verified in full
        // again, it is refused, not answered from memory.
        match auth.authenticate_at(Some(&header), now - 100) {
            Err(ApiError::Unauthenticated(m)) => assert!(m.contains("issued in the future"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(remembered(&auth), 0);
    }

    #[test]
    fn refused_tokens_are_not_remembered_and_memory_is_bounded() {
        let auth = Authenticator::from_config(&config()).unwrap();
        let good = token(vec![Role::Officer], 60);
        // One character changed inside the signature (not its last, which carries padding
        // bits): refused, and nothing remembered.
        let at = good.len() - 5;
        let swapped = if &good[at..at + 1] == "A" { "B" } else { "A" };
        let forged = format!("{}{swapped}{}", &good[..at], &good[at + 1..]);
        assert!(
            auth.authenticate(Some(&format!("Bearer {forged}")))
                .is_err()
        );
        assert_eq!(remembered(&auth), 0);
        let now = unix_now();
        for i in 0..VERIFIED_TOKENS + 10 {
            let t = mint_hs256(
                &config(),
                &TokenRequest {
                    subject: format!("u{i}"),
                    roles: vec![Role::Officer],
                    enterprise: None,
                    expert: None,
                    ttl_seconds: 60,
                },
            )
            .unwrap();
            auth.authenticate_at(Some(&format!("Bearer {t}")), now)
                .unwrap();
            assert!(remembered(&auth) <= VERIFIED_TOKENS);
        }
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let mut other = config();
        other.hs256_secret = Some("another".into());
        let t = mint_hs256(
            &other,
            &TokenRequest {
                subject: "x".into(),
                roles: vec![Role::Admin],
                enterprise: None,
                expert: None,
                ttl_seconds: 60,
            },
        )
        .unwrap();
        let auth = Authenticator::from_config(&config()).unwrap();
        assert!(matches!(
            auth.authenticate(Some(&format!("Bearer {t}"))),
            Err(ApiError::Unauthenticated(_))
        ));
    }

    #[test]
    fn missing_or_malformed_headers_are_unauthenticated() {
        let auth = Authenticator::from_config(&config()).unwrap();
        for header in [None, Some("Basic abc"), Some("Bearer not.a.jwt")] {
            assert!(matches!(
                auth.authenticate(header),
                Err(ApiError::Unauthenticated(_))
            ));
        }
    }

    #[test]
    fn an_expired_token_is_refused() {
        let auth = Authenticator::from_config(&config()).unwrap();
        let mut claims_config = config();
        claims_config.leeway_seconds = 0;
        // ttl 0 → exp == now; jsonwebtoken treats exp <= now - leeway as expired only after the
        // second ticks over, so forge one in the past explicitly.
        let past = Claims {
            sub: "u".into(),
            roles: vec!["admin".into()],
            enterprise: None,
            expert: None,
            iss: "qilu".into(),
            aud: "qilu".into(),
            exp: 1_000,
            iat: 900,
        };
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &past,
            &EncodingKey::from_secret(b"test-secret").unwrap(),
        )
        .unwrap();
        assert!(auth.authenticate(Some(&format!("Bearer {t}"))).is_err());
    }

    fn signed(claims: serde_json::Value) -> String {
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"test-secret").unwrap(),
        )
        .unwrap();
        format!("Bearer {t}")
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn refusal(auth: &Authenticator, header: &str) -> String {
        match auth.authenticate(Some(header)) {
            Err(ApiError::Unauthenticated(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tokens_from_the_future_are_refused_beyond_the_leeway() {
        let mut c = config();
        c.leeway_seconds = 30;
        let auth = Authenticator::from_config(&c).unwrap();
        let t = now();
        let claims = |nbf: Option<u64>, iat: u64| {
            let mut v = serde_json::json!({
                "sub": "u", "roles": ["admin"], "iss": "qilu", "aud": "qilu",
                "exp": t + 3600, "iat": iat,
            });
            if let Some(nbf) = nbf {
                v["nbf"] = nbf.into();
            }
            v
        };
        let m = refusal(&auth, &signed(claims(Some(t + 600), t)));
        assert!(m.contains("nbf is in the future"), "{m}");
        let m = refusal(&auth, &signed(claims(None, t + 600)));
        assert!(m.contains("issued in the future"), "{m}");
        // Within the leeway both are clock skew, not an attack.
        assert!(
            auth.authenticate(Some(&signed(claims(Some(t + 10), t + 10))))
                .is_ok()
        );
        assert!(
            auth.authenticate(Some(&signed(claims(Some(t - 10), t - 10))))
                .is_ok()
        );
        let mut expired = claims(None, t - 7200);
        expired["exp"] = (t - 3600).into();
        let m = refusal(&auth, &signed(expired));
        assert!(m.contains("token expired"), "{m}");
    }

    #[test]
    fn authorize_checks_the_table_and_refuses_unlisted_methods() {
        const TABLE: RoleTable = &[MethodRoles {
            method: "CreateEnterprise",
            roles: &[Role::Admin, Role::Officer],
        }];
        let officer = Caller {
            subject: "o".into(),
            roles: vec![Role::Officer],
            enterprise: None,
            expert: None,
        };
        let auditor = Caller {
            roles: vec![Role::Auditor],
            ..officer.clone()
        };
        assert!(authorize(TABLE, "CreateEnterprise", &officer).is_ok());
        assert!(matches!(
            authorize(TABLE, "CreateEnterprise", &auditor),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(authorize(TABLE, "DropEverything", &officer).is_err());
    }
}
