//! One client connection: frames are read, dispatched through the API table
//! one at a time (as Kafka does, so responses stay in request order), and
//! answered. Bad input closes the connection with a log line; it never
//! affects other connections. With `queued.max.request.bytes` set, a
//! request's frame size is reserved from the broker-wide budget before its
//! body is read and given back once its response is written. Responses are
//! written part by part: memory with `send`, file regions with `sendfile`.
//! On a TLS listener the handshake comes first (the client certificate, if any,
//! names the principal) and responses go through rustls, file regions read into
//! memory; on a SASL listener the connection's `SaslSession` answers the
//! handshake and authentication requests and admits others only once the client
//! is authenticated.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use strom_security::KafkaPrincipal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::apis::{
    unsupported_api_versions_response, Caller, DispatchError, ListenerRole, Operation,
};
use crate::broker::Broker;
use crate::connection_quotas::LiveConnection;
use crate::request_memory::{RequestMemory, Reservation};
use crate::response_frame::{FramePart, ResponseFrame};
use crate::sasl_session::{SaslSession, Verdict};
use crate::security_config::ListenerSecurity;
use crate::tls::TlsListener;
use strom_wire::frame::{peek_frame_size, peek_request_prefix, split_frame, LENGTH_PREFIX_BYTES};

/// A connection keeps a buffer larger than this only while a frame needs it.
const READ_CHUNK_BYTES: usize = 256 * 1024;
const INITIAL_READ_BYTES: usize = 64 * 1024;
/// Small frames are read ahead up to this, so pipelined requests cost one read.
const READ_AHEAD_BYTES: usize = INITIAL_READ_BYTES;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error("{0}")]
    Frame(#[from] strom_wire::frame::FrameError),
    #[error("{0}")]
    Dispatch(#[from] DispatchError),
    #[error("request of {0} bytes is too short for a request header")]
    ShortRequest(usize),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer closed the connection in the middle of a {0}-byte frame")]
    TruncatedFrame(usize),
    #[error("a log segment ended {0} bytes before the region being sent; the response is cut")]
    ShortFile(u64),
    #[error("failed authentication: {0}")]
    Authentication(String),
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(String),
    #[error("no socket activity for connections.max.idle.ms ({0} ms)")]
    Idle(u64),
    #[error(
        "{got} bytes of a request arrived and the rest not within strom.request.read.timeout.ms ({timeout_ms} ms)"
    )]
    FrameReadTimeout { got: usize, timeout_ms: u64 },
    #[error("peer closed the connection with a request in flight")]
    HungUp,
    #[error(
        "closed as the least recently active connection while more are open than max.connections"
    )]
    Evicted,
    #[error("a node-to-node request from {0}, who lacks CLUSTER_ACTION on the cluster (the controller listener's principal belongs in super.users)")]
    NodeRequestRefused(String),
}

/// How long a connection may go without socket activity, and how long a started
/// request frame may take to arrive.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    idle: Option<Duration>,
    frame_read: Duration,
}

impl Deadlines {
    fn of(broker: &Broker) -> Self {
        Self {
            idle: u64::try_from(broker.config.connections_max_idle_ms)
                .ok()
                .map(Duration::from_millis),
            frame_read: Duration::from_millis(broker.config.request_read_timeout_ms),
        }
    }

    /// When the connection counts as idle, its last socket activity being at `last_io`.
    fn idle_at(&self, last_io: tokio::time::Instant) -> Option<tokio::time::Instant> {
        self.idle.map(|idle| last_io + idle)
    }
}

/// Waits for `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One listener as its connections see it.
pub struct ListenerContext {
    pub name: Arc<str>,
    pub role: ListenerRole,
    pub security: ListenerSecurity,
    pub tls: Option<Arc<TlsListener>>,
}

/// The socket, plain or inside a TLS session.
enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

/// A request's reservation, counted in the metrics while held.
struct Held {
    _reservation: Reservation,
    bytes: i64,
    broker: Arc<Broker>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.broker.metrics.queued_request_bytes(-self.bytes);
    }
}

