//! Every RPC of the three services has one HTTP binding (AIP-127) that the transcoder can serve,
//! and no two bindings on the suite's one address (the three services, Operations and
//! `/openapi.json`) can match the same request. Each failure names the RPC and what to change.

use prost_reflect::{Kind, MessageDescriptor, MethodDescriptor};
use qilu_common::http_rule::{self, Binding, PathTemplate, Segment};
use qilu_common::openapi::{OPERATIONS, SERVED_PATH};
use qilu_proto::service_names::{AWARDS, REGISTRY, REVIEW};

use super::pool;

const SERVICES: &[&str] = &[REGISTRY, REVIEW, AWARDS];

/// Every method of the three services with its bindings.
fn methods() -> Vec<(MethodDescriptor, Vec<Binding>)> {
    let pool = pool();
    let mut out = Vec::new();
    for name in SERVICES {
        let service = pool.get_service_by_name(name).unwrap();
        for method in service.methods() {
            let bindings =
                http_rule::method_bindings(&pool, &method).unwrap_or_else(|e| panic!("{e}"));
            out.push((method, bindings));
        }
    }
    out
}

/// Every binding of the three services, each RPC's first (the other tests report the rest).
fn bindings() -> Vec<(MethodDescriptor, Binding)> {
    methods()
        .into_iter()
        .filter_map(|(m, b)| b.into_iter().next().map(|b| (m, b)))
        .collect()
}

fn fail_if_any(problems: Vec<String>, what: &str) {
    assert!(
        problems.is_empty(),
        "{what} (docs/http.md has the conventions):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_rpc_has_exactly_one_binding() {
    let methods = methods();
    assert!(methods.len() > 100, "only {} RPCs found", methods.len());
    let problems = methods
        .iter()
        .filter(|(_, b)| b.len() != 1)
        .map(|(m, b)| {
            format!(
                "{} has {} google.api.http bindings; give it exactly one, e.g. \
                 `option (google.api.http) = {{ get: \"/v1/{{name=…/*}}\" }};`",
                m.full_name(),
                b.len()
            )
        })
        .collect();
    fail_if_any(problems, "RPCs without exactly one HTTP binding");
}

#[test]
fn path_variables_name_string_fields_of_the_request() {
    let mut problems = Vec::new();
    for (method, binding) in bindings() {
        if !binding.template.source.starts_with("/v1/") {
            problems.push(format!(
                "{}: path {} does not start with /v1/",
                method.full_name(),
                binding.template.source
            ));
        }
        for var in &binding.template.variables {
            match field_at(&method.input(), &var.field_path) {
                Err(e) => problems.push(format!(
                    "{}: path variable {{{}}}: {e}",
                    method.full_name(),
                    var.field_path
                )),
                Ok(field) if field.is_list() || field.kind() != Kind::String => {
                    problems.push(format!(
                        "{}: path variable {{{}}} is not a singular string field",
                        method.full_name(),
                        var.field_path
                    ))
                }
                Ok(_) => {}
            }
        }
    }
    fail_if_any(
        problems,
        "path variables that name no string field of the request",
    );
}

fn field_at(
    message: &MessageDescriptor,
    path: &str,
) -> Result<prost_reflect::FieldDescriptor, String> {
    let mut current = message.clone();
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let field = current
            .get_field_by_name(part)
            .ok_or_else(|| format!("{} has no field {part}", current.full_name()))?;
        if i + 1 == parts.len() {
            return Ok(field);
        }
        current = match field.kind() {
            Kind::Message(m) if !field.is_list() => m,
            _ => return Err(format!("{} is not a singular message", field.full_name())),
        };
    }
    Err("empty field path".into())
}

#[test]
fn bodies_are_where_http_allows_them() {
    let mut problems = Vec::new();
    for (method, binding) in bindings() {
        let rpc = method.full_name();
        match (binding.http_method.as_str(), binding.body.as_deref()) {
            ("GET" | "DELETE", Some(body)) => problems.push(format!(
                "{rpc}: {} has body {body:?}; GET and DELETE carry none",
                binding.http_method
            )),
            ("POST" | "PATCH" | "PUT", None) => problems.push(format!(
                "{rpc}: {} without a body; use body: \"*\" or the resource field",
                binding.http_method
            )),
            (_, Some("*") | None) => {}
            (_, Some(name)) => match method.input().get_field_by_name(name) {
                None => problems.push(format!(
                    "{rpc}: body {name:?} is not a field of {}",
                    method.input().full_name()
                )),
                Some(_)
                    if binding
                        .template
                        .variables
                        .iter()
                        .any(|v| v.field_path == name) =>
                {
                    problems.push(format!("{rpc}: body {name:?} is also a path variable"))
                }
                Some(_) => {}
            },
        }
        if !["GET", "POST", "PATCH", "DELETE", "PUT"].contains(&binding.http_method.as_str()) {
            problems.push(format!("{rpc}: custom HTTP method {}", binding.http_method));
        }
    }
    fail_if_any(problems, "bodies the transcoding cannot carry");
}

