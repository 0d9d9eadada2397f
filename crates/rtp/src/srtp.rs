//! SRTP and SRTCP (RFC 3711) with the two SDES suites of RFC 4568 6.2: AES_CM_128_HMAC_SHA1_80
//! and AES_CM_128_HMAC_SHA1_32. Sans-IO like the rest of the crate: packets in, packets out;
//! the caller supplies the master keys (from SDP, RFC 4568), no clock, no entropy.
//!
//! One [`SrtpContext`] per direction and master key: it derives the session keys (RFC 3711
//! 4.3, key derivation rate 0), and keeps per SSRC the packet index (ROC and highest sequence,
//! 3.3.1) and the 64-packet replay window (3.3.2), for SRTP and SRTCP separately. Packets from
//! the network never panic: each failure is an [`SrtpError`] that names the rule.
//!
//! Not supported (the SDP side never negotiates them): MKI, a key derivation rate other than
//! 0, key lifetimes (re-keying), unencrypted or unauthenticated SRTP.

use aes::cipher::{BlockCipherEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes::Aes128Enc;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::fmt;

type HmacSha1 = Hmac<Sha1>;
type Aes128Ctr = ctr::CtrCore<Aes128Enc, ctr::flavors::Ctr128BE>;

/// Master key length of the AES_CM_128 suites (RFC 4568 6.2.1).
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length of the AES_CM_128 suites (RFC 4568 6.2.1).
pub const MASTER_SALT_LEN: usize = 14;
/// Replay window (RFC 3711 3.3.2: at least 64).
pub const REPLAY_WINDOW: u64 = 64;
/// SRTCP tag of both suites: 80 bits (RFC 4568 6.2.2: the _32 suite shortens the SRTP tag only).
const SRTCP_TAG_LEN: usize = 10;
/// E flag and 31-bit SRTCP index (RFC 3711 3.4).
const SRTCP_INDEX_LEN: usize = 4;
const SRTCP_MAX_INDEX: u32 = 0x7fff_ffff;
/// 2^48 packets per master key (RFC 3711 9.2).
const SRTP_MAX_INDEX: u64 = (1 << 48) - 1;
/// Streams (SSRCs) remembered per direction; the oldest is forgotten beyond this.
const MAX_STREAMS: usize = 8;

/// The crypto suites we speak (RFC 4568 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag on SRTP and SRTCP.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit SRTP tag (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
}

impl Suite {
    /// SDP name (RFC 4568 6.2).
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite of an SDP name (case-sensitive, as RFC 4568 9.2 registers them).
    pub fn from_name(name: &str) -> Option<Suite> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(Suite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Suite::AesCm128HmacSha1_32),
            _ => None,
        }
    }

    /// Bytes the SRTP authentication tag adds to each RTP packet.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Bytes SRTCP adds to each RTCP compound packet (E flag + index, and the tag).
    pub fn rtcp_overhead(self) -> usize {
        SRTCP_INDEX_LEN + SRTCP_TAG_LEN
    }
}

/// Master key and salt (RFC 3711 8.1). `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub key: [u8; MASTER_KEY_LEN],
    pub salt: [u8; MASTER_SALT_LEN],
}

impl MasterKey {
    /// From the SDES `inline:` bytes: key then salt (RFC 4568 6.1), 30 bytes.
    pub fn from_concatenated(bytes: &[u8]) -> Option<MasterKey> {
        if bytes.len() != MASTER_KEY_LEN + MASTER_SALT_LEN {
            return None;
        }
        let mut key = [0; MASTER_KEY_LEN];
        let mut salt = [0; MASTER_SALT_LEN];
        key.copy_from_slice(&bytes[..MASTER_KEY_LEN]);
        salt.copy_from_slice(&bytes[MASTER_KEY_LEN..]);
        Some(MasterKey { key, salt })
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("RFC 3711 3.1: packet of {actual} bytes, header and authentication tag need {needed}")]
    TooShort { needed: usize, actual: usize },
    #[error("RFC 3550 5.1: RTP version must be 2, got {0}")]
    Version(u8),
    #[error("RFC 3711 3.3: authentication tag does not match (wrong key or altered packet)")]
    AuthFailed,
    #[error("RFC 3711 3.3.2: packet index {0} already received (replayed)")]
    Replayed(u64),
    #[error("RFC 3711 3.3.2: packet index {0} is older than the 64-packet replay window")]
    TooOld(u64),
    #[error("RFC 3711 9.2: 2^48 SRTP or 2^31 SRTCP packets sent under one master key: re-key")]
    KeyExhausted,
}

