//! Streams as newline-delimited JSON: a server stream's messages out as lines (a failure after
//! the first line as a last `{"error": …}` line), and an upload's lines in as the request
//! messages of a client stream, each sent on as it is read; one JSON request for an upload too.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http_body_util::BodyExt;
use prost::Message;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use serde_json::{Map, Value};
use tonic::body::Body;

use crate::error::ApiError;

use super::message::{frame, message_json, next_frame, parse_json, to_message};
use super::status::status_json;

pub(super) type FrameResult =
    Result<http_body::Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// The response stream as NDJSON: one line per message, and, if the call ends in an error after
/// answering, a last line `{"error": <google.rpc.Status>}`.
pub(super) fn ndjson_lines(
    body: Body,
    output: MessageDescriptor,
    response_body: Option<String>,
    pool: DescriptorPool,
) -> impl futures::Stream<Item = FrameResult> + Send + 'static {
    struct State {
        body: Body,
        buffer: Bytes,
        done: bool,
    }
    let state = State {
        body,
        buffer: Bytes::new(),
        done: false,
    };
    futures::stream::unfold(state, move |mut s| {
        let output = output.clone();
        let response_body = response_body.clone();
        let pool = pool.clone();
        async move {
            loop {
                if s.done {
                    return None;
                }
                match next_frame(&mut s.buffer) {
                    Some(Ok(bytes)) => {
                        let line = match message_json(&output, &bytes, response_body.as_deref()) {
                            Ok(mut json) => {
                                json.push(b'\n');
                                json
                            }
                            Err(e) => {
                                s.done = true;
                                error_line(&pool, &tonic::Status::internal(e))
                            }
                        };
                        return Some((Ok(http_body::Frame::data(Bytes::from(line))), s));
                    }
                    Some(Err(e)) => {
                        s.done = true;
                        let line = error_line(&pool, &tonic::Status::internal(e));
                        return Some((Ok(http_body::Frame::data(Bytes::from(line))), s));
                    }
                    None => {}
                }
                match s.body.frame().await {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => {
                            let mut joined = BytesMut::from(&s.buffer[..]);
                            joined.extend_from_slice(&data);
                            s.buffer = joined.freeze();
                        }
                        Err(frame) => {
                            s.done = true;
                            let status = frame
                                .trailers_ref()
                                .and_then(tonic::Status::from_header_map)
                                .filter(|st| st.code() != tonic::Code::Ok);
                            if let Some(status) = status {
                                let line = error_line(&pool, &status);
                                return Some((Ok(http_body::Frame::data(Bytes::from(line))), s));
                            }
                            return None;
                        }
                    },
                    Some(Err(e)) => {
                        s.done = true;
                        let line = error_line(
                            &pool,
                            &tonic::Status::unavailable(format!("the stream broke: {e}")),
                        );
                        return Some((Ok(http_body::Frame::data(Bytes::from(line))), s));
                    }
                    None => return None,
                }
            }
        }
    })
}

pub(super) fn error_line(pool: &DescriptorPool, status: &tonic::Status) -> Vec<u8> {
    let mut line = serde_json::to_vec(&serde_json::json!({ "error": status_json(pool, status) }))
        .unwrap_or_default();
    line.push(b'\n');
    line
}

/// The uploaded NDJSON as a stream of gRPC frames, one request message per non-blank line; the
/// first message also carries `first` (path and query fields). A bad line stops the stream with
/// an error (the call then fails) and leaves the refusal in `failure` for the answer.
pub(super) fn ndjson_messages(
    body: Body,
    input: MessageDescriptor,
    first: Map<String, Value>,
    max_line_bytes: usize,
    failure: Arc<Mutex<Option<ApiError>>>,
) -> impl futures::Stream<Item = FrameResult> + Send + 'static {
    struct State {
        body: Body,
        buffer: BytesMut,
        line: usize,
        first: Option<Map<String, Value>>,
        ended: bool,
    }
    let state = State {
        body,
        buffer: BytesMut::new(),
        line: 0,
        first: Some(first),
        ended: false,
    };
    let stream = futures::stream::unfold(state, move |mut s| {
        let input = input.clone();
        let failure = failure.clone();
        async move {
            let fail = |s: State, e: ApiError| {
                let text = e.to_string();
                if let Ok(mut slot) = failure.lock() {
                    *slot = Some(e);
                }
                Some((Err::<http_body::Frame<Bytes>, _>(text.into()), s))
            };
            loop {
                if let Some(end) = s.buffer.iter().position(|b| *b == b'\n') {
                    let raw = s.buffer.split_to(end + 1);
                    s.line += 1;
                    let text = &raw[..raw.len() - 1];
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return match line_message(&input, text, s.line, s.first.take()) {
                        Ok(bytes) => Some((Ok(http_body::Frame::data(frame(&bytes))), s)),
                        Err(e) => {
                            s.ended = true;
                            fail(s, e)
                        }
                    };
                }
                if s.ended {
                    return None;
                }
                if s.buffer.len() > max_line_bytes {
                    s.ended = true;
                    let line = s.line + 1;
                    return fail(
                        s,
                        ApiError::invalid(
                            format!("line {line}"),
                            "REQUEST_BODY_TOO_LARGE",
                            format!(
                                "a line is longer than {max_line_bytes} bytes (server.max_message_bytes)"
                            ),
                        ),
                    );
                }
                match s.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            s.buffer.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => {
                        s.ended = true;
                        return Some((Err(e.into()), s));
                    }
                    None => {
                        // The last line may lack its newline.
                        s.ended = true;
                        if !s.buffer.iter().all(u8::is_ascii_whitespace) {
                            s.buffer.extend_from_slice(b"\n");
                            continue;
                        }
                        if s.first.is_some() {
                            // An empty upload still carries the path and query fields.
                            let first = s.first.take();
                            return match line_message(&input, b"{}", 0, first) {
                                Ok(bytes) => Some((Ok(http_body::Frame::data(frame(&bytes))), s)),
                                Err(e) => fail(s, e),
                            };
                        }
                        return None;
                    }
                }
            }
        }
    });
    stream.boxed()
}

/// An `application/json` upload: the body (empty: `{}`) is the one request message, with the
/// path and query fields in `first`; field violations name the field, as in a unary body.
pub(super) fn json_upload(
    input: &MessageDescriptor,
    bytes: &[u8],
    first: Map<String, Value>,
) -> Result<Vec<u8>, ApiError> {
    let mut object = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match parse_json(bytes, "body")? {
            Value::Object(object) => object,
            _ => {
                return Err(ApiError::invalid(
                    "body",
                    "MALFORMED_REQUEST",
                    "the body must be a JSON object: the request message",
                ));
            }
        }
    };
    for (k, v) in first {
        object.insert(k, v);
    }
    Ok(to_message(input.clone(), Value::Object(object), None)?.encode_to_vec())
}

pub(super) fn line_message(
    input: &MessageDescriptor,
    text: &[u8],
    line: usize,
    first: Option<Map<String, Value>>,
) -> Result<Vec<u8>, ApiError> {
    let value = parse_json(text, &format!("line {line}"))?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::invalid(
            format!("line {line}"),
            "MALFORMED_REQUEST",
            "each line must be a JSON object: one request message",
        ));
    };
    if let Some(first) = first {
        for (k, v) in first {
            object.insert(k, v);
        }
    }
    let message = to_message(input.clone(), Value::Object(object), Some(line))?;
    Ok(message.encode_to_vec())
}
