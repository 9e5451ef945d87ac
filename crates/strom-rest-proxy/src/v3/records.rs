//! `POST /topics/{t}/records`: produce, one JSON object per record. The body may hold several
//! objects one after another (the streaming form); each is produced as it is read and
//! answered, in order, by one JSON object on the streamed 200 response: the record's
//! partition and offset, or its error (`{error_code, message}`), as kafka-rest answers.
//!
//! `POST /topics/{t}/records:batch`: up to [`MAX_BATCH_ENTRIES`] records, each with an `id`,
//! answered together with 207: the `successes` and `failures`, by id, in request order.
//!
//! Keys and values are BINARY, JSON or STRING data, or typed by the schema registry (AVRO,
//! JSONSCHEMA, PROTOBUF, or no type: the registered schema's), chosen by `schema_id`,
//! `schema_version`, a raw `schema` or the subject's latest version, under `subject` or
//! `subject_name_strategy` (see `formats`).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use http_body_util::channel::{Channel, Sender};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use strom_client::{ProducerRecord, TopicMetadata};

use super::Ctx;
use crate::error::{RestError, RestResult, PARTITION_NOT_FOUND};
use crate::formats::{SchemaRequest, SubjectNameStrategy};
use crate::media::{self, JSON, MAX_BODY_BYTES};
use crate::Proxy;

/// kafka-rest's default `api.v3.produce.batch.maximum.entries`.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// kafka-rest's code for a batch that cannot be produced as a whole.
const PRODUCE_BATCH_ERROR: u32 = 42208;
/// The longest batch entry id.
const MAX_BATCH_ID: usize = 80;

/// Answers buffered before the proxy waits for the client to read them.
const ANSWER_QUEUE: usize = 16;
/// kafka-rest's separator between streamed answers.
const SEPARATOR: &[u8] = b"\r\n";

#[derive(Debug, Deserialize)]
struct ProduceRequest {
    #[serde(default)]
    partition_id: Option<i32>,
    #[serde(default)]
    headers: Vec<Header>,
    #[serde(default)]
    key: Option<Data>,
    #[serde(default)]
    value: Option<Data>,
    /// ISO-8601, e.g. `2021-02-05T19:14:42Z`; the time of produce when absent.
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Header {
    name: String,
    /// base64
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(default, rename = "type")]
    format: Option<Format>,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_name_strategy: Option<SubjectNameStrategy>,
    #[serde(default)]
    schema_id: Option<i32>,
    #[serde(default)]
    schema_version: Option<i32>,
    #[serde(default)]
    schema: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum Format {
    #[serde(alias = "binary")]
    Binary,
    #[serde(alias = "json")]
    Json,
    #[serde(alias = "string")]
    String,
    #[serde(alias = "avro")]
    Avro,
    #[serde(alias = "jsonschema")]
    Jsonschema,
    #[serde(alias = "protobuf")]
    Protobuf,
}

impl Format {
    fn needs_schema(self) -> bool {
        matches!(self, Format::Avro | Format::Jsonschema | Format::Protobuf)
    }

    fn name(self) -> &'static str {
        match self {
            Format::Binary => "BINARY",
            Format::Json => "JSON",
            Format::String => "STRING",
            Format::Avro => "AVRO",
            Format::Jsonschema => "JSONSCHEMA",
            Format::Protobuf => "PROTOBUF",
        }
    }
}

impl Data {
    /// kafka-rest's rules for which schema fields go together (checked as the request is read).
    fn check(&self) -> Result<(), String> {
        if self.subject_name_strategy.is_some() && self.subject.is_some() {
            return Err("Only one of 'subject_name_strategy' or 'subject' can be used.".into());
        }
        let exclusive = if self.schema_id.is_some() {
            self.schema_version.is_none() && self.schema.is_none()
        } else {
            self.schema_version.is_none() || self.schema.is_none()
        };
        if !exclusive {
            return Err(
                "Only one of 'schema_id', 'schema_version' or 'schema' can be used.".into(),
            );
        }
        let Some(format) = self.format else {
            return Ok(());
        };
        if format.needs_schema() {
            if let Some(id) = self.schema_id {
                return Err(format!(
                    "'schema_id={id}' cannot be used with 'serializer'."
                ));
            }
            if let Some(version) = self.schema_version {
                return Err(format!(
                    "'schema_version={version}' cannot be used with 'serializer'."
                ));
            }
            if self.schema.is_none() {
                return Err("'schema_version=latest' cannot be used with 'serializer'.".into());
            }
            return Ok(());
        }
        let fields = [
            ("subject_strategy", self.subject_name_strategy.is_some()),
            ("subject", self.subject.is_some()),
            ("schema_id", self.schema_id.is_some()),
            ("schema_version", self.schema_version.is_some()),
            ("schema", self.schema.is_some()),
        ];
        match fields.iter().find(|(_, given)| *given) {
            Some((field, _)) => Err(format!(
                "'type={}' cannot be used with '{field}'.",
                format.name()
            )),
            None => Ok(()),
        }
    }

