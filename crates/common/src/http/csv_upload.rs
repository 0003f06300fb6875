//! CSV uploads to the bulk imports (`text/csv` to `/v1/enterprises:import`,
//! `/v1/highTechCertificates:import`, `/v1/annualFigures:import`): the file is read as it
//! arrives by the same reader as `qilu … import` ([`crate::import_csv`]), on a blocking thread fed
//! by the body's chunks, and sent to the client-streaming RPC in batches. Rows that reader cannot
//! turn into a row message are rejected here with their problems, as the CLI rejects them, and
//! added to the RPC's answer (`row_results`, `received_count`, `rejected_count`), so an upload
//! answers what the CLI would report for the same file.

use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use tonic::body::Body;

use crate::error::ApiError;
use crate::import_csv::{CsvRows, ImportKind, MAX_BATCH, Problem, encode_batch};

/// Rows per request message of the upload's stream.
const BATCH: usize = 500;

/// What a CSV upload leaves for the answer: rows rejected on this side, and a refusal of the
/// whole upload (a bad header, a body that could not be read).
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub rejected: Vec<(u64, Vec<Problem>)>,
    pub refusal: Option<ApiError>,
}

/// The body's chunks as a blocking reader.
struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while !self.current.has_remaining() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.remaining());
        self.current.copy_to_slice(&mut out[..n]);
        Ok(n)
    }
}

type FrameResult = Result<http_body::Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// The upload as a stream of gRPC frames of `kind`'s requests; `first` (the request's other
/// fields, from the query) is merged into the first message. What happened to rows this side
/// rejected, or why the upload was refused, is left in `outcome`.
pub(crate) fn messages(
    mut body: Body,
    kind: ImportKind,
    first: Vec<u8>,
    outcome: Arc<Mutex<Outcome>>,
) -> impl futures::Stream<Item = FrameResult> + Send + 'static {
    let (chunk_tx, chunk_rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let (frame_tx, frame_rx) = tokio::sync::mpsc::channel::<FrameResult>(4);
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data()
                && chunk_tx.send(data).await.is_err()
            {
                break;
            }
        }
    });
    tokio::task::spawn_blocking(move || {
        let reader = ChunkReader {
            chunks: chunk_rx,
            current: Bytes::new(),
        };
        let fail = |e: ApiError| {
            let text = e.to_string();
            if let Ok(mut o) = outcome.lock() {
                o.refusal = Some(e);
            }
            let _ = frame_tx.blocking_send(Err(text.into()));
        };
        let rows = match CsvRows::new(kind, reader) {
            Ok(rows) => rows,
            Err(e) => {
                return fail(ApiError::invalid(
                    "body",
                    "MALFORMED_REQUEST",
                    format!("the CSV cannot be imported: {e}"),
                ));
            }
        };
        let mut first = Some(first);
        let mut batch = Vec::with_capacity(BATCH);
        let send = |batch: Vec<_>, first: &mut Option<Vec<u8>>| {
            let mut message = first.take().unwrap_or_default();
            message.extend(encode_batch(kind, batch));
            frame_tx
                .blocking_send(Ok(http_body::Frame::data(super::message::frame(&message))))
                .is_ok()
        };
        for row in rows {
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    return fail(ApiError::invalid(
                        "body",
                        "MALFORMED_REQUEST",
                        format!("the body could not be read: {e}"),
                    ));
                }
            };
            match row.parsed {
                Ok(parsed) => batch.push(parsed),
                Err(problems) => {
                    if let Ok(mut o) = outcome.lock() {
                        o.rejected.push((row.line, problems));
                    }
                }
            }
            if batch.len() >= BATCH.min(MAX_BATCH) && !send(std::mem::take(&mut batch), &mut first)
            {
                return;
            }
        }
        if !batch.is_empty() || first.is_some() {
            send(batch, &mut first);
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(frame_rx)
}

/// The RPC's answer with the rows rejected here added: each as a REJECTED `row_results` entry
/// with its problems, counted in `received_count` and `rejected_count`, results in row order.
pub(crate) fn add_rejections(
    output: &MessageDescriptor,
    answer: &[u8],
    rejected: &[(u64, Vec<Problem>)],
) -> Result<Vec<u8>, String> {
    if rejected.is_empty() {
        return Ok(answer.to_vec());
    }
    let mut message = DynamicMessage::decode(output.clone(), answer).map_err(|e| e.to_string())?;
    let n = rejected.len() as i64;
    for counter in ["received_count", "rejected_count"] {
        let now = message
            .get_field_by_name(counter)
            .and_then(|v| v.as_i64())
            .ok_or_else(|| format!("{} has no {counter}", output.full_name()))?;
        message.set_field_by_name(counter, Value::I64(now + n));
    }
    let results_field = output
        .get_field_by_name("row_results")
        .ok_or_else(|| format!("{} has no row_results", output.full_name()))?;
    let prost_reflect::Kind::Message(result_desc) = results_field.kind() else {
        return Err("row_results is not a message".into());
    };
    let problem_desc = match result_desc.get_field_by_name("problems").map(|f| f.kind()) {
        Some(prost_reflect::Kind::Message(d)) => d,
        _ => return Err("row_results.problems is not a message".into()),
    };
    let rejected_outcome = result_desc
        .get_field_by_name("outcome")
        .and_then(|f| f.kind().as_enum().cloned())
        .and_then(|e| e.get_value_by_name("IMPORT_ROW_OUTCOME_REJECTED"))
        .map(|v| v.number())
        .ok_or("no IMPORT_ROW_OUTCOME_REJECTED")?;
    let mut results: Vec<Value> = message
        .get_field(&results_field)
        .as_list()
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    for (line, problems) in rejected {
        let mut result = DynamicMessage::new(result_desc.clone());
        result.set_field_by_name("row_number", Value::I64(*line as i64));
        result.set_field_by_name("outcome", Value::EnumNumber(rejected_outcome));
        let problems = problems
            .iter()
            .map(|(field, description)| {
                let mut p = DynamicMessage::new(problem_desc.clone());
                p.set_field_by_name("field", Value::String(field.clone()));
                p.set_field_by_name("description", Value::String(description.clone()));
                Value::Message(p)
            })
            .collect();
        result.set_field_by_name("problems", Value::List(problems));
        results.push(Value::Message(result));
    }
    let row_of = |v: &Value| {
        v.as_message()
            .and_then(|m| m.get_field_by_name("row_number"))
            .and_then(|n| n.as_i64())
            .unwrap_or(0)
    };
    results.sort_by_key(row_of);
    message.set_field(&results_field, Value::List(results));
    Ok(message.encode_to_vec())
}
