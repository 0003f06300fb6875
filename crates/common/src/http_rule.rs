//! The AIP-127 HTTP bindings (`google.api.http`) of the contracts, read from the descriptor set:
//! the one place that parses a binding's path template, for the OpenAPI document
//! ([`crate::openapi`]), the contract tests that keep the bindings servable on one address, and
//! whatever serves HTTP/JSON.
//!
//! Template grammar (google/api/http.proto):
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! A request's path matches a template segment by segment; the verb after the last `:` of the
//! last segment is matched on its own (a `*` never swallows `…:verb`). Never panics: a malformed
//! binding is an [`HttpRuleError`] naming the RPC.

use std::fmt;

use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

/// One segment of a path template, variables flattened into the segments they match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A literal segment, matched exactly.
    Literal(String),
    /// `*`: exactly one segment.
    Single,
    /// `**`: one or more segments (only last). http.proto says "zero or more"; one or more is
    /// what keeps `GET /v1/{name=operations}` (ListOperations) apart from
    /// `GET /v1/{name=operations/**}` (GetOperation), as every router resolves them.
    Multi,
}

/// A variable of a template: the request field it sets and the segments it captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The request field, dotted for a nested one (`enterprise.name`).
    pub field_path: String,
    /// Index of its first segment in [`PathTemplate::segments`].
    pub start: usize,
    /// One past its last segment.
    pub end: usize,
}

/// A parsed path template, e.g. `/v1/{name=enterprises/*}:revoke`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// The template as written.
    pub source: String,
    /// Every segment, those of variables included.
    pub segments: Vec<Segment>,
    /// The variables in order.
    pub variables: Vec<Variable>,
    /// The custom verb after `:`, if any.
    pub verb: Option<String>,
}

/// One HTTP binding of an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Full name of the service, e.g. `qilu.registry.v1.EnterpriseRegistryService`.
    pub service: String,
    /// The method's short name, e.g. `GetEnterprise`.
    pub method: String,
    /// The HTTP method, upper case (`GET`, `POST`, `PATCH`, `PUT`, `DELETE`, or a custom kind).
    pub http_method: String,
    /// The path template.
    pub template: PathTemplate,
    /// `body`: `None` (no body), `Some("*")` (the whole request but path fields) or a top-level
    /// request field.
    pub body: Option<String>,
    /// `response_body`, when the response is one field of the output message.
    pub response_body: Option<String>,
}

impl Binding {
    /// `Service.Method`, for messages.
    pub fn rpc(&self) -> String {
        format!("{}.{}", self.service, self.method)
    }
}

/// A binding that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRuleError(pub String);

impl fmt::Display for HttpRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpRuleError {}

/// The `google.api.http` bindings of `method`: its rule and the rule's `additional_bindings`
/// (empty when it has none).
pub fn method_bindings(
    pool: &DescriptorPool,
    method: &MethodDescriptor,
) -> Result<Vec<Binding>, HttpRuleError> {
    let rpc = method.full_name().to_string();
    let Some(ext) = pool.get_extension_by_name("google.api.http") else {
        return Ok(Vec::new());
    };
    let options = method.options();
    if !options.has_extension(&ext) {
        return Ok(Vec::new());
    }
    let Value::Message(rule) = &*options.get_extension(&ext) else {
        return Err(HttpRuleError(format!(
            "{rpc}: google.api.http is not a message"
        )));
    };
    let mut out = vec![binding(method, rule)?];
    if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").as_deref() {
        for extra in more {
            let Value::Message(extra) = extra else {
                return Err(HttpRuleError(format!("{rpc}: additional_bindings")));
            };
            out.push(binding(method, extra)?);
        }
    }
    Ok(out)
}

/// Every binding of the service `service` (a full name), in method order.
pub fn service_bindings(
    pool: &DescriptorPool,
    service: &str,
) -> Result<Vec<Binding>, HttpRuleError> {
    let descriptor = pool
        .get_service_by_name(service)
        .ok_or_else(|| HttpRuleError(format!("no service {service} in the descriptor set")))?;
    let mut out = Vec::new();
    for method in descriptor.methods() {
        out.extend(method_bindings(pool, &method)?);
    }
    Ok(out)
}

