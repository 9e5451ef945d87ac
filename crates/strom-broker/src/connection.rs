//! One client connection: frames are read, dispatched through the API table
//! one at a time (as Kafka does, so responses stay in request order), and
//! answered. Bad input closes the connection with a log line; it never
//! affects other connections. With `queued.max.request.bytes` set, a
//! request's frame size is reserved from the broker-wide budget before its
//! body is read and given back once its response is written. Responses are
//! written part by part: memory with `send`, file regions with `sendfile`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use tokio::io::AsyncReadExt;
#[cfg(not(target_os = "linux"))]
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::apis::{unsupported_api_versions_response, DispatchError, ListenerRole};
use crate::broker::Broker;
use crate::request_memory::{RequestMemory, Reservation};
use crate::response_frame::{FramePart, ResponseFrame};
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
}

/// A request's reservation, counted in the metrics while held.
struct Held<'a> {
    _reservation: Reservation,
    bytes: i64,
    broker: &'a Broker,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.broker.metrics.queued_request_bytes(-self.bytes);
    }
}

pub async fn serve(
    broker: Arc<Broker>,
    memory: Option<Arc<RequestMemory>>,
    mut stream: TcpStream,
    peer: SocketAddr,
    listener: ListenerRole,
) {
    let _ = stream.set_nodelay(true);
    broker.metrics.connections_opened();
    match run(&broker, memory.as_deref(), &mut stream, peer, listener).await {
        Ok(()) => debug!(%peer, "connection closed by peer"),
        Err(ConnectionError::Io(e)) => debug!(%peer, error = %e, "connection i/o error"),
        Err(e) => warn!(%peer, error = %e, "closing connection"),
    }
    broker.metrics.connections_closed();
}

async fn run(
    broker: &Arc<Broker>,
    memory: Option<&RequestMemory>,
    stream: &mut TcpStream,
    peer: SocketAddr,
    listener: ListenerRole,
) -> Result<(), ConnectionError> {
    let max_frame_bytes = broker.config.socket_request_max_bytes;
    let mut buf = BytesMut::with_capacity(INITIAL_READ_BYTES);
    let mut held: Option<Held<'_>> = None;
    loop {
        // Reserve as soon as the size is known, before the body is read; the
        // socket is not read while waiting.
        if let (Some(memory), None) = (memory, &held) {
            if let Some(size) = peek_frame_size(&buf, max_frame_bytes)? {
                let reservation = memory.reserve(size + LENGTH_PREFIX_BYTES).await;
                let bytes = reservation.bytes() as i64;
                broker.metrics.queued_request_bytes(bytes);
                held = Some(Held {
                    _reservation: reservation,
                    bytes,
                    broker,
                });
            }
        }
        if let Some(frame) = split_frame(&mut buf, max_frame_bytes)? {
            let frame_bytes = frame.len() + LENGTH_PREFIX_BYTES;
            broker.metrics.bytes_in(frame_bytes);
            if let Some(response) = handle_frame(broker, frame, peer, listener, true).await? {
                broker.metrics.bytes_out(response.len());
                write_frame(broker, stream, &response).await?;
            }
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
        // A large frame's rest is reserved at once and read without read-ahead, so its
        // bytes land where they stay: no copy as the buffer grows, none of the next
        // frame's bytes to move. The size is bounded by socket.request.max.bytes (and by
        // queued.max.request.bytes when set); capacity the peer has not filled yet is
        // address space, not resident memory.
        let (reserve, limit) = match peek_frame_size(&buf, max_frame_bytes)? {
            Some(size) if size + LENGTH_PREFIX_BYTES - buf.len() > INITIAL_READ_BYTES => {
                let rest = size + LENGTH_PREFIX_BYTES - buf.len();
                (rest, rest)
            }
            _ => (INITIAL_READ_BYTES, READ_AHEAD_BYTES),
        };
        buf.reserve(reserve);
        if stream.read_buf(&mut (&mut buf).limit(limit)).await? == 0 {
            if buf.is_empty() {
                return Ok(());
            }
            return Err(ConnectionError::TruncatedFrame(buf.len()));
        }
    }
}

/// Answers one request frame. `may_forward` is false for a request another broker
/// forwarded here, which is never sent on again.
pub(crate) async fn handle_frame(
    broker: &Arc<Broker>,
    frame: BytesMut,
    peer: SocketAddr,
    listener: ListenerRole,
    may_forward: bool,
) -> Result<Option<ResponseFrame>, ConnectionError> {
    let started = Instant::now();
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
        match broker.forward_frame(&frame).await {
            Ok(response) => {
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
        .call(broker.clone(), header, body, peer, listener)
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
    let prefix = peek_request_prefix(body).ok_or(ConnectionError::ShortRequest(body.len()))?;
    if !crate::controller_channel::is_forwarded_api(prefix.api_key) {
        return Err(DispatchError::Malformed(format!(
            "api key {} is not forwarded to the controller",
            prefix.api_key
        ))
        .into());
    }
    let inner = BytesMut::from(body);
    let response = Box::pin(handle_frame(
        broker,
        inner,
        peer,
        ListenerRole::Client,
        false,
    ))
    .await?
    .ok_or_else(|| DispatchError::Malformed("a forwarded request got no answer".into()))?
    .materialise()?;
    Ok(crate::controller_channel::encode_forwarded_answer(
        broker.image_offset(),
        &response,
    ))
}

/// Writes a response frame in order: memory parts as they are, file parts
/// straight from the page cache (sendfile on Linux, else read and written).
async fn write_frame(
    broker: &Broker,
    stream: &mut TcpStream,
    frame: &ResponseFrame,
) -> Result<(), ConnectionError> {
    let parts = frame.parts();
    for (i, part) in parts.iter().enumerate() {
        let more = i + 1 < parts.len();
        match part {
            FramePart::Memory(bytes) => write_memory(stream, bytes, more).await?,
            FramePart::File(slice) => {
                send_file(stream, slice).await?;
                broker.metrics.fetch_bytes_sent_zero_copy(slice.len);
            }
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
async fn write_memory(stream: &mut TcpStream, bytes: &[u8], more: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;
    // MSG_MORE: the file bytes that follow share packets with this header.
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    let fd = stream.as_raw_fd();
    let mut sent = 0;
    while sent < bytes.len() {
        stream.writable().await?;
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
async fn write_memory(stream: &mut TcpStream, bytes: &[u8], _more: bool) -> std::io::Result<()> {
    stream.write_all(bytes).await
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
        stream.writable().await?;
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
) -> Result<(), ConnectionError> {
    let region = strom_log::LogSlices {
        slices: vec![slice.clone()],
        ..Default::default()
    };
    let bytes = tokio::task::spawn_blocking(move || region.to_bytes())
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.write_all(&bytes).await?;
    Ok(())
}
