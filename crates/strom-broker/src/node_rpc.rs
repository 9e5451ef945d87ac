//! Strom's own requests between nodes (the metadata quorum's Raft messages) on the
//! CONTROLLER listener. They ride in Kafka's framing (size prefix, request header v1,
//! response header v0) under one api key that no Kafka API uses, so one listener serves
//! them beside the Kafka requests brokers send their controller; the body is opaque here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The api key of strom's node-to-node requests. Kafka's keys are small and dense; this
/// one is far from them and is only accepted on controller listeners (and, for the Raft
/// messages an observer is sent, on a broker-only node's broker listeners).
pub const NODE_RPC_API_KEY: i16 = 32_700;
/// The node request version of the metadata quorum's Raft messages.
pub const RAFT_VERSION: i16 = 0;
const NODE_RPC_API_VERSION: i16 = RAFT_VERSION;
/// Connections kept open to one node; more calls at once wait for one.
const CONNECTIONS_PER_NODE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum NodeRpcError {
    #[error("{addr}: {error}")]
    Io { addr: String, error: std::io::Error },
    #[error("{addr}: no answer within {ms} ms")]
    Timeout { addr: String, ms: u64 },
    #[error("{addr}: response frame of {size} bytes is out of bounds")]
    BadFrame { addr: String, size: i64 },
    #[error("{addr}: response to correlation id {got}, expected {expected}")]
    Correlation {
        addr: String,
        got: i32,
        expected: i32,
    },
    #[error("{addr}: {what}: {why}")]
    Codec {
        addr: String,
        what: String,
        why: String,
    },
}

/// Encodes a node request frame.
pub fn encode_request(correlation_id: i32, version: i16, body: &[u8]) -> BytesMut {
    let mut frame = BytesMut::with_capacity(4 + 10 + body.len());
    frame.put_i32(0);
    frame.put_i16(NODE_RPC_API_KEY);
    frame.put_i16(version);
    frame.put_i32(correlation_id);
    frame.put_i16(-1); // no client id
    frame.extend_from_slice(body);
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    frame
}

/// The body of a node request frame (after the size prefix), or `None` if it is too
/// short or is not one.
pub fn request_body(frame: &[u8]) -> Option<(i32, &[u8])> {
    if frame.len() < 10 || i16::from_be_bytes([frame[0], frame[1]]) != NODE_RPC_API_KEY {
        return None;
    }
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let client_id_len = i16::from_be_bytes([frame[8], frame[9]]);
    let start = 10 + usize::try_from(client_id_len.max(0)).ok()?;
    frame.get(start..).map(|body| (correlation_id, body))
}

/// A whole response frame: size prefix, correlation id, body.
pub fn encode_response(correlation_id: i32, body: &[u8]) -> BytesMut {
    let mut frame = BytesMut::with_capacity(8 + body.len());
    frame.put_i32((4 + body.len()) as i32);
    frame.put_i32(correlation_id);
    frame.extend_from_slice(body);
    frame
}

/// Open connections to other nodes, by address, reused across calls.
pub struct NodeRpcClient {
    idle: std::sync::Mutex<HashMap<String, Vec<TcpStream>>>,
    permits: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    max_response_bytes: usize,
    next_correlation_id: std::sync::atomic::AtomicI32,
}

impl NodeRpcClient {
    pub fn new(max_response_bytes: usize) -> Self {
        Self {
            idle: Default::default(),
            permits: Default::default(),
            max_response_bytes,
            next_correlation_id: Default::default(),
        }
    }

    /// Sends `body` to the node at `addr` and returns the response body. A failed call
    /// drops its connection; the next call connects again.
    pub async fn call(
        &self,
        addr: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, NodeRpcError> {
        self.call_versioned(addr, NODE_RPC_API_VERSION, body, timeout)
            .await
    }

    /// [`Self::call`] with a node request version other than the Raft messages' 0.
    pub async fn call_versioned(
        &self,
        addr: &str,
        version: i16,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, NodeRpcError> {
        let permits = self
            .permits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(addr.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_PER_NODE)))
            .clone();
        let _permit = permits.acquire_owned().await.expect("never closed");
        let timed_out = || NodeRpcError::Timeout {
            addr: addr.to_string(),
            ms: timeout.as_millis() as u64,
        };
        let correlation_id = self.next_correlation_id();
        let frame = encode_request(correlation_id, version, body);
        let mut response = tokio::time::timeout(timeout, self.exchange(addr, &frame))
            .await
            .map_err(|_| timed_out())??;
        check_correlation(addr, &mut response, correlation_id)?;
        Ok(response)
    }

