//! One TCP connection to one broker: framing, the ApiVersions handshake,
//! version negotiation, correlation ids and timeouts.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, Encodable, Request, StrBytes, VersionRange,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{check, error_name, Error, Result};
use crate::scram::{random_nonce, ScramClient};
use crate::security::{SaslCredentials, SaslMechanism, Security};
use crate::tls::{ReadHalf, Stream, WriteHalf};

/// Settings shared by every connection a client opens.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Sent in every request header, shown in broker logs and quotas.
    pub client_id: String,
    pub connect_timeout: Duration,
    /// How long to wait for a response (a Fetch adds its own max wait).
    pub request_timeout: Duration,
    /// Response frames above this size are refused before any allocation.
    pub max_response_bytes: usize,
    /// TLS and SASL for every connection (default: PLAINTEXT).
    pub security: Security,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            client_id: "strom".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 100 * 1024 * 1024,
            security: Security::default(),
        }
    }
}

const UNSUPPORTED_VERSION: i16 = 35;

/// The version to use given what we and the broker support, if any.
pub fn negotiate(ours: VersionRange, broker: VersionRange) -> Option<i16> {
    let common = ours.intersect(&broker);
    (!common.is_empty()).then_some(common.max)
}

/// Builds a whole request frame: size prefix, header, body.
pub fn encode_request<R: Request + Encodable>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<BytesMut> {
    let what = || format!("{:?} v{version} request", api_name(R::KEY));
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
    // Sized up front: a Produce request carries whole record batches.
    let body_size = request.compute_size(version).unwrap_or(0);
    let mut buf = BytesMut::with_capacity(128 + body_size);
    buf.put_i32(0); // size, filled in below
    encode_request_header_into_buffer(&mut buf, &header).map_err(|e| Error::encode(what(), e))?;
    request
        .encode(&mut buf, version)
        .map_err(|e| Error::encode(what(), e))?;
    let size = i32::try_from(buf.len() - 4)
        .map_err(|_| Error::encode(what(), "request larger than 2 GiB"))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

/// Reads one size-prefixed frame, checking the size before allocating.
pub async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: usize,
    addr: &str,
) -> Result<Bytes> {
    let io = |error| Error::Io {
        addr: addr.to_owned(),
        error,
    };
    let size = stream.read_i32().await.map_err(io)?;
    if size < 0 || size as usize > limit {
        return Err(Error::FrameTooLarge {
            addr: addr.to_owned(),
            size: size.into(),
            limit,
        });
    }
    let mut frame = vec![0u8; size as usize];
    stream.read_exact(&mut frame).await.map_err(io)?;
    Ok(Bytes::from(frame))
}

/// Splits a response frame into its header (checked against the expected
/// correlation id) and its body.
pub fn split_response(
    mut frame: Bytes,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<Bytes> {
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::decode(&mut frame, header_version)
        .map_err(|e| Error::decode(format!("{api_key:?} response header"), e))?;
    if header.correlation_id != correlation_id {
        return Err(Error::Protocol(format!(
            "{api_key:?} response has correlation id {} but {correlation_id} was expected",
            header.correlation_id
        )));
    }
    Ok(frame)
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| format!("api key {key}"), |k| format!("{k:?}"))
}

