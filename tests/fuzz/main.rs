//! A fuzz test over every RPC of the three services, through the real gRPC stack.
//!
//! All three services are mounted on one port (as `qilu dev` does), each over its own fresh
//! database, with the awards service's peers pointing at that same port. Every method of the
//! `qilu.*` services in `qilu_proto::FILE_DESCRIPTOR_SET` is called with random and
//! adversarial requests built with prost-reflect (`DynamicMessage`): random field values, very
//! long and non-ASCII strings, extreme and negative numbers, unknown enum numbers, long repeated
//! fields, nested messages, plausible-but-wrong resource names, filters with many conditions
//! and odd syntax, bogus field masks and page tokens — and raw random bytes as the body. Each
//! call carries a token of a random role (or none, or garbage).
//!
//! What must hold after every call: the answer is not INTERNAL or UNKNOWN (that is always our
//! fault: a caller's mistake is INVALID_ARGUMENT, NOT_FOUND, …), the error's message, details
//! and metadata stay bounded, and after each batch the server still answers its health check
//! on the same connection (it neither aborted nor dropped us). Failures are collected and
//! printed with the method and a summary of the input, then the test fails.
//!
//! Knobs (environment): `QILU_FUZZ_SEED` (printed on every run; default: from the clock),
//! `QILU_FUZZ_CALLS` (SQLite calls; default 2,400; the PostgreSQL slice is a quarter of it),
//! `QILU_FUZZ_CONCURRENCY` (calls in flight; default 4). `QILU_FUZZ_CALLS=100000` is the
//! bench mode: it also turns on the sizes the CI slice leaves out (see [`Limits`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use prost::Message as _;
use prost::bytes::{Buf, BufMut};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    MethodDescriptor, Value,
};
use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::Config;
use qilu_common::testing::Backend;
use qilu_suite::testing::TestSuite;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

// ---------------------------------------------------------------------------------------------
// A codec that sends and receives raw message bytes
// ---------------------------------------------------------------------------------------------

/// Passes message bytes through unchanged, so any bytes can be a request body.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, fast and reproducible from one seed; enough for a fuzzer's choices.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Adversarial values
// ---------------------------------------------------------------------------------------------

/// Sizes the generator may reach. The CI slice reaches past every input bound of
/// `qilu_common::limits` (filters of 2,048 bytes / 32 conditions, 256-character values, 64-char
/// echoes) so the refusals themselves are fuzzed, while keeping each call cheap; the bench mode
/// goes to sizes that once overflowed the stack (~40k conditions) and reset connections with
/// oversized trailers.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Most conditions in a generated filter.
    filter_conditions: usize,
    /// Longest generated string, in characters.
    long_string: usize,
    /// Most elements in a generated repeated field.
    repeated: usize,
}

const CI_LIMITS: Limits = Limits {
    filter_conditions: 2_000,
    long_string: 8_192,
    repeated: 200,
};

const BENCH_LIMITS: Limits = Limits {
    filter_conditions: 50_000,
    long_string: 200_000,
    repeated: 5_000,
};

const USCCS: [&str; 8] = [
    "91350100M000100Y43",
    "91110000600037341L",
    "91350100M000100Y4Z",
    "91350100M0001TGQXM",
    "94370100MA3C00003",
    "91370100MA3C00000E",
    "9137010",
    "Y1370200MA3C000041",
];

const PLAUSIBLE_NAMES: [&str; 34] = [
    "enterprises/91350100M000100Y43",
    "enterprises/91350100M000100Y4Z",
    "enterprises/",
    "enterprises/91350100M000100Y43/certificates/x",
    "enterprises/91350100M000100Y43/figures/2024",
    "enterprises/-",
    "enterprises/../../etc/passwd",
    "zones/jinan",
    "zones/JINAN",
    "zones/",
    "clusters/hydrogen",
    "clusters/h/members/91350100M000100Y43",
    "policyTargets/x",
    "cohorts/2024",
    "cohorts/2024/members/91350100M000100Y43",
    "supportPolicies/1",
    "achievements/1",
    "achievements/01J0000000000000000000000",
    "achievements/",
    "achievements/%00",
    "experts/e1",
    "experts/e1/reviews/x",
    "achievements/a/reviews/r",
    "ruleSets/two-high",
    "ruleSets/two-high/versions/1",
    "programs/p",
    "programs/p/applications/a",
    "programs/p/objections/o",
    "programs/p/allocation",
    "programs/",
    "programs/p/applications/",
    "programs/P",
    "programs/p/../q",
    "//",
];

