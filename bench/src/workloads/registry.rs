//! Registry workloads: point reads, lists, creates and bulk imports against a seeded registry,
//! and the request helpers every workload shares.

use super::*;

/// A bearer header as gRPC metadata (parsed once, cloned per call).
pub(super) fn header(bearer: &str) -> Result<MetadataValue<Ascii>> {
    bearer
        .parse()
        .map_err(|e| anyhow!("bad bearer header: {e}"))
}

pub(super) fn request<T>(auth: &MetadataValue<Ascii>, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert("authorization", auth.clone());
    r
}

pub(super) fn status_text(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

/// A valid GB 32100 code registered in Jinan: `tag` (two letters of the code alphabet) keeps
/// the workloads' enterprises apart, `n` < 10,000,000 numbers them.
pub fn uscc(tag: &str, n: u64) -> String {
    let body = format!("91370100{tag}{n:07}");
    // `tag` and the digits are always in the code alphabet, so a check character exists.
    let check = qilu_uscc::check_character(&body).unwrap_or('0');
    format!("{body}{check}")
}

pub(super) fn enterprise(tag: &str, n: u64) -> rpb::Enterprise {
    rpb::Enterprise {
        uscc: uscc(tag, n),
        display_name: format!("山东绿色低碳科技有限公司{tag}{n}"),
        legal_representative: "张三".into(),
        established_date: "2012-03-15".into(),
        address: "山东省济南市历下区经十路".into(),
        ..Default::default()
    }
}

pub(super) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Imports `count` enterprises `tag`/`from..from+count` in 500-row messages; returns the
/// response and the elapsed time.
pub(super) async fn import(
    channel: Channel,
    auth: &MetadataValue<Ascii>,
    tag: &str,
    from: u64,
    count: u64,
) -> Result<(rpb::ImportEnterprisesResponse, Duration)> {
    let tag = tag.to_string();
    let request_id = uuid();
    let messages: Vec<rpb::ImportEnterprisesRequest> = (0..count)
        .collect::<Vec<_>>()
        .chunks(500)
        .enumerate()
        .map(|(i, chunk)| rpb::ImportEnterprisesRequest {
            rows: chunk
                .iter()
                .map(|&k| rpb::ImportEnterpriseRow {
                    row_number: k as i64 + 1,
                    enterprise: Some(enterprise(&tag, from + k)),
                })
                .collect(),
            request_id: if i == 0 {
                request_id.clone()
            } else {
                String::new()
            },
            validate_only: false,
            rejected_rows_only: true,
        })
        .collect();
    let started = Instant::now();
    let response = EnterpriseRegistryServiceClient::new(channel)
        .max_encoding_message_size(64 << 20)
        .import_enterprises(request(auth, futures::stream::iter(messages)))
        .await
        .map_err(|s| anyhow!("import: {}", status_text(s)))?
        .into_inner();
    let elapsed = started.elapsed();
    if response.rejected_count > 0 {
        bail!(
            "import rejected {} rows: {:?}",
            response.rejected_count,
            response.row_results.first()
        );
    }
    Ok((response, elapsed))
}

/// A registry seeded with `seed` enterprises (every tenth holding a valid high-tech
/// certificate, so `high_tech_certified` is derived from real rows).
pub(super) async fn seeded_registry(
    args: &Args,
    rt: &tokio::runtime::Handle,
    dbs: &Databases,
    url: &str,
) -> Result<Running> {
    let registry = setup::start::<Registry>(rt, dbs.dir.path(), url, &[]).await?;
    let channel = registry.channels(1).await?.remove(0);
    let admin = header(&registry.bearer(&[Role::Admin], None, None)?)?;
    import(channel.clone(), &admin, "MC", 0, args.seed).await?;
    let certificates = futures::stream::iter((0..args.seed).step_by(10))
        .map(|n| {
            let mut client = EnterpriseRegistryServiceClient::new(channel.clone());
            let admin = admin.clone();
            async move {
                client
                    .create_high_tech_certificate(request(
                        &admin,
                        rpb::CreateHighTechCertificateRequest {
                            parent: format!("enterprises/{}", uscc("MC", n)),
                            high_tech_certificate: Some(rpb::HighTechCertificate {
                                certificate_number: format!("GR2025370{n:05}"),
                                issue_date: "2025-01-10".into(),
                                issuing_authority: "山东省高新技术企业认定管理机构".into(),
                                technology_field: cpb::HighTechField::NewEnergyAndEnergySaving
                                    as i32,
                                ..Default::default()
                            }),
                            request_id: uuid(),
                        },
                    ))
                    .await
                    .map(|_| ())
                    .map_err(status_text)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    if let Some(Err(e)) = certificates.into_iter().find(Result::is_err) {
        bail!("seeding certificates: {e}");
    }
    Ok(registry)
}

pub(super) async fn repeat<F, Fut>(args: &Args, mut one: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Stats>,
{
    let mut runs = Vec::new();
    for _ in 0..args.repeats.max(1) {
        runs.push(one().await);
    }
    load::median(runs).unwrap_or(Stats {
        rate: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        calls: 0,
        errors: 0,
        first_error: Some("no runs".into()),
        server_cpu_us: f64::NAN,
    })
}

pub(super) async fn get_enterprise(args: &Args, registry: &Running) -> Result<Stats> {
    let channels = registry.channels(args.channels).await?;
    let auth = header(&registry.bearer(&[Role::Officer], None, None)?)?;
    let seed = args.seed.max(1);
    Ok(repeat(args, || {
        let channels = channels.clone();
        let auth = auth.clone();
        load::run(
            args.callers,
            args.warmup(),
            args.measure(),
            move |caller, n| {
                let mut client =
                    EnterpriseRegistryServiceClient::new(channels[caller % channels.len()].clone());
                let r = request(
                    &auth,
                    rpb::GetEnterpriseRequest {
                        name: format!("enterprises/{}", uscc("MC", n.wrapping_mul(7919) % seed)),
                    },
                );
                async move {
                    client
                        .get_enterprise(r)
                        .await
                        .map(|_| ())
                        .map_err(status_text)
                }
            },
        )
    })
    .await)
}

/// `GET /v1/enterprises/{uscc}` over HTTP/1.1 with JSON (the transcoder in front of the same
/// middleware and handler as `GetEnterprise`): a pool of keep-alive connections, one call at a
/// time per caller, as a gateway would send them.
pub(super) async fn get_enterprise_http(args: &Args, registry: &Running) -> Result<Stats> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(args.callers)
        .build_http::<Empty<bytes::Bytes>>();
    let bearer = registry.bearer(&[Role::Officer], None, None)?;
    let base = format!("http://{}", registry.addr);
    let seed = args.seed.max(1);
    Ok(repeat(args, || {
        let client = client.clone();
        let bearer = bearer.clone();
        let base = base.clone();
        load::run(args.callers, args.warmup(), args.measure(), move |_, n| {
            let client = client.clone();
            let request = http::Request::get(format!(
                "{base}/v1/enterprises/{}",
                uscc("MC", n.wrapping_mul(7919) % seed)
            ))
            .header("authorization", bearer.as_str())
            .body(Empty::new());
            async move {
                let request = request.map_err(|e| e.to_string())?;
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                if status != http::StatusCode::OK {
                    return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
                }
                std::hint::black_box(body);
                Ok(())
            }
        })
    })
    .await)
}

pub(super) async fn list_enterprises(args: &Args, registry: &Running) -> Result<Stats> {
    let channels = registry.channels(args.channels).await?;
    let auth = header(&registry.bearer(&[Role::Officer], None, None)?)?;
    Ok(repeat(args, || {
        let channels = channels.clone();
        let auth = auth.clone();
        load::run(
            args.callers,
            args.warmup(),
            args.measure(),
            move |caller, _| {
                let mut client =
                    EnterpriseRegistryServiceClient::new(channels[caller % channels.len()].clone());
                let r = request(
                    &auth,
                    rpb::ListEnterprisesRequest {
                        page_size: 50,
                        ..Default::default()
                    },
                );
                async move {
                    let page = client.list_enterprises(r).await.map_err(status_text)?;
                    if page.get_ref().enterprises.is_empty() {
                        return Err("empty page".into());
                    }
                    Ok(())
                }
            },
        )
    })
    .await)
}

pub(super) async fn create_enterprise(args: &Args, registry: &Running) -> Result<Stats> {
    let channels = registry.channels(args.channels).await?;
    let auth = header(&registry.bearer(&[Role::Officer], None, None)?)?;
    // Every call (warm-up and repeats included) creates a new enterprise: one number sequence
    // across the runs.
    let offset = Arc::new(std::sync::atomic::AtomicU64::new(0));
    Ok(repeat(args, || {
        let channels = channels.clone();
        let auth = auth.clone();
        let base = offset.fetch_add(
            5_000_000 / args.repeats.max(1) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        load::run(
            args.callers,
            args.warmup(),
            args.measure(),
            move |caller, n| {
                let mut client =
                    EnterpriseRegistryServiceClient::new(channels[caller % channels.len()].clone());
                let r = request(
                    &auth,
                    rpb::CreateEnterpriseRequest {
                        enterprise: Some(enterprise("MA", base + n)),
                        request_id: uuid(),
                    },
                );
                async move {
                    client
                        .create_enterprise(r)
                        .await
                        .map(|_| ())
                        .map_err(status_text)
                }
            },
        )
    })
    .await)
}

/// Streaming import on PostgreSQL: first import of new rows, then the same rows again.
pub(super) async fn imports(args: &Args, registry: &Running) -> Result<(Stats, Stats)> {
    let channel = registry.channels(1).await?.remove(0);
    let auth = header(&registry.bearer(&[Role::Officer], None, None)?)?;
    let mut first = Vec::new();
    let mut again = Vec::new();
    for r in 0..args.repeats.max(1) as u64 {
        let from = r * args.import_rows;
        let (resp, took) = import(channel.clone(), &auth, "MB", from, args.import_rows).await?;
        if resp.created_count as u64 != args.import_rows {
            bail!(
                "first import created {} of {} rows",
                resp.created_count,
                args.import_rows
            );
        }
        first.push(rows_stats(args.import_rows, took));
        let (resp, took) = import(channel.clone(), &auth, "MB", from, args.import_rows).await?;
        if resp.unchanged_count as u64 != args.import_rows {
            bail!(
                "re-import left {} of {} rows unchanged",
                resp.unchanged_count,
                args.import_rows
            );
        }
        again.push(rows_stats(args.import_rows, took));
    }
    let none = || Stats {
        rate: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        calls: 0,
        errors: 0,
        first_error: None,
        server_cpu_us: f64::NAN,
    };
    Ok((
        load::median(first).unwrap_or_else(none),
        load::median(again).unwrap_or_else(none),
    ))
}

pub(super) fn rows_stats(rows: u64, took: Duration) -> Stats {
    Stats {
        rate: rows as f64 / took.as_secs_f64(),
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        calls: rows,
        errors: 0,
        first_error: None,
        server_cpu_us: f64::NAN,
    }
}