pub async fn serve(
    broker: Arc<Broker>,
    memory: Option<Arc<RequestMemory>>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerContext>,
    live: Arc<LiveConnection>,
) {
    let _ = stream.set_nodelay(true);
    broker.metrics.connections_opened();
    let result = match accept(&listener, stream).await {
        Ok((mut transport, principal)) => {
            run(
                &broker,
                memory.as_deref(),
                &mut transport,
                peer,
                &listener,
                principal,
                &live,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => debug!(%peer, "connection closed by peer"),
        Err(ConnectionError::Io(e)) => debug!(%peer, error = %e, "connection i/o error"),
        Err(
            e @ (ConnectionError::Idle(_) | ConnectionError::HungUp | ConnectionError::Evicted),
        ) => {
            debug!(%peer, "closing connection: {e}")
        }
        // Kafka logs failed authentication at INFO: a client's mistake, not the broker's.
        Err(e @ (ConnectionError::Authentication(_) | ConnectionError::TlsHandshake(_))) => {
            info!(%peer, listener = %listener.name, "{e}")
        }
        Err(e) => warn!(%peer, error = %e, "closing connection"),
    }
    broker.metrics.connections_closed();
}

/// The TLS handshake on a TLS listener, and who the client is so far: the principal
/// of its certificate, else ANONYMOUS (SASL names it later).
async fn accept(
    listener: &ListenerContext,
    stream: TcpStream,
) -> Result<(Transport, KafkaPrincipal), ConnectionError> {
    let Some(tls) = &listener.tls else {
        return Ok((Transport::Plain(stream), KafkaPrincipal::anonymous()));
    };
    let accepted = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream))
        .await
        .map_err(|_| ConnectionError::TlsHandshake("timed out".into()))?
        .map_err(|e| ConnectionError::TlsHandshake(e.to_string()))?;
    let principal = tls
        .principal_of(accepted.get_ref().1.peer_certificates())
        .map_err(|e| ConnectionError::Authentication(e.to_string()))?;
    Ok((Transport::Tls(Box::new(accepted)), principal))
}