/// A connection after the ApiVersions handshake. Requests are sent one at a
/// time; a connection that failed mid-request must be dropped.
pub struct Connection {
    addr: String,
    stream: Stream,
    config: ConnectionConfig,
    broker_versions: HashMap<i16, VersionRange>,
    next_correlation_id: i32,
    broken: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `addr` (host:port) and learns the broker's API versions.
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Self> {
        let connect = TcpStream::connect(addr);
        let stream = tokio::time::timeout(config.connect_timeout, connect)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("connecting to {addr}"),
                ms: config.connect_timeout.as_millis() as u64,
            })?
            .map_err(|error| Error::Connect {
                addr: addr.to_owned(),
                error,
            })?;
        // Requests are small and sent whole; Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let stream = match &config.security.tls {
            None => Stream::Plain(stream),
            Some(tls) => {
                let name = crate::tls::server_name(addr).ok_or_else(|| {
                    Error::InvalidArgument(format!("{addr}: not a host name usable for TLS"))
                })?;
                let handshake = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, stream);
                let tls_stream = tokio::time::timeout(config.connect_timeout, handshake)
                    .await
                    .map_err(|_| Error::Timeout {
                        what: format!("TLS handshake with {addr}"),
                        ms: config.connect_timeout.as_millis() as u64,
                    })?
                    .map_err(|error| Error::Tls {
                        addr: addr.to_owned(),
                        error,
                    })?;
                Stream::Tls(Box::new(tls_stream))
            }
        };
        let sasl = config.security.sasl.clone();
        let oauth = config.security.oauth.clone();
        let mut conn = Connection {
            addr: addr.to_owned(),
            stream,
            config,
            broker_versions: HashMap::new(),
            next_correlation_id: 0,
            broken: false,
        };
        let tls = conn.config.security.tls.is_some();
        conn.handshake()
            .await
            .map_err(|e| explain_handshake_error(e, tls))?;
        if let Some(sasl) = sasl {
            conn.authenticate(&sasl, oauth.as_deref()).await?;
        }
        Ok(conn)
    }

    /// SaslHandshake v1, then SaslAuthenticate rounds until the mechanism
    /// is done; the broker's refusal comes back as its Kafka error
    /// (SASL_AUTHENTICATION_FAILED with its message).
    async fn authenticate(
        &mut self,
        sasl: &SaslCredentials,
        oauth: Option<&crate::oauth::OAuthBearer>,
    ) -> Result<()> {
        let mechanism = sasl.mechanism.name();
        let context = format!(
            "SASL/{mechanism} authentication to {} as {}",
            self.addr, sasl.username
        );
        let version = self.version(ApiKey::SaslHandshake)?;
        if version < 1 {
            return Err(Error::UnsupportedVersion {
                addr: self.addr.clone(),
                api: "SaslHandshake v1".to_owned(),
            });
        }
        let timeout = self.config.request_timeout;
        let request = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_string(mechanism.to_owned()));
        let response = self.send_version(&request, version, timeout).await?;
        if response.error_code != 0 {
            let enabled: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            let message = format!("the broker enables [{}]", enabled.join(", "));
            return check(response.error_code, Some(&message), context);
        }
        match sasl.mechanism {
            SaslMechanism::Plain => {
                let token = format!("\0{}\0{}", sasl.username, sasl.password);
                self.sasl_round(token.into_bytes(), &context).await?;
            }
            SaslMechanism::Scram(m) => {
                let nonce = random_nonce().map_err(|e| Error::Sasl(format!("{context}: {e}")))?;
                let mut scram = ScramClient::new(m, &sasl.username, &sasl.password, nonce);
                let server_first = self.sasl_round(scram.client_first(), &context).await?;
                let client_final = scram
                    .client_final(&server_first)
                    .map_err(|e| Error::Sasl(format!("{context}: {e}")))?;
                let server_final = self.sasl_round(client_final, &context).await?;
                scram
                    .verify_server_final(&server_final)
                    .map_err(|e| Error::Sasl(format!("{context}: {e}")))?;
            }
            SaslMechanism::OAuthBearer => {
                let oauth = oauth.ok_or_else(|| {
                    Error::Sasl(format!("{context}: no OAUTHBEARER token source"))
                })?;
                let token = oauth
                    .token()
                    .await
                    .map_err(|e| Error::Sasl(format!("{context}: {e}")))?;
                let challenge = self
                    .sasl_round(crate::oauth::initial_response(&token), &context)
                    .await?;
                if !challenge.is_empty() {
                    // An error challenge: answering it ends the exchange with the refusal.
                    let why = String::from_utf8_lossy(&challenge).into_owned();
                    self.sasl_round(crate::oauth::ERROR_CHALLENGE_ANSWER.to_vec(), &context)
                        .await?;
                    return Err(Error::Sasl(format!("{context}: the broker answered {why}")));
                }
            }
        }
        tracing::debug!(addr = %self.addr, mechanism, user = %sasl.username, "SASL authenticated");
        Ok(())
    }

    async fn sasl_round(&mut self, token: Vec<u8>, context: &str) -> Result<Bytes> {
        let version = self.version(ApiKey::SaslAuthenticate)?;
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let response = self
            .send_version(&request, version, self.config.request_timeout)
            .await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            context,
        )?;
        Ok(response.auth_bytes)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// False once a request failed half-way; the caller should reconnect.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// The version of `api_key` this connection will use.
    pub fn version(&self, api_key: ApiKey) -> Result<i16> {
        self.broker_versions
            .get(&(api_key as i16))
            .and_then(|broker| negotiate(api_key.valid_versions(), *broker))
            .ok_or_else(|| Error::UnsupportedVersion {
                addr: self.addr.clone(),
                api: format!("{api_key:?}"),
            })
    }

    /// The version of `api_key` to use when our codec cannot go above `max`
    /// (e.g. a kafka-protocol struct that encodes fewer versions than the
    /// key's range).
    pub fn version_at_most(&self, api_key: ApiKey, max: i16) -> Result<i16> {
        let ours = api_key.valid_versions();
        let ours = VersionRange {
            min: ours.min,
            max: ours.max.min(max),
        };
        self.broker_versions
            .get(&(api_key as i16))
            .and_then(|broker| negotiate(ours, *broker))
            .ok_or_else(|| Error::UnsupportedVersion {
                addr: self.addr.clone(),
                api: format!("{api_key:?}"),
            })
    }

    /// Whether the broker supports some version of `api_key` we can speak.
    pub fn supports(&self, api_key: ApiKey) -> bool {
        self.version(api_key).is_ok()
    }

    /// Sends a request at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&mut self, request: &R) -> Result<R::Response> {
        let api_key = key_of::<R>()?;
        let version = self.version(api_key)?;
        self.send_version(request, version, self.config.request_timeout)
            .await
    }

    /// Sends a request at a given version, waiting up to `timeout`.
    pub async fn send_version<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api_key = key_of::<R>()?;
        let mut body = self.round_trip(request, version, timeout).await?;
        R::Response::decode(&mut body, version)
            .map_err(|e| Error::decode(format!("{api_key:?} v{version} response"), e))
    }

    /// Sends a request that the broker does not answer (Produce with acks=0).
    pub async fn send_without_response<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<()> {
        self.exchange(request, version, self.config.request_timeout, false)
            .await?;
        Ok(())
    }

    async fn round_trip<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes> {
        let (response, correlation_id) = self.exchange(request, version, timeout, true).await?;
        let response = response.unwrap_or_default();
        split_response(response, key_of::<R>()?, version, correlation_id).inspect_err(|_| {
            self.broken = true;
        })
    }

    /// Writes one request and, if asked, reads one response frame, all under
    /// one deadline. Any failure leaves the stream in an unknown state, so the
    /// connection is then marked broken.
    async fn exchange<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
        expect_response: bool,
    ) -> Result<(Option<Bytes>, i32)> {
        if self.broken {
            return Err(Error::Protocol(format!(
                "connection to {} is closed",
                self.addr
            )));
        }
        let api_key = key_of::<R>()?;
        let correlation_id = self.next_id();
        tracing::trace!(addr = %self.addr, ?api_key, version, correlation_id, "request");
        let frame = encode_request(request, version, correlation_id, &self.config.client_id)?;
        let limit = self.config.max_response_bytes;
        let (stream, addr) = (&mut self.stream, self.addr.as_str());
        let work = async {
            let io = |error| Error::Io {
                addr: addr.to_owned(),
                error,
            };
            stream.write_all(&frame).await.map_err(io)?;
            // A TLS stream may keep the tail of a record until flushed.
            stream.flush().await.map_err(io)?;
            if expect_response {
                read_frame(stream, limit, addr).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                what: format!("{api_key:?} request to {}", self.addr),
                ms: timeout.as_millis() as u64,
            }),
        };
        if result.is_err() {
            self.broken = true;
        }
        Ok((result?, correlation_id))
    }

    /// Splits the connection into a writer and a reader so that several
    /// requests can be in flight at once. The broker answers a connection's
    /// requests in order, so the reader must read responses in the order
    /// the writer sent their requests (Kafka's pipelining).
    pub fn into_pipeline(self) -> Result<(RequestWriter, ResponseReader)> {
        if self.broken {
            return Err(Error::Protocol(format!(
                "connection to {} is closed",
                self.addr
            )));
        }
        let (read, write) = self.stream.into_split();
        let writer = RequestWriter {
            addr: self.addr.clone(),
            write,
            config: self.config.clone(),
            broker_versions: self.broker_versions,
            next_correlation_id: self.next_correlation_id,
        };
        let reader = ResponseReader {
            addr: self.addr,
            read,
            limit: self.config.max_response_bytes,
        };
        Ok((writer, reader))
    }

    fn next_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        id
    }

    /// ApiVersions at our highest version; a broker that does not know that
    /// version answers in v0 with UNSUPPORTED_VERSION and its own range, and
    /// we retry once with the highest version it supports.
    async fn handshake(&mut self) -> Result<()> {
        let ours = ApiKey::ApiVersions.valid_versions();
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strom-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let timeout = self.config.request_timeout;
        let mut version = ours.max;
        for _ in 0..2 {
            let mut body = self.round_trip(&request, version, timeout).await?;
            let raw = body.clone();
            let response = match ApiVersionsResponse::decode(&mut body, version) {
                Ok(r) if r.error_code != UNSUPPORTED_VERSION => r,
                _ => ApiVersionsResponse::decode(&mut raw.clone(), 0)
                    .map_err(|e| Error::decode("ApiVersions response", e))?,
            };
            if response.error_code == UNSUPPORTED_VERSION {
                let broker = response
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16);
                let range = broker.map(|k| VersionRange {
                    min: k.min_version,
                    max: k.max_version,
                });
                match range.and_then(|r| negotiate(ours, r)) {
                    Some(v) if v < version => {
                        version = v;
                        continue;
                    }
                    _ => {
                        return Err(Error::UnsupportedVersion {
                            addr: self.addr.clone(),
                            api: "ApiVersions".to_owned(),
                        })
                    }
                }
            }
            check(
                response.error_code,
                None,
                format!("ApiVersions to {}", self.addr),
            )?;
            self.broker_versions = response
                .api_keys
                .iter()
                .map(|k| {
                    (
                        k.api_key,
                        VersionRange {
                            min: k.min_version,
                            max: k.max_version,
                        },
                    )
                })
                .collect();
            tracing::debug!(addr = %self.addr, apis = self.broker_versions.len(), "ApiVersions done");
            return Ok(());
        }
        Err(Error::Protocol(format!(
            "ApiVersions to {} kept answering {}",
            self.addr,
            error_name(UNSUPPORTED_VERSION)
        )))
    }
}