/// Session keys of one master key, for SRTP or SRTCP (RFC 3711 4.3.2 labels).
#[derive(Clone)]
struct SessionKeys {
    cipher: Aes128Enc,
    salt: [u8; MASTER_SALT_LEN],
    /// HMAC keyed once; cloned per packet.
    auth: HmacSha1,
}

impl SessionKeys {
    fn derive(master: &MasterKey, enc: u8, auth: u8, salt: u8) -> SessionKeys {
        let kdf = Aes128Enc::new(&master.key.into());
        let mut k = [0u8; 16];
        let mut a = [0u8; 20];
        let mut s = [0u8; MASTER_SALT_LEN];
        derive_key(&kdf, &master.salt, enc, &mut k);
        derive_key(&kdf, &master.salt, auth, &mut a);
        derive_key(&kdf, &master.salt, salt, &mut s);
        SessionKeys {
            cipher: Aes128Enc::new(&k.into()),
            salt: s,
            auth: hmac_sha1(&a),
        }
    }

    /// AES-CM (RFC 3711 4.1.1): IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16).
    fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        let core = Aes128Ctr::inner_iv_init(self.cipher.clone(), &iv.into());
        let mut ctr = cipher_wrapper(core);
        ctr.apply_keystream(data);
    }

    /// HMAC-SHA1 over `parts` (RFC 3711 4.2.1), the full 20 bytes.
    fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.auth.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a truncated tag.
    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> Result<(), SrtpError> {
        let mut mac = self.auth.clone();
        for p in parts {
            mac.update(p);
        }
        mac.verify_truncated_left(tag)
            .map_err(|_| SrtpError::AuthFailed)
    }
}

/// HMAC-SHA1 keyed with the 20-byte session key: zero-padded to the 64-byte block, which is
/// what HMAC does with a short key (RFC 2104 2), so no fallible length check is needed.
fn hmac_sha1(key: &[u8; 20]) -> HmacSha1 {
    let mut block = [0u8; 64];
    block[..20].copy_from_slice(key);
    <HmacSha1 as KeyInit>::new(&block.into())
}

fn cipher_wrapper(core: Aes128Ctr) -> ctr::Ctr128BE<Aes128Enc> {
    ctr::Ctr128BE::from_core(core)
}

/// RFC 3711 4.3.1 with kdr = 0: x = key_id XOR master_salt, key_id = label || 0^48, and the
/// session key is AES-CM(master key, x * 2^16) truncated to `out.len()`.
fn derive_key(kdf: &Aes128Enc, master_salt: &[u8; MASTER_SALT_LEN], label: u8, out: &mut [u8]) {
    let mut x = [0u8; 16];
    x[..MASTER_SALT_LEN].copy_from_slice(master_salt);
    x[7] ^= label;
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = x;
        // The counter occupies the low 16 bits; session keys need at most two blocks.
        block[15] = i as u8;
        let mut b = block.into();
        kdf.encrypt_block(&mut b);
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// The 64-packet sliding window of RFC 3711 3.3.2 over the highest authenticated index.
#[derive(Debug, Clone, Copy)]
struct ReplayWindow {
    highest: u64,
    /// Bit i set: index `highest - i` was received.
    bits: u64,
}

impl ReplayWindow {
    fn new(first: u64) -> Self {
        ReplayWindow {
            highest: first,
            bits: 1,
        }
    }

    fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let delta = self.highest - index;
        if delta >= REPLAY_WINDOW {
            return Err(SrtpError::TooOld(index));
        }
        if self.bits & (1 << delta) != 0 {
            return Err(SrtpError::Replayed(index));
        }
        Ok(())
    }

    fn accept(&mut self, index: u64) {
        if index > self.highest {
            let shift = index - self.highest;
            self.bits = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.bits << shift
            };
            self.bits |= 1;
            self.highest = index;
        } else {
            self.bits |= 1 << (self.highest - index);
        }
    }
}

