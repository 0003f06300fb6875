//! Service-to-service calls: a [`Peer`] is another Qilu service reached over gRPC with a
//! deadline on every call, retries only after UNAVAILABLE (a call that may have taken effect is
//! never repeated), the caller's request id and W3C trace context carried along, and a `service`
//! token. A peer that cannot be reached becomes `ApiError::Unavailable` naming the peer.

use std::future::Future;
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::auth::{Role, TokenRequest, mint_hs256};
use crate::config::{AuthConfig, PeersConfig};
use crate::context::CallContext;
use crate::error::ApiError;

/// How the peer token is obtained.
#[derive(Clone)]
enum TokenSource {
    /// Configured (`peers.service_token`), e.g. from the identity provider.
    Static(String),
    /// Minted per call from the development HS256 secret, valid five minutes.
    Minted { auth: AuthConfig, subject: String },
}

/// Another Qilu service.
#[derive(Clone)]
pub struct Peer {
    name: &'static str,
    channel: Channel,
    token: TokenSource,
    timeout: Duration,
    retries: u32,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("name", &self.name).finish()
    }
}

impl Peer {
    /// A lazily connected peer at `url` (nothing is dialled until the first call).
    /// `caller_service` names the calling service in the token's subject.
    pub fn new(
        name: &'static str,
        url: &str,
        peers: &PeersConfig,
        auth: &AuthConfig,
        caller_service: &str,
    ) -> Result<Peer, String> {
        let timeout = Duration::from_millis(peers.timeout_ms);
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("peers.{name}: invalid URL {url:?}: {e}"))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(timeout)
            .tcp_nodelay(true);
        let token = match &peers.service_token {
            Some(t) if !t.is_empty() => TokenSource::Static(t.clone()),
            _ if auth.hs256_secret.as_deref().is_some_and(|s| !s.is_empty()) => {
                TokenSource::Minted {
                    auth: auth.clone(),
                    subject: format!("service:{caller_service}"),
                }
            }
            _ => {
                return Err(format!(
                    "peers.service_token is required to call {name} when no auth.hs256_secret is set"
                ));
            }
        };
        Ok(Peer {
            name,
            channel: endpoint.connect_lazy(),
            token,
            timeout,
            retries: peers.retries,
        })
    }

    /// The peer's name (`registry`, `review`, `awards`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The underlying channel, to build a generated client.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    fn bearer(&self) -> Result<String, ApiError> {
        match &self.token {
            TokenSource::Static(t) => Ok(t.clone()),
            TokenSource::Minted { auth, subject } => mint_hs256(
                auth,
                &TokenRequest {
                    subject: subject.clone(),
                    roles: vec![Role::Service],
                    enterprise: None,
                    expert: None,
                    ttl_seconds: 300,
                },
            )
            .map_err(ApiError::internal),
        }
    }

    /// Wraps `message` with the deadline, the token, and the caller's request id and trace.
    pub fn request<T>(&self, ctx: &CallContext, message: T) -> Result<tonic::Request<T>, ApiError> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        let md = request.metadata_mut();
        let bearer: MetadataValue<_> = format!("Bearer {}", self.bearer()?)
            .parse()
            .map_err(ApiError::internal)?;
        md.insert("authorization", bearer);
        if let Ok(v) = ctx.meta.request_id.parse() {
            md.insert("x-request-id", v);
        }
        if let Ok(v) = ctx.meta.traceparent.parse() {
            md.insert("traceparent", v);
        }
        Ok(request)
    }

    /// Calls the peer, retrying (with backoff) only after UNAVAILABLE. Any other status is
    /// returned to the handler, which decides what it means for its own caller.
    pub async fn call<T, R, F, Fut>(
        &self,
        ctx: &CallContext,
        message: T,
        mut call: F,
    ) -> Result<R, PeerError>
    where
        T: Clone,
        F: FnMut(Channel, tonic::Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let mut attempt = 0u32;
        loop {
            let request = self
                .request(ctx, message.clone())
                .map_err(PeerError::Local)?;
            match call(self.channel.clone(), request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if status.code() == Code::Unavailable && attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * 2u64.pow(attempt))).await;
                }
                Err(status) => {
                    return Err(PeerError::Status {
                        peer: self.name,
                        status,
                    });
                }
            }
        }
    }
}

/// A failed peer call.
#[derive(Debug)]
pub enum PeerError {
    /// The peer answered with an error status (or could not be reached).
    Status {
        /// Which peer.
        peer: &'static str,
        /// Its status.
        status: Status,
    },
    /// Building the request failed here.
    Local(ApiError),
}