/// The sending half of a pipelined connection ([`Connection::into_pipeline`]).
pub struct RequestWriter {
    addr: String,
    write: WriteHalf,
    config: ConnectionConfig,
    broker_versions: HashMap<i16, VersionRange>,
    next_correlation_id: i32,
}

impl RequestWriter {
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The version of `api_key` negotiated in the handshake.
    pub fn version(&self, api_key: ApiKey) -> Result<i16> {
        self.broker_versions
            .get(&(api_key as i16))
            .and_then(|broker| negotiate(api_key.valid_versions(), *broker))
            .ok_or_else(|| Error::UnsupportedVersion {
                addr: self.addr.clone(),
                api: format!("{api_key:?}"),
            })
    }

    /// Writes one request without waiting for its response; returns its
    /// correlation id for the reader.
    pub async fn write<R: Request>(&mut self, request: &R, version: i16) -> Result<i32> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(request, version, correlation_id, &self.config.client_id)?;
        let write = async {
            self.write.write_all(&frame).await?;
            self.write.flush().await
        };
        match tokio::time::timeout(self.config.request_timeout, write).await {
            Ok(Ok(())) => Ok(correlation_id),
            Ok(Err(error)) => Err(Error::Io {
                addr: self.addr.clone(),
                error,
            }),
            Err(_) => Err(Error::Timeout {
                what: format!("writing a {} request to {}", api_name(R::KEY), self.addr),
                ms: self.config.request_timeout.as_millis() as u64,
            }),
        }
    }
}