fn string_field(rule: &DynamicMessage, name: &str) -> Option<String> {
    match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn binding(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Binding, HttpRuleError> {
    let rpc = method.full_name();
    let mut patterns = Vec::new();
    for kind in ["get", "put", "post", "delete", "patch"] {
        if rule.has_field_by_name(kind) {
            let path = string_field(rule, kind).unwrap_or_default();
            patterns.push((kind.to_ascii_uppercase(), path));
        }
    }
    if rule.has_field_by_name("custom")
        && let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref()
    {
        patterns.push((
            string_field(custom, "kind").unwrap_or_default(),
            string_field(custom, "path").unwrap_or_default(),
        ));
    }
    let [(http_method, path)] = <[_; 1]>::try_from(patterns).map_err(|p| {
        HttpRuleError(format!(
            "{rpc}: a google.api.http rule needs exactly one pattern, it has {}",
            p.len()
        ))
    })?;
    let template = PathTemplate::parse(&path).map_err(|e| HttpRuleError(format!("{rpc}: {e}")))?;
    Ok(Binding {
        service: method.parent_service().full_name().to_string(),
        method: method.name().to_string(),
        http_method,
        template,
        body: string_field(rule, "body"),
        response_body: string_field(rule, "response_body"),
    })
}

impl PathTemplate {
    /// Parses a template; the error says what is wrong with it.
    pub fn parse(source: &str) -> Result<Self, String> {
        let Some(rest) = source.strip_prefix('/') else {
            return Err(format!("path template {source:?} does not start with '/'"));
        };
        // The verb: after the last ':' outside braces, when no '/' follows it.
        let mut depth = 0usize;
        let mut verb_at = None;
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                ':' if depth == 0 => verb_at = Some(i),
                '/' if depth == 0 => verb_at = None,
                _ => {}
            }
        }
        let (body, verb) = match verb_at {
            Some(i) => (&rest[..i], Some(rest[i + 1..].to_string())),
            None => (rest, None),
        };
        if verb.as_deref().is_some_and(|v| !is_literal(v)) {
            return Err(format!("path template {source:?}: bad verb"));
        }
        let mut template = PathTemplate {
            source: source.to_string(),
            segments: Vec::new(),
            variables: Vec::new(),
            verb,
        };
        for part in split_top_level(body) {
            if let Some(inner) = part.strip_prefix('{') {
                let Some(inner) = inner.strip_suffix('}') else {
                    return Err(format!(
                        "path template {source:?}: unclosed variable {part:?}"
                    ));
                };
                let (field_path, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                if field_path.is_empty() || !field_path.split('.').all(is_ident) {
                    return Err(format!(
                        "path template {source:?}: bad field path {field_path:?}"
                    ));
                }
                let start = template.segments.len();
                for sub in pattern.split('/') {
                    template.segments.push(segment(sub).ok_or_else(|| {
                        format!("path template {source:?}: bad segment {sub:?} in {part:?}")
                    })?);
                }
                template.variables.push(Variable {
                    field_path: field_path.to_string(),
                    start,
                    end: template.segments.len(),
                });
            } else {
                template
                    .segments
                    .push(segment(part).ok_or_else(|| {
                        format!("path template {source:?}: bad segment {part:?}")
                    })?);
            }
        }
        if let Some(i) = template.segments.iter().position(|s| *s == Segment::Multi)
            && i + 1 != template.segments.len()
        {
            return Err(format!(
                "path template {source:?}: '**' must be the last segment"
            ));
        }
        Ok(template)
    }

    /// The request fields a request path sets when it matches this template: each variable's
    /// field path with its segments joined by `/`, as sent (percent-decoding each value is the
    /// caller's). `None` when the path does not match. The verb is split off the path's last
    /// segment first (after its last `:`), and must be the template's; `*` matches one non-empty
    /// segment, `**` one or more (see [`Segment::Multi`]) — the rules [`Self::overlaps`] checks
    /// bindings by.
    pub fn match_path(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let last_start = rest.rfind('/').map_or(0, |i| i + 1);
        let (body, verb) = match rest[last_start..].rfind(':') {
            Some(i) => (&rest[..last_start + i], Some(&rest[last_start + i + 1..])),
            None => (rest, None),
        };
        if verb != self.verb.as_deref() {
            return None;
        }
        let parts: Vec<&str> = body.split('/').collect();
        // Where each template segment's match starts in `parts`; `**` takes the rest.
        let mut starts = Vec::with_capacity(self.segments.len() + 1);
        let mut at = 0;
        for segment in &self.segments {
            starts.push(at);
            match segment {
                Segment::Literal(l) => {
                    if parts.get(at) != Some(&l.as_str()) {
                        return None;
                    }
                    at += 1;
                }
                Segment::Single => {
                    if parts.get(at).is_none_or(|p| p.is_empty()) {
                        return None;
                    }
                    at += 1;
                }
                Segment::Multi => {
                    if at >= parts.len() || parts[at..].iter().any(|p| p.is_empty()) {
                        return None;
                    }
                    at = parts.len();
                }
            }
        }
        if at != parts.len() {
            return None;
        }
        starts.push(at);
        Some(
            self.variables
                .iter()
                .map(|v| {
                    let value = parts[starts[v.start]..starts[v.end]].join("/");
                    (v.field_path.clone(), value)
                })
                .collect(),
        )
    }

    /// Whether one request path can match both templates (same verb, segments that can all be
    /// the same). Literals match only themselves; `*` matches any one segment; `**` one or more.
    pub fn overlaps(&self, other: &PathTemplate) -> bool {
        self.verb == other.verb && segments_overlap(&self.segments, &other.segments)
    }
}

fn segments_overlap(a: &[Segment], b: &[Segment]) -> bool {
    match (a.first(), b.first()) {
        (None, None) => true,
        (Some(Segment::Multi), _) => {
            // `**` takes one or more of the other's segments (see [`Segment::Multi`]).
            (1..=b.len()).any(|n| segments_overlap(&a[1..], &b[n..]))
        }
        (_, Some(Segment::Multi)) => segments_overlap(b, a),
        (None, Some(_)) | (Some(_), None) => false,
        (Some(x), Some(y)) => {
            let one = match (x, y) {
                (Segment::Literal(p), Segment::Literal(q)) => p == q,
                _ => true,
            };
            one && segments_overlap(&a[1..], &b[1..])
        }
    }
}

/// Splits on '/' outside braces.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut from = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                parts.push(&s[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[from..]);
    parts
}