#[test]
fn streams_follow_the_conventions() {
    let mut problems = Vec::new();
    for (method, binding) in bindings() {
        let rpc = method.full_name();
        if method.is_client_streaming()
            && (binding.http_method != "POST" || binding.body.as_deref() != Some("*"))
        {
            problems.push(format!(
                "{rpc} streams requests (an import): bind it as post … body: \"*\" (NDJSON or CSV \
                 upload), not {} body {:?}",
                binding.http_method, binding.body
            ));
        }
        if method.is_server_streaming()
            && !method.is_client_streaming()
            && binding.http_method != "GET"
        {
            problems.push(format!(
                "{rpc} streams responses (a feed): bind it as get, not {}",
                binding.http_method
            ));
        }
    }
    fail_if_any(problems, "streaming RPCs bound against the conventions");
}

#[test]
fn get_and_delete_requests_fit_in_the_path_and_query() {
    let mut problems = Vec::new();
    for (method, binding) in bindings() {
        if binding.body.is_some() {
            continue;
        }
        let in_path: Vec<&str> = binding
            .template
            .variables
            .iter()
            .map(|v| v.field_path.as_str())
            .collect();
        for field in method.input().fields() {
            if in_path.contains(&field.name()) {
                continue;
            }
            let unfit = field.is_map()
                || (field.is_list() && matches!(field.kind(), Kind::Message(_)))
                || matches!(field.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.Any"
                    || m.full_name() == "google.protobuf.Struct"
                    || m.full_name() == "google.protobuf.Value");
            if unfit {
                problems.push(format!(
                    "{}: field {} of a {} cannot be a query parameter; bind the RPC as post … \
                     body: \"*\"",
                    method.full_name(),
                    field.name(),
                    binding.http_method
                ));
            }
        }
    }
    fail_if_any(
        problems,
        "bodiless requests with fields no query string can carry",
    );
}

#[test]
fn no_two_bindings_on_the_one_address_match_the_same_request() {
    let pool = pool();
    let mut all: Vec<(String, Binding)> = bindings()
        .into_iter()
        .map(|(m, b)| (m.full_name().to_string(), b))
        .collect();
    for b in http_rule::service_bindings(&pool, OPERATIONS).unwrap() {
        all.push((b.rpc(), b));
    }
    all.push((
        "the OpenAPI document".into(),
        Binding {
            service: String::new(),
            method: "openapi".into(),
            http_method: "GET".into(),
            template: PathTemplate::parse(SERVED_PATH).unwrap(),
            body: None,
            response_body: None,
        },
    ));
    let mut problems = Vec::new();
    for (i, (a_rpc, a)) in all.iter().enumerate() {
        for (b_rpc, b) in &all[i + 1..] {
            if a.http_method == b.http_method && a.template.overlaps(&b.template) {
                problems.push(format!(
                    "{a_rpc} ({} {}) and {b_rpc} ({} {}) can match the same request; give one a \
                     service-distinct path, e.g. /v1/registry/…",
                    a.http_method, a.template.source, b.http_method, b.template.source
                ));
            }
        }
    }
    fail_if_any(problems, "bindings that collide on the suite's one address");
}

#[test]
fn the_overlap_check_catches_a_collision() {
    // The check above is only as good as `overlaps`: two services' audit lists on one path.
    let a = PathTemplate::parse("/v1/auditEvents").unwrap();
    let b = PathTemplate::parse("/v1/{parent=auditEvents}").unwrap();
    assert!(a.overlaps(&b));
    let get = PathTemplate::parse("/v1/{name=enterprises/*}").unwrap();
    let other = PathTemplate::parse("/v1/enterprises/{uscc}").unwrap();
    assert!(get.overlaps(&other));
}

#[test]
fn a_sample_request_of_each_binding_matches_that_binding_alone() {
    // The router's view of the overlap check: fill each template's wildcards, then match the
    // path against every binding of the same method.
    let pool = pool();
    let mut all: Vec<Binding> = bindings().into_iter().map(|(_, b)| b).collect();
    all.extend(http_rule::service_bindings(&pool, OPERATIONS).unwrap());
    let mut problems = Vec::new();
    for binding in &all {
        let mut path = String::new();
        for segment in &binding.template.segments {
            path.push('/');
            path.push_str(match segment {
                Segment::Literal(l) => l,
                Segment::Single => "x1",
                Segment::Multi => "x1/x2",
            });
        }
        if let Some(verb) = &binding.template.verb {
            path.push(':');
            path.push_str(verb);
        }
        let matching: Vec<String> = all
            .iter()
            .filter(|b| b.http_method == binding.http_method)
            .filter(|b| b.template.match_path(&path).is_some())
            .map(Binding::rpc)
            .collect();
        if matching != [binding.rpc()] {
            problems.push(format!(
                "{} {path} (from {}) is matched by {matching:?}",
                binding.http_method,
                binding.rpc()
            ));
        }
    }
    fail_if_any(
        problems,
        "sample requests that do not reach exactly their own binding",
    );
}
