//! One client connection: frames are read, dispatched through the API table
//! one at a time (as Kafka does, so responses stay in request order), and
//! answered. Bad input closes the connection with a log line; it never
//! affects other connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::apis::{unsupported_api_versions_response, DispatchError};
use crate::broker::Broker;
use strom_wire::frame::{peek_frame_size, peek_request_prefix, split_frame, LENGTH_PREFIX_BYTES};

/// Largest read-ahead reserved at once; a frame's declared size is never
/// reserved up front, so a peer that lies about its size costs little.
const READ_CHUNK_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
enum ConnectionError {
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
}

pub async fn serve(broker: Arc<Broker>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    broker.metrics.connections_opened();
    match run(&broker, &mut stream, peer).await {
        Ok(()) => debug!(%peer, "connection closed by peer"),
        Err(ConnectionError::Io(e)) => debug!(%peer, error = %e, "connection i/o error"),
        Err(e) => warn!(%peer, error = %e, "closing connection"),
    }
    broker.metrics.connections_closed();
}

async fn run(
    broker: &Arc<Broker>,
    stream: &mut TcpStream,
    peer: SocketAddr,
) -> Result<(), ConnectionError> {
    let max_frame_bytes = broker.config.socket_request_max_bytes;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        if let Some(frame) = split_frame(&mut buf, max_frame_bytes)? {
            broker.metrics.bytes_in(frame.len() + LENGTH_PREFIX_BYTES);
            if let Some(response) = handle_frame(broker, frame, peer).await? {
                broker.metrics.bytes_out(response.len());
                stream.write_all(&response).await?;
            }
            continue;
        }
        let wanted = match peek_frame_size(&buf, max_frame_bytes)? {
            Some(size) => (size + LENGTH_PREFIX_BYTES - buf.len()).min(READ_CHUNK_BYTES),
            None => 64 * 1024,
        };
        buf.reserve(wanted);
        if stream.read_buf(&mut buf).await? == 0 {
            if buf.is_empty() {
                return Ok(());
            }
            return Err(ConnectionError::TruncatedFrame(buf.len()));
        }
    }
}

async fn handle_frame(
    broker: &Arc<Broker>,
    frame: BytesMut,
    peer: SocketAddr,
) -> Result<Option<BytesMut>, ConnectionError> {
    let started = Instant::now();
    let prefix = peek_request_prefix(&frame).ok_or(ConnectionError::ShortRequest(frame.len()))?;
    let api = broker
        .apis
        .get(prefix.api_key)
        .ok_or(DispatchError::UnknownApiKey(prefix.api_key))?;
    let key = api.key();
    let versions = api.versions();
    if prefix.api_version < versions.min || prefix.api_version > versions.max {
        if key == ApiKey::ApiVersions {
            // KIP-511: answer with v0 and the supported ranges so the client can retry.
            return Ok(Some(unsupported_api_versions_response(
                &broker.apis,
                prefix.correlation_id,
            )?));
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
    let response = api.call(broker.clone(), header, body, peer).await?;
    broker.metrics.request_done(key, started.elapsed());
    Ok(response)
}