const FILTERS: [&str; 24] = [
    "",
    "city = \"Qingdao\"",
    "name:\"科技\"",
    "display_name:\"a\" AND year = 2024",
    "year >= 2020 AND year <= 2030",
    "state = ENTERPRISE_STATE_ACTIVE",
    "kind = PROGRAM_KIND_AWARD",
    "resource = \"enterprises/91350100M000100Y43\"",
    "actor = \"x\" AND method = \"y\"",
    "leading = true",
    "year = 99999999999999999999",
    "year = -1",
    "(((((",
    ")",
    "a = ",
    "= b",
    "\"unterminated",
    "year = 2024 OR year = 2025",
    "NOT year = 1",
    "a.b.c = 1",
    "city = \"\\\"\"",
    "city = \"\u{0}\"",
    "AND AND AND",
    "city=\"Jinan\"AND",
];

const PATHS: [&str; 16] = [
    "display_name",
    "year",
    "award_quotas",
    "name",
    "uscc",
    "etag",
    "*",
    "",
    "a.b.c",
    "display_name.x",
    "deadlines.application_deadline",
    "address",
    "technology_fields",
    "state",
    "create_time",
    "DISPLAY_NAME",
];

const UNICODE: [&str; 12] = [
    "山东氢能科技有限公司",
    "\u{0}",
    "\u{202e}evil",
    "👩‍🔬🧪",
    "\u{fffd}",
    "ﬀ",
    "Ａｂｃ",
    "\u{3000}",
    "e\u{301}",
    "𝕏",
    "\r\n",
    "'; DROP TABLE enterprise; --",
];

fn long_string(rng: &mut Rng, limits: Limits) -> String {
    let n = match rng.below(4) {
        0 => 256.min(limits.long_string),
        1 => 1024.min(limits.long_string),
        2 => limits.long_string,
        _ => rng.below(limits.long_string) + 1,
    };
    let unit = *rng.pick(&["a", "中", "9", "%", "\u{0}", "🧪"]);
    unit.repeat(n)
}

fn filter(rng: &mut Rng, limits: Limits) -> String {
    if rng.chance(60) {
        return (*rng.pick(&FILTERS)).to_string();
    }
    let n = match rng.below(3) {
        0 => rng.below(10) + 1,
        1 => rng.below(200) + 1,
        _ => limits.filter_conditions,
    };
    let fields = [
        "year", "city", "name", "state", "kind", "actor", "resource", "zone",
    ];
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            let joiner = *rng.pick(&[" AND ", " AND ", " OR ", " ", " AND NOT "]);
            out.push_str(joiner);
        }
        let _ = write!(
            out,
            "{} {} {}",
            rng.pick(&fields),
            rng.pick(&["=", "!=", "<", ">=", ":", "~"]),
            rng.pick(&["2024", "\"Jinan\"", "-1", "true", "x", "\"\""])
        );
    }
    out
}

fn random_string(rng: &mut Rng, field: &FieldDescriptor, limits: Limits) -> String {
    let name = field.name();
    // Field-aware first: the strings a handler parses most.
    if rng.chance(50) {
        if name.contains("filter") {
            return filter(rng, limits);
        }
        if name.contains("page_token") {
            return (*rng.pick(&[
                "",
                "x",
                "eyJ9",
                "AAAA",
                "%%%",
                "eyJrZXkiOjEsImlkIjoieCJ9",
                "bm90IGEgdG9rZW4",
            ]))
            .to_string();
        }
        if name.contains("order_by") {
            return (*rng.pick(&["", "name", "year desc", "x", "name desc desc", "name,year"]))
                .to_string();
        }
        if name == "request_id" {
            return (*rng.pick(&[
                "",
                "not-a-uuid",
                "00000000-0000-0000-0000-000000000000",
                "0190b8d3-3c1e-7d2e-9f00-000000000001",
            ]))
            .to_string();
        }
        if name.contains("uscc") || name == "enterprise" {
            return (*rng.pick(&USCCS)).to_string();
        }
        if name == "name" || name == "parent" || name.ends_with("_name") || name.ends_with('s') {
            return (*rng.pick(&PLAUSIBLE_NAMES)).to_string();
        }
        if name.contains("date") {
            return (*rng.pick(&["2024-05-31", "2024-02-30", "0000-00-00", "9999-12-31", "x"]))
                .to_string();
        }
        if name == "etag" {
            return (*rng.pick(&["", "x", "0000000000000000"])).to_string();
        }
    }
    match rng.below(8) {
        0 => String::new(),
        1 => long_string(rng, limits),
        2 => (*rng.pick(&UNICODE)).to_string(),
        3 => (*rng.pick(&PLAUSIBLE_NAMES)).to_string(),
        4 => (*rng.pick(&USCCS)).to_string(),
        5 => filter(rng, limits),
        6 => (*rng.pick(&PATHS)).to_string(),
        _ => format!("x{}", rng.next() % 1000),
    }
}

