//! Reading the topics out of a consumer-protocol member's subscription metadata.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

/// Topics of a `consumer` protocol subscription, or `None` if it does not parse.
///
/// Like Kafka, only the version-0 prefix (topics, user data) is read, whatever
/// version the client wrote: later versions only append fields.
pub(crate) fn subscribed_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 || buf.get_i16() < 0 {
        return None;
    }
    // The codec pre-allocates from the array count; refuse counts the bytes cannot hold
    // (every topic name takes at least its 2-byte length).
    if buf.remaining() < 4 {
        return None;
    }
    let count = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let max_count = (buf.remaining() - 4) / 2;
    if count < 0 || usize::try_from(count).map_or(true, |c| c > max_count) {
        return None;
    }
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, 0).ok()?;
    Some(
        subscription
            .topics
            .into_iter()
            .map(|t| t.to_string())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn reads_topics_of_any_version_and_rejects_garbage() {
        let sub = ConsumerProtocolSubscription::default().with_topics(vec![
            StrBytes::from_static_str("a"),
            StrBytes::from_static_str("b"),
        ]);
        let mut buf = BytesMut::new();
        buf.put_i16(3);
        sub.encode(&mut buf, 3).unwrap();
        assert_eq!(
            subscribed_topics(&buf.freeze()),
            Some(vec!["a".to_string(), "b".to_string()])
        );

        // A huge array count must not be trusted.
        let huge = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']);
        assert_eq!(subscribed_topics(&huge), None);
        assert_eq!(subscribed_topics(&Bytes::from_static(&[0xff, 0xff])), None);
        assert_eq!(subscribed_topics(&Bytes::new()), None);
    }
}