/// The receiving half of a pipelined connection ([`Connection::into_pipeline`]).
pub struct ResponseReader {
    addr: String,
    read: ReadHalf,
    limit: usize,
}

impl ResponseReader {
    /// Reads the next response, which must answer `correlation_id`.
    pub async fn read<R: Request>(
        &mut self,
        version: i16,
        correlation_id: i32,
        timeout: Duration,
    ) -> Result<R::Response> {
        let api_key = key_of::<R>()?;
        let frame = read_frame(&mut self.read, self.limit, &self.addr);
        let frame = tokio::time::timeout(timeout, frame)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("{api_key:?} response from {}", self.addr),
                ms: timeout.as_millis() as u64,
            })??;
        let mut body = split_response(frame, api_key, version, correlation_id)?;
        R::Response::decode(&mut body, version)
            .map_err(|e| Error::decode(format!("{api_key:?} v{version} response"), e))
    }
}

/// Names the likely cause when the first exchange fails: a TLS alert
/// (TLS 1.3 brokers refuse a client certificate after the client's side of
/// the handshake is done), or a TLS record where a plaintext client
/// expected a frame size.
fn explain_handshake_error(error: Error, tls: bool) -> Error {
    match error {
        Error::Io { addr, error }
            if tls
                && error
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            Error::Tls { addr, error }
        }
        // 0x15 (alert) or 0x16 (handshake), then TLS version 3.x.
        Error::FrameTooLarge { addr, size, .. }
            if !tls && matches!(size >> 16, 0x1503 | 0x1603) =>
        {
            Error::Protocol(format!(
                "{addr} answered with TLS: set security.protocol to SSL or SASL_SSL"
            ))
        }
        other => other,
    }
}