fn random_i64(rng: &mut Rng) -> i64 {
    let any = rng.next() as i64;
    let small = (rng.next() % 200) as i64 - 100;
    *rng.pick(&[
        0,
        1,
        -1,
        2024,
        i64::MAX,
        i64::MIN,
        i64::from(i32::MAX),
        i64::from(i32::MIN),
        1 << 53,
        any,
        small,
    ])
}

fn scalar(
    rng: &mut Rng,
    field: &FieldDescriptor,
    kind: &Kind,
    limits: Limits,
    depth: u32,
) -> Value {
    match kind {
        Kind::Double => Value::F64(*rng.pick(&[0.0, -1.0, f64::NAN, f64::INFINITY, 1e308])),
        Kind::Float => Value::F32(*rng.pick(&[0.0, -1.0, f32::NAN, f32::MAX])),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(random_i64(rng) as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(random_i64(rng)),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(random_i64(rng) as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(random_i64(rng) as u64),
        Kind::Bool => Value::Bool(rng.chance(50)),
        Kind::String => Value::String(random_string(rng, field, limits)),
        Kind::Bytes => Value::Bytes(random_bytes(rng, 64).into()),
        Kind::Enum(e) => {
            let values: Vec<i32> = e.values().map(|v| v.number()).collect();
            Value::EnumNumber(if rng.chance(80) {
                *rng.pick(&values)
            } else {
                *rng.pick(&[-1, 99, i32::MAX, i32::MIN, 1000])
            })
        }
        Kind::Message(m) => Value::Message(message(rng, m, limits, depth + 1)),
    }
}

fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    let n = rng.below(max + 1);
    (0..n).map(|_| rng.next() as u8).collect()
}

/// A random message of type `desc`: each field set with some probability, nested up to a depth.
fn message(rng: &mut Rng, desc: &MessageDescriptor, limits: Limits, depth: u32) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    if depth > 4 {
        return msg;
    }
    for field in desc.fields() {
        if !rng.chance(if depth == 0 { 75 } else { 45 }) {
            continue;
        }
        let kind = field.kind();
        let value = if field.is_map() {
            let Kind::Message(entry) = &kind else {
                continue;
            };
            let key_field = entry.map_entry_key_field();
            let value_field = entry.map_entry_value_field();
            let mut map = std::collections::HashMap::new();
            for _ in 0..rng.below(5) {
                let key = match scalar(rng, &key_field, &key_field.kind(), limits, depth) {
                    Value::String(s) => MapKey::String(s),
                    Value::I32(v) => MapKey::I32(v),
                    Value::I64(v) => MapKey::I64(v),
                    Value::U32(v) => MapKey::U32(v),
                    Value::U64(v) => MapKey::U64(v),
                    Value::Bool(v) => MapKey::Bool(v),
                    _ => continue,
                };
                map.insert(
                    key,
                    scalar(rng, &value_field, &value_field.kind(), limits, depth),
                );
            }
            Value::Map(map)
        } else if field.is_list() {
            let n = match rng.below(10) {
                0 => limits.repeated,
                1..=3 => 0,
                _ => rng.below(6),
            };
            // Long lists of messages are costly to build; keep them to scalars mostly.
            let n = if matches!(kind, Kind::Message(_)) {
                n.min(50)
            } else {
                n
            };
            Value::List(
                (0..n)
                    .map(|_| scalar(rng, &field, &kind, limits, depth))
                    .collect(),
            )
        } else {
            scalar(rng, &field, &kind, limits, depth)
        };
        msg.set_field(&field, value);
    }
    msg
}

// ---------------------------------------------------------------------------------------------
// The suite under test
// ---------------------------------------------------------------------------------------------

/// The three services on one port, each over its own fresh database; every peer is that same
/// port (`qilu_suite`, as `qilu dev` runs them).
struct Suite {
    channel: Channel,
    config: Config,
    server: TestSuite,
}

impl Suite {
    async fn start(backend: Backend) -> Option<Suite> {
        let server =
            TestSuite::start(backend, &[("QILU__PEERS__TIMEOUT_MS", "2000".into())]).await?;
        Some(Suite {
            channel: server.channel.clone(),
            config: server.config.clone(),
            server,
        })
    }

