//! Confluent's wire format: magic byte 0, the writer schema's id (4 bytes, big-endian), then
//! the payload.

pub const MAGIC_BYTE: u8 = 0;

/// The wire format: magic byte, id, payload.
pub fn frame(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The id and payload of framed bytes; None for bytes that are not in the wire format.
pub fn unframe(data: &[u8]) -> Option<(u32, &[u8])> {
    if data.len() < 5 || data[0] != MAGIC_BYTE {
        return None;
    }
    let id = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
    Some((id, &data[5..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_magic_byte_and_a_big_endian_id() {
        let framed = frame(0x0102_0304, b"xyz");
        assert_eq!(framed, b"\x00\x01\x02\x03\x04xyz");
        assert_eq!(unframe(&framed), Some((0x0102_0304, &b"xyz"[..])));
        assert_eq!(unframe(b"\x00\x00\x00\x00\x07"), Some((7, &b""[..])));
        // Not the wire format: too short, or another first byte.
        assert_eq!(unframe(b"\x00\x00\x00\x01"), None);
        assert_eq!(unframe(b""), None);
        assert_eq!(unframe(b"{\"a\":1}"), None);
    }
}