fn segment(s: &str) -> Option<Segment> {
    match s {
        "*" => Some(Segment::Single),
        "**" => Some(Segment::Multi),
        _ if is_literal(s) => Some(Segment::Literal(s.to_string())),
        _ => None,
    }
}

/// A literal segment or verb: URL-safe characters only (RFC 3986 unreserved, no `/ : { } *`).
fn is_literal(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> PathTemplate {
        PathTemplate::parse(s).unwrap()
    }

    #[test]
    fn a_template_parses_into_segments_variables_and_verb() {
        let p = t("/v1/{name=enterprises/*/highTechCertificates/*}:revoke");
        assert_eq!(p.verb.as_deref(), Some("revoke"));
        assert_eq!(p.segments.len(), 5);
        assert_eq!(
            p.variables,
            vec![Variable {
                field_path: "name".into(),
                start: 1,
                end: 5
            }]
        );
        let q = t("/v1/{enterprise.name}");
        assert_eq!(
            q.segments,
            vec![Segment::Literal("v1".into()), Segment::Single]
        );
        assert_eq!(q.variables[0].field_path, "enterprise.name");
        assert_eq!(
            t("/v1/{name=operations/**}:cancel").verb.as_deref(),
            Some("cancel")
        );
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in [
            "v1/x",
            "/v1/{name=enterprises/*",
            "/v1/{=x}",
            "/v1/**/x",
            "/v1/x:",
            "/v1/a b",
            "/v1/{name=a/**}/b",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn a_request_path_sets_the_fields_its_template_names() {
        let get = t("/v1/{name=enterprises/*/annualFigures/*}");
        assert_eq!(
            get.match_path("/v1/enterprises/91350100M000100Y43/annualFigures/2023"),
            Some(vec![(
                "name".to_string(),
                "enterprises/91350100M000100Y43/annualFigures/2023".to_string()
            )])
        );
        assert_eq!(get.match_path("/v1/enterprises/x/annualFigures"), None);
        assert_eq!(
            get.match_path("/v1/enterprises/x/annualFigures/2023:revoke"),
            None
        );
        assert_eq!(get.match_path("/v1/enterprises//annualFigures/2023"), None);

        let revoke = t("/v1/{name=enterprises/*}:revoke");
        assert_eq!(
            revoke.match_path("/v1/enterprises/x:revoke"),
            Some(vec![("name".to_string(), "enterprises/x".to_string())])
        );
        assert_eq!(revoke.match_path("/v1/enterprises/x"), None);
        assert_eq!(
            t("/v1/{name=enterprises/*}").match_path("/v1/enterprises/x:revoke"),
            None
        );

        let update = t("/v1/{enterprise.name=enterprises/*}");
        assert_eq!(
            update.match_path("/v1/enterprises/x"),
            Some(vec![(
                "enterprise.name".to_string(),
                "enterprises/x".to_string()
            )])
        );
        let op = t("/v1/{name=operations/**}:cancel");
        assert_eq!(
            op.match_path("/v1/operations/a/b:cancel"),
            Some(vec![("name".to_string(), "operations/a/b".to_string())])
        );
        assert_eq!(op.match_path("/v1/operations:cancel"), None);
        assert_eq!(
            t("/v1/{name=operations}").match_path("/v1/operations"),
            Some(vec![("name".to_string(), "operations".to_string())])
        );
        assert_eq!(
            t("/v1/enterprises:batchGet").match_path("/v1/enterprises:batchGet"),
            Some(vec![])
        );
        assert_eq!(t("/v1/enterprises").match_path("v1/enterprises"), None);
    }

    #[test]
    fn overlap_treats_wildcards_literals_and_verbs_as_a_router_does() {
        let overlapping = [
            ("/v1/{name=enterprises/*}", "/v1/enterprises/{uscc}"),
            ("/v1/{name=enterprises/*}", "/v1/{parent=*}/x"),
            ("/v1/{name=operations/**}", "/v1/operations/a/b"),
            ("/v1/{a=*}/b:x", "/v1/a/{b=*}:x"),
        ];
        for (a, b) in overlapping {
            assert!(t(a).overlaps(&t(b)), "{a} and {b} should overlap");
            assert!(t(b).overlaps(&t(a)), "{b} and {a} should overlap");
        }
        let apart = [
            (
                "/v1/{name=enterprises/*}",
                "/v1/{name=enterprises/*}:revoke",
            ),
            ("/v1/enterprises", "/v1/enterprises:batchGet"),
            ("/v1/{name=enterprises/*}", "/v1/{name=zones/*}"),
            (
                "/v1/{parent=programs/*}/applications",
                "/v1/{name=programs/*/allocation}",
            ),
            ("/v1/{name=a/*}", "/v1/{name=a/*/b/*}"),
            ("/v1/{name=operations/**}", "/v1/registry/changes"),
            ("/v1/{name=operations/**}", "/v1/{name=operations}"),
        ];
        for (a, b) in apart {
            assert!(!t(a).overlaps(&t(b)), "{a} and {b} should not overlap");
        }
    }
}