    fn schema_request(&self) -> SchemaRequest {
        SchemaRequest {
            kind: self.format.map(Format::name),
            subject: self.subject.clone(),
            strategy: self.subject_name_strategy,
            schema_id: self.schema_id,
            schema_version: self.schema_version,
            raw_schema: self.schema.clone(),
        }
    }
}

impl ProduceRequest {
    fn check(&self) -> Result<(), String> {
        for data in [&self.key, &self.value].into_iter().flatten() {
            data.check()?;
        }
        Ok(())
    }
}

/// An error as a streamed answer: `{error_code, message}`.
#[derive(Debug)]
struct Failure {
    error_code: u32,
    message: String,
}

impl Failure {
    fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self {
            error_code: 400,
            message: format!("Bad Request: {detail}"),
        }
    }

    fn json(&self) -> Value {
        json!({"error_code": self.error_code, "message": self.message})
    }
}

impl From<RestError> for Failure {
    /// A constraint violation (422 with Confluent's finer code) answers as kafka-rest's
    /// streamed form of it: the status as the code, the finer code in the message.
    fn from(e: RestError) -> Self {
        if e.status == StatusCode::UNPROCESSABLE_ENTITY && e.error_code != 422 {
            return Self {
                error_code: 422,
                message: format!("Error: {} : {}", e.error_code, e.message),
            };
        }
        Self {
            error_code: e.error_code,
            message: e.message,
        }
    }
}

pub async fn produce(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    if media::content_type(&headers).as_deref() != Some(JSON) {
        return Err(RestError::unsupported_media_type());
    }
    let mut reader = Reader::new(body);
    if !reader.has_content().await? {
        return Err(RestError::invalid_payload(
            "Request body is empty. Data is required.",
        ));
    }
    let (sender, answers) = Channel::<Bytes, Infallible>::new(ANSWER_QUEUE);
    let cluster_id = ctx.cluster_id().to_owned();
    tokio::spawn(async move {
        let meta = ctx.topic(&proxy, &topic).await;
        let stream = Stream {
            proxy: &proxy,
            cluster_id: &cluster_id,
            topic: &topic,
            meta: meta.map_err(Failure::from),
        };
        stream.run(reader, sender).await;
    });
    let mut response = Body::new(answers).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    Ok(response)
}

/// The request body, read as JSON values one after another. A value split over many pieces
/// of the body is parsed once it is complete (`Scanner`), so reading stays linear in its size.
struct Reader {
    body: Body,
    buf: Vec<u8>,
    /// Where the next value starts in `buf`.
    pos: usize,
    scanner: Scanner,
    eof: bool,
}

/// Follows JSON's nesting (outside strings) to tell when a value that started at the
/// scanner's first byte may be complete.
#[derive(Debug, Default)]
struct Scanner {
    /// Bytes of the value scanned so far.
    scanned: usize,
    depth: u32,
    in_string: bool,
    escaped: bool,
    complete: bool,
}

impl Scanner {
    fn scan(&mut self, value: &[u8]) {
        for &b in &value[self.scanned.min(value.len())..] {
            self.scanned += 1;
            if self.complete {
                return;
            }
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.complete = self.depth == 0;
                }
                b if b.is_ascii_whitespace() => {}
                // A top-level scalar: let the parser say what it is.
                _ if self.depth == 0 => self.complete = true,
                _ => {}
            }
        }
    }
}

impl Reader {
    fn new(body: Body) -> Self {
        Self {
            body,
            buf: Vec::new(),
            pos: 0,
            scanner: Scanner::default(),
            eof: false,
        }
    }