async fn run(
    broker: &Arc<Broker>,
    memory: Option<&RequestMemory>,
    stream: &mut Transport,
    peer: SocketAddr,
    listener: &ListenerContext,
    principal: KafkaPrincipal,
    live: &LiveConnection,
) -> Result<(), ConnectionError> {
    let max_frame_bytes = broker.config.socket_request_max_bytes;
    let deadlines = Deadlines::of(broker);
    let mut buf = BytesMut::with_capacity(INITIAL_READ_BYTES);
    let mut held: Option<Held> = None;
    let mut sasl = listener
        .security
        .sasl
        .clone()
        .map(|settings| SaslSession::new(settings, scram_credentials(broker)));
    let mut caller = Caller {
        peer,
        role: listener.role,
        listener_name: listener.name.clone(),
        protocol: listener.security.protocol,
        principal: Arc::new(principal),
        trusted: false,
        mute: Some(Arc::new(crate::client_quotas::Mute::default())),
    };
    if listener.tls.is_some() {
        debug!(%peer, listener = %listener.name, principal = %caller.principal, "TLS connection");
    }
    let mut sessions_seen = 0;
    // Socket activity (Kafka's idle expiry counts from it), and when the frame being
    // read started to count against strom.request.read.timeout.ms.
    let mut last_io = tokio::time::Instant::now();
    let mut frame_started: Option<tokio::time::Instant> = None;
    loop {
        // A throttled client's next request waits until its throttle time has passed
        // (Kafka mutes the channel); the bytes it sends meanwhile stay in the socket.
        if let Some(until) = caller.mute.as_ref().and_then(|m| m.take()) {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = live.evicted() => return Err(ConnectionError::Evicted),
            }
            last_io = last_io.max(until);
        }
        // Reserve as soon as the size is known, before the body is read; the
        // socket is not read while waiting.
        if let (Some(memory), None) = (memory, &held) {
            if let Some(size) = peek_frame_size(&buf, max_frame_bytes)? {
                let reservation = tokio::select! {
                    reservation = memory.reserve(size + LENGTH_PREFIX_BYTES) => reservation,
                    _ = live.evicted() => return Err(ConnectionError::Evicted),
                    _ = sleep_until(deadlines.idle_at(last_io)) => {
                        return Err(ConnectionError::Idle(idle_ms(&deadlines)))
                    }
                };
                let bytes = reservation.bytes() as i64;
                broker.metrics.queued_request_bytes(bytes);
                held = Some(Held {
                    _reservation: reservation,
                    bytes,
                    broker: broker.clone(),
                });
                // Waiting for the budget is not the client's time.
                frame_started = Some(tokio::time::Instant::now());
            }
        }
        if let Some(frame) = split_frame(&mut buf, max_frame_bytes)? {
            frame_started = None;
            let frame_bytes = frame.len() + LENGTH_PREFIX_BYTES;
            broker.metrics.bytes_in(frame_bytes);
            if let Some(session) = sasl.as_mut() {
                match session.on_frame(&frame, crate::broker::now_ms())? {
                    Verdict::Serve => {}
                    Verdict::Answer {
                        response,
                        close_after,
                    } => {
                        if close_after.is_some() {
                            // Kafka's connection.failed.authentication.delay.ms: slows guessing.
                            tokio::time::sleep(session.failure_delay()).await;
                        }
                        broker.metrics.bytes_out(response.len());
                        write_frame(broker, stream, &response.into(), deadlines.idle).await?;
                        last_io = tokio::time::Instant::now();
                        live.touch();
                        if let Some(why) = close_after {
                            close_gracefully(stream).await;
                            return Err(ConnectionError::Authentication(why));
                        }
                        if let Some(principal) = session.principal() {
                            if session.sessions_started() > sessions_seen {
                                sessions_seen = session.sessions_started();
                                debug!(%peer, listener = %listener.name, %principal, sessions = sessions_seen, "SASL authenticated");
                            }
                            if *caller.principal != *principal {
                                caller.principal = Arc::new(principal.clone());
                            }
                        }
                        held = None;
                        continue;
                    }
                    Verdict::Close(why) => return Err(ConnectionError::Authentication(why)),
                }
            }
            let response = serve_in_flight(
                broker,
                stream,
                &mut buf,
                frame,
                &caller,
                &mut held,
                &deadlines,
                &mut last_io,
                sasl.as_ref()
                    .is_none_or(|session| session.principal().is_some()),
            )
            .await?;
            if let Some(response) = response {
                broker.metrics.bytes_out(response.len());
                write_frame(broker, stream, &response, deadlines.idle).await?;
                last_io = tokio::time::Instant::now();
            }
            live.touch();
            held = None;
            // A large frame's allocation is shared with what was read after it (and
            // would be reused for the next reads once the frame is dropped): keep only
            // those bytes, so an idle connection does not hold its largest request's
            // memory.
            if frame_bytes > READ_CHUNK_BYTES || buf.capacity() > READ_CHUNK_BYTES {
                let mut fresh = BytesMut::with_capacity(INITIAL_READ_BYTES.max(buf.len()));
                fresh.extend_from_slice(&buf);
                buf = fresh;
            }
            continue;
        }
        // A large frame is read without read-ahead (none of the next frame's bytes to
        // move), its buffer doubling with the bytes that have arrived rather than taking
        // the declared size at once: a peer that announces socket.request.max.bytes and
        // stalls holds address space in proportion to what it sent, which matters under
        // an address-space limit (`ulimit -v`) with many such peers.
        let (reserve, limit) = match peek_frame_size(&buf, max_frame_bytes)? {
            Some(size) if size + LENGTH_PREFIX_BYTES - buf.len() > INITIAL_READ_BYTES => {
                let rest = size + LENGTH_PREFIX_BYTES - buf.len();
                (rest.min(buf.len().max(INITIAL_READ_BYTES)), rest)
            }
            _ => (INITIAL_READ_BYTES, READ_AHEAD_BYTES),
        };
        buf.reserve(reserve);
        // A started frame must arrive within its deadline; between frames only the
        // idle deadline applies.
        if buf.is_empty() {
            frame_started = None;
        } else if frame_started.is_none() {
            frame_started = Some(tokio::time::Instant::now());
        }
        let frame_deadline = frame_started.map(|at| at + deadlines.frame_read);
        let read = {
            let mut room = (&mut buf).limit(limit);
            tokio::select! {
                n = stream.read_buf(&mut room) => Some(n),
                _ = sleep_until(frame_deadline) => None,
                _ = live.evicted() => return Err(ConnectionError::Evicted),
                _ = sleep_until(deadlines.idle_at(last_io)) => {
                    return Err(ConnectionError::Idle(idle_ms(&deadlines)))
                }
            }
        };
        let Some(n) = read else {
            return Err(ConnectionError::FrameReadTimeout {
                got: buf.len(),
                timeout_ms: deadlines.frame_read.as_millis() as u64,
            });
        };
        let n = n?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(());
            }
            return Err(ConnectionError::TruncatedFrame(buf.len()));
        }
        last_io = tokio::time::Instant::now();
        live.touch();
    }
}

