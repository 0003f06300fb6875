//! One address, three ways in (crates/common/src/http): the same registry scenario run through
//! gRPC, grpc-web (tonic-web's client layer over HTTP/1.1) and HTTP/JSON (plain HTTP/1.1 with
//! JSON bodies) gives equal results, errors included; HTTP/JSON refuses what is not the request
//! message with a 400 naming the field, never a 5xx; streams come out as NDJSON and an import
//! goes in as NDJSON or as one JSON request.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::Backend;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::registry::{
    CreateEnterpriseRequest, Enterprise, GetEnterpriseRequest, ListEnterprisesRequest,
    UpdateEnterpriseRequest,
};
use serde_json::{Value, json};

use crate::Suite;

/// Valid USCCs, one per way in (from crates/cli/samples/enterprises.csv).
const USCCS: [&str; 3] = [
    "91370102MA9400015C",
    "91370112MA9400023N",
    "91370211MA94000318",
];

/// An HTTP/1.1 client with a bearer token.
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: String,
}

struct Answer {
    status: u16,
    content_type: String,
    body: Bytes,
}

impl Answer {
    /// The first field violation of a `google.rpc.Status` answer: status, field, reason.
    fn violation(&self) -> (u16, String, String) {
        let json = self.json();
        let v = json["details"]
            .as_array()
            .and_then(|d| {
                d.iter()
                    .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            })
            .map(|d| d["fieldViolations"][0].clone())
            .unwrap_or(Value::Null);
        (
            self.status,
            v["field"].as_str().unwrap_or("").to_string(),
            v["reason"].as_str().unwrap_or("").to_string(),
        )
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Http {
    fn new(suite: &Suite, role: Role) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{}", suite.server.addr),
            token: suite.token(role),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
        token: bool,
    ) -> Answer {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if token {
            request = request.header("authorization", format!("Bearer {}", self.token));
        }
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let request = request.body(Full::new(body.into())).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("answered in time")
            .expect("HTTP call");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            body,
        }
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        self.send(method, path, Some("application/json"), bytes, true)
            .await
    }
}

/// What a step gave, in a form the three ways can be compared in: the message as proto3 JSON
/// with the enterprise's own code, name and write-dependent fields (times, etag) replaced, or
/// the error's code, reason and field violations.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ok(Value),
    Err {
        code: i32,
        reasons: Vec<String>,
        fields: Vec<String>,
    },
}

fn pool() -> DescriptorPool {
    DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap()
}

fn normalize(mut value: Value, uscc: &str) -> Value {
    fn walk(v: &mut Value, uscc: &str) {
        match v {
            Value::Object(map) => {
                // Times and etags depend on the write; the division and city on the code.
                for key in [
                    "createTime",
                    "updateTime",
                    "etag",
                    "stateChangeTime",
                    "divisionCode",
                    "city",
                ] {
                    map.remove(key);
                }
                for (_, item) in map.iter_mut() {
                    walk(item, uscc);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, uscc)),
            Value::String(s) => *s = s.replace(uscc, "USCC"),
            _ => {}
        }
    }
    walk(&mut value, uscc);
    value
}

/// A message in the proto3 JSON mapping, as the HTTP side writes it.
fn message_json<M: prost::Name>(message: &M) -> Value {
    let desc = pool().get_message_by_name(&M::full_name()).unwrap();
    let dynamic = DynamicMessage::decode(desc, message.encode_to_vec().as_slice()).unwrap();
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .unwrap()
}

fn message_outcome<M: prost::Name>(message: &M, uscc: &str) -> Outcome {
    Outcome::Ok(normalize(message_json(message), uscc))
}