fn key_of<R: Request>() -> Result<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|_| Error::Protocol(format!("unknown api key {}", R::KEY)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    use kafka_protocol::protocol::decode_request_header_from_buffer;
    use tokio::net::TcpListener;

    fn range(min: i16, max: i16) -> VersionRange {
        VersionRange { min, max }
    }

    #[test]
    fn negotiation_takes_the_highest_common_version() {
        assert_eq!(negotiate(range(0, 4), range(0, 3)), Some(3));
        assert_eq!(negotiate(range(0, 13), range(5, 20)), Some(13));
        assert_eq!(negotiate(range(4, 18), range(4, 4)), Some(4));
        assert_eq!(negotiate(range(3, 13), range(0, 2)), None);
        assert_eq!(negotiate(range(0, 2), range(3, 9)), None);
    }

    #[test]
    fn request_frame_has_size_header_and_body() {
        let request = MetadataRequest::default().with_topics(None);
        let frame = encode_request(&request, 1, 7, "cli").unwrap();
        let expected: &[u8] = &[
            0, 0, 0, 17, // size of what follows
            0, 3, 0, 1, // api key 3 (Metadata), version 1
            0, 0, 0, 7, // correlation id
            0, 3, b'c', b'l', b'i', // client id (header v1)
            0xff, 0xff, 0xff, 0xff, // topics: null = all
        ];
        assert_eq!(&frame[..], expected);
    }

    #[test]
    fn flexible_request_header_carries_tagged_fields() {
        let request = MetadataRequest::default().with_topics(None);
        let frame = encode_request(&request, 12, 1, "c").unwrap();
        // Header v2: key, version, correlation id, client id, then 0 tagged fields.
        assert_eq!(&frame[4..16], &[0, 3, 0, 12, 0, 0, 0, 1, 0, 1, b'c', 0]);
        assert_eq!(
            i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
    }

    #[tokio::test]
    async fn frames_are_size_checked_before_reading() {
        let mut too_big: &[u8] = &[0x10, 0, 0, 0, 1, 2, 3];
        match read_frame(&mut too_big, 1024, "b:1").await {
            Err(Error::FrameTooLarge { size, limit, .. }) => {
                assert_eq!((size, limit), (0x1000_0000, 1024))
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xfe];
        assert!(matches!(
            read_frame(&mut negative, 1024, "b:1").await,
            Err(Error::FrameTooLarge { size: -2, .. })
        ));
        let mut ok: &[u8] = &[0, 0, 0, 3, 9, 8, 7, 6];
        assert_eq!(
            &read_frame(&mut ok, 1024, "b:1").await.unwrap()[..],
            &[9, 8, 7]
        );
        let mut short: &[u8] = &[0, 0, 0, 3, 9];
        assert!(matches!(
            read_frame(&mut short, 1024, "b:1").await,
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn response_correlation_id_must_match() {
        let frame = Bytes::from_static(&[0, 0, 0, 5, 0xaa]);
        let body = split_response(frame.clone(), ApiKey::Metadata, 1, 5).unwrap();
        assert_eq!(&body[..], &[0xaa]);
        let err = split_response(frame, ApiKey::Metadata, 1, 6).unwrap_err();
        assert_eq!(
            err.to_string(),
            "protocol error: Metadata response has correlation id 5 but 6 was expected"
        );
        // Flexible response headers (Metadata v9+) end in tagged fields.
        let frame = Bytes::from_static(&[0, 0, 0, 1, 0, 0xbb]);
        assert_eq!(
            &split_response(frame, ApiKey::Metadata, 9, 1).unwrap()[..],
            &[0xbb]
        );
    }

    /// A one-connection fake broker that supports ApiVersions 0..=2 only and
    /// Metadata 0..=5; it records the (api key, version) of each request.
    async fn fake_broker() -> (String, tokio::task::JoinHandle<Vec<(i16, i16)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            while let Ok(mut frame) = read_frame(&mut socket, 1 << 20, "client").await {
                let header = decode_request_header_from_buffer(&mut frame).unwrap();
                let (key, version) = (header.request_api_key, header.request_api_version);
                seen.push((key, version));
                let mut out = BytesMut::new();
                out.put_i32(0);
                out.put_i32(header.correlation_id);
                if key == ApiKey::ApiVersions as i16 {
                    let versions = vec![
                        ApiVersion::default()
                            .with_api_key(18)
                            .with_min_version(0)
                            .with_max_version(2),
                        ApiVersion::default()
                            .with_api_key(3)
                            .with_min_version(0)
                            .with_max_version(5),
                    ];
                    // Like Kafka: an unknown version gets a v0 error response.
                    let (code, body_version) = if version > 2 { (35, 0) } else { (0, version) };
                    ApiVersionsResponse::default()
                        .with_error_code(code)
                        .with_api_keys(versions)
                        .encode(&mut out, body_version)
                        .unwrap();
                } else {
                    let response = MetadataResponse::default().with_controller_id(7.into());
                    response.encode(&mut out, version).unwrap();
                }
                let size = (out.len() - 4) as i32;
                out[..4].copy_from_slice(&size.to_be_bytes());
                socket.write_all(&out).await.unwrap();
            }
            seen
        });
        (addr, task)
    }

    #[tokio::test]
    async fn handshake_falls_back_and_versions_are_negotiated() {
        let (addr, broker) = fake_broker().await;
        let mut conn = Connection::connect(&addr, ConnectionConfig::default())
            .await
            .unwrap();
        assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 5);
        assert!(!conn.supports(ApiKey::Fetch));
        assert_eq!(
            conn.version(ApiKey::Fetch).unwrap_err().to_string(),
            format!("broker {addr} does not support a usable version of Fetch")
        );
        let response = conn.send(&MetadataRequest::default()).await.unwrap();
        assert_eq!(response.controller_id.0, 7);
        drop(conn);
        // v4 refused, v2 accepted, then Metadata at min(13, 5).
        assert_eq!(broker.await.unwrap(), vec![(18, 4), (18, 2), (3, 5)]);
    }

    #[tokio::test]
    async fn a_silent_broker_times_out_and_breaks_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let silent = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let config = ConnectionConfig {
            request_timeout: Duration::from_millis(200),
            ..ConnectionConfig::default()
        };
        let err = Connection::connect(&addr, config).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("ApiVersions request to {addr} timed out after 200 ms")
        );
        silent.abort();
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = Connection::connect(&addr, ConnectionConfig::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot connect to {addr}: ")),
            "{err}"
        );
    }
}
