//! The HTTP routes of the RPCs: each method's `google.api.http` rule (AIP-127), read from the
//! descriptor set the servers embed, parsed into a path template and matched against requests.
//!
//! Template syntax (google/api/http.proto): `"/" Segments [":" Verb]`, a segment being a literal,
//! `*` (one segment), `**` (the rest of the path, last only) or a variable `{field.path}` /
//! `{field.path=Segments}` that binds what it matches to a field of the request message.

use prost_reflect::{DescriptorPool, MethodDescriptor};
use qilu_proto::google::api::{HttpRule, http_rule::Pattern};

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: any one segment.
    Single,
    /// `**`: one or more segments, the rest of the path.
    Multi,
}

/// A variable of a template: the request field it binds and the segments it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    /// Field path in the request message (proto names), e.g. `["enterprise", "name"]`.
    pub field: Vec<String>,
    start: usize,
    end: usize,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    segments: Vec<Segment>,
    /// The custom verb after the last `:`, e.g. `allocate`.
    verb: Option<String>,
    pub variables: Vec<Variable>,
}

impl Template {
    /// Parses a template such as `/v1/{name=programs/*}:allocate`.
    pub(crate) fn parse(template: &str) -> Result<Template, String> {
        let rest = template
            .strip_prefix('/')
            .ok_or_else(|| format!("template {template:?} does not start with '/'"))?;
        // The verb is after the last ':' outside braces.
        let mut depth = 0i32;
        let mut verb_at = None;
        let mut parts = Vec::new();
        let mut part_start = 0;
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ':' if depth == 0 => verb_at = Some(i),
                '/' if depth == 0 && verb_at.is_none() => {
                    parts.push(&rest[part_start..i]);
                    part_start = i + 1;
                }
                _ => {}
            }
            if depth < 0 {
                return Err(format!("unbalanced braces in {template:?}"));
            }
        }
        if depth != 0 {
            return Err(format!("unbalanced braces in {template:?}"));
        }
        let (last, verb) = match verb_at {
            Some(i) => (&rest[part_start..i], Some(rest[i + 1..].to_string())),
            None => (&rest[part_start..], None),
        };
        parts.push(last);
        if verb
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.contains('/'))
        {
            return Err(format!("bad verb in {template:?}"));
        }
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        for part in parts {
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let (field, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                if field.is_empty() {
                    return Err(format!("empty variable in {template:?}"));
                }
                let start = segments.len();
                for p in pattern.split('/') {
                    segments.push(literal_or_wildcard(p, template)?);
                }
                variables.push(Variable {
                    field: field.split('.').map(str::to_string).collect(),
                    start,
                    end: segments.len(),
                });
            } else {
                segments.push(literal_or_wildcard(part, template)?);
            }
        }
        if let Some(i) = segments.iter().position(|s| *s == Segment::Multi)
            && i + 1 != segments.len()
        {
            return Err(format!("'**' is not the last segment of {template:?}"));
        }
        Ok(Template {
            segments,
            verb,
            variables,
        })
    }

    /// Matches a request path (without query); on a match, each variable's field path and its
    /// percent-decoded value.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(Vec<String>, String)>> {
        let rest = path.strip_prefix('/')?;
        let rest = match &self.verb {
            Some(verb) => {
                let (head, tail) = rest.rsplit_once(':')?;
                if tail != verb || head.ends_with('/') {
                    return None;
                }
                head
            }
            None => rest,
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let multi = self.segments.last() == Some(&Segment::Multi);
        if multi {
            if parts.len() < self.segments.len() {
                return None;
            }
        } else if parts.len() != self.segments.len() {
            return None;
        }
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(l) => {
                    if parts[i] != l {
                        return None;
                    }
                }
                Segment::Single => {
                    if parts[i].is_empty() {
                        return None;
                    }
                }
                Segment::Multi => {
                    if parts[i..].iter().any(|p| p.is_empty()) {
                        return None;
                    }
                }
            }
        }
        let mut bound = Vec::with_capacity(self.variables.len());
        for v in &self.variables {
            let end = if multi && v.end == self.segments.len() {
                parts.len()
            } else {
                v.end
            };
            let value = parts[v.start..end]
                .iter()
                .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy())
                .collect::<Vec<_>>()
                .join("/");
            bound.push((v.field.clone(), value));
        }
        Some(bound)
    }

    /// The template written back, for logs and errors.
    #[cfg(test)]
    fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }
}

fn literal_or_wildcard(part: &str, template: &str) -> Result<Segment, String> {
    match part {
        "*" => Ok(Segment::Single),
        "**" => Ok(Segment::Multi),
        "" => Err(format!("empty segment in {template:?}")),
        p if p.contains(['{', '}', '*', '=']) => Err(format!("bad segment {p:?} in {template:?}")),
        p => Ok(Segment::Literal(p.to_string())),
    }
}

/// One HTTP binding of an RPC.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub http_method: http::Method,
    pub template: Template,
    /// The template as written, e.g. `/v1/{name=enterprises/*}`.
    pub pattern: String,
    pub rpc: MethodDescriptor,
    pub body: BodySpec,
    /// `HttpRule.response_body`: the response is this field of the response message.
    pub response_body: Option<String>,
}