    fn token(&self, role: Role) -> String {
        mint_hs256(
            &self.config.auth,
            &TokenRequest {
                subject: format!("fuzz-{role}"),
                roles: vec![role],
                enterprise: (role == Role::Enterprise).then(|| USCCS[0].to_string()),
                expert: (role == Role::Expert).then(|| "e1".to_string()),
                ttl_seconds: 3600,
            },
        )
        .unwrap()
    }

    async fn healthy(&self) -> Result<(), String> {
        let mut health = HealthClient::new(self.channel.clone());
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            health.check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            }),
        )
        .await
        .map_err(|_| "health check timed out".to_string())?
        .map_err(|s| format!("health check failed: {s:?}"))?
        .into_inner();
        if answer.status == ServingStatus::Serving as i32 {
            Ok(())
        } else {
            Err(format!("health status {}", answer.status))
        }
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// One call
// ---------------------------------------------------------------------------------------------

/// Largest error (message + details + metadata) a caller may receive for any input. Errors echo
/// at most a bounded part of the input; a 4 KiB string is the CI slice's longest.
const MAX_ERROR_BYTES: usize = 16 * 1024;

/// What one call sends.
struct Input {
    method: MethodDescriptor,
    body: Vec<u8>,
    summary: String,
    bearer: Option<String>,
    /// Client-streaming: how many copies of the body.
    messages: usize,
}

/// `request` with the input's bearer token and a deadline.
fn authorize<T>(mut request: tonic::Request<T>, input: &Input) -> tonic::Request<T> {
    if let Some(bearer) = &input.bearer
        && let Ok(value) = format!("Bearer {bearer}").parse()
    {
        request.metadata_mut().insert("authorization", value);
    }
    request.set_timeout(Duration::from_secs(20));
    request
}

/// Why a call counts as our fault, or `None`.
async fn call(channel: Channel, input: &Input) -> Option<String> {
    let path: http::uri::PathAndQuery = format!(
        "/{}/{}",
        input.method.parent_service().full_name(),
        input.method.name()
    )
    .parse()
    .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Err(e) = grpc.ready().await {
        return Some(format!("channel not ready: {e}"));
    }
    let result: Result<(), Status> = if input.method.is_client_streaming() {
        let bodies = vec![input.body.clone(); input.messages];
        let request = authorize(tonic::Request::new(futures::stream::iter(bodies)), input);
        grpc.client_streaming::<_, Vec<u8>, Vec<u8>, _>(request, path, RawCodec)
            .await
            .map(|_| ())
    } else if input.method.is_server_streaming() {
        let request = authorize(tonic::Request::new(input.body.clone()), input);
        match grpc
            .server_streaming::<Vec<u8>, Vec<u8>, _>(request, path, RawCodec)
            .await
        {
            Err(s) => Err(s),
            Ok(response) => {
                // Read what arrives for a moment (a follow-mode feed never ends), then drop it.
                let mut stream = response.into_inner();
                let deadline = tokio::time::sleep(Duration::from_millis(200));
                tokio::pin!(deadline);
                let mut outcome = Ok(());
                for _ in 0..100 {
                    tokio::select! {
                        _ = &mut deadline => break,
                        item = stream.next() => match item {
                            None => break,
                            Some(Ok(_)) => {}
                            Some(Err(s)) => { outcome = Err(s); break; }
                        }
                    }
                }
                outcome
            }
        }
    } else {
        let request = authorize(tonic::Request::new(input.body.clone()), input);
        grpc.unary::<Vec<u8>, Vec<u8>, _>(request, path, RawCodec)
            .await
            .map(|_| ())
    };
    let status = result.err()?;
    let size = status.message().len()
        + status.details().len()
        + status
            .metadata()
            .iter()
            .map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => k.as_str().len() + v.len(),
                tonic::metadata::KeyAndValueRef::Binary(k, v) => {
                    k.as_str().len() + v.as_encoded_bytes().len()
                }
            })
            .sum::<usize>();
    let message: String = status.message().chars().take(300).collect();
    match status.code() {
        Code::Internal | Code::Unknown => Some(format!("{:?}: {message}", status.code())),
        _ if size > MAX_ERROR_BYTES => Some(format!(
            "{:?} error of {size} bytes (limit {MAX_ERROR_BYTES}): {message}",
            status.code()
        )),
        _ => None,
    }
}