fn idle_ms(deadlines: &Deadlines) -> u64 {
    deadlines.idle.map_or(0, |d| d.as_millis() as u64)
}

/// Runs one request while watching its socket: a client that hangs up (or a
/// connection idle past connections.max.idle.ms) ends the connection at once
/// instead of when the request is done. A Fetch is then dropped (a long poll holds
/// nothing that must finish); any other request finishes on its own, keeping its
/// memory reservation, and its answer is discarded, as Kafka drops the responses of
/// closed connections. Bytes the client pipelines meanwhile are kept for the next
/// requests, up to the read-ahead limit (beyond it they wait in the socket).
#[allow(clippy::too_many_arguments)]
async fn serve_in_flight(
    broker: &Arc<Broker>,
    stream: &mut Transport,
    buf: &mut BytesMut,
    frame: BytesMut,
    caller: &Caller,
    held: &mut Option<Held>,
    deadlines: &Deadlines,
    last_io: &mut tokio::time::Instant,
    may_drain: bool,
) -> Result<Option<ResponseFrame>, ConnectionError> {
    let is_fetch = peek_request_prefix(&frame).map(|p| p.api_key) == Some(ApiKey::Fetch as i16);
    let mut request = {
        let broker = broker.clone();
        let caller = caller.clone();
        Box::pin(async move { handle_frame(&broker, frame, &caller, true).await })
    };
    let ended = loop {
        let room = READ_AHEAD_BYTES.saturating_sub(buf.len());
        if room > 0 {
            buf.reserve(room.min(INITIAL_READ_BYTES));
        }
        let mut limited = (&mut *buf).limit(room);
        tokio::select! {
            biased;
            response = &mut request => return response,
            n = stream.read_buf(&mut limited), if room > 0 => match n {
                Ok(0) => break ConnectionError::HungUp,
                Ok(_) => *last_io = tokio::time::Instant::now(),
                Err(e) => break ConnectionError::Io(e),
            },
            _ = sleep_until(deadlines.idle_at(*last_io)) => break ConnectionError::Idle(idle_ms(deadlines)),
        }
    };
    // Requests the client sent in full before hanging up are still served (their answers
    // dropped), as Kafka serves a closing channel's staged receives: an acks=0 producer
    // that sends and closes loses nothing. Only on a connection that may send requests
    // (no SASL, or authenticated), and never a Fetch, which holds nothing to finish.
    let mut staged = Vec::new();
    if matches!(ended, ConnectionError::HungUp) && may_drain {
        while let Ok(Some(next)) = split_frame(buf, broker.config.socket_request_max_bytes) {
            if peek_request_prefix(&next).map(|p| p.api_key) != Some(ApiKey::Fetch as i16) {
                staged.push(next);
            }
        }
    }
    // A Fetch is dropped here, at once.
    let in_flight = (!is_fetch).then_some(request);
    if in_flight.is_some() || !staged.is_empty() {
        let held = held.take();
        let broker = broker.clone();
        let caller = caller.clone();
        tokio::spawn(async move {
            if let Some(request) = in_flight {
                let _ = request.await;
            }
            for frame in staged {
                let _ = handle_frame(&broker, frame, &caller, true).await;
            }
            drop(held);
        });
    }
    Err(ended)
}