/// Per-SSRC state: the highest authenticated index (ROC and s_l of 3.3.1 in one) and the window.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    window: Option<ReplayWindow>,
    /// Sender side: the next SRTCP index.
    next_rtcp_index: u32,
    /// Last use, to forget the oldest stream beyond [`MAX_STREAMS`].
    used: u64,
}

/// RFC 3711 3.3.1: the index of `seq` given the highest index so far (ROC * 2^16 + s_l).
/// `None` for a packet from before the first one (ROC would be -1).
fn estimate_index(highest: u64, seq: u16) -> Option<u64> {
    let roc = highest >> 16;
    let s_l = (highest & 0xffff) as u16;
    let seq32 = i64::from(seq);
    let sl32 = i64::from(s_l);
    let v: i64 = if s_l < 0x8000 {
        if seq32 - sl32 > 0x8000 {
            roc as i64 - 1
        } else {
            roc as i64
        }
    } else if sl32 - 0x8000 > seq32 {
        roc as i64 + 1
    } else {
        roc as i64
    };
    u64::try_from(v).ok().map(|v| (v << 16) | u64::from(seq))
}

/// Header length of an RTP packet (RFC 3550 5.1, 5.3.1), checked against its size.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    let short = |needed: usize| SrtpError::TooShort {
        needed,
        actual: packet.len(),
    };
    let first = *packet.first().ok_or(short(12))?;
    if first >> 6 != 2 {
        return Err(SrtpError::Version(first >> 6));
    }
    let mut len = 12 + 4 * usize::from(first & 0x0f);
    if packet.len() < len {
        return Err(short(len));
    }
    if first & 0x10 != 0 {
        let ext = packet.get(len + 2..len + 4).ok_or(short(len + 4))?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
        if packet.len() < len {
            return Err(short(len));
        }
    }
    Ok(len)
}

/// Figures a context keeps (for tests and stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SrtpCounters {
    pub protected: u64,
    pub unprotected: u64,
    pub auth_failed: u64,
    pub replayed: u64,
}

/// One direction of SRTP/SRTCP under one master key: outgoing (protect) or incoming
/// (unprotect). Use two, with the local and the remote key.
pub struct SrtpContext {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    rtp_streams: Vec<Stream>,
    rtcp_streams: Vec<Stream>,
    clock: u64,
    counters: SrtpCounters,
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("rtp_streams", &self.rtp_streams.len())
            .field("rtcp_streams", &self.rtcp_streams.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    pub fn new(suite: Suite, master: &MasterKey) -> SrtpContext {
        SrtpContext {
            suite,
            // RFC 3711 4.3.2: labels 0-2 for SRTP, 3-5 for SRTCP.
            rtp: SessionKeys::derive(master, 0x00, 0x01, 0x02),
            rtcp: SessionKeys::derive(master, 0x03, 0x04, 0x05),
            rtp_streams: Vec::new(),
            rtcp_streams: Vec::new(),
            clock: 0,
            counters: SrtpCounters::default(),
        }
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    pub fn counters(&self) -> SrtpCounters {
        self.counters
    }

    fn stream(streams: &mut Vec<Stream>, clock: &mut u64, ssrc: u32) -> usize {
        *clock += 1;
        if let Some(i) = streams.iter().position(|s| s.ssrc == ssrc) {
            streams[i].used = *clock;
            return i;
        }
        if streams.len() >= MAX_STREAMS {
            if let Some(oldest) = streams
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.used)
                .map(|(i, _)| i)
            {
                streams.swap_remove(oldest);
            }
        }
        streams.push(Stream {
            ssrc,
            window: None,
            next_rtcp_index: 0,
            used: *clock,
        });
        streams.len() - 1
    }

    /// RTP -> SRTP in place (RFC 3711 3.3): the payload is encrypted and the tag appended.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header = rtp_header_len(packet)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let i = Self::stream(&mut self.rtp_streams, &mut self.clock, ssrc);
        let stream = &mut self.rtp_streams[i];
        // The sender tracks its own ROC the same way a receiver would (3.3.1).
        let index = match stream.window {
            None => u64::from(seq),
            Some(w) => estimate_index(w.highest, seq).ok_or(SrtpError::TooOld(u64::from(seq)))?,
        };
        if index > SRTP_MAX_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        match stream.window.as_mut() {
            Some(w) => w.accept(index),
            None => stream.window = Some(ReplayWindow::new(index)),
        }
        let roc = ((index >> 16) as u32).to_be_bytes();
        self.rtp.apply_keystream(ssrc, index, &mut packet[header..]);
        let tag = self.rtp.tag(&[packet, &roc]);
        packet.extend_from_slice(&tag[..self.suite.rtp_tag_len()]);
        self.counters.protected += 1;
        Ok(())
    }