    /// Sends a Kafka request (to another node's CONTROLLER or broker listener) at
    /// `version` and decodes its response.
    pub async fn call_kafka<R>(
        &self,
        addr: &str,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, NodeRpcError>
    where
        R: Request + Encodable,
    {
        let codec = |what: &str, why: String| NodeRpcError::Codec {
            addr: addr.to_string(),
            what: what.to_string(),
            why,
        };
        let key = ApiKey::try_from(R::KEY).map_err(|_| codec("api key", R::KEY.to_string()))?;
        let correlation_id = self.next_correlation_id();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("strom-node")));
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0);
        header
            .encode(&mut frame, key.request_header_version(version))
            .map_err(|e| codec("request header", e.to_string()))?;
        request
            .encode(&mut frame, version)
            .map_err(|e| codec("request", e.to_string()))?;
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        let mut response = tokio::time::timeout(timeout, self.exchange(addr, &frame))
            .await
            .map_err(|_| NodeRpcError::Timeout {
                addr: addr.to_string(),
                ms: timeout.as_millis() as u64,
            })??;
        let header = ResponseHeader::decode(&mut response, key.response_header_version(version))
            .map_err(|e| codec("response header", e.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(NodeRpcError::Correlation {
                addr: addr.to_string(),
                got: header.correlation_id,
                expected: correlation_id,
            });
        }
        R::Response::decode(&mut response, version).map_err(|e| codec("response", e.to_string()))
    }

    fn next_correlation_id(&self) -> i32 {
        self.next_correlation_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes a whole request frame and reads the response frame (its payload after the
    /// size). The connection goes back to the pool only after a whole exchange.
    async fn exchange(&self, addr: &str, frame: &[u8]) -> Result<Bytes, NodeRpcError> {
        let io = |error| NodeRpcError::Io {
            addr: addr.to_string(),
            error,
        };
        // A pooled connection the other node closed meanwhile (connections.max.idle.ms
        // there) is dropped here rather than failing this call.
        let pooled = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let pool = idle.get_mut(addr);
            pool.and_then(|pool| std::iter::from_fn(|| pool.pop()).find(still_open))
        };
        let mut stream = match pooled {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(addr).await.map_err(io)?;
                let _ = stream.set_nodelay(true);
                stream
            }
        };
        stream.write_all(frame).await.map_err(io)?;
        let size = stream.read_i32().await.map_err(io)?;
        if size < 4 || size as usize > self.max_response_bytes {
            return Err(NodeRpcError::BadFrame {
                addr: addr.to_string(),
                size: size.into(),
            });
        }
        let mut response = vec![0u8; size as usize];
        stream.read_exact(&mut response).await.map_err(io)?;
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(addr.to_string())
            .or_default()
            .push(stream);
        Ok(Bytes::from(response))
    }
}

/// Whether an idle pooled connection is still open: nothing to read and no end of stream.
#[cfg(unix)]
fn still_open(stream: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut probe = [0u8; 1];
    // SAFETY: `probe` is a live one-byte buffer and the descriptor is the stream's open socket.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            probe.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}

#[cfg(not(unix))]
fn still_open(_stream: &TcpStream) -> bool {
    true
}

fn check_correlation(addr: &str, response: &mut Bytes, expected: i32) -> Result<(), NodeRpcError> {
    if response.len() < 4 {
        return Err(NodeRpcError::BadFrame {
            addr: addr.to_string(),
            size: response.len() as i64,
        });
    }
    let got = response.get_i32();
    if got != expected {
        return Err(NodeRpcError::Correlation {
            addr: addr.to_string(),
            got,
            expected,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Answers every node request with its body reversed, through the same framing.
    async fn reversing_server(listener: TcpListener) {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                loop {
                    let Ok(size) = stream.read_i32().await else {
                        return;
                    };
                    let mut frame = vec![0u8; size as usize];
                    if stream.read_exact(&mut frame).await.is_err() {
                        return;
                    }
                    let (correlation_id, body) = request_body(&frame).expect("a node request");
                    let reversed: Vec<u8> = body.iter().rev().copied().collect();
                    if stream
                        .write_all(&encode_response(correlation_id, &reversed))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    }

    #[tokio::test]
    async fn a_pooled_connection_the_server_closed_is_replaced_without_failing_a_call() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // Answers one request per connection, then closes it (as an idle timeout would).
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let size = stream.read_i32().await.unwrap();
                let mut frame = vec![0u8; size as usize];
                stream.read_exact(&mut frame).await.unwrap();
                let (correlation_id, body) = request_body(&frame).unwrap();
                let body = body.to_vec();
                stream
                    .write_all(&encode_response(correlation_id, &body))
                    .await
                    .unwrap();
            }
        });
        let client = NodeRpcClient::new(1 << 20);
        for i in 0..3u8 {
            let answer = client.call(&addr, &[i], Duration::from_secs(5)).await;
            assert_eq!(answer.unwrap().as_ref(), &[i]);
            // The closed connection is in the pool until the next call looks at it.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn calls_reuse_connections_and_match_responses() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(reversing_server(listener));
        let client = Arc::new(NodeRpcClient::new(1 << 20));
        let calls: Vec<_> = (0..16u8)
            .map(|i| {
                let client = client.clone();
                let addr = addr.clone();
                tokio::spawn(async move {
                    client
                        .call(&addr, &[i, 1, 2], Duration::from_secs(5))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().as_ref(), &[2, 1, i as u8]);
        }
        let idle = client.idle.lock().unwrap()[&addr].len();
        assert!((1..=CONNECTIONS_PER_NODE).contains(&idle), "{idle} idle");
    }

    #[tokio::test]
    async fn an_unreachable_node_is_an_error_not_a_hang() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let client = NodeRpcClient::new(1 << 20);
        assert!(client
            .call(&addr, b"x", Duration::from_secs(5))
            .await
            .is_err());
        // A node that accepts but never answers times out.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let err = client
            .call(&addr, b"x", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, NodeRpcError::Timeout { .. }), "{err}");
    }

    #[test]
    fn request_frames_round_trip_and_other_keys_are_not_node_requests() {
        let frame = encode_request(7, NODE_RPC_API_VERSION, b"abc");
        let (correlation_id, body) = request_body(&frame[4..]).unwrap();
        assert_eq!((correlation_id, body), (7, &b"abc"[..]));
        let mut other = frame[4..].to_vec();
        other[1] = 0;
        assert!(request_body(&other).is_none());
        assert!(request_body(&frame[4..9]).is_none());
    }
}