/// SCRAM credentials as the broker's current metadata image has them.
fn scram_credentials(broker: &Arc<Broker>) -> strom_security::sasl::scram::CredentialLookup {
    let broker = broker.clone();
    Arc::new(move |user, mechanism| {
        let mechanism_type = strom_security::sasl::scram::mechanism_type(mechanism)?;
        broker
            .image()
            .scram_credential(user, mechanism_type)
            .map(|c| strom_security::sasl::scram::ScramCredential {
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: c.iterations,
            })
    })
}

/// Ends the connection after a last answer so the client reads it: the client, having
/// read the answer, closes first; until then (a second at most) its bytes are drained,
/// since a close with bytes unread resets the connection and the answer could be lost.
async fn close_gracefully(stream: &mut Transport) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Answers one request frame. `may_forward` is false for a request another broker
/// forwarded here, which is never sent on again.
pub(crate) async fn handle_frame(
    broker: &Arc<Broker>,
    frame: BytesMut,
    caller: &Caller,
    may_forward: bool,
) -> Result<Option<ResponseFrame>, ConnectionError> {
    let started = Instant::now();
    let peer = caller.peer;
    let listener = caller.role;
    let prefix = peek_request_prefix(&frame).ok_or(ConnectionError::ShortRequest(frame.len()))?;
    // Node requests: on CONTROLLER listeners all of them; on a broker-only node's broker
    // listeners only the Raft messages the active controller sends its observers.
    let node_request = prefix.api_key == crate::node_rpc::NODE_RPC_API_KEY
        && match listener {
            ListenerRole::Controller => true,
            ListenerRole::Client => {
                !broker.config.cluster.roles.controller
                    && prefix.api_version == crate::node_rpc::RAFT_VERSION
            }
        };
    if node_request {
        // Raft messages and forwarded requests speak for the cluster: as Kafka asks of
        // its controller listener's and Envelope's principal, CLUSTER_ACTION.
        if !caller
            .authz(broker)
            .allows_cluster(Operation::ClusterAction)
        {
            return Err(ConnectionError::NodeRequestRefused(
                caller.principal.to_string(),
            ));
        }
        let (correlation_id, body) = crate::node_rpc::request_body(&frame)
            .ok_or(ConnectionError::ShortRequest(frame.len()))?;
        let response = match prefix.api_version {
            crate::controller_channel::FORWARD_VERSION => {
                serve_forwarded(broker, body, peer).await?
            }
            crate::controller_channel::LEADER_QUERY_VERSION => {
                crate::controller_channel::encode_known_leader(broker)
            }
            _ => crate::metadata_quorum::handle_node_request(broker, body)
                .await
                .map_err(|e| DispatchError::Malformed(e.to_string()))?,
        };
        return Ok(Some(
            crate::node_rpc::encode_response(correlation_id, &response).into(),
        ));
    }
    if listener == ListenerRole::Client {
        // A broker-only node binds its listeners before it is unfenced (the controller
        // sends it the log there): clients wait until it serves them.
        broker.wait_open_to_clients().await;
    }
    if may_forward && listener == ListenerRole::Client && broker.forwards(prefix.api_key) {
        match broker
            .forward_frame(&frame, Some((&caller.principal, peer)))
            .await
        {
            Ok(response) => {
                // As Kafka's sendForwardedResponse: the client's connection is muted for
                // the controller's throttle (its controller_mutation_rate).
                let throttle_ms = broker
                    .apis_for(listener)
                    .get(prefix.api_key)
                    .zip(caller.mute.as_ref())
                    .and_then(|(api, mute)| {
                        let body = bytes::Bytes::copy_from_slice(&response[LENGTH_PREFIX_BYTES..]);
                        Some((api.response_throttle_ms(prefix.api_version, body)?, mute))
                    });
                if let Some((ms, mute)) = throttle_ms.filter(|(ms, _)| *ms > 0) {
                    mute.extend(Duration::from_millis(ms as u64));
                }
                broker.metrics.request_done(
                    ApiKey::try_from(prefix.api_key).unwrap_or(ApiKey::ApiVersions),
                    started.elapsed(),
                );
                return Ok(Some(response.into()));
            }
            // Answered here instead: the change is refused with NOT_CONTROLLER, which
            // clients retry.
            Err(e) => debug!(%peer, error = %e, "forwarding to the controller failed"),
        }
    }
    let apis = broker.apis_for(listener);
    let api = apis
        .get(prefix.api_key)
        .ok_or(DispatchError::UnknownApiKey(prefix.api_key))?;
    let key = api.key();
    let versions = api.versions();
    if prefix.api_version < versions.min || prefix.api_version > versions.max {
        if key == ApiKey::ApiVersions {
            // KIP-511: answer with v0 and the supported ranges so the client can retry.
            return Ok(Some(
                unsupported_api_versions_response(apis, prefix.correlation_id)?.into(),
            ));
        }
        return Err(DispatchError::UnsupportedVersion {
            key,
            version: prefix.api_version,
        }
        .into());
    }
    let frame_bytes = frame.len() + LENGTH_PREFIX_BYTES;
    let mut body = frame.freeze();
    let header_version = key.request_header_version(prefix.api_version);
    let header = match std::panic::catch_unwind(move || {
        let header = RequestHeader::decode(&mut body, header_version);
        header.map(|h| (h, body))
    }) {
        Ok(Ok(decoded)) => decoded,
        Ok(Err(e)) => return Err(DispatchError::Malformed(format!("request header: {e:#}")).into()),
        Err(_) => {
            return Err(DispatchError::Malformed("request header decoder panicked".into()).into())
        }
    };
    let (header, body) = header;
    debug!(%peer, api = ?key, version = prefix.api_version, correlation_id = prefix.correlation_id, "request");
    let response = api
        .call(broker.clone(), header, body, caller.clone(), frame_bytes)
        .await?;
    broker.metrics.request_done(key, started.elapsed());
    Ok(response)
}

