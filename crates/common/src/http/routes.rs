//! The HTTP routes of the served RPCs: each method's `google.api.http` bindings (AIP-127) as
//! [`crate::http_rule`] reads and matches them — the same parser the OpenAPI document and the
//! binding contract tests use — with the method's descriptor for the transcoder.

use prost_reflect::{DescriptorPool, MethodDescriptor};

use crate::http_rule::{self, PathTemplate};

/// Where the request message's fields come from besides the path (`HttpRule.body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodySpec {
    /// No body: every field not in the path comes from the query string.
    None,
    /// `body: "*"`: the body is the whole request message (minus path fields); no query params.
    Whole,
    /// `body: "field"`: the body is that field; the other fields come from the query string.
    Field(String),
}

/// One HTTP binding of an RPC.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub http_method: http::Method,
    pub template: PathTemplate,
    pub rpc: MethodDescriptor,
    pub body: BodySpec,
    /// `HttpRule.response_body`: the response is this field of the response message.
    pub response_body: Option<String>,
}

impl Route {
    /// The template as written, e.g. `/v1/{name=enterprises/*}`.
    pub(crate) fn pattern(&self) -> &str {
        &self.template.source
    }

    /// On a match, each path variable's field path (split at `.`) and its percent-decoded value.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(Vec<String>, String)>> {
        let bound = self.template.match_path(path)?;
        Some(
            bound
                .into_iter()
                .map(|(field, value)| {
                    let decoded = value
                        .split('/')
                        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    (field.split('.').map(str::to_string).collect(), decoded)
                })
                .collect(),
        )
    }
}

/// Every route of the services named (fully qualified) in `services`.
pub(crate) fn routes(pool: &DescriptorPool, services: &[&str]) -> Result<Vec<Route>, String> {
    let mut routes = Vec::new();
    for service in services {
        let descriptor = pool
            .get_service_by_name(service)
            .ok_or_else(|| format!("no service {service} in the descriptor set"))?;
        for method in descriptor.methods() {
            for binding in http_rule::method_bindings(pool, &method).map_err(|e| e.0)? {
                let http_method = http::Method::from_bytes(binding.http_method.as_bytes())
                    .map_err(|e| format!("{}: {e}", binding.rpc()))?;
                let body = match binding.body.as_deref() {
                    None => BodySpec::None,
                    Some("*") => BodySpec::Whole,
                    Some(field) => BodySpec::Field(field.to_string()),
                };
                routes.push(Route {
                    http_method,
                    template: binding.template,
                    rpc: method.clone(),
                    body,
                    response_body: binding.response_body,
                });
            }
        }
    }
    Ok(routes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn route(path: &str) -> Vec<(String, String)> {
        let pool = DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
        let routes = routes(
            &pool,
            &[
                qilu_proto::service_names::REGISTRY,
                "google.longrunning.Operations",
            ],
        )
        .unwrap();
        routes
            .iter()
            .filter_map(|r| {
                r.matches(path).map(|bound| {
                    (
                        format!("{} {}", r.http_method, r.rpc.name()),
                        bound
                            .iter()
                            .map(|(f, v)| format!("{}={v}", f.join(".")))
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                })
            })
            .collect()
    }

    #[test]
    fn paths_reach_their_rpcs_with_decoded_values() {
        assert_eq!(
            route("/v1/enterprises/91370102MA9400015C"),
            [
                (
                    "GET GetEnterprise".into(),
                    "name=enterprises/91370102MA9400015C".into()
                ),
                (
                    "PATCH UpdateEnterprise".into(),
                    "enterprise.name=enterprises/91370102MA9400015C".into()
                ),
            ]
        );
        assert_eq!(
            route("/v1/enterprises/X:revoke"),
            [("POST RevokeEnterprise".into(), "name=enterprises/X".into())]
        );
        assert_eq!(
            route("/v1/zones/%E6%B5%8E%E5%8D%97"),
            [
                ("GET GetZone".into(), "name=zones/济南".into()),
                ("PATCH UpdateZone".into(), "zone.name=zones/济南".into()),
            ]
        );
        assert_eq!(
            route("/v1/operations/registry-1:cancel"),
            [(
                "POST CancelOperation".into(),
                "name=operations/registry-1".into()
            )]
        );
        assert!(route("/v1/nothing").is_empty());
    }
}