/// Every route of the services named (fully qualified) in `services`, verbs first so that
/// `/v1/{name=programs/*}:allocate` is tried before `/v1/{name=programs/*}`.
pub(crate) fn routes(pool: &DescriptorPool, services: &[&str]) -> Result<Vec<Route>, String> {
    let extension = pool
        .get_extension_by_name("google.api.http")
        .ok_or("the descriptor set lacks google.api.http")?;
    let mut routes = Vec::new();
    for service in services {
        let Some(sd) = pool.get_service_by_name(service) else {
            return Err(format!("no service {service} in the descriptor set"));
        };
        for method in sd.methods() {
            let options = method.options();
            if !options.has_extension(&extension) {
                continue;
            }
            let Some(rule) = options
                .get_extension(&extension)
                .as_message()
                .and_then(|m| m.transcode_to::<HttpRule>().ok())
            else {
                return Err(format!(
                    "{}: unreadable google.api.http",
                    method.full_name()
                ));
            };
            let mut rules = vec![rule.clone()];
            rules.extend(rule.additional_bindings.iter().cloned());
            for r in rules {
                routes.push(route_of(&method, &r)?);
            }
        }
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.template.verb.is_some()));
    Ok(routes)
}

fn route_of(method: &MethodDescriptor, rule: &HttpRule) -> Result<Route, String> {
    let (http_method, pattern) = match &rule.pattern {
        Some(Pattern::Get(p)) => (http::Method::GET, p.clone()),
        Some(Pattern::Put(p)) => (http::Method::PUT, p.clone()),
        Some(Pattern::Post(p)) => (http::Method::POST, p.clone()),
        Some(Pattern::Delete(p)) => (http::Method::DELETE, p.clone()),
        Some(Pattern::Patch(p)) => (http::Method::PATCH, p.clone()),
        Some(Pattern::Custom(c)) => (
            http::Method::from_bytes(c.kind.as_bytes())
                .map_err(|e| format!("{}: {e}", method.full_name()))?,
            c.path.clone(),
        ),
        None => {
            return Err(format!(
                "{}: google.api.http without a pattern",
                method.full_name()
            ));
        }
    };
    let template = Template::parse(&pattern).map_err(|e| format!("{}: {e}", method.full_name()))?;
    let body = match rule.body.as_str() {
        "" => BodySpec::None,
        "*" => BodySpec::Whole,
        field => BodySpec::Field(field.to_string()),
    };
    let response_body = (!rule.response_body.is_empty()).then(|| rule.response_body.clone());
    Ok(Route {
        http_method,
        template,
        pattern,
        rpc: method.clone(),
        body,
        response_body,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bound(t: &str, path: &str) -> Option<Vec<(String, String)>> {
        Template::parse(t).unwrap().matches(path).map(|b| {
            b.into_iter()
                .map(|(f, v)| (f.join("."), v))
                .collect::<Vec<_>>()
        })
    }

    #[test]
    fn templates_bind_their_variables() {
        assert_eq!(
            bound(
                "/v1/{name=enterprises/*}",
                "/v1/enterprises/91350100M000100Y43"
            ),
            Some(vec![(
                "name".into(),
                "enterprises/91350100M000100Y43".into()
            )])
        );
        assert_eq!(
            bound(
                "/v1/{parent=programs/*}/applications",
                "/v1/programs/p1/applications"
            ),
            Some(vec![("parent".into(), "programs/p1".into())])
        );
        assert_eq!(
            bound("/v1/{enterprise.name=enterprises/*}", "/v1/enterprises/X"),
            Some(vec![("enterprise.name".into(), "enterprises/X".into())])
        );
        assert_eq!(bound("/v1/enterprises", "/v1/enterprises"), Some(vec![]));
        assert_eq!(bound("/v1/enterprises", "/v1/enterprises/x"), None);
        assert_eq!(bound("/v1/{name=enterprises/*}", "/v1/enterprises/"), None);
        assert_eq!(bound("/v1/{name=enterprises/*}", "/v1/zones/x"), None);
    }

    #[test]
    fn verbs_and_double_wildcards() {
        assert_eq!(
            bound("/v1/{name=programs/*}:allocate", "/v1/programs/p:allocate"),
            Some(vec![("name".into(), "programs/p".into())])
        );
        assert_eq!(
            bound("/v1/{name=programs/*}:allocate", "/v1/programs/p:publish"),
            None
        );
        assert_eq!(
            bound("/v1/{name=programs/*}:allocate", "/v1/programs/p"),
            None
        );
        assert_eq!(
            bound("/v1/{name=operations/**}", "/v1/operations/awards-1"),
            Some(vec![("name".into(), "operations/awards-1".into())])
        );
        assert_eq!(
            bound(
                "/v1/{name=operations/**}:cancel",
                "/v1/operations/a/b:cancel"
            ),
            Some(vec![("name".into(), "operations/a/b".into())])
        );
        assert_eq!(
            bound("/v1/{name=operations}", "/v1/operations"),
            Some(vec![("name".into(), "operations".into())])
        );
        assert_eq!(
            bound("/v1/enterprises:batchGet", "/v1/enterprises:batchGet"),
            Some(vec![])
        );
    }

    #[test]
    fn values_are_percent_decoded() {
        assert_eq!(
            bound("/v1/{name=zones/*}", "/v1/zones/%E6%B5%8E%E5%8D%97"),
            Some(vec![("name".into(), "zones/济南".into())])
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for t in [
            "v1/x",
            "/v1/{name=x/*",
            "/v1/**/x",
            "/v1//x",
            "/v1/{=x}",
            "/v1/x:",
        ] {
            assert!(Template::parse(t).is_err(), "{t}");
        }
        assert_eq!(
            Template::parse("/v1/{name=a/*}/b").unwrap().literal_count(),
            3
        );
    }
}