/// A client request another broker forwarded: answered as if it came in on a client
/// listener here, with the metadata offset this node has applied after it.
async fn serve_forwarded(
    broker: &Arc<Broker>,
    body: &[u8],
    peer: SocketAddr,
) -> Result<Vec<u8>, ConnectionError> {
    let (on_behalf, body) = crate::controller_channel::split_forwarded(body)
        .ok_or(ConnectionError::ShortRequest(body.len()))?;
    let prefix = peek_request_prefix(body).ok_or(ConnectionError::ShortRequest(body.len()))?;
    if !crate::controller_channel::is_forwarded_api(prefix.api_key) {
        return Err(DispatchError::Malformed(format!(
            "api key {} is not forwarded to the controller",
            prefix.api_key
        ))
        .into());
    }
    let inner = BytesMut::from(body);
    let caller = match on_behalf {
        Some((principal, client)) => Caller::forwarded(client, Some(principal)),
        None => Caller::forwarded(peer, None),
    };
    let response = Box::pin(handle_frame(broker, inner, &caller, false))
        .await?
        .ok_or_else(|| DispatchError::Malformed("a forwarded request got no answer".into()))?
        .materialise()?;
    Ok(crate::controller_channel::encode_forwarded_answer(
        broker.image_offset(),
        &response,
    ))
}

/// Writes a response frame in order: memory parts as they are, file parts
/// straight from the page cache (sendfile on Linux, else read and written), or,
/// through TLS, read into memory off the async workers and encrypted.
/// A client that stops reading its responses is closed once no byte has gone out for
/// `idle` (connections.max.idle.ms).
async fn write_frame(
    broker: &Broker,
    stream: &mut Transport,
    frame: &ResponseFrame,
    idle: Option<Duration>,
) -> Result<(), ConnectionError> {
    let parts = frame.parts();
    match stream {
        Transport::Plain(stream) => {
            for (i, part) in parts.iter().enumerate() {
                let more = i + 1 < parts.len();
                match part {
                    FramePart::Memory(bytes) => write_memory(stream, bytes, more, idle).await?,
                    FramePart::File(slice) => {
                        send_file(stream, slice, idle).await?;
                        broker.metrics.fetch_bytes_sent_zero_copy(slice.len);
                    }
                }
            }
        }
        Transport::Tls(stream) => {
            for part in parts {
                match part {
                    FramePart::Memory(bytes) => write_tls(stream, bytes, idle).await?,
                    FramePart::File(slice) => {
                        write_tls(stream, &read_region(slice).await?, idle).await?
                    }
                }
            }
            with_progress_deadline(idle, stream.flush()).await?;
        }
    }
    Ok(())
}

