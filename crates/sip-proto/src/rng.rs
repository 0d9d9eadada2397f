//! Tags, branches and SDP session ids need unpredictable values; a sans-IO crate cannot read
//! the OS, so the endpoint is seeded (from the OS by the bridge, fixed in tests) and runs
//! splitmix64. Not a cryptographic generator: tags only need to be unique (RFC 3261 19.3).

#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 16 hex digits: 64 bits, as RFC 3261 19.3 asks of tags ("at least 32 bits").
    pub(crate) fn token(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}
