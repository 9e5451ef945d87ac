//! Kafka's default partitioner: keyed records go to
//! `toPositive(murmur2(key)) % partitions`, the same partition the Java
//! client and librdkafka's `murmur2_random` pick; unkeyed records stick to
//! one randomly chosen partition per batch.

use std::hash::{BuildHasher, Hasher};

/// Kafka's 32-bit murmur2 (seed 0x9747b28c), as used by its default
/// partitioner; returns the hash as Java's signed int.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // Kafka masks tail bytes with 0xff, i.e. treats them as unsigned.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner gives a key.
/// `partitions` must be positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    to_positive(murmur2(key)) % partitions.max(1)
}

/// A random partition in `0..partitions`, for unkeyed records.
pub fn random_partition(partitions: i32) -> i32 {
    // RandomState is seeded randomly per instance; hashing the clock mixes
    // it further. Good enough to spread unkeyed batches.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() % partitions.max(1) as u64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's own murmur2 (org.apache.kafka.common.utils.Utils).
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn murmur2_matches_librdkafka() {
        // librdkafka's murmur2 unit-test values (unsigned), which cover every
        // tail length (0..=3 trailing bytes) and the empty key.
        let cases: [(&[u8], u32); 11] = [
            (b"kafka", 0xd067cf64),
            (b"giberish123456789", 0x8f552b0c),
            (b"1234", 0x9fc97b14),
            (b"234", 0xe7c009ca),
            (b"34", 0x873930da),
            (b"4", 0x5a4b5ca1),
            (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c),
            (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62b377),
            (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4e09e),
            (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8b43f),
            (b"", 0x106e08d9),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key) as u32,
                expected,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn partition_for_key_uses_to_positive() {
        assert_eq!(to_positive(-1), 0x7fff_ffff);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(5), 5);
        // (-973932308 & 0x7fffffff) = 1173551340
        assert_eq!(partition_for_key(b"21", 3), 1173551340 % 3);
        assert_eq!(
            partition_for_key(b"foobar", 10),
            (-790332482i32 & 0x7fff_ffff) % 10
        );
        assert_eq!(partition_for_key(b"abc", 1), 0);
    }

    #[test]
    fn random_partition_stays_in_range() {
        for n in 1..20 {
            let p = random_partition(n);
            assert!((0..n).contains(&p), "{p} not in 0..{n}");
        }
        assert_eq!(random_partition(0), 0);
    }
}