    /// Reads one more piece of the body; false at its end.
    async fn fill(&mut self) -> RestResult<bool> {
        if self.eof {
            return Ok(false);
        }
        // Parsed values are dropped before the buffer grows.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        loop {
            match self.body.frame().await {
                None => {
                    self.eof = true;
                    return Ok(false);
                }
                Some(Err(e)) => {
                    self.eof = true;
                    return Err(RestError::bad_request(format!(
                        "Error reading the request body: {e}"
                    )));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Reads and drops what is left of the body, up to the bound of one record.
    async fn discard(&mut self) {
        let mut left = MAX_BODY_BYTES;
        while left > 0 && !self.eof {
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        left = left.saturating_sub(data.len());
                    }
                }
                _ => self.eof = true,
            }
        }
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Whether the body holds anything but white space.
    async fn has_content(&mut self) -> RestResult<bool> {
        loop {
            if self.rest().iter().any(|b| !b.is_ascii_whitespace()) {
                return Ok(true);
            }
            self.pos = self.buf.len();
            if !self.fill().await? {
                return Ok(false);
            }
        }
    }

    /// The next JSON value; `None` at the end of the body; an error for malformed JSON or
    /// a record larger than the proxy takes (after which the stream stops).
    async fn next(&mut self) -> Option<Result<Value, Failure>> {
        loop {
            // Skip white space between values, so the scanner starts at a value.
            let blank = self
                .rest()
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            if blank > 0 {
                self.pos += blank;
                self.scanner = Scanner::default();
            }
            let rest = &self.buf[self.pos..];
            self.scanner.scan(rest);
            if self.scanner.complete || (self.eof && !rest.is_empty()) {
                let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
                match values.next() {
                    Some(Ok(value)) => {
                        self.pos += values.byte_offset();
                        self.scanner = Scanner::default();
                        return Some(Ok(value));
                    }
                    Some(Err(e)) if e.is_eof() && !self.eof => {}
                    Some(Err(e)) => {
                        let detail = if e.is_eof() {
                            "unexpected end of the request body".to_owned()
                        } else {
                            e.to_string()
                        };
                        return Some(Err(Failure::bad_request(format!(
                            "Error processing JSON: {detail}"
                        ))));
                    }
                    None => {}
                }
            }
            if self.eof {
                return None;
            }
            if self.rest().len() > MAX_BODY_BYTES {
                return Some(Err(Failure::bad_request(
                    "Error processing message: Produce request size is larger than allowed threshold",
                )));
            }
            if let Err(e) = self.fill().await {
                return Some(Err(e.into()));
            }
        }
    }
}

struct Stream<'a> {
    proxy: &'a Proxy,
    cluster_id: &'a str,
    topic: &'a str,
    meta: Result<TopicMetadata, Failure>,
}