    /// SRTP -> RTP in place: checks the replay window and the tag, then decrypts and drops
    /// the tag. On error the packet is unusable and the state is unchanged.
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let r = self.unprotect_rtp_inner(packet);
        match &r {
            Ok(()) => self.counters.unprotected += 1,
            Err(SrtpError::AuthFailed) => self.counters.auth_failed += 1,
            Err(SrtpError::Replayed(_) | SrtpError::TooOld(_)) => self.counters.replayed += 1,
            Err(_) => {}
        }
        r
    }

    fn unprotect_rtp_inner(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.suite.rtp_tag_len();
        let header = rtp_header_len(packet)?;
        if packet.len() < header + tag_len {
            return Err(SrtpError::TooShort {
                needed: header + tag_len,
                actual: packet.len(),
            });
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let window = self
            .rtp_streams
            .iter()
            .find(|s| s.ssrc == ssrc)
            .and_then(|s| s.window);
        // RFC 3711 3.3.1: a new stream starts with ROC 0 and s_l = the first sequence number.
        let index = match window {
            None => u64::from(seq),
            Some(w) => {
                let index =
                    estimate_index(w.highest, seq).ok_or(SrtpError::TooOld(u64::from(seq)))?;
                w.check(index)?;
                index
            }
        };
        let body = packet.len() - tag_len;
        let roc = ((index >> 16) as u32).to_be_bytes();
        self.rtp.verify(&[&packet[..body], &roc], &packet[body..])?;
        // Authenticated: only now may the index move the window and the ROC (3.3.1).
        let i = Self::stream(&mut self.rtp_streams, &mut self.clock, ssrc);
        let stream = &mut self.rtp_streams[i];
        match stream.window.as_mut() {
            Some(w) => w.accept(index),
            None => stream.window = Some(ReplayWindow::new(index)),
        }
        packet.truncate(body);
        self.rtp.apply_keystream(ssrc, index, &mut packet[header..]);
        Ok(())
    }

    /// RTCP -> SRTCP in place (RFC 3711 3.4): all but the first 8 bytes encrypted, then
    /// E=1 with the 31-bit index, then the 80-bit tag.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < 8 {
            return Err(SrtpError::TooShort {
                needed: 8,
                actual: packet.len(),
            });
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::Version(packet[0] >> 6));
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let i = Self::stream(&mut self.rtcp_streams, &mut self.clock, ssrc);
        let stream = &mut self.rtcp_streams[i];
        let index = stream.next_rtcp_index;
        if index > SRTCP_MAX_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        stream.next_rtcp_index = index + 1;
        self.rtcp
            .apply_keystream(ssrc, u64::from(index), &mut packet[8..]);
        packet.extend_from_slice(&(0x8000_0000 | index).to_be_bytes());
        let tag = self.rtcp.tag(&[packet]);
        packet.extend_from_slice(&tag[..SRTCP_TAG_LEN]);
        self.counters.protected += 1;
        Ok(())
    }

    /// SRTCP -> RTCP in place. A packet with E=0 is authenticated but was never encrypted.
    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let r = self.unprotect_rtcp_inner(packet);
        match &r {
            Ok(()) => self.counters.unprotected += 1,
            Err(SrtpError::AuthFailed) => self.counters.auth_failed += 1,
            Err(SrtpError::Replayed(_) | SrtpError::TooOld(_)) => self.counters.replayed += 1,
            Err(_) => {}
        }
        r
    }

    fn unprotect_rtcp_inner(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let needed = 8 + SRTCP_INDEX_LEN + SRTCP_TAG_LEN;
        if packet.len() < needed {
            return Err(SrtpError::TooShort {
                needed,
                actual: packet.len(),
            });
        }
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::Version(packet[0] >> 6));
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let body = packet.len() - SRTCP_TAG_LEN;
        let e_index = body - SRTCP_INDEX_LEN;
        let word = u32::from_be_bytes([
            packet[e_index],
            packet[e_index + 1],
            packet[e_index + 2],
            packet[e_index + 3],
        ]);
        let encrypted = word & 0x8000_0000 != 0;
        let index = u64::from(word & SRTCP_MAX_INDEX);
        if let Some(w) = self
            .rtcp_streams
            .iter()
            .find(|s| s.ssrc == ssrc)
            .and_then(|s| s.window)
        {
            w.check(index)?;
        }
        self.rtcp.verify(&[&packet[..body]], &packet[body..])?;
        let i = Self::stream(&mut self.rtcp_streams, &mut self.clock, ssrc);
        let stream = &mut self.rtcp_streams[i];
        match stream.window.as_mut() {
            Some(w) => w.accept(index),
            None => stream.window = Some(ReplayWindow::new(index)),
        }
        packet.truncate(e_index);
        if encrypted {
            self.rtcp.apply_keystream(ssrc, index, &mut packet[8..]);
        }
        Ok(())
    }
}