/// Writes through TLS in pieces, each within `idle`.
async fn write_tls(
    stream: &mut tokio_rustls::server::TlsStream<TcpStream>,
    bytes: &[u8],
    idle: Option<Duration>,
) -> std::io::Result<()> {
    for piece in bytes.chunks(READ_AHEAD_BYTES) {
        with_progress_deadline(idle, stream.write_all(piece)).await?;
    }
    Ok(())
}

/// `io` if it completes within `idle`, else a timeout error.
async fn with_progress_deadline<T>(
    idle: Option<Duration>,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match idle {
        None => io.await,
        Some(idle) => tokio::time::timeout(idle, io).await.unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read nothing for connections.max.idle.ms",
            ))
        }),
    }
}

/// A log region's bytes, read on a blocking thread (a file cut short is a read error).
async fn read_region(slice: &strom_log::FileSlice) -> Result<bytes::Bytes, ConnectionError> {
    let region = strom_log::LogSlices {
        slices: vec![slice.clone()],
        ..Default::default()
    };
    let bytes = tokio::task::spawn_blocking(move || region.to_bytes())
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes)
}

#[cfg(target_os = "linux")]
async fn write_memory(
    stream: &mut TcpStream,
    bytes: &[u8],
    more: bool,
    idle: Option<Duration>,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;
    // MSG_MORE: the file bytes that follow share packets with this header.
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    let fd = stream.as_raw_fd();
    let mut sent = 0;
    while sent < bytes.len() {
        with_progress_deadline(idle, stream.writable()).await?;
        let rest = &bytes[sent..];
        // SAFETY: `rest` is a live slice and `fd` the stream's open socket.
        match stream.try_io(Interest::WRITABLE, || {
            let n = unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), flags) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        }) {
            Ok(n) => sent += n,
            Err(e) if retry(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
async fn write_memory(
    stream: &mut TcpStream,
    bytes: &[u8],
    _more: bool,
    idle: Option<Duration>,
) -> std::io::Result<()> {
    with_progress_deadline(idle, stream.write_all(bytes)).await
}

#[cfg(target_os = "linux")]
fn retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Sends a file region with sendfile(2): the bytes go from the page cache to
/// the socket without a copy into this process.
#[cfg(target_os = "linux")]
async fn send_file(
    stream: &mut TcpStream,
    slice: &strom_log::FileSlice,
    idle: Option<Duration>,
) -> Result<(), ConnectionError> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;
    // Linux sends at most 0x7ffff000 bytes per call.
    const MAX_CHUNK: u64 = 1 << 30;
    let socket = stream.as_raw_fd();
    let file = slice.file.as_raw_fd();
    let end = slice.position + slice.len;
    let mut offset = slice.position;
    while offset < end {
        with_progress_deadline(idle, stream.writable()).await?;
        let count = (end - offset).min(MAX_CHUNK) as usize;
        let result = stream.try_io(Interest::WRITABLE, || {
            let mut at = offset as libc::off_t;
            // SAFETY: both descriptors are open (the slice holds the file) and
            // `at` is a valid off_t the kernel advances.
            let n = unsafe { libc::sendfile(socket, file, &mut at, count) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as u64)
            }
        });
        match result {
            // The size prefix promised these bytes: a file cut short (by
            // truncation) cannot be answered, so the connection closes.
            Ok(0) => return Err(ConnectionError::ShortFile(end - offset)),
            Ok(n) => offset += n,
            Err(e) if retry(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Without sendfile: the region is read off the async workers and written.
#[cfg(not(target_os = "linux"))]
async fn send_file(
    stream: &mut TcpStream,
    slice: &strom_log::FileSlice,
    idle: Option<Duration>,
) -> Result<(), ConnectionError> {
    with_progress_deadline(idle, stream.write_all(&read_region(slice).await?)).await?;
    Ok(())
}
