//! Member ids: `<client id or group instance id>-<uuid>`, as Kafka forms them.

/// Generates UUID-shaped suffixes from a seed and a counter (no randomness source
/// here: the runtime passes a random seed so ids differ across loads).
#[derive(Debug, Clone)]
pub(crate) struct MemberIdGen {
    seed: u64,
    counter: u64,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl MemberIdGen {
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }

    /// A bare UUID-shaped id (consumer groups v0, where the coordinator picks it).
    pub fn uuid(&mut self) -> String {
        let id = self.next("");
        id.trim_start_matches('-').to_owned()
    }

    pub fn next(&mut self, prefix: &str) -> String {
        self.counter = self.counter.wrapping_add(1);
        let hi = splitmix64(self.seed ^ self.counter.wrapping_mul(2));
        let lo = splitmix64(self.seed ^ self.counter.wrapping_mul(2).wrapping_add(1));
        // Version-4 / variant-1 bits, so the suffix reads as a random UUID.
        let hi = (hi & !0xf000) | 0x4000;
        let lo = (lo & !(0xc000 << 48)) | (0x8000 << 48);
        format!(
            "{prefix}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let mut ids = MemberIdGen::new(7);
        let a = ids.next("client");
        let b = ids.next("client");
        assert_ne!(a, b);
        let uuid = a.strip_prefix("client-").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }
}