/// Both directions of one call: our key protects what we send, the peer's unprotects what
/// it sends (RFC 4568 6.1: each side announces the key it sends with).
#[derive(Debug)]
pub struct SrtpSession {
    pub outbound: SrtpContext,
    pub inbound: SrtpContext,
}

impl SrtpSession {
    pub fn new(suite: Suite, local: &MasterKey, remote: &MasterKey) -> SrtpSession {
        SrtpSession {
            outbound: SrtpContext::new(suite, local),
            inbound: SrtpContext::new(suite, remote),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn master(key: &str, salt: &str) -> MasterKey {
        let mut b = hex(key);
        b.extend(hex(salt));
        MasterKey::from_concatenated(&b).unwrap()
    }

    fn test_key() -> MasterKey {
        master(
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
        )
    }

    fn other_key() -> MasterKey {
        let mut k = test_key();
        k.key[0] ^= 1;
        k
    }

    /// PCMU-shaped packet: 12-byte header, 160 payload bytes.
    fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p.extend((0..160).map(|i| (i as u8) ^ (seq as u8)));
        p
    }

    /// An RR with one report block and an SDES CNAME.
    fn rtcp(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x81, 201, 0, 7];
        p.extend(ssrc.to_be_bytes());
        p.extend([0x11; 24]);
        p.extend([0x81, 202, 0, 3]);
        p.extend(ssrc.to_be_bytes());
        p.extend([1, 3, b'a', b'b', b'c', 0, 0, 0]);
        p
    }

    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let keys = SessionKeys {
            cipher: Aes128Enc::new(
                &<[u8; 16]>::try_from(hex("2B7E151628AED2A6ABF7158809CF4F3C"))
                    .unwrap()
                    .into(),
            ),
            salt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap(),
            auth: hmac_sha1(&[0; 20]),
        };
        // SSRC 0, ROC 0, SEQ 0: the keystream is the encryption of zeros.
        let mut ks = vec![0u8; 16 * 0xff02];
        keys.apply_keystream(0, 0, &mut ks);
        let block = |i: usize| ks[16 * i..16 * i + 16].to_vec();
        assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
        assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
        assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
        assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
        assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
        assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
    }

    #[test]
    fn rfc3711_b3_key_derivation() {
        let m = test_key();
        let kdf = Aes128Enc::new(&m.key.into());
        let mut k = [0u8; 16];
        derive_key(&kdf, &m.salt, 0x00, &mut k);
        assert_eq!(k.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut s = [0u8; 14];
        derive_key(&kdf, &m.salt, 0x02, &mut s);
        assert_eq!(s.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut a = [0u8; 20];
        derive_key(&kdf, &m.salt, 0x01, &mut a);
        assert_eq!(a.to_vec(), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
        // The session keys really used are those: encrypting with the derived pair by hand
        // gives what protect_rtp sends.
        let mut ctx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &m);
        let mut p = rtp(7, 0x1234_5678);
        let plain = p.clone();
        ctx.protect_rtp(&mut p).unwrap();
        let by_hand = SessionKeys {
            cipher: Aes128Enc::new(&k.into()),
            salt: s,
            auth: hmac_sha1(&a),
        };
        let mut expect = plain[12..].to_vec();
        by_hand.apply_keystream(0x1234_5678, 7, &mut expect);
        assert_eq!(&p[12..172], &expect[..]);
        let tag = by_hand.tag(&[&p[..172], &[0, 0, 0, 0]]);
        assert_eq!(&p[172..], &tag[..10]);
    }

    #[test]
    fn rfc3711_3_3_round_trip_both_suites() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let mut tx = SrtpContext::new(suite, &test_key());
            let mut rx = SrtpContext::new(suite, &test_key());
            for seq in 1000..1100u16 {
                let plain = rtp(seq, 42);
                let mut p = plain.clone();
                tx.protect_rtp(&mut p).unwrap();
                assert_eq!(p.len(), 12 + 160 + suite.rtp_tag_len());
                assert_eq!(&p[..12], &plain[..12], "header stays clear");
                assert_ne!(&p[12..172], &plain[12..], "payload encrypted");
                rx.unprotect_rtp(&mut p).unwrap();
                assert_eq!(p, plain);
            }
            assert_eq!(rx.counters().unprotected, 100);
        }
    }

    #[test]
    fn rfc3711_3_3_header_extension_and_csrc_stay_clear() {
        let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        // CC=1, X=1 with one extension word.
        let mut p = vec![0x91, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1];
        p.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
        p.extend([0xaa; 20]);
        let plain = p.clone();
        tx.protect_rtp(&mut p).unwrap();
        assert_eq!(&p[..24], &plain[..24]);
        assert_ne!(&p[24..44], &plain[24..]);
        rx.unprotect_rtp(&mut p).unwrap();
        assert_eq!(p, plain);
    }

    #[test]
    fn rfc3711_3_3_1_roc_wraps_at_65535() {
        let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        let mut sent = Vec::new();
        for seq in (65530..=65535u16).chain(0..6) {
            let mut p = rtp(seq, 7);
            tx.protect_rtp(&mut p).unwrap();
            sent.push((seq, p));
        }
        // After the wrap the ROC is 1: the IV and the tag use index 65536 + seq.
        let mut p = rtp(0, 7);
        let mut wrong_roc = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        wrong_roc.protect_rtp(&mut p).unwrap();
        let after_wrap = &sent.iter().find(|(s, _)| *s == 0).unwrap().1;
        assert_ne!(&p, after_wrap, "seq 0 after the wrap is not index 0");
        // Reordered across the wrap: 65534, 0, 65535, 1 ... all authenticate.
        let order = [0usize, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11];
        for &i in &order {
            let (seq, mut p) = sent[i].clone();
            rx.unprotect_rtp(&mut p).unwrap();
            assert_eq!(p, rtp(seq, 7), "seq {seq}");
        }
        // And a long run keeps going across a second wrap.
        for n in 6..=70000u32 {
            let seq = n as u16;
            let mut p = rtp(seq, 7);
            tx.protect_rtp(&mut p).unwrap();
            rx.unprotect_rtp(&mut p).unwrap();
        }
        let w = rx.rtp_streams[0].window.unwrap();
        assert_eq!(w.highest >> 16, 2, "ROC 2 after two wraps");
    }

    #[test]
    fn rfc3711_3_3_tampered_packet_or_tag_is_rejected() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let mut tx = SrtpContext::new(suite, &test_key());
            let mut rx = SrtpContext::new(suite, &test_key());
            let mut p = rtp(1, 5);
            tx.protect_rtp(&mut p).unwrap();
            for at in [1, 3, 11, 12, 100, p.len() - 1] {
                let mut bad = p.clone();
                bad[at] ^= 0x01;
                assert_eq!(
                    rx.unprotect_rtp(&mut bad),
                    Err(SrtpError::AuthFailed),
                    "byte {at}"
                );
            }
            // Wrong key.
            let mut wrong = SrtpContext::new(suite, &other_key());
            assert_eq!(
                wrong.unprotect_rtp(&mut p.clone()),
                Err(SrtpError::AuthFailed)
            );
            // The failures moved nothing: the genuine packet still passes.
            rx.unprotect_rtp(&mut p).unwrap();
            assert_eq!(rx.counters().auth_failed, 6);
        }
    }

    #[test]
    fn rfc3711_3_3_2_replayed_packet_is_rejected() {
        let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        let mut packets = Vec::new();
        for seq in 100..300u16 {
            let mut p = rtp(seq, 9);
            tx.protect_rtp(&mut p).unwrap();
            packets.push(p);
        }
        let first = packets[0].clone();
        rx.unprotect_rtp(&mut packets[0].clone()).unwrap();
        assert_eq!(
            rx.unprotect_rtp(&mut first.clone()),
            Err(SrtpError::Replayed(100))
        );
        // Out of order inside the window is fine once, not twice.
        rx.unprotect_rtp(&mut packets[10].clone()).unwrap();
        rx.unprotect_rtp(&mut packets[5].clone()).unwrap();
        assert_eq!(
            rx.unprotect_rtp(&mut packets[5].clone()),
            Err(SrtpError::Replayed(105))
        );
        // 64 behind the highest is outside the window; 63 behind is still inside.
        for (i, p) in packets.iter().enumerate().take(181).skip(11) {
            if i != 180 - 63 {
                rx.unprotect_rtp(&mut p.clone()).unwrap();
            }
        }
        assert_eq!(
            rx.unprotect_rtp(&mut packets[180 - 64].clone()),
            Err(SrtpError::TooOld(100 + 180 - 64))
        );
        rx.unprotect_rtp(&mut packets[180 - 63].clone()).unwrap();
        assert_eq!(rx.counters().replayed, 3);
    }

    #[test]
    fn rfc3711_3_3_1_streams_are_per_ssrc() {
        let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        let mut a = rtp(10, 1);
        let mut b = rtp(10, 2);
        tx.protect_rtp(&mut a).unwrap();
        tx.protect_rtp(&mut b).unwrap();
        assert_ne!(a[12..], b[12..], "the SSRC is in the IV");
        rx.unprotect_rtp(&mut a).unwrap();
        rx.unprotect_rtp(&mut b).unwrap();
        // Many SSRCs: the oldest are forgotten, memory stays bounded.
        for ssrc in 100..200 {
            let mut p = rtp(1, ssrc);
            tx.protect_rtp(&mut p).unwrap();
            rx.unprotect_rtp(&mut p).unwrap();
        }
        assert!(rx.rtp_streams.len() <= MAX_STREAMS);
        assert!(tx.rtp_streams.len() <= MAX_STREAMS);
    }

    #[test]
    fn rfc3711_3_4_srtcp_round_trip_index_and_tag() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let mut tx = SrtpContext::new(suite, &test_key());
            let mut rx = SrtpContext::new(suite, &test_key());
            for n in 0..5u32 {
                let plain = rtcp(0xabcd);
                let mut p = plain.clone();
                tx.protect_rtcp(&mut p).unwrap();
                assert_eq!(p.len(), plain.len() + 4 + 10, "80-bit tag for both suites");
                assert_eq!(&p[..8], &plain[..8]);
                assert_ne!(&p[8..plain.len()], &plain[8..]);
                let word = &p[plain.len()..plain.len() + 4];
                assert_eq!(word, (0x8000_0000 | n).to_be_bytes(), "E=1 and the index");
                let mut replay = p.clone();
                rx.unprotect_rtcp(&mut p).unwrap();
                assert_eq!(p, plain);
                assert_eq!(
                    rx.unprotect_rtcp(&mut replay),
                    Err(SrtpError::Replayed(u64::from(n)))
                );
            }
            let mut p = rtcp(1);
            tx.protect_rtcp(&mut p).unwrap();
            let last = p.len() - 1;
            p[last] ^= 0x80;
            assert_eq!(rx.unprotect_rtcp(&mut p), Err(SrtpError::AuthFailed));
        }
    }

    #[test]
    fn rfc3711_3_4_unencrypted_srtcp_is_authenticated_only() {
        // E=0: the payload was sent in the clear, the tag still covers it.
        let rtcp_keys = SessionKeys::derive(&test_key(), 3, 4, 5);
        let mut p = rtcp(77);
        let plain = p.clone();
        p.extend(5u32.to_be_bytes());
        let tag = rtcp_keys.tag(&[&p]);
        p.extend(&tag[..10]);
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        rx.unprotect_rtcp(&mut p).unwrap();
        assert_eq!(p, plain);
    }

    #[test]
    fn bad_packets_name_the_reason_and_never_panic() {
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        assert_eq!(
            rx.unprotect_rtp(&mut vec![]),
            Err(SrtpError::TooShort {
                needed: 12,
                actual: 0
            })
        );
        assert_eq!(
            rx.unprotect_rtp(&mut vec![0x40; 40]),
            Err(SrtpError::Version(1))
        );
        // Header alone, no room for the tag.
        assert_eq!(
            rx.unprotect_rtp(&mut rtp(1, 1)[..16].to_vec()),
            Err(SrtpError::TooShort {
                needed: 22,
                actual: 16
            })
        );
        // CSRC count or extension length past the end.
        assert!(matches!(
            rx.unprotect_rtp(&mut vec![0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(SrtpError::TooShort { .. })
        ));
        assert!(matches!(
            rx.unprotect_rtp(&mut vec![
                0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
            ]),
            Err(SrtpError::TooShort { .. })
        ));
        assert!(matches!(
            rx.unprotect_rtcp(&mut vec![0x80, 200, 0, 1]),
            Err(SrtpError::TooShort { .. })
        ));
        assert!(SrtpError::AuthFailed.to_string().contains("RFC 3711 3.3"));
        // Every length of every prefix of a real packet: an error, never a panic.
        let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &test_key());
        let mut p = rtp(3, 3);
        tx.protect_rtp(&mut p).unwrap();
        let mut c = rtcp(3);
        tx.protect_rtcp(&mut c).unwrap();
        for n in 0..p.len() {
            assert!(rx.unprotect_rtp(&mut p[..n].to_vec()).is_err());
        }
        for n in 0..c.len() {
            assert!(rx.unprotect_rtcp(&mut c[..n].to_vec()).is_err());
        }
    }

    #[test]
    fn rfc3711_3_3_1_index_estimation() {
        // s_l low: a sequence number far above is from the previous roll-over.
        assert_eq!(estimate_index(0x1_0005, 65534), Some(65534));
        assert_eq!(estimate_index(0x0_0005, 65534), None);
        // s_l high: a small sequence number is after the wrap.
        assert_eq!(estimate_index(0x0_fff0, 3), Some(0x1_0003));
        assert_eq!(estimate_index(0x0_fff0, 0xffe0), Some(0xffe0));
        assert_eq!(estimate_index(100, 101), Some(101));
    }

    #[test]
    fn rfc2202_hmac_sha1_with_a_20_byte_key() {
        // Test case 1: key 0x0b * 20, "Hi There".
        let mac = hmac_sha1(&[0x0b; 20]);
        let keys = SessionKeys {
            cipher: Aes128Enc::new(&[0u8; 16].into()),
            salt: [0; 14],
            auth: mac,
        };
        assert_eq!(
            keys.tag(&[b"Hi ", b"There"]).to_vec(),
            hex("b617318655057264e28bc0b6fb378c8ef146be00")
        );
    }

    #[test]
    fn master_key_debug_is_redacted() {
        let s = format!(
            "{:?} {:?}",
            test_key(),
            SrtpSession::new(Suite::AesCm128HmacSha1_32, &test_key(), &test_key())
        );
        assert!(!s.contains("225") && !s.contains('['), "{s}");
        assert!(s.contains("redacted"));
    }
}