impl PeerError {
    /// The peer's status code, if it answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            PeerError::Status { status, .. } => Some(status.code()),
            PeerError::Local(_) => None,
        }
    }
}

impl From<PeerError> for ApiError {
    /// Unreachable, overloaded or timed-out peers are UNAVAILABLE for our caller too; anything
    /// else the handler did not handle is an internal error (the peer's message is logged).
    fn from(err: PeerError) -> ApiError {
        match err {
            PeerError::Local(e) => e,
            PeerError::Status { peer, status } => match status.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
                    ApiError::Unavailable {
                        dependency: peer.to_string(),
                        reason: "DEPENDENCY_UNAVAILABLE",
                        source: Box::new(status),
                    }
                }
                _ => ApiError::internal(format!("{peer} answered {status}")),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;
    use crate::auth::{Authenticator, Caller};
    use crate::config::{AuthConfig, PeersConfig};
    use crate::context::RequestMeta;

    fn auth() -> AuthConfig {
        AuthConfig {
            hs256_secret: Some("peer-test-secret".into()),
            public_key_paths: vec![],
            issuer: "qilu".into(),
            audience: "qilu".into(),
            leeway_seconds: 0,
        }
    }

    fn peers(retries: u32) -> PeersConfig {
        PeersConfig {
            registry: String::new(),
            review: String::new(),
            awards: String::new(),
            timeout_ms: 2000,
            retries,
            service_token: None,
        }
    }

    fn ctx() -> CallContext {
        CallContext {
            caller: Caller {
                subject: "officer-7".into(),
                roles: vec![Role::Officer],
                enterprise: None,
                expert: None,
            },
            meta: RequestMeta {
                method: "/qilu.review.v1.AchievementReviewService/SubmitAchievement".into(),
                request_id: "req-123".into(),
                traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            },
            shutdown: crate::context::Shutdown::never(),
        }
    }

    #[tokio::test]
    async fn requests_carry_a_service_token_the_request_id_the_trace_and_a_deadline() {
        let peer = Peer::new(
            "registry",
            "http://127.0.0.1:1",
            &peers(0),
            &auth(),
            "review",
        )
        .unwrap();
        let request = peer.request(&ctx(), ()).unwrap();
        let md = request.metadata();
        assert_eq!(md.get("x-request-id").unwrap(), "req-123");
        assert_eq!(
            md.get("traceparent").unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(md.get("grpc-timeout").unwrap(), "2000000u");
        let bearer = md.get("authorization").unwrap().to_str().unwrap();
        let caller = Authenticator::from_config(&auth())
            .unwrap()
            .authenticate(Some(bearer))
            .unwrap();
        assert_eq!(caller.roles, vec![Role::Service]);
        assert_eq!(caller.subject, "service:review");
    }

    #[tokio::test]
    async fn an_unreachable_peer_is_retried_then_unavailable_naming_it() {
        // Port 1 on loopback refuses connections: every attempt is UNAVAILABLE.
        let peer = Peer::new(
            "registry",
            "http://127.0.0.1:1",
            &peers(2),
            &auth(),
            "review",
        )
        .unwrap();
        let attempts = Arc::new(AtomicU32::new(0));
        let counter = attempts.clone();
        let result = peer
            .call(
                &ctx(),
                HealthCheckRequest::default(),
                move |channel, request| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move { HealthClient::new(channel).check(request).await }
                },
            )
            .await;
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            3,
            "one try and two retries"
        );
        let err = ApiError::from(result.unwrap_err());
        match err {
            ApiError::Unavailable { dependency, .. } => assert_eq!(dependency, "registry"),
            other => panic!("expected UNAVAILABLE, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn other_statuses_are_returned_at_once_without_retry() {
        // A real health server that does not know the asked-for service answers NOT_FOUND.
        let (_reporter, health) = tonic_health::server::health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let peer = Peer::new(
            "review",
            &format!("http://{addr}"),
            &peers(5),
            &auth(),
            "awards",
        )
        .unwrap();
        let attempts = Arc::new(AtomicU32::new(0));
        let counter = attempts.clone();
        let result = peer
            .call(
                &ctx(),
                HealthCheckRequest {
                    service: "no.such.Service".into(),
                },
                move |channel, request| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move { HealthClient::new(channel).check(request).await }
                },
            )
            .await;
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert_eq!(result.unwrap_err().code(), Some(Code::NotFound));
    }
}