/// The input for call number `index` of a run seeded with `seed`: reproducible on its own.
fn input(
    seed: u64,
    index: u64,
    methods: &[MethodDescriptor],
    tokens: &[(String, String)],
    limits: Limits,
) -> Input {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let method = rng.pick(methods).clone();
    let (body, what) = if rng.chance(8) {
        let max = if rng.chance(10) { 100_000 } else { 200 };
        let b = random_bytes(&mut rng, max);
        let n = b.len();
        (b, format!("{n} random bytes"))
    } else {
        let m = message(&mut rng, &method.input(), limits, 0);
        // The protobuf text format: just the fields set.
        let mut text = format!("{m}");
        if text.len() > 400 {
            let cut = (0..=400)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        (m.encode_to_vec(), text)
    };
    let (role, bearer) = match rng.below(tokens.len() + 2) {
        i if i < tokens.len() => (tokens[i].0.clone(), Some(tokens[i].1.clone())),
        i if i == tokens.len() => ("none".to_string(), None),
        _ => ("garbage".to_string(), Some("not.a.jwt".to_string())),
    };
    Input {
        summary: format!(
            "#{index} {} as {role}: {} bytes, {what}",
            method.full_name(),
            body.len()
        ),
        method,
        body,
        bearer,
        messages: rng.below(3) + 1,
    }
}

/// Runs `calls` fuzz calls against a fresh suite on `backend`; returns the failures.
async fn fuzz(backend: Backend, seed: u64, calls: u64, limits: Limits) -> Option<Vec<String>> {
    let suite = Suite::start(backend).await?;
    let pool = DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
    let methods: Vec<MethodDescriptor> = pool
        .services()
        .filter(|s| s.full_name().starts_with("qilu."))
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .collect();
    let services: Vec<String> = pool
        .services()
        .filter(|s| s.full_name().starts_with("qilu."))
        .map(|s| s.full_name().to_string())
        .collect();
    assert_eq!(services.len(), 3, "{services:?}");
    let tokens: Vec<(String, String)> = [
        Role::Admin,
        Role::Officer,
        Role::Expert,
        Role::Enterprise,
        Role::Auditor,
        Role::Service,
    ]
    .into_iter()
    .map(|r| (r.to_string(), suite.token(r)))
    .collect();
    let concurrency: usize = std::env::var("QILU_FUZZ_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    println!(
        "fuzz {backend:?}: {} methods of {services:?}, {calls} calls, seed {seed}, concurrency {concurrency}, {limits:?}",
        methods.len()
    );
    let started = Instant::now();
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let done = Arc::new(AtomicU64::new(0));
    let batch = 200u64;
    let mut index = 0;
    while index < calls {
        let end = (index + batch).min(calls);
        futures::stream::iter(index..end)
            .for_each_concurrent(concurrency, |i| {
                let input = input(seed, i, &methods, &tokens, limits);
                let channel = suite.channel.clone();
                let failures = failures.clone();
                let done = done.clone();
                async move {
                    if let Some(why) = call(channel, &input).await {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{why}\n    input {}", input.summary));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await;
        if let Err(why) = suite.healthy().await {
            failures.lock().unwrap().push(format!(
                "after call {end}: the server stopped answering: {why}"
            ));
            break;
        }
        index = end;
    }
    let elapsed = started.elapsed();
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    println!(
        "fuzz {backend:?}: {} calls in {:.1} s ({:.0}/s), {} failures",
        done.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64().max(1e-9),
        failures.len(),
    );
    suite.stop().await;
    Some(failures)
}

fn settings() -> (u64, u64, Limits) {
    let seed = std::env::var("QILU_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let calls: u64 = std::env::var("QILU_FUZZ_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_400);
    let limits = if calls >= 100_000 {
        BENCH_LIMITS
    } else {
        CI_LIMITS
    };
    (seed, calls, limits)
}

fn report(backend: Backend, seed: u64, failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    let shown: Vec<&String> = failures.iter().take(40).collect();
    panic!(
        "{} fuzz failures on {backend:?} (rerun with QILU_FUZZ_SEED={seed}); first {}:\n{}",
        failures.len(),
        shown.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_survives_random_and_adversarial_requests_on_sqlite() {
    let (seed, calls, limits) = settings();
    let failures = fuzz(Backend::Sqlite, seed, calls, limits).await.unwrap();
    report(Backend::Sqlite, seed, &failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_survives_random_and_adversarial_requests_on_postgres() {
    let (seed, calls, limits) = settings();
    // A smaller slice: the same generator, a quarter of the calls.
    let Some(failures) = fuzz(Backend::Postgres, seed, (calls / 4).max(1), limits).await else {
        return;
    };
    report(Backend::Postgres, seed, &failures);
}