impl Stream<'_> {
    async fn run(&self, mut reader: Reader, mut sender: Sender<Bytes, Infallible>) {
        while let Some(next) = reader.next().await {
            let (answer, stop) = match next {
                Ok(value) => (self.produce(value).await, false),
                Err(failure) => (failure.json(), true),
            };
            let mut bytes = serde_json::to_vec(&answer).unwrap_or_default();
            bytes.extend_from_slice(SEPARATOR);
            if sender.send_data(Bytes::from(bytes)).await.is_err() {
                // The client went away.
                return;
            }
            if stop {
                // The rest of the body cannot be parsed; read it anyway (within the bound),
                // since closing a socket with unread data resets it, and the client might
                // lose the answer.
                reader.discard().await;
                return;
            }
        }
    }

    async fn produce(&self, value: Value) -> Value {
        match self.try_produce(value).await {
            Ok(answer) => answer,
            Err(failure) => failure.json(),
        }
    }

    async fn try_produce(&self, value: Value) -> Result<Value, Failure> {
        let request: ProduceRequest = serde_json::from_value(value)
            .map_err(|e| Failure::bad_request(format!("Error processing JSON: {e}")))?;
        request
            .check()
            .map_err(|e| Failure::bad_request(format!("Error processing JSON: {e}")))?;
        let mut answer = Map::new();
        answer.insert("error_code".into(), 200.into());
        self.produce_checked(request, answer).await
    }

    /// Produces a request whose fields were checked; `answer` holds what goes before the
    /// record's place (`error_code` or `id`).
    async fn produce_checked(
        &self,
        request: ProduceRequest,
        mut answer: Map<String, Value>,
    ) -> Result<Value, Failure> {
        let meta = self.meta.as_ref().map_err(|f| Failure {
            error_code: f.error_code,
            message: f.message.clone(),
        })?;
        if let Some(partition) = request.partition_id {
            if !meta.partitions.iter().any(|p| p.partition == partition) {
                return Err(RestError::new(
                    StatusCode::NOT_FOUND,
                    PARTITION_NOT_FOUND,
                    "Partition not found.",
                )
                .into());
            }
        }
        let (key_format, key) = self.serialize(request.key.as_ref(), true).await?;
        let (value_format, value) = self.serialize(request.value.as_ref(), false).await?;
        let timestamp = match &request.timestamp {
            Some(text) => Some(parse_timestamp(text).ok_or_else(|| {
                Failure::bad_request(format!(
                    "Error processing JSON: timestamp {text:?} is not an ISO-8601 instant"
                ))
            })?),
            None => None,
        };
        let mut headers = Vec::with_capacity(request.headers.len());
        for h in request.headers {
            let value = match h.value {
                Some(text) => Some(Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(&text)
                        .map_err(|_| {
                            Failure::bad_request(format!(
                                "Error processing JSON: header value {text:?} is not a valid base64 string."
                            ))
                        })?,
                )),
                None => None,
            };
            headers.push((h.name, value));
        }
        let (key_size, value_size) = (
            key.as_ref().map_or(0, Bytes::len),
            value.as_ref().map_or(0, Bytes::len),
        );
        let record = ProducerRecord {
            partition: request.partition_id,
            key,
            value,
            headers,
            timestamp,
        };
        let mut producer = self.proxy.producers.get().await.map_err(RestError::from)?;
        let sent = producer.send(self.topic, vec![record]).await;
        producer.release();
        let written = sent
            .map_err(RestError::from)?
            .pop()
            .ok_or_else(|| RestError::internal("the producer answered nothing"))?;
        answer.insert("cluster_id".into(), self.cluster_id.into());
        answer.insert("topic_name".into(), self.topic.into());
        answer.insert("partition_id".into(), written.partition.into());
        answer.insert("offset".into(), written.offset.unwrap_or(-1).into());
        answer.insert(
            "timestamp".into(),
            format_timestamp(written.timestamp).into(),
        );
        for (side, described, size) in [
            ("key", key_format, key_size),
            ("value", value_format, value_size),
        ] {
            if let Some(mut described) = described {
                described.insert("size".into(), size.into());
                answer.insert(side.into(), Value::Object(described));
            }
        }
        Ok(Value::Object(answer))
    }

    /// One side of a record: how the answer describes it (`type`, and the schema's
    /// `subject`, `schema_id`, `schema_version`; none when the request left it out) and its
    /// bytes.
    async fn serialize(
        &self,
        data: Option<&Data>,
        is_key: bool,
    ) -> Result<(Option<Map<String, Value>>, Option<Bytes>), Failure> {
        let Some(data) = data else {
            return Ok((None, None));
        };
        let format = match data.format {
            Some(format) if !format.needs_schema() => format,
            // A schema type, or none: the schema comes from the registry.
            _ => {
                let schema = self
                    .proxy
                    .formats
                    .v3_schema(self.topic, is_key, &data.schema_request())
                    .await?;
                let bytes = schema.serialize(&data.data)?;
                let mut described = Map::new();
                described.insert("type".into(), schema.type_name().into());
                described.insert("subject".into(), schema.subject.clone().into());
                described.insert("schema_id".into(), schema.id.into());
                described.insert("schema_version".into(), schema.version.into());
                return Ok((Some(described), bytes));
            }
        };
        let mut described = Map::new();
        described.insert("type".into(), format.name().into());
        if data.data.is_null() {
            return Ok((Some(described), None));
        }
        let bytes = match format {
            Format::Binary => {
                let Value::String(text) = &data.data else {
                    return Err(Failure::bad_request(format!(
                        "data={} is not a base64 string.",
                        data.data
                    )));
                };
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| {
                        Failure::bad_request(format!(
                            "data={} is not a valid base64 string.",
                            data.data
                        ))
                    })?
            }
            Format::String => {
                let Value::String(text) = &data.data else {
                    return Err(Failure::bad_request(format!(
                        "data={} is not a string.",
                        data.data
                    )));
                };
                text.clone().into_bytes()
            }
            _ => serde_json::to_vec(&data.data).unwrap_or_default(),
        };
        Ok((Some(described), Some(Bytes::from(bytes))))
    }
}