fn status_outcome(status: &tonic::Status) -> Outcome {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    Outcome::Err {
        code: status.code() as i32,
        reasons: details
            .error_info()
            .map(|i| vec![i.reason.clone()])
            .unwrap_or_default(),
        fields: details
            .bad_request()
            .map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| format!("{} {}", v.field, v.reason))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn grpc_outcome<M: prost::Name>(
    result: Result<tonic::Response<M>, tonic::Status>,
    uscc: &str,
) -> Outcome {
    match result {
        Ok(r) => message_outcome(r.get_ref(), uscc),
        Err(s) => status_outcome(&s),
    }
}

/// An HTTP answer as an outcome: 200 with the message, or `google.rpc.Status` JSON whose HTTP
/// status is AIP-193's for its code.
fn http_outcome(answer: &Answer, uscc: &str) -> Outcome {
    let json = answer.json();
    if answer.status == 200 {
        assert_eq!(answer.content_type, "application/json");
        return Outcome::Ok(normalize(json, uscc));
    }
    let code = json["code"].as_i64().expect("a google.rpc.Status") as i32;
    let expected_http = match code {
        3 | 9 | 11 => 400,
        16 => 401,
        7 => 403,
        5 => 404,
        6 | 10 => 409,
        8 => 429,
        _ => 500,
    };
    assert_eq!(answer.status, expected_http, "{json}");
    let details = json["details"].as_array().cloned().unwrap_or_default();
    let reasons = details
        .iter()
        .filter(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .collect();
    let fields = details
        .iter()
        .filter(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .flat_map(|d| d["fieldViolations"].as_array().cloned().unwrap_or_default())
        .map(|v| {
            format!(
                "{} {}",
                v["field"].as_str().unwrap_or(""),
                v["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    Outcome::Err {
        code,
        reasons,
        fields,
    }
}

fn enterprise(uscc: &str) -> Enterprise {
    Enterprise {
        uscc: uscc.into(),
        // The code in the name, so that a list filtered on it finds this enterprise alone.
        display_name: format!("山东绿氢科技有限公司（{uscc}）"),
        legal_representative: "王建国".into(),
        established_date: "2016-04-12".into(),
        ..Default::default()
    }
}

/// The scenario through a generated client (gRPC or grpc-web).
async fn through_client<T>(
    suite: &Suite,
    client: &mut EnterpriseRegistryServiceClient<T>,
    uscc: &str,
) -> Vec<Outcome>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let name = format!("enterprises/{uscc}");
    let mut out = Vec::new();
    let created = client
        .create_enterprise(suite.request(
            Role::Officer,
            CreateEnterpriseRequest {
                enterprise: Some(enterprise(uscc)),
                request_id: String::new(),
            },
        ))
        .await;
    let etag = created
        .as_ref()
        .map(|r| r.get_ref().etag.clone())
        .unwrap_or_default();
    out.push(grpc_outcome(created, uscc));
    out.push(grpc_outcome(
        client
            .get_enterprise(
                suite.request(Role::Officer, GetEnterpriseRequest { name: name.clone() }),
            )
            .await,
        uscc,
    ));
    out.push(grpc_outcome(
        client
            .update_enterprise(suite.request(
                Role::Officer,
                UpdateEnterpriseRequest {
                    enterprise: Some(Enterprise {
                        name: name.clone(),
                        etag,
                        display_name: format!("山东绿氢能源科技有限公司（{uscc}）"),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".into()],
                    }),
                    request_id: String::new(),
                },
            ))
            .await,
        uscc,
    ));
    out.push(grpc_outcome(
        client
            .list_enterprises(suite.request(
                Role::Officer,
                ListEnterprisesRequest {
                    filter: format!("display_name:\"{uscc}\""),
                    page_size: 10,
                    ..Default::default()
                },
            ))
            .await,
        uscc,
    ));
    // Errors: an unknown enterprise, a bad check character, a missing token.
    out.push(grpc_outcome(
        client
            .get_enterprise(suite.request(
                Role::Officer,
                GetEnterpriseRequest {
                    name: "enterprises/91370000MA0000000X".into(),
                },
            ))
            .await,
        uscc,
    ));
    let mut bad = enterprise(uscc);
    bad.uscc = format!("{}0", &uscc[..17]);
    if bad.uscc == uscc {
        bad.uscc = format!("{}1", &uscc[..17]);
    }
    out.push(grpc_outcome(
        client
            .create_enterprise(suite.request(
                Role::Officer,
                CreateEnterpriseRequest {
                    enterprise: Some(bad),
                    request_id: String::new(),
                },
            ))
            .await,
        uscc,
    ));
    out.push(grpc_outcome(
        client
            .get_enterprise(tonic::Request::new(GetEnterpriseRequest {
                name: name.clone(),
            }))
            .await,
        uscc,
    ));
    out
}

/// The same scenario over HTTP/JSON.
async fn through_http(http: &Http, uscc: &str) -> Vec<Outcome> {
    let mut out = Vec::new();
    let body = json!({
        "uscc": uscc,
        "displayName": format!("山东绿氢科技有限公司（{uscc}）"),
        "legalRepresentative": "王建国",
        "establishedDate": "2016-04-12",
    });
    let created = http
        .json("POST", "/v1/enterprises", Some(body.clone()))
        .await;
    let etag = created.json()["etag"].as_str().unwrap_or("").to_string();
    out.push(http_outcome(&created, uscc));
    out.push(http_outcome(
        &http
            .json("GET", &format!("/v1/enterprises/{uscc}"), None)
            .await,
        uscc,
    ));
    out.push(http_outcome(
        &http
            .json(
                "PATCH",
                &format!("/v1/enterprises/{uscc}?updateMask=displayName"),
                Some(json!({"etag": etag, "displayName": format!("山东绿氢能源科技有限公司（{uscc}）")})),
            )
            .await,
        uscc,
    ));
    let filter: String =
        form_urlencoded::byte_serialize(format!("display_name:\"{uscc}\"").as_bytes()).collect();
    out.push(http_outcome(
        &http
            .json(
                "GET",
                &format!("/v1/enterprises?filter={filter}&pageSize=10"),
                None,
            )
            .await,
        uscc,
    ));
    out.push(http_outcome(
        &http
            .json("GET", "/v1/enterprises/91370000MA0000000X", None)
            .await,
        uscc,
    ));
    let mut bad = body;
    let mut wrong = format!("{}0", &uscc[..17]);
    if wrong == uscc {
        wrong = format!("{}1", &uscc[..17]);
    }
    bad["uscc"] = json!(wrong);
    out.push(http_outcome(
        &http.json("POST", "/v1/enterprises", Some(bad)).await,
        uscc,
    ));
    out.push(http_outcome(
        &http
            .send(
                "GET",
                &format!("/v1/enterprises/{uscc}"),
                None,
                Bytes::new(),
                false,
            )
            .await,
        uscc,
    ));
    out
}

async fn one_scenario_three_ways_gives_equal_results(backend: Backend) {
    let Some(suite) = Suite::start(backend).await else {
        return;
    };
    let mut grpc = EnterpriseRegistryServiceClient::new(suite.channel.clone());
    let by_grpc = through_client(&suite, &mut grpc, USCCS[0]).await;

    let web_client = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(
            Client::builder(TokioExecutor::new())
                .build_http::<tonic_web::GrpcWebCall<tonic::body::Body>>(),
        );
    let origin: http::Uri = format!("http://{}", suite.server.addr).parse().unwrap();
    let mut web = EnterpriseRegistryServiceClient::with_origin(web_client, origin);
    let by_grpc_web = through_client(&suite, &mut web, USCCS[1]).await;

    let http = Http::new(&suite, Role::Officer);
    let by_http = through_http(&http, USCCS[2]).await;

    assert!(matches!(by_grpc[0], Outcome::Ok(_)), "{:?}", by_grpc[0]);
    assert!(
        matches!(&by_grpc[5], Outcome::Err { code: 3, fields, .. } if !fields.is_empty()),
        "{:?}",
        by_grpc[5]
    );
    assert!(
        matches!(by_grpc[6], Outcome::Err { code: 16, .. }),
        "{:?}",
        by_grpc[6]
    );
    for (i, ((g, w), h)) in by_grpc.iter().zip(&by_grpc_web).zip(&by_http).enumerate() {
        assert_eq!(g, w, "step {i}: gRPC and grpc-web differ");
        assert_eq!(g, h, "step {i}: gRPC and HTTP/JSON differ");
    }
    assert_eq!(by_grpc.len(), by_http.len());

    // The OpenAPI document of what the address serves, without a token: the committed one.
    let a = http
        .send("GET", "/openapi.json", None, Bytes::new(), false)
        .await;
    assert_eq!(a.status, 200);
    let document = a.json();
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../openapi/qilu.openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(document, committed);
    suite.stop().await;
}

async fn http_refuses_what_is_not_the_message_with_400s(backend: Backend) {
    let Some(suite) = Suite::start(backend).await else {
        return;
    };
    let http = Http::new(&suite, Role::Officer);
    // Not JSON.
    let a = http
        .send(
            "POST",
            "/v1/enterprises",
            Some("application/json"),
            "{\"uscc\": ",
            true,
        )
        .await;
    assert_eq!(
        a.violation(),
        (400, "body".into(), "MALFORMED_REQUEST".into())
    );
    // An unknown field, named.
    let a = http
        .json(
            "POST",
            "/v1/enterprises",
            Some(json!({"uscc": USCCS[0], "colour": "green"})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        a.violation(),
        (400, "enterprise.colour".into(), "UNKNOWN_FIELD".into())
    );
    // A wrong type, named by its path.
    let a = http
        .json(
            "POST",
            "/v1/enterprises",
            Some(json!({"uscc": USCCS[0], "technologyFields": [{"field": 1}]})),
        )
        .await;
    assert_eq!(
        a.violation(),
        (
            400,
            "enterprise.technologyFields[0]".into(),
            "MALFORMED_REQUEST".into()
        )
    );
    // A query parameter that is no field.
    let a = http.json("GET", "/v1/enterprises?pageSise=3", None).await;
    assert_eq!(
        a.violation(),
        (400, "pageSise".into(), "UNKNOWN_FIELD".into())
    );
    let a = http
        .json("GET", "/v1/enterprises?pageSize=many", None)
        .await;
    assert_eq!(
        a.violation(),
        (400, "pageSize".into(), "MALFORMED_REQUEST".into())
    );
    // Not JSON at all.
    let a = http
        .send("POST", "/v1/enterprises", Some("text/plain"), "uscc", true)
        .await;
    assert_eq!(
        a.violation(),
        (400, "content-type".into(), "UNSUPPORTED_MEDIA_TYPE".into())
    );
    // Over server.max_message_bytes.
    let big = json!({"uscc": USCCS[0], "displayName": "x".repeat(9 << 20)});
    let a = http.json("POST", "/v1/enterprises", Some(big)).await;
    assert_eq!(
        a.violation(),
        (400, "body".into(), "REQUEST_BODY_TOO_LARGE".into())
    );
    // A path bound to another method, a path bound to nothing.
    let a = http.json("DELETE", "/v1/enterprises", None).await;
    assert_eq!(a.status, 405);
    let a = http.json("GET", "/v2/nothing/here", None).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["code"], 5);
    suite.stop().await;
}

/// A bulk import goes in as NDJSON (one request message per line, streamed to the
/// client-streaming RPC as it is read); a snapshot and the change stream come out as NDJSON, one
/// response message per line, equal to what a gRPC caller reads.
async fn streams_go_in_and_out_as_ndjson(backend: Backend) {
    let Some(suite) = Suite::start(backend).await else {
        return;
    };
    let http = Http::new(&suite, Role::Officer);
    let row = |n: usize, uscc: &str| {
        json!({"rowNumber": n, "enterprise": {
            "uscc": uscc, "displayName": format!("企业{n}"), "establishedDate": format!("2015-01-0{n}")
        }})
    };
    let upload = [
        json!({"rows": [row(1, USCCS[0])], "requestId": uuid::Uuid::new_v4().to_string()}),
        json!({"rows": [row(2, USCCS[1]), row(3, USCCS[2])]}),
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect::<String>();
    let a = http
        .send(
            "POST",
            "/v1/enterprises:import",
            Some("application/x-ndjson"),
            upload,
            true,
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let answer = a.json();
    assert_eq!(answer["receivedCount"], "3", "{answer}");
    assert_eq!(answer["createdCount"], "3", "{answer}");

    // One request as plain JSON, pretty-printed, options as query parameters.
    let one = serde_json::to_vec_pretty(&json!({"rows": [row(1, USCCS[0])]})).unwrap();
    let a = http
        .send(
            "POST",
            "/v1/enterprises:import?validateOnly=true",
            Some("application/json"),
            one,
            true,
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["validateOnly"], true);
    assert_eq!(a.json()["unchangedCount"], "1");

    // A line that is not the message: 400 naming the line and the field.
    let bad = format!(
        "{}\n{}\n",
        json!({"rows": [row(4, USCCS[0])]}),
        json!({"rows": [{"rowNumber": 5, "enterprise": {"uscc": USCCS[1], "shoeSize": 42}}]})
    );
    let a = http
        .send(
            "POST",
            "/v1/enterprises:import",
            Some("application/x-ndjson"),
            bad,
            true,
        )
        .await;
    assert_eq!(
        a.violation(),
        (
            400,
            "line 2: rows[0].enterprise.shoeSize".into(),
            "UNKNOWN_FIELD".into()
        )
    );

    // The snapshot as NDJSON equals the gRPC stream, message for message.
    let a = http
        .send(
            "GET",
            "/v1/registry/changes:exportSnapshot",
            None,
            Bytes::new(),
            true,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "application/x-ndjson");
    let lines: Vec<Value> = String::from_utf8(a.body.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut grpc = EnterpriseRegistryServiceClient::new(suite.channel.clone());
    let mut stream = grpc
        .export_snapshot(suite.request(
            Role::Officer,
            qilu_proto::registry::ExportSnapshotRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut by_grpc = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        by_grpc.push(message_json(&message));
    }
    assert!(!lines.is_empty());
    assert_eq!(lines, by_grpc);
    let exported: usize = lines
        .iter()
        .map(|l| l["changes"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(exported, 3, "{lines:?}");

    // The change stream: the first line arrives while the stream stays open.
    let request = http::Request::builder()
        .uri(format!("{}/v1/registry/changes:watch", http.base))
        .header("authorization", format!("Bearer {}", http.token))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = http.client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = Vec::new();
    while !received.contains(&b'\n') {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a line in time")
            .expect("the stream stays open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            received.extend_from_slice(&data);
        }
    }
    let first: Value =
        serde_json::from_slice(&received[..received.iter().position(|b| *b == b'\n').unwrap()])
            .unwrap();
    assert!(
        first["changes"].as_array().is_some_and(|c| !c.is_empty()),
        "{first}"
    );
    drop(body);
    suite.stop().await;
}

/// CORS: pages of the configured origins may call (grpc-web and HTTP/JSON), others get no CORS
/// headers, and with no origin configured (the default) no page of another origin may.
async fn cors_allows_only_the_configured_origins(backend: Backend) {
    let Some(server) = qilu_suite::testing::TestSuite::start(
        backend,
        &[(
            "QILU__SERVER__CORS_ALLOWED_ORIGINS",
            "https://portal.example.gov.cn,https://other.example.gov.cn".to_string(),
        )],
    )
    .await
    else {
        return;
    };
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let preflight = |origin: &str, headers: &str| {
        http::Request::builder()
            .method("OPTIONS")
            .uri(format!("http://{}/v1/enterprises", server.addr))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", headers)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    for headers in ["authorization,content-type", "x-grpc-web,content-type"] {
        let ok = client
            .request(preflight("https://portal.example.gov.cn", headers))
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(
            ok.headers()["access-control-allow-origin"],
            "https://portal.example.gov.cn"
        );
        let refused = client
            .request(preflight("https://evil.example.com", headers))
            .await
            .unwrap();
        assert!(
            refused
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
    // A simple cross-origin GET: the answer carries the header for an allowed origin only.
    let get = |origin: &str| {
        http::Request::builder()
            .uri(format!("http://{}/openapi.json", server.addr))
            .header("origin", origin)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let ok = client
        .request(get("https://other.example.gov.cn"))
        .await
        .unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://other.example.gov.cn"
    );
    let refused = client
        .request(get("https://evil.example.com"))
        .await
        .unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    server.stop().await;

    // The default: no origin is allowed.
    let Some(server) = qilu_suite::testing::TestSuite::start(backend, &[]).await else {
        return;
    };
    let answer = client
        .request(
            http::Request::builder()
                .uri(format!("http://{}/openapi.json", server.addr))
                .header("origin", "https://portal.example.gov.cn")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    server.stop().await;
}

/// CSV uploads take the files `qilu … import` takes and answer what the CLI reports for them:
/// the sample enterprises (12 created, one wrong check character rejected by the server), then
/// the migration's certificates with their report history (5 created, one report filed before
/// its year ended) and figures (3 created, one negative figure); a cell this side cannot read
/// is a rejected row in the answer, the others go on.
async fn csv_uploads_import_what_the_cli_imports(backend: Backend) {
    let Some(suite) = Suite::start(backend).await else {
        return;
    };
    let http = Http::new(&suite, Role::Officer);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let upload = |path: &'static str, file: &'static str| {
        let http = &http;
        async move {
            let body = std::fs::read(format!("{root}/{file}")).unwrap();
            let a = http.send("POST", path, Some("text/csv"), body, true).await;
            assert_eq!(
                a.status,
                200,
                "{file}: {}",
                String::from_utf8_lossy(&a.body)
            );
            a.json()
        }
    };
    let counts = |j: &Value| {
        (
            j["receivedCount"].as_str().unwrap_or("0").to_string(),
            j["createdCount"].as_str().unwrap_or("0").to_string(),
            j["rejectedCount"].as_str().unwrap_or("0").to_string(),
        )
    };
    let enterprises = upload(
        "/v1/enterprises:import",
        "crates/cli/samples/enterprises.csv",
    )
    .await;
    assert_eq!(counts(&enterprises), ("13".into(), "12".into(), "1".into()));
    let certificates = upload(
        "/v1/highTechCertificates:import",
        "examples/migration/certificates.csv",
    )
    .await;
    assert_eq!(counts(&certificates), ("6".into(), "5".into(), "1".into()));
    let figures = upload("/v1/annualFigures:import", "examples/migration/figures.csv").await;
    assert_eq!(counts(&figures), ("4".into(), "3".into(), "1".into()));

    // A cell this side cannot read: that row is rejected with its problem, the rest imported.
    let csv = format!(
        "uscc,display_name,established_date,green_category\n\
         {},企业甲,2019-03-01,PURPLE\n\
         {},企业乙,2019-03-02,CLEAN_ENERGY\n",
        USCCS[0], "91370212MA940004XE"
    );
    let a = http
        .send(
            "POST",
            "/v1/enterprises:import",
            Some("text/csv"),
            csv,
            true,
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let answer = a.json();
    assert_eq!(answer["receivedCount"], "2", "{answer}");
    assert_eq!(answer["rejectedCount"], "1", "{answer}");
    let rejected = answer["rowResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "IMPORT_ROW_OUTCOME_REJECTED")
        .unwrap()
        .clone();
    assert_eq!(rejected["rowNumber"], "2");
    assert_eq!(
        rejected["problems"][0]["field"],
        "enterprise.green_category"
    );

    // A header that is not this import's: 400, nothing sent.
    let a = http
        .send(
            "POST",
            "/v1/enterprises:import",
            Some("text/csv"),
            "uscc,colour\nX,green\n",
            true,
        )
        .await;
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.json()["message"].as_str().unwrap().contains("colour"));
    // CSV where no import is bound: 400 UNSUPPORTED_MEDIA_TYPE.
    let a = http
        .send("POST", "/v1/enterprises", Some("text/csv"), "uscc\n", true)
        .await;
    assert_eq!(a.status, 400);
    suite.stop().await;
}

/// An import as a browser runs it, without a client stream: create the import, append the rows
/// in unary chunks (a repeat is a no-op), start it, follow the operation by its name until done,
/// and page the verdicts.
async fn an_import_runs_as_an_operation_over_http(backend: Backend) {
    let Some(suite) = Suite::start(backend).await else {
        return;
    };
    let http = Http::new(&suite, Role::Officer);
    let a = http
        .json(
            "POST",
            "/v1/imports",
            Some(json!({"kind": "IMPORT_KIND_ENTERPRISES"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let name = a.json()["name"].as_str().unwrap().to_string();
    let rows: Vec<Value> = USCCS
        .iter()
        .enumerate()
        .map(|(i, uscc)| {
            json!({"rowNumber": i + 2, "enterprise": {
                "uscc": uscc, "displayName": format!("企业{i}"), "establishedDate": "2018-06-01"
            }})
        })
        .chain(std::iter::once(json!({"rowNumber": 5, "enterprise": {
            "uscc": "91370000MA0000000X", "displayName": "校验位错误", "establishedDate": "2018-06-01"
        }})))
        .collect();
    for chunk in [(0, &rows[..2]), (0, &rows[..2]), (2, &rows[2..])] {
        let a = http
            .json(
                "POST",
                &format!("/v1/{name}:appendRows"),
                Some(json!({"firstRowOffset": chunk.0, "enterpriseRows": chunk.1})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    }
    let a = http
        .json("POST", &format!("/v1/{name}:start"), Some(json!({})))
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let operation = a.json()["name"].as_str().unwrap().to_string();
    assert!(operation.starts_with("operations/registry-"), "{operation}");
    let mut done = Value::Null;
    for _ in 0..200 {
        let a = http.json("GET", &format!("/v1/{operation}"), None).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let op = a.json();
        if op["done"] == true {
            done = op;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["response"]["createdCount"], "3", "{done}");
    assert_eq!(done["response"]["rejectedCount"], "1", "{done}");
    assert_eq!(
        done["metadata"]["@type"],
        "type.googleapis.com/qilu.registry.v1.ImportProgress"
    );
    let a = http
        .json(
            "GET",
            &format!("/v1/{name}/rowResults?filter=outcome%20%3D%20IMPORT_ROW_OUTCOME_REJECTED"),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let results = a.json();
    let list = results["rowResults"].as_array().expect("row results");
    assert_eq!(list.len(), 1, "{results}");
    assert_eq!(list[0]["rowNumber"], "5");
    suite.stop().await;
}

/// Every request media type `/openapi.json` lists for an import is one the server takes.
/// Schemathesis found the document offering bodies that the transcoder refused with 400
/// UNSUPPORTED_MEDIA_TYPE; every media type listed is now taken (`application/json` as one
/// request message, NDJSON, and CSV in the columns of `qilu … import`).
async fn imports_take_every_media_type_the_document_lists(backend: Backend) {
    let Some(suite) = Suite::start(backend).await else {
        return;
    };
    let http = Http::new(&suite, Role::Officer);
    let doc = http
        .send("GET", "/openapi.json", None, Bytes::new(), false)
        .await
        .json();
    let mut tried = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(content) = item["post"]["requestBody"]["content"].as_object() else {
            continue;
        };
        if !path.ends_with(":import") {
            continue;
        }
        for media in content.keys() {
            // CSV carries rows only (a header row here); the options go in the query.
            let (target, body) = if media == "text/csv" {
                let header = match path.as_str() {
                    "/v1/enterprises:import" => "uscc,display_name,established_date",
                    "/v1/highTechCertificates:import" => {
                        "uscc,certificate_number,issue_date,technology_field"
                    }
                    _ => "uscc,year",
                };
                (format!("{path}?validateOnly=true"), format!("{header}\n"))
            } else {
                (
                    path.clone(),
                    format!("{}\n", json!({"rows": [], "validateOnly": true})),
                )
            };
            let a = http.send("POST", &target, Some(media), body, true).await;
            assert_eq!(
                a.status,
                200,
                "{media} to {path}: {}",
                String::from_utf8_lossy(&a.body)
            );
            assert_eq!(a.json()["validateOnly"], true, "{media} to {path}");
            tried.push(format!("{path} {media}"));
        }
    }
    assert_eq!(tried.len(), 9, "{tried:?}");

    // One request message as application/json, pretty-printed over several lines: its rows are
    // imported, and a field that is not in the message is named as in any JSON body.
    let one = json!({"rows": [{"rowNumber": 1, "enterprise": {
        "uscc": USCCS[0], "displayName": "企业1", "establishedDate": "2015-01-01"
    }}]});
    let a = http
        .send(
            "POST",
            "/v1/enterprises:import",
            Some("application/json"),
            serde_json::to_vec_pretty(&one).unwrap(),
            true,
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["createdCount"], "1", "{}", a.json());
    let bad = json!({"rows": [{"rowNumber": 1, "enterprise": {"uscc": USCCS[1], "shoeSize": 42}}]});
    let a = http.json("POST", "/v1/enterprises:import", Some(bad)).await;
    assert_eq!(
        a.violation(),
        (
            400,
            "rows[0].enterprise.shoeSize".into(),
            "UNKNOWN_FIELD".into()
        )
    );
    // A media type the document does not list is refused by name.
    let a = http
        .send(
            "POST",
            "/v1/enterprises:import",
            Some("text/plain"),
            "uscc\n",
            true,
        )
        .await;
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.json()["message"].as_str().unwrap().contains("text/plain"));
    suite.stop().await;
}

on_both_backends!(
    imports_take_every_media_type_the_document_lists,
    an_import_runs_as_an_operation_over_http,
    csv_uploads_import_what_the_cli_imports,
    cors_allows_only_the_configured_origins,
    one_scenario_three_ways_gives_equal_results,
    http_refuses_what_is_not_the_message_with_400s,
    streams_go_in_and_out_as_ndjson,
);