/// `POST /topics/{t}/records:batch`: the entries are checked as a whole first (ids, count,
/// fields: a 422 or 400 for the request), then produced one by one, each a success or a
/// failure of the 207 answer.
pub async fn produce_batch(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let batch_error = |message: &str| RestError::unprocessable(PRODUCE_BATCH_ERROR, message);
    if media::content_type(&headers).as_deref() == Some(JSON)
        && body.iter().all(u8::is_ascii_whitespace)
    {
        return Err(batch_error("Request body is empty. Data is required."));
    }
    let batch: BatchRequest = super::parse(&headers, &body)?;
    let batch = batch.entries.unwrap_or_default();
    let mut entries = Vec::with_capacity(batch.len().min(MAX_BATCH_ENTRIES + 1));
    for entry in batch {
        let Value::Object(mut fields) = entry else {
            return Err(RestError::unprocessable(
                422,
                "Batch entries are JSON objects.",
            ));
        };
        let id = fields.remove("id");
        let request: ProduceRequest = serde_json::from_value(Value::Object(fields))
            .map_err(|e| RestError::unprocessable(422, e.to_string()))?;
        request.check().map_err(RestError::bad_request)?;
        let id = match id {
            Some(Value::String(id)) if valid_batch_id(&id) => id,
            _ => return Err(batch_error("Batch entry identifier is not a valid string.")),
        };
        entries.push((id, request));
    }
    let mut ids = std::collections::HashSet::with_capacity(entries.len());
    if !entries.iter().all(|(id, _)| ids.insert(id.as_str())) {
        return Err(batch_error("Batch entry IDs are not distinct."));
    }
    if entries.is_empty() {
        return Err(batch_error("Empty batch."));
    }
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(batch_error("Too many entries in batch."));
    }
    let meta = ctx.topic(&proxy, &topic).await.map_err(Failure::from);
    let stream = Stream {
        proxy: &proxy,
        cluster_id: ctx.cluster_id(),
        topic: &topic,
        meta,
    };
    let (mut successes, mut failures) = (Vec::new(), Vec::new());
    for (id, request) in entries {
        let mut answer = Map::new();
        answer.insert("id".into(), id.clone().into());
        match stream.produce_checked(request, answer).await {
            Ok(success) => successes.push(success),
            Err(failure) => failures.push(json!({
                "id": id,
                "error_code": failure.error_code,
                "message": failure.message,
            })),
        }
    }
    Ok(super::respond(
        StatusCode::MULTI_STATUS,
        &json!({"successes": successes, "failures": failures}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    #[serde(default)]
    entries: Option<Vec<Value>>,
}

/// kafka-rest's rule for entry ids: 1 to 80 of `[0-9a-zA-Z-_]`.
fn valid_batch_id(id: &str) -> bool {
    (1..=MAX_BATCH_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Milliseconds since the epoch as ISO-8601 in UTC, as Java's `Instant` prints them:
/// `2021-02-05T19:14:42Z`, `2021-02-05T19:14:42.120Z`.
pub fn format_timestamp(ms: i64) -> String {
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (day_secs / 3600, day_secs % 3600 / 60, day_secs % 60);
    let fraction = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}")
    };
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{fraction}Z")
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as milliseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return None;
            }
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    secs.checked_mul(1000)?.checked_add(millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_sees_where_a_value_ends() {
        let value = br#"{"a": "}]\\\"{", "b": [1, {"c": 2}]}"#;
        for split in 0..value.len() {
            let mut scanner = Scanner::default();
            scanner.scan(&value[..split]);
            assert!(!scanner.complete, "complete after {split} bytes");
            scanner.scan(value);
            assert!(scanner.complete);
        }
        let mut scalar = Scanner::default();
        scalar.scan(b"  12");
        assert!(scalar.complete);
    }

    #[test]
    fn timestamps_print_as_java_instants() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(1_612_552_482_000), "2021-02-05T19:14:42Z");
        assert_eq!(
            format_timestamp(1_612_552_482_120),
            "2021-02-05T19:14:42.120Z"
        );
        assert_eq!(format_timestamp(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn timestamps_parse_back() {
        assert_eq!(
            parse_timestamp("2021-02-05T19:14:42Z"),
            Some(1_612_552_482_000)
        );
        assert_eq!(
            parse_timestamp("2021-02-05T19:14:42.12Z"),
            Some(1_612_552_482_120)
        );
        assert_eq!(
            parse_timestamp("2021-02-05T20:14:42.120+01:00"),
            Some(1_612_552_482_120)
        );
        assert_eq!(
            parse_timestamp("2000-02-29T00:00:00Z"),
            Some(951_782_400_000)
        );
        for bad in [
            "",
            "2021-02-05",
            "2021-13-05T19:14:42Z",
            "2021-02-05T19:14:42",
            "2021-02-05T19:14:42.Z",
            "x021-02-05T19:14:42Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }
}
