//! SDP parsing (RFC 4566) and offer/answer (RFC 3264) for the audio leg of a call, with SDES
//! keys for SRTP (RFC 4568) on RTP/SAVP lines.
//!
//! Sans-IO: bytes in, a [`SessionDescription`] out; a [`Negotiated`] result and
//! answer/offer text out. Nothing here reads a socket, a clock or an entropy source: our SRTP
//! key comes in with [`LocalMedia::srtp_key`]. SDP comes from the network, so every malformed
//! input returns an [`SdpError`] (or a [`CryptoError`] for one `a=crypto` line), never a panic.

use base64::Engine as _;
use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Media stream direction attribute (RFC 4566 6, RFC 3264 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The same stream seen from the other side: sendonly <-> recvonly.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Attribute name as written in SDP (`a=sendrecv` etc.).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attr(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// Codecs we can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 u-law, static PT 0, "PCMU/8000" (RFC 3551 4.5.14).
    Pcmu,
    /// G.711 A-law, static PT 8, "PCMA/8000" (RFC 3551 4.5.14).
    Pcma,
    /// Opus, dynamic PT, always "opus/48000/2" (RFC 7587 7).
    Opus,
}

impl Codec {
    /// PT we use when we are the offerer.
    fn default_pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::Opus => OPUS_PT,
        }
    }

    fn rtpmap(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
            Codec::Opus => "opus/48000/2",
        }
    }

    fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48000,
            Codec::Pcmu | Codec::Pcma => 8000,
        }
    }

    fn matches(self, p: &PayloadFormat) -> bool {
        // Encoding names are case-insensitive (RFC 4566 6, rtpmap).
        match self {
            Codec::Pcmu => {
                p.encoding.eq_ignore_ascii_case("PCMU") && p.clock_rate == 8000 && p.channels == 1
            }
            Codec::Pcma => {
                p.encoding.eq_ignore_ascii_case("PCMA") && p.clock_rate == 8000 && p.channels == 1
            }
            // RFC 7587 7 says opus/48000/2 always; accept a missing channel count from
            // older peers since the stream format is the same either way.
            Codec::Opus => p.encoding.eq_ignore_ascii_case("opus") && p.clock_rate == 48000,
        }
    }
}

const OPUS_PT: u8 = 111;
const TE_8000_PT: u8 = 101;
const TE_48000_PT: u8 = 110;

/// Why an SDP body was rejected; each variant names the rule broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body is not UTF-8 (RFC 4566 5: charset is UTF-8 by default)")]
    NotUtf8,
    #[error("SDP must start with v= (RFC 4566 5)")]
    MissingVersion,
    #[error("unsupported SDP version {0:?}; only v=0 exists (RFC 4566 5.1)")]
    UnsupportedVersion(String),
    #[error("line {line} is not <type>=<value> (RFC 4566 5)")]
    MalformedLine { line: usize },
    #[error("missing o= line (RFC 4566 5.2)")]
    MissingOrigin,
    #[error("bad o= line {0:?} (RFC 4566 5.2)")]
    BadOrigin(String),
    #[error("bad c= line {0:?} (RFC 4566 5.7)")]
    BadConnection(String),
    #[error("bad m= line {0:?} (RFC 4566 5.14)")]
    BadMedia(String),
    #[error("bad payload type {0:?} on an RTP m= line (RFC 3551 6: 0..=127)")]
    BadPayloadType(String),
    #[error("bad a=rtpmap {0:?} (RFC 4566 6)")]
    BadRtpmap(String),
    #[error("bad a=ptime {0:?} (RFC 4566 6)")]
    BadPtime(String),
    #[error(
        "active audio stream {media_index} has no c= at media or session level (RFC 4566 5.7)"
    )]
    MissingConnection { media_index: usize },
    #[error("no audio m= line offered")]
    NoAudio,
    #[error("no offered audio codec is one we support (RFC 3264 6)")]
    NoCommonCodec,
    #[error(
        "SRTP is required here and the offer has only plain RTP/AVP audio (RFC 3711, RFC 4568)"
    )]
    SrtpRequired,
    #[error("the offer has only RTP/SAVP audio and SRTP is not enabled here")]
    SrtpNotEnabled,
    #[error("no a=crypto line of the RTP/SAVP audio is usable (RFC 4568 6.2: AES_CM_128_HMAC_SHA1_80 or _32, one inline key, no MKI)")]
    NoUsableCrypto,
}

/// What we do with SRTP offers (issue 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpPolicy {
    /// Plain RTP only: RTP/SAVP lines are never chosen (an SAVP-only offer gets 488).
    #[default]
    Off,
    /// RTP/SAVP offers get SRTP, RTP/AVP offers plain RTP; our own offers are plain.
    Optional,
    /// Only SRTP: plain RTP offers get 488; our own offers are RTP/SAVP.
    Required,
}

impl SrtpPolicy {
    pub fn from_name(s: &str) -> Option<SrtpPolicy> {
        match s {
            "off" => Some(SrtpPolicy::Off),
            "optional" => Some(SrtpPolicy::Optional),
            "required" => Some(SrtpPolicy::Required),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Optional => "optional",
            SrtpPolicy::Required => "required",
        }
    }
}

/// SDES crypto suites we support (RFC 4568 6.2.1, 6.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn from_name(s: &str) -> Option<CryptoSuite> {
        match s {
            "AES_CM_128_HMAC_SHA1_80" => Some(CryptoSuite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(CryptoSuite::AesCm128HmacSha1_32),
            _ => None,
        }
    }
}

/// Length of an AES_CM_128 SDES key: 16-byte master key then 14-byte master salt.
pub const SRTP_KEY_LEN: usize = 30;

/// SDES key material: master key || master salt (RFC 4568 6.1). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey(pub [u8; SRTP_KEY_LEN]);

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpKey(<redacted>)")
    }
}

/// One usable `a=crypto` line (RFC 4568 9.1): the sender of the SDP sends with this key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// Decimal tag, 1-9 digits; the answer repeats it (RFC 4568 7.1.2).
    pub tag: u32,
    pub suite: CryptoSuite,
    pub key: SrtpKey,
}

/// Why one `a=crypto` line cannot be used. Never carries the key text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("RFC 4568 9.1: a=crypto needs <tag> <crypto-suite> <key-params>")]
    Malformed,
    #[error("RFC 4568 9.1: the tag must be 1 to 9 decimal digits")]
    BadTag,
    #[error("RFC 4568 6.2: crypto suite {0:?} is not supported (AES_CM_128_HMAC_SHA1_80, _32)")]
    UnsupportedSuite(String),
    #[error("RFC 4568 6.1: key method must be inline")]
    KeyMethod,
    #[error("RFC 4568 6.1: inline key is not base64 of 30 bytes (16-byte key, 14-byte salt)")]
    BadKey,
    #[error("RFC 4568 6.1: bad key lifetime")]
    BadLifetime,
    #[error("RFC 4568 6.1: MKI and several keys per line are not supported")]
    Mki,
    #[error("RFC 4568 6.3: session parameter {0:?} is not supported")]
    SessionParam(String),
}

/// Parse the value of `a=crypto:` (RFC 4568 9.1):
/// `<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:len] [session-params]`.
/// A key lifetime is accepted and not enforced (at 2^20, the smallest seen, 5.8 hours of
/// 20 ms packets); an MKI, a second key, a key derivation rate other than 0, and
/// UNENCRYPTED_*/UNAUTHENTICATED_SRTP make the line unusable, as does any session parameter
/// we do not know (6.3), except WSH and FEC_ORDER, which change nothing for us.
pub fn parse_crypto(value: &str) -> Result<Crypto, CryptoError> {
    let mut f = value.split_whitespace();
    let (Some(tag), Some(suite), Some(key_params)) = (f.next(), f.next(), f.next()) else {
        return Err(CryptoError::Malformed);
    };
    if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::BadTag);
    }
    let tag: u32 = tag.parse().map_err(|_| CryptoError::BadTag)?;
    let suite = CryptoSuite::from_name(suite)
        .ok_or_else(|| CryptoError::UnsupportedSuite(suite.chars().take(64).collect()))?;
    if key_params.contains(';') {
        return Err(CryptoError::Mki);
    }
    let (method, info) = key_params.split_once(':').ok_or(CryptoError::KeyMethod)?;
    if !method.eq_ignore_ascii_case("inline") {
        return Err(CryptoError::KeyMethod);
    }
    let mut parts = info.split('|');
    let b64 = parts.next().unwrap_or_default();
    for p in parts {
        if p.contains(':') {
            return Err(CryptoError::Mki);
        }
        let ok = match p.strip_prefix("2^") {
            Some(exp) => exp.parse::<u8>().is_ok_and(|e| (1..=48).contains(&e)),
            None => p.parse::<u64>().is_ok_and(|n| n > 0),
        };
        if !ok {
            return Err(CryptoError::BadLifetime);
        }
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(b64).map_err(|_| CryptoError::BadKey)?;
    let key: [u8; SRTP_KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
    for param in f {
        let name = param.split('=').next().unwrap_or_default();
        match name {
            "WSH" | "FEC_ORDER" => {}
            "KDR" if param == "KDR=0" => {}
            _ => return Err(CryptoError::SessionParam(name.chars().take(32).collect())),
        }
    }
    Ok(Crypto {
        tag,
        suite,
        key: SrtpKey(key),
    })
}

fn crypto_line(tag: u32, suite: CryptoSuite, key: &SrtpKey) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(key.0);
    format!("a=crypto:{tag} {} inline:{b64}\r\n", suite.name())
}

/// One rtpmap-resolved payload format of an m= line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    pub pt: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: u8,
    pub fmtp: Option<String>,
}

/// One m= section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// "audio", "video", ...
    pub media: String,
    pub port: u16,
    pub proto: String,
    /// Formats as listed on the m= line.
    pub formats: Vec<String>,
    /// For RTP profiles: formats resolved through rtpmap or the RFC 3551 static table,
    /// in m= line order. Dynamic PTs without rtpmap are left out.
    pub payloads: Vec<PayloadFormat>,
    /// Media-level c= or else session-level c=.
    pub connection: Option<IpAddr>,
    /// Media attribute, else session attribute, else sendrecv.
    pub direction: Direction,
    pub ptime: Option<u32>,
    pub rtcp_mux: bool,
    /// All media-level a= lines, in order.
    pub attributes: Vec<(String, Option<String>)>,
}

/// A parsed SDP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin_username: String,
    pub session_id: u64,
    pub session_version: u64,
    pub origin_addr: String,
    /// Session-level c=.
    pub connection: Option<IpAddr>,
    pub media: Vec<MediaDescription>,
}

/// Our side of the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    pub addr: IpAddr,
    pub port: u16,
    /// Our preference order.
    pub codecs: Vec<Codec>,
    pub telephone_event: bool,
    /// Milliseconds, normally 20.
    pub ptime: u32,
    /// Our SRTP key for an `a=crypto` answer (fresh random bytes from the caller; RFC 4568
    /// 6.1). `None`: an RTP/SAVP line cannot be answered. With it, [`offer`] offers RTP/SAVP.
    pub srtp_key: Option<SrtpKey>,
}

/// Result of negotiating an offer against our codecs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// The offerer's PT for the codec.
    pub pt: u8,
    /// The offerer's telephone-event PT (RFC 4733), clock matched to the codec if possible.
    pub dtmf_pt: Option<u8>,
    /// None when the offer holds with c=0.0.0.0 or the port is 0.
    pub remote_rtp: Option<SocketAddr>,
    pub remote_direction: Direction,
    /// Offered ptime or 20.
    pub ptime: u32,
    /// Which m= line carries the audio.
    pub audio_index: usize,
    /// The offerer's accepted `a=crypto` (its key, the suite, the tag) on an RTP/SAVP line;
    /// `None` for plain RTP.
    pub srtp: Option<Crypto>,
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Media section under construction; payloads are resolved once all its a= lines are seen.
struct MediaBuilder {
    md: MediaDescription,
    direction: Option<Direction>,
    rtpmaps: Vec<(u8, String, u32, u8)>,
    fmtps: Vec<(String, String)>,
}

/// Parse an SDP body (RFC 4566). Accepts CRLF or bare LF line ends; unknown line
/// types and attributes are ignored (RFC 4566 5: parsers ignore what they don't know).
pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;

    let mut saw_version = false;
    let mut origin: Option<(String, u64, u64, String)> = None;
    let mut session_conn: Option<IpAddr> = None;
    let mut session_dir: Option<Direction> = None;
    let mut media: Vec<MediaBuilder> = Vec::new();

    for (idx, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        // Tolerate blank lines (a trailing CRLF is common; RFC 4566 5 has none but peers do).
        if line.trim().is_empty() {
            continue;
        }
        let (kind, value) = line
            .split_once('=')
            .filter(|(k, _)| k.len() == 1)
            .ok_or(SdpError::MalformedLine { line: idx + 1 })?;

        // RFC 4566 5: v= is the first line of a session description.
        if !saw_version {
            if kind != "v" {
                return Err(SdpError::MissingVersion);
            }
            if value.trim() != "0" {
                return Err(SdpError::UnsupportedVersion(value.to_string()));
            }
            saw_version = true;
            continue;
        }

        match kind {
            // Only one o= per session (RFC 4566 5.2); ignore repeats.
            "o" if origin.is_none() => origin = Some(parse_origin(value)?),
            "c" => {
                let addr = parse_connection(value)?;
                match media.last_mut() {
                    // First c= wins; repeated c= only occurs for multicast layering.
                    Some(m) => {
                        if m.md.connection.is_none() {
                            m.md.connection = Some(addr);
                        }
                    }
                    None => {
                        if session_conn.is_none() {
                            session_conn = Some(addr);
                        }
                    }
                }
            }
            "m" => media.push(parse_media_line(value)?),
            "a" => {
                let (name, val) = match value.split_once(':') {
                    Some((n, v)) => (n, Some(v)),
                    None => (value, None),
                };
                match media.last_mut() {
                    None => {
                        // Session-level direction is the default for all media (RFC 4566 6).
                        if let Some(d) = Direction::from_attr(name) {
                            session_dir = Some(d);
                        }
                    }
                    Some(m) => apply_media_attr(m, name, val)?,
                }
            }
            // s=, t=, b=, i=, u=, e=, p=, z=, k=, r= and unknown types carry nothing we use.
            _ => {}
        }
    }

    if !saw_version {
        return Err(SdpError::MissingVersion);
    }
    let (origin_username, session_id, session_version, origin_addr) =
        origin.ok_or(SdpError::MissingOrigin)?;

    let mut out = Vec::with_capacity(media.len());
    for (i, b) in media.into_iter().enumerate() {
        let mut md = b.md;
        if md.connection.is_none() {
            md.connection = session_conn;
        }
        md.direction = b.direction.or(session_dir).unwrap_or(Direction::SendRecv);
        // RFC 4566 5.7: every media needs a c= (its own or the session's); only enforced
        // for live audio, since that is the one stream we actually use.
        if md.connection.is_none() && md.port != 0 && md.media.eq_ignore_ascii_case("audio") {
            return Err(SdpError::MissingConnection { media_index: i });
        }
        if is_rtp(&md.proto) {
            md.payloads = resolve_payloads(&md, &b.rtpmaps, &b.fmtps)?;
        }
        out.push(md);
    }

    Ok(SessionDescription {
        origin_username,
        session_id,
        session_version,
        origin_addr,
        connection: session_conn,
        media: out,
    })
}

fn is_rtp(proto: &str) -> bool {
    // RFC 4566 5.14: fmt values are RTP payload types for RTP/* profiles (incl. UDP/TLS/RTP/*).
    proto.to_ascii_uppercase().contains("RTP/")
}

/// o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address> (RFC 4566 5.2).
fn parse_origin(value: &str) -> Result<(String, u64, u64, String), SdpError> {
    let bad = || SdpError::BadOrigin(value.to_string());
    let f: Vec<&str> = value.split_whitespace().collect();
    if f.len() != 6 {
        return Err(bad());
    }
    let id = f[1].parse::<u64>().map_err(|_| bad())?;
    let ver = f[2].parse::<u64>().map_err(|_| bad())?;
    Ok((f[0].to_string(), id, ver, f[5].to_string()))
}

/// c=IN <IP4|IP6> <addr>[/ttl][/count] (RFC 4566 5.7). Hostnames are rejected: we are
/// sans-IO and cannot resolve them.
fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let bad = || SdpError::BadConnection(value.to_string());
    let f: Vec<&str> = value.split_whitespace().collect();
    if f.len() != 3 || !f[0].eq_ignore_ascii_case("IN") {
        return Err(bad());
    }
    // Strip multicast /ttl and /number-of-addresses suffixes.
    let host = f[2].split('/').next().unwrap_or_default();
    let addr: IpAddr = host.parse().map_err(|_| bad())?;
    let type_ok = match addr {
        IpAddr::V4(_) => f[1].eq_ignore_ascii_case("IP4"),
        IpAddr::V6(_) => f[1].eq_ignore_ascii_case("IP6"),
    };
    if !type_ok {
        return Err(bad());
    }
    Ok(addr)
}

/// m=<media> <port>[/<count>] <proto> <fmt> ... (RFC 4566 5.14).
fn parse_media_line(value: &str) -> Result<MediaBuilder, SdpError> {
    let bad = || SdpError::BadMedia(value.to_string());
    let f: Vec<&str> = value.split_whitespace().collect();
    // At least one format is mandatory (RFC 4566 5.14 grammar: 1*(SP fmt)).
    if f.len() < 4 {
        return Err(bad());
    }
    let port_str = f[1].split('/').next().unwrap_or_default();
    let port = port_str.parse::<u16>().map_err(|_| bad())?;
    let proto = f[2].to_string();
    let formats: Vec<String> = f[3..].iter().map(|s| s.to_string()).collect();
    if is_rtp(&proto) {
        for fmt in &formats {
            parse_pt(fmt)?;
        }
    }
    Ok(MediaBuilder {
        md: MediaDescription {
            media: f[0].to_string(),
            port,
            proto,
            formats,
            payloads: Vec::new(),
            connection: None,
            direction: Direction::SendRecv,
            ptime: None,
            rtcp_mux: false,
            attributes: Vec::new(),
        },
        direction: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
    })
}

/// RTP payload types are 7 bits (RFC 3550 5.1).
fn parse_pt(s: &str) -> Result<u8, SdpError> {
    match s.parse::<u8>() {
        Ok(pt) if pt <= 127 => Ok(pt),
        _ => Err(SdpError::BadPayloadType(s.to_string())),
    }
}

fn apply_media_attr(m: &mut MediaBuilder, name: &str, val: Option<&str>) -> Result<(), SdpError> {
    m.md.attributes
        .push((name.to_string(), val.map(str::to_string)));
    if let Some(d) = Direction::from_attr(name) {
        m.direction = Some(d);
        return Ok(());
    }
    match (name, val) {
        ("rtpmap", Some(v)) => m.rtpmaps.push(parse_rtpmap(v)?),
        ("rtpmap", None) => return Err(SdpError::BadRtpmap(String::new())),
        ("fmtp", Some(v)) => {
            // a=fmtp:<format> <params> (RFC 4566 6); a bare format has no params to keep.
            let v = v.trim();
            let (fmt, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            m.fmtps.push((fmt.to_string(), params.trim().to_string()));
        }
        ("ptime", Some(v)) => {
            // RFC 4566 6 allows a decimal ptime ("20.0"); keep the whole milliseconds.
            let t = v.trim();
            let ms = t
                .parse::<u32>()
                .ok()
                .or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && *f >= 0.0 && *f <= u32::MAX as f64)
                        .map(|f| f as u32)
                })
                .ok_or_else(|| SdpError::BadPtime(v.to_string()))?;
            m.md.ptime = Some(ms);
        }
        ("rtcp-mux", _) => m.md.rtcp_mux = true,
        _ => {}
    }
    Ok(())
}

/// a=rtpmap:<pt> <encoding>/<clock>[/<channels>] (RFC 4566 6).
fn parse_rtpmap(v: &str) -> Result<(u8, String, u32, u8), SdpError> {
    let bad = || SdpError::BadRtpmap(v.to_string());
    let (pt, rest) = v.trim().split_once(char::is_whitespace).ok_or_else(bad)?;
    let pt = pt
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= 127)
        .ok_or_else(bad)?;
    let mut parts = rest.trim().split('/');
    let enc = parts.next().filter(|e| !e.is_empty()).ok_or_else(bad)?;
    let clock = parts
        .next()
        .and_then(|c| c.parse::<u32>().ok())
        .ok_or_else(bad)?;
    // Channel count defaults to 1 for audio (RFC 4566 6).
    let channels = match parts.next() {
        Some(c) => c.parse::<u8>().map_err(|_| bad())?,
        None => 1,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((pt, enc.to_string(), clock, channels))
}

/// RFC 3551 6 table 4 (audio) and table 5 (video) static payload types.
fn static_payload(media: &str, pt: u8) -> Option<(&'static str, u32, u8)> {
    if media.eq_ignore_ascii_case("audio") {
        Some(match pt {
            0 => ("PCMU", 8000, 1),
            3 => ("GSM", 8000, 1),
            4 => ("G723", 8000, 1),
            5 => ("DVI4", 8000, 1),
            6 => ("DVI4", 16000, 1),
            7 => ("LPC", 8000, 1),
            8 => ("PCMA", 8000, 1),
            // G.722's RTP clock is 8000 though it samples at 16 kHz (RFC 3551 4.5.2).
            9 => ("G722", 8000, 1),
            10 => ("L16", 44100, 2),
            11 => ("L16", 44100, 1),
            12 => ("QCELP", 8000, 1),
            13 => ("CN", 8000, 1),
            14 => ("MPA", 90000, 1),
            15 => ("G728", 8000, 1),
            16 => ("DVI4", 11025, 1),
            17 => ("DVI4", 22050, 1),
            18 => ("G729", 8000, 1),
            _ => return None,
        })
    } else if media.eq_ignore_ascii_case("video") {
        Some(match pt {
            25 => ("CelB", 90000, 1),
            26 => ("JPEG", 90000, 1),
            28 => ("nv", 90000, 1),
            31 => ("H261", 90000, 1),
            32 => ("MPV", 90000, 1),
            33 => ("MP2T", 90000, 1),
            34 => ("H263", 90000, 1),
            _ => return None,
        })
    } else {
        None
    }
}

fn resolve_payloads(
    md: &MediaDescription,
    rtpmaps: &[(u8, String, u32, u8)],
    fmtps: &[(String, String)],
) -> Result<Vec<PayloadFormat>, SdpError> {
    let mut out = Vec::with_capacity(md.formats.len());
    for fmt in &md.formats {
        let pt = parse_pt(fmt)?;
        // An explicit rtpmap overrides the static table (RFC 3264 5.1 lets it restate it).
        let resolved = rtpmaps
            .iter()
            .find(|r| r.0 == pt)
            .map(|r| (r.1.clone(), r.2, r.3))
            .or_else(|| static_payload(&md.media, pt).map(|(e, c, ch)| (e.to_string(), c, ch)));
        let Some((encoding, clock_rate, channels)) = resolved else {
            // Dynamic PT with no rtpmap: meaningless to us (RFC 4566 6), skip it.
            continue;
        };
        let fmtp = fmtps
            .iter()
            .find(|(f, _)| f.parse::<u8>().ok() == Some(pt))
            .map(|(_, p)| p.clone());
        out.push(PayloadFormat {
            pt,
            encoding,
            clock_rate,
            channels,
            fmtp,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Offer/answer
// ---------------------------------------------------------------------------

/// Plain RTP profiles (AVPF degrades to AVP feedback-free, RFC 4585 5).
fn is_plain_rtp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

/// SRTP profiles (RFC 3711 12; SAVPF as SAVP, RFC 5124). UDP/TLS/RTP/SAVP (DTLS-SRTP) is not
/// SDES and is never chosen.
fn is_srtp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/SAVP") || proto.eq_ignore_ascii_case("RTP/SAVPF")
}

/// The first usable `a=crypto` of a media section, in the offerer's order (RFC 4568 7.1.2).
fn choose_crypto(m: &MediaDescription) -> Option<Crypto> {
    m.attributes
        .iter()
        .filter(|(n, _)| n == "crypto")
        .find_map(|(_, v)| v.as_deref().and_then(|v| parse_crypto(v).ok()))
}

fn is_telephone_event(p: &PayloadFormat) -> bool {
    p.encoding.eq_ignore_ascii_case("telephone-event")
}

/// [`negotiate_srtp`] with SRTP off: plain RTP only.
pub fn negotiate(offer: &SessionDescription, prefs: &[Codec]) -> Result<Negotiated, SdpError> {
    negotiate_srtp(offer, prefs, SrtpPolicy::Off)
}

/// RFC 3264 6: choose the first audio m= line with a nonzero port that the SRTP policy allows
/// (plain RTP/AVP, or RTP/SAVP with a usable `a=crypto`) and that has a codec in `prefs`; the
/// codec follows the offerer's order (RFC 3264 6.1 permits this), so does the crypto suite.
pub fn negotiate_srtp(
    offer: &SessionDescription,
    prefs: &[Codec],
    srtp: SrtpPolicy,
) -> Result<Negotiated, SdpError> {
    // The most telling reason a line was passed over, if none is chosen.
    let mut why = SdpError::NoCommonCodec;
    let mut rank = 0;
    let mut note = |e: SdpError, r: u8| {
        if r > rank {
            why = e;
            rank = r;
        }
    };
    if !offer
        .media
        .iter()
        .any(|m| m.media.eq_ignore_ascii_case("audio"))
    {
        return Err(SdpError::NoAudio);
    }
    for (audio_index, m) in offer.media.iter().enumerate() {
        // Port 0 means the offerer disabled the stream (RFC 3264 5.1).
        if !m.media.eq_ignore_ascii_case("audio") || m.port == 0 {
            continue;
        }
        let crypto = if is_plain_rtp(&m.proto) {
            if srtp == SrtpPolicy::Required {
                note(SdpError::SrtpRequired, 1);
                continue;
            }
            None
        } else if is_srtp(&m.proto) {
            if srtp == SrtpPolicy::Off {
                note(SdpError::SrtpNotEnabled, 1);
                continue;
            }
            match choose_crypto(m) {
                Some(c) => Some(c),
                None => {
                    note(SdpError::NoUsableCrypto, 2);
                    continue;
                }
            }
        } else {
            continue;
        };
        let chosen = m
            .payloads
            .iter()
            .find_map(|p| prefs.iter().find(|c| c.matches(p)).map(|c| (*c, p.pt)));
        let Some((codec, pt)) = chosen else {
            note(SdpError::NoCommonCodec, 3);
            continue;
        };

        // RFC 4733 7.1.1: telephone-event runs at the codec's clock; fall back to the
        // other common clock if the offer only has that one.
        let want = codec.clock_rate();
        let te = |clock: u32| {
            m.payloads
                .iter()
                .find(|p| is_telephone_event(p) && p.clock_rate == clock)
                .map(|p| p.pt)
        };
        let other = if want == 8000 { 48000 } else { 8000 };
        let dtmf_pt = te(want).or_else(|| te(other));

        // RFC 3264 8.4: c=0.0.0.0 is old-style hold; there is no address to send to.
        let remote_rtp = m
            .connection
            .filter(|a| !a.is_unspecified())
            .map(|a| SocketAddr::new(a, m.port));

        return Ok(Negotiated {
            codec,
            pt,
            dtmf_pt,
            remote_rtp,
            remote_direction: m.direction,
            ptime: m.ptime.filter(|p| *p > 0).unwrap_or(20),
            audio_index,
            srtp: crypto,
        });
    }
    Err(why)
}

/// RFC 3264 6.1: the answer's direction given the offered one and what we want.
/// An offered sendonly can at most be answered recvonly, recvonly at most sendonly,
/// inactive only inactive; sendrecv leaves the choice to us.
pub fn answer_direction(offered: Direction, local: Direction) -> Direction {
    let send = offered.receives() && local.sends();
    let recv = offered.sends() && local.receives();
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

fn write_session_header(s: &mut String, addr: IpAddr, session_id: u64, session_version: u64) {
    let at = match addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    // RFC 4566 5: v, o, s, c, t in this order; s=- when there is no name (RFC 3264 5).
    let _ = write!(
        s,
        "v=0\r\no=switchboard {session_id} {session_version} IN {at} {addr}\r\ns=-\r\nc=IN {at} {addr}\r\nt=0 0\r\n"
    );
}

/// RFC 3264 6: build the answer. Same number and order of m= lines as the offer; the
/// negotiated audio line carries our port, the one chosen codec (offerer's PT), optional
/// telephone-event, ptime and direction, and for SRTP one `a=crypto` with the offer's tag and
/// suite and our key (RFC 4568 7.1.2); every other line is rejected with port 0 (so is the
/// audio line if SRTP was negotiated and `local` has no key).
pub fn answer(
    offer: &SessionDescription,
    neg: &Negotiated,
    local: &LocalMedia,
    local_direction: Direction,
    session_id: u64,
    session_version: u64,
) -> String {
    let mut s = String::with_capacity(512);
    write_session_header(&mut s, local.addr, session_id, session_version);
    // Err: SRTP negotiated but no key of ours to answer with.
    let crypto = match (&neg.srtp, &local.srtp_key) {
        (None, _) => Ok(None),
        (Some(c), Some(k)) => Ok(Some(crypto_line(c.tag, c.suite, k))),
        (Some(_), None) => Err(()),
    };
    for (i, m) in offer.media.iter().enumerate() {
        if i != neg.audio_index || crypto.is_err() {
            // RFC 3264 6: a rejected stream keeps its m= line with port 0 and one format.
            let fmt = m.formats.first().map(String::as_str).unwrap_or("0");
            let _ = write!(s, "m={} 0 {} {}\r\n", m.media, m.proto, fmt);
            continue;
        }
        let te = neg
            .dtmf_pt
            .filter(|_| local.telephone_event)
            .and_then(|pt| {
                m.payloads
                    .iter()
                    .find(|p| p.pt == pt && is_telephone_event(p))
                    .map(|p| (pt, p.clock_rate))
            });
        let _ = write!(s, "m=audio {} {} {}", local.port, m.proto, neg.pt);
        if let Some((pt, _)) = te {
            let _ = write!(s, " {pt}");
        }
        s.push_str("\r\n");
        // RFC 3264 6.1: the answer uses the offerer's PT numbers.
        let _ = write!(s, "a=rtpmap:{} {}\r\n", neg.pt, neg.codec.rtpmap());
        if neg.codec == Codec::Opus {
            // RFC 7587 7: echo the offerer's Opus parameters; we decode whatever it sends.
            if let Some(fmtp) = m
                .payloads
                .iter()
                .find(|p| p.pt == neg.pt)
                .and_then(|p| p.fmtp.as_ref())
            {
                if !fmtp.is_empty() {
                    let _ = write!(s, "a=fmtp:{} {}\r\n", neg.pt, fmtp);
                }
            }
        }
        if let Some((pt, clock)) = te {
            // RFC 4733 7.1.1: events 0-16 are the DTMF digits, *, #, A-D and flash.
            let _ = write!(
                s,
                "a=rtpmap:{pt} telephone-event/{clock}\r\na=fmtp:{pt} 0-16\r\n"
            );
        }
        let _ = write!(s, "a=ptime:{}\r\n", local.ptime);
        let _ = write!(
            s,
            "a={}\r\n",
            answer_direction(m.direction, local_direction).as_str()
        );
        if let Ok(Some(c)) = &crypto {
            s.push_str(c);
        }
    }
    s
}

/// An offer with all local codecs, for a late-offer INVITE (we offer in the 200 OK,
/// RFC 3261 13.2.1) or a session refresh. PCMU 0 and PCMA 8 are static (RFC 3551 6),
/// Opus on 111 (RFC 7587), telephone-event/8000 on 101 and /48000 on 110 (RFC 4733).
/// With `local.srtp_key`: RTP/SAVP with `a=crypto` 1 (_80) and 2 (_32), both with that key
/// (the answer picks one, RFC 4568 7.1.1).
pub fn offer(
    local: &LocalMedia,
    direction: Direction,
    session_id: u64,
    session_version: u64,
) -> String {
    let mut codecs: Vec<Codec> = Vec::with_capacity(local.codecs.len());
    for c in &local.codecs {
        if !codecs.contains(c) {
            codecs.push(*c);
        }
    }
    // An m= line needs at least one format (RFC 4566 5.14); PCMU is the RFC 3551 baseline.
    if codecs.is_empty() {
        codecs.push(Codec::Pcmu);
    }
    let mut pts: Vec<(u8, String)> = codecs
        .iter()
        .map(|c| (c.default_pt(), c.rtpmap().to_string()))
        .collect();
    if local.telephone_event {
        pts.push((TE_8000_PT, "telephone-event/8000".to_string()));
        if codecs.contains(&Codec::Opus) {
            pts.push((TE_48000_PT, "telephone-event/48000".to_string()));
        }
    }

    let mut s = String::with_capacity(512);
    write_session_header(&mut s, local.addr, session_id, session_version);
    let proto = if local.srtp_key.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let _ = write!(s, "m=audio {} {proto}", local.port);
    for (pt, _) in &pts {
        let _ = write!(s, " {pt}");
    }
    s.push_str("\r\n");
    for (pt, map) in &pts {
        // rtpmap for statics too: optional, but removes any doubt (RFC 3264 5.1).
        let _ = write!(s, "a=rtpmap:{pt} {map}\r\n");
        if map.starts_with("telephone-event") {
            let _ = write!(s, "a=fmtp:{pt} 0-16\r\n");
        }
    }
    let _ = write!(s, "a=ptime:{}\r\na={}\r\n", local.ptime, direction.as_str());
    if let Some(k) = &local.srtp_key {
        s.push_str(&crypto_line(1, CryptoSuite::AesCm128HmacSha1_80, k));
        s.push_str(&crypto_line(2, CryptoSuite::AesCm128HmacSha1_32, k));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Shaped like baresip/Linphone/SIPp: PCMU, PCMA, Opus dynamic, telephone-event.
    const TYPICAL: &str = "v=0\r\n\
o=- 3907048190 3907048191 IN IP4 192.0.2.10\r\n\
s=baresip\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 96 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=rtcp-mux\r\n\
a=sendrecv\r\n";

    fn local() -> LocalMedia {
        LocalMedia {
            addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
            port: 30000,
            codecs: vec![Codec::Opus, Codec::Pcmu, Codec::Pcma],
            telephone_event: true,
            ptime: 20,
            srtp_key: None,
        }
    }

    fn all() -> Vec<Codec> {
        vec![Codec::Opus, Codec::Pcmu, Codec::Pcma]
    }

    fn p(s: &str) -> SessionDescription {
        match parse(s.as_bytes()) {
            Ok(sd) => sd,
            Err(e) => panic!("parse failed: {e}\n{s}"),
        }
    }

    fn audio_offer(media_attrs: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{media_attrs}"
        )
    }

    #[test]
    fn rfc4566_5_parses_typical_softphone_offer() {
        let sd = p(TYPICAL);
        assert_eq!(sd.origin_username, "-");
        assert_eq!(sd.session_id, 3907048190);
        assert_eq!(sd.session_version, 3907048191);
        assert_eq!(sd.origin_addr, "192.0.2.10");
        assert_eq!(sd.connection, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(sd.media.len(), 1);
        let m = &sd.media[0];
        assert_eq!(m.media, "audio");
        assert_eq!(m.port, 40000);
        assert_eq!(m.proto, "RTP/AVP");
        assert_eq!(m.formats, vec!["0", "8", "96", "101"]);
        assert_eq!(m.payloads.len(), 4);
        assert_eq!(m.payloads[2].encoding, "opus");
        assert_eq!(m.payloads[2].clock_rate, 48000);
        assert_eq!(m.payloads[2].channels, 2);
        assert_eq!(
            m.payloads[2].fmtp.as_deref(),
            Some("stereo=1;sprop-stereo=1")
        );
        assert_eq!(m.payloads[3].fmtp.as_deref(), Some("0-16"));
        assert_eq!(m.ptime, Some(20));
        assert!(m.rtcp_mux);
        assert_eq!(m.direction, Direction::SendRecv);
        assert_eq!(m.connection, sd.connection);
        assert!(m.attributes.contains(&("rtcp-mux".to_string(), None)));
    }

    #[test]
    fn rfc4566_5_accepts_bare_lf_line_ends() {
        let lf = TYPICAL.replace("\r\n", "\n");
        assert_eq!(p(&lf), p(TYPICAL));
    }

    #[test]
    fn rfc4566_5_ignores_unknown_lines_and_attributes() {
        let s = TYPICAL.replace(
            "t=0 0\r\n",
            "t=0 0\r\nb=AS:64\r\nx=whatever\r\na=group:BUNDLE 0\r\n",
        ) + "a=ssrc:1 cname:x\r\na=extmap:1 urn:foo\r\n";
        let sd = p(&s);
        assert_eq!(sd.media[0].payloads.len(), 4);
    }

    #[test]
    fn rfc3264_6_1_codec_follows_offerer_order() {
        // Offerer lists PCMU first; we prefer Opus but follow the offerer.
        let n = negotiate(&p(TYPICAL), &all()).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.pt, 0);
        assert_eq!(n.dtmf_pt, Some(101));
        assert_eq!(n.remote_rtp, Some("192.0.2.10:40000".parse().unwrap()));
        assert_eq!(n.ptime, 20);
        assert_eq!(n.audio_index, 0);

        // Opus first in the offer -> Opus, with the offerer's dynamic PT.
        let s = TYPICAL.replace("RTP/AVP 0 8 96 101", "RTP/AVP 96 0 8 101");
        let n = negotiate(&p(&s), &all()).unwrap();
        assert_eq!((n.codec, n.pt), (Codec::Opus, 96));

        // Codecs outside prefs are skipped even if the offerer lists them first.
        let n = negotiate(&p(&s), &[Codec::Pcma]).unwrap();
        assert_eq!((n.codec, n.pt), (Codec::Pcma, 8));
    }

    #[test]
    fn rfc3264_6_1_g722_only_is_no_common_codec() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 9\r\n";
        let sd = p(s);
        assert_eq!(sd.media[0].payloads[0].encoding, "G722");
        assert_eq!(negotiate(&sd, &all()), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn rfc3264_6_no_audio_line_is_no_audio() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=video 5000 RTP/AVP 31\r\n";
        assert_eq!(negotiate(&p(s), &all()), Err(SdpError::NoAudio));
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n";
        assert_eq!(negotiate(&p(s), &all()), Err(SdpError::NoAudio));
    }

    #[test]
    fn rfc3264_6_skips_disabled_and_srtp_audio_lines() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 0 RTP/AVP 0\r\n\
m=audio 4002 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n\
m=audio 4004 RTP/AVP 8\r\n";
        let n = negotiate(&p(s), &all()).unwrap();
        assert_eq!(n.audio_index, 2);
        assert_eq!(n.codec, Codec::Pcma);
        let a = answer(&p(s), &n, &local(), Direction::SendRecv, 1, 1);
        let ans = p(&a);
        assert_eq!(ans.media.len(), 3);
        assert_eq!(ans.media[0].port, 0);
        assert_eq!(ans.media[1].port, 0);
        assert_eq!(ans.media[1].proto, "RTP/SAVP");
        assert_eq!(ans.media[2].port, 30000);
    }

    #[test]
    fn rfc3264_6_answer_keeps_m_line_count_and_order() {
        let s = TYPICAL.to_string() + "m=video 40002 RTP/AVP 97 31\r\na=rtpmap:97 H264/90000\r\n";
        let off = p(&s);
        let n = negotiate(&off, &all()).unwrap();
        let a = answer(&off, &n, &local(), Direction::SendRecv, 42, 7);
        let ans = p(&a);
        assert_eq!(ans.media.len(), 2);
        assert_eq!(ans.media[0].media, "audio");
        assert_eq!(ans.media[0].port, 30000);
        assert_eq!(ans.media[1].media, "video");
        assert_eq!(ans.media[1].port, 0);
        assert_eq!(ans.media[1].formats, vec!["97"]);
        assert!(a.contains("m=video 0 RTP/AVP 97\r\n"));
    }

    #[test]
    fn rfc3264_6_answer_is_crlf_and_session_header() {
        let off = p(TYPICAL);
        let n = negotiate(&off, &all()).unwrap();
        let a = answer(&off, &n, &local(), Direction::SendRecv, 42, 7);
        assert!(a.starts_with(
            "v=0\r\no=switchboard 42 7 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n"
        ));
        assert!(a.ends_with("\r\n"));
        assert!(!a.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn rfc3264_6_round_trip_answer_says_what_we_meant() {
        let off = p(TYPICAL);
        let n = negotiate(&off, &all()).unwrap();
        let a = answer(&off, &n, &local(), Direction::SendRecv, 42, 7);
        let ans = p(&a);
        assert_eq!(ans.origin_username, "switchboard");
        assert_eq!((ans.session_id, ans.session_version), (42, 7));
        assert_eq!(ans.connection, Some(local().addr));
        let m = &ans.media[0];
        assert_eq!(m.port, 30000);
        assert_eq!(m.proto, "RTP/AVP");
        assert_eq!(m.formats, vec!["0", "101"]);
        assert_eq!(m.payloads[0].encoding, "PCMU");
        assert_eq!(m.payloads[1].encoding, "telephone-event");
        assert_eq!(m.payloads[1].fmtp.as_deref(), Some("0-16"));
        assert_eq!(m.direction, Direction::SendRecv);
        assert_eq!(m.ptime, Some(20));
        // And the answer negotiates back to the same codec (it is a valid "offer" shape).
        let back = negotiate(&ans, &all()).unwrap();
        assert_eq!(
            (back.codec, back.pt, back.dtmf_pt),
            (Codec::Pcmu, 0, Some(101))
        );
        assert_eq!(back.remote_rtp, Some(SocketAddr::new(local().addr, 30000)));
    }

    #[test]
    fn rfc4566_5_7_session_level_connection_applies_to_media() {
        let sd = p(TYPICAL);
        assert_eq!(sd.media[0].connection, Some("192.0.2.10".parse().unwrap()));
    }

    #[test]
    fn rfc4566_5_7_media_level_connection_only() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 8\r\nc=IN IP4 198.51.100.7\r\n";
        let sd = p(s);
        assert_eq!(sd.connection, None);
        assert_eq!(
            sd.media[0].connection,
            Some("198.51.100.7".parse().unwrap())
        );
        let n = negotiate(&sd, &all()).unwrap();
        assert_eq!(n.remote_rtp, Some("198.51.100.7:4000".parse().unwrap()));
    }

    #[test]
    fn rfc4566_5_7_media_connection_overrides_session() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 8\r\nc=IN IP4 198.51.100.7/127\r\n";
        let sd = p(s);
        assert_eq!(sd.connection, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            sd.media[0].connection,
            Some("198.51.100.7".parse().unwrap())
        );
    }

    #[test]
    fn rfc4566_5_7_active_audio_without_connection_is_error() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(
            parse(s.as_bytes()),
            Err(SdpError::MissingConnection { media_index: 0 })
        );
        // A disabled stream needs no address.
        let s = s.replace("4000", "0");
        assert!(parse(s.as_bytes()).is_ok());
    }

    #[test]
    fn rfc4566_5_7_ipv6_connection_and_answer() {
        let s = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\n";
        let sd = p(s);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(sd.media[0].connection, Some(v6));
        let n = negotiate(&sd, &all()).unwrap();
        assert_eq!(n.remote_rtp, Some(SocketAddr::new(v6, 4000)));

        let mut l = local();
        l.addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99));
        let a = answer(&sd, &n, &l, Direction::SendRecv, 1, 2);
        assert!(a.contains("o=switchboard 1 2 IN IP6 2001:db8::99\r\n"));
        assert!(a.contains("c=IN IP6 2001:db8::99\r\n"));
        assert_eq!(p(&a).connection, Some(l.addr));
    }

    #[test]
    fn rfc4566_5_7_address_type_must_match() {
        let s = TYPICAL.replace("c=IN IP4 192.0.2.10", "c=IN IP6 192.0.2.10");
        assert!(matches!(
            parse(s.as_bytes()),
            Err(SdpError::BadConnection(_))
        ));
        let s = TYPICAL.replace("c=IN IP4 192.0.2.10", "c=IN IP4 host.example.com");
        assert!(matches!(
            parse(s.as_bytes()),
            Err(SdpError::BadConnection(_))
        ));
    }

    #[test]
    fn rfc3264_6_1_direction_combinations() {
        use Direction::*;
        let table = [
            // (offered, local, answered)
            (SendRecv, SendRecv, SendRecv),
            (SendRecv, SendOnly, SendOnly),
            (SendRecv, RecvOnly, RecvOnly),
            (SendRecv, Inactive, Inactive),
            (SendOnly, SendRecv, RecvOnly),
            (SendOnly, RecvOnly, RecvOnly),
            (SendOnly, SendOnly, Inactive),
            (SendOnly, Inactive, Inactive),
            (RecvOnly, SendRecv, SendOnly),
            (RecvOnly, SendOnly, SendOnly),
            (RecvOnly, RecvOnly, Inactive),
            (RecvOnly, Inactive, Inactive),
            (Inactive, SendRecv, Inactive),
            (Inactive, SendOnly, Inactive),
            (Inactive, RecvOnly, Inactive),
            (Inactive, Inactive, Inactive),
        ];
        for (offered, ours, want) in table {
            assert_eq!(
                answer_direction(offered, ours),
                want,
                "{offered:?} x {ours:?}"
            );
            // Through the full parse/answer/parse path too.
            let off = p(&audio_offer(&format!("a={}\r\n", offered.as_str())));
            let n = negotiate(&off, &all()).unwrap();
            assert_eq!(n.remote_direction, offered);
            let ans = p(&answer(&off, &n, &local(), ours, 1, 1));
            assert_eq!(ans.media[0].direction, want, "{offered:?} x {ours:?}");
        }
    }

    #[test]
    fn rfc4566_6_session_level_direction_is_default() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\n\
m=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\na=inactive\r\n";
        let sd = p(s);
        assert_eq!(sd.media[0].direction, Direction::SendOnly);
        assert_eq!(sd.media[1].direction, Direction::Inactive);
    }

    #[test]
    fn rfc3264_8_4_hold_sendonly_answered_recvonly() {
        let off = p(&audio_offer("a=sendonly\r\n"));
        let n = negotiate(&off, &all()).unwrap();
        assert_eq!(n.remote_direction, Direction::SendOnly);
        let a = answer(&off, &n, &local(), Direction::SendRecv, 1, 2);
        assert!(a.contains("a=recvonly\r\n"));
        let a = answer(&off, &n, &local(), Direction::Inactive, 1, 2);
        assert!(a.contains("a=inactive\r\n"));
        let off = p(&audio_offer("a=inactive\r\n"));
        let n = negotiate(&off, &all()).unwrap();
        assert!(answer(&off, &n, &local(), Direction::SendRecv, 1, 2).contains("a=inactive\r\n"));
    }

    #[test]
    fn rfc3264_8_4_old_style_hold_c_zero() {
        let s = audio_offer("").replace("c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0");
        let off = p(&s);
        assert_eq!(
            off.media[0].connection,
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        );
        let n = negotiate(&off, &all()).unwrap();
        assert_eq!(n.remote_rtp, None);
        let a = answer(&off, &n, &local(), Direction::SendRecv, 1, 2);
        let ans = p(&a);
        // We still answer with our real address (RFC 3264 8.4 only concerns the holder).
        assert_eq!(ans.connection, Some(local().addr));
        assert_eq!(ans.media[0].connection, Some(local().addr));
    }

    #[test]
    fn rfc4733_telephone_event_pt_passthrough() {
        let s = TYPICAL.replace("0 8 96 101", "8 100").replace(
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16",
            "a=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-15",
        );
        let off = p(&s);
        let n = negotiate(&off, &all()).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Pcma, 8, Some(100)));
        let a = answer(&off, &n, &local(), Direction::SendRecv, 1, 1);
        assert!(a.contains("m=audio 30000 RTP/AVP 8 100\r\n"));
        assert!(a.contains("a=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-16\r\n"));
        // Disabled locally -> not in the answer.
        let mut l = local();
        l.telephone_event = false;
        let a = answer(&off, &n, &l, Direction::SendRecv, 1, 1);
        assert!(a.contains("m=audio 30000 RTP/AVP 8\r\n"));
        assert!(!a.contains("telephone-event"));
    }

    #[test]
    fn rfc4733_telephone_event_clock_follows_codec() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 111 0 101 110\r\na=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:101 telephone-event/8000\r\na=rtpmap:110 telephone-event/48000\r\n";
        let off = p(s);
        let n = negotiate(&off, &all()).unwrap();
        assert_eq!((n.codec, n.dtmf_pt), (Codec::Opus, Some(110)));
        let n = negotiate(&off, &[Codec::Pcmu]).unwrap();
        assert_eq!((n.codec, n.dtmf_pt), (Codec::Pcmu, Some(101)));
        // Only one clock present: accept it either way.
        let only8k = s
            .replace(" 110\r\n", "\r\n")
            .replace("a=rtpmap:110 telephone-event/48000\r\n", "");
        let n = negotiate(&p(&only8k), &all()).unwrap();
        assert_eq!((n.codec, n.dtmf_pt), (Codec::Opus, Some(101)));
        let a = answer(&p(&only8k), &n, &local(), Direction::SendRecv, 1, 1);
        assert!(a.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    }

    #[test]
    fn rfc7587_7_opus_answer_rtpmap_and_fmtp_echo() {
        let s = TYPICAL.replace("RTP/AVP 0 8 96 101", "RTP/AVP 96 101");
        let off = p(&s);
        let n = negotiate(&off, &all()).unwrap();
        assert_eq!((n.codec, n.pt), (Codec::Opus, 96));
        let a = answer(&off, &n, &local(), Direction::SendRecv, 1, 1);
        assert!(a.contains("a=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=1;sprop-stereo=1\r\n"));
        // No fmtp offered -> none answered.
        let s = s.replace("a=fmtp:96 stereo=1;sprop-stereo=1\r\n", "");
        let off = p(&s);
        let a = answer(
            &off,
            &negotiate(&off, &all()).unwrap(),
            &local(),
            Direction::SendRecv,
            1,
            1,
        );
        assert!(!a.contains("a=fmtp:96"));
        // Case-insensitive encoding name (RFC 4566 6).
        let s = s.replace("opus/48000/2", "OPUS/48000/2");
        assert_eq!(negotiate(&p(&s), &all()).unwrap().codec, Codec::Opus);
        // Opus at the wrong clock is not Opus.
        let s = s.replace("OPUS/48000/2", "opus/16000");
        assert_eq!(
            negotiate(&p(&s), &[Codec::Opus]),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn rfc3551_6_static_payload_types_resolve_without_rtpmap() {
        let s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0 8 9 18 13 96\r\n";
        let sd = p(s);
        let got: Vec<(u8, &str, u32)> = sd.media[0]
            .payloads
            .iter()
            .map(|p| (p.pt, p.encoding.as_str(), p.clock_rate))
            .collect();
        // 96 has no rtpmap: dynamic and unresolvable, left out.
        assert_eq!(
            got,
            vec![
                (0, "PCMU", 8000),
                (8, "PCMA", 8000),
                (9, "G722", 8000),
                (18, "G729", 8000),
                (13, "CN", 8000)
            ]
        );
        assert_eq!(sd.media[0].formats.len(), 6);
    }

    #[test]
    fn rfc4566_6_ptime_is_offered_or_20() {
        let n = negotiate(&p(&audio_offer("a=ptime:30\r\n")), &all()).unwrap();
        assert_eq!(n.ptime, 30);
        let n = negotiate(&p(&audio_offer("a=ptime:20.0\r\n")), &all()).unwrap();
        assert_eq!(n.ptime, 20);
        let n = negotiate(&p(&audio_offer("")), &all()).unwrap();
        assert_eq!(n.ptime, 20);
        assert!(matches!(
            parse(audio_offer("a=ptime:abc\r\n").as_bytes()),
            Err(SdpError::BadPtime(_))
        ));
    }

    #[test]
    fn rfc3264_5_offer_lists_all_local_codecs() {
        let o = offer(&local(), Direction::SendRecv, 9, 1);
        let sd = p(&o);
        assert_eq!(sd.origin_username, "switchboard");
        let m = &sd.media[0];
        assert_eq!(m.port, 30000);
        assert_eq!(m.formats, vec!["111", "0", "8", "101", "110"]);
        let maps: Vec<(u8, &str, u32, u8)> = m
            .payloads
            .iter()
            .map(|p| (p.pt, p.encoding.as_str(), p.clock_rate, p.channels))
            .collect();
        assert_eq!(
            maps,
            vec![
                (111, "opus", 48000, 2),
                (0, "PCMU", 8000, 1),
                (8, "PCMA", 8000, 1),
                (101, "telephone-event", 8000, 1),
                (110, "telephone-event", 48000, 1)
            ]
        );
        assert_eq!(m.ptime, Some(20));
        assert_eq!(m.direction, Direction::SendRecv);
        assert!(o.ends_with("\r\n"));

        // Without Opus there is no 48 kHz telephone-event; without DTMF no events at all.
        let mut l = local();
        l.codecs = vec![Codec::Pcma];
        assert_eq!(
            p(&offer(&l, Direction::SendOnly, 9, 2)).media[0].formats,
            vec!["8", "101"]
        );
        l.telephone_event = false;
        let sd = p(&offer(&l, Direction::SendOnly, 9, 2));
        assert_eq!(sd.media[0].formats, vec!["8"]);
        assert_eq!(sd.media[0].direction, Direction::SendOnly);
        // Empty codec list still yields a valid m= line.
        l.codecs.clear();
        assert_eq!(
            p(&offer(&l, Direction::SendRecv, 9, 2)).media[0].formats,
            vec!["0"]
        );
    }

    #[test]
    fn rfc3264_6_negotiating_our_own_offer_works() {
        let sd = p(&offer(&local(), Direction::SendRecv, 9, 1));
        let n = negotiate(&sd, &[Codec::Pcmu, Codec::Opus]).unwrap();
        assert_eq!((n.codec, n.pt, n.dtmf_pt), (Codec::Opus, 111, Some(110)));
    }

    #[test]
    fn rfc4566_5_parse_errors_name_the_rule() {
        assert_eq!(parse(b""), Err(SdpError::MissingVersion));
        assert_eq!(
            parse(b"o=- 1 1 IN IP4 1.2.3.4\r\n"),
            Err(SdpError::MissingVersion)
        );
        assert!(matches!(
            parse(b"v=1\r\n"),
            Err(SdpError::UnsupportedVersion(_))
        ));
        assert_eq!(parse(b"v=0\r\ns=-\r\n"), Err(SdpError::MissingOrigin));
        assert_eq!(parse(b"\xff\xfe"), Err(SdpError::NotUtf8));
        assert_eq!(
            parse(b"v=0\r\nhello\r\n"),
            Err(SdpError::MalformedLine { line: 2 })
        );
        assert!(matches!(
            parse(b"v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n"),
            Err(SdpError::BadOrigin(_))
        ));
        let base = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
        for (line, want) in [
            ("m=audio\r\n", "m"),
            ("m=audio 4000 RTP/AVP\r\n", "m"),
            ("m=audio 70000 RTP/AVP 0\r\n", "m"),
            ("m=audio x RTP/AVP 0\r\n", "m"),
            ("m=audio 4000 RTP/AVP 200\r\n", "pt"),
            ("m=audio 4000 RTP/AVP abc\r\n", "pt"),
            ("m=audio 4000 RTP/AVP 96\r\na=rtpmap:96\r\n", "rtpmap"),
            ("m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n", "rtpmap"),
            (
                "m=audio 4000 RTP/AVP 96\r\na=rtpmap:x opus/48000\r\n",
                "rtpmap",
            ),
            ("c=IN IP4\r\n", "c"),
            ("c=XX IP4 1.2.3.4\r\n", "c"),
        ] {
            let r = parse(format!("{base}{line}").as_bytes());
            let ok = matches!(
                (want, &r),
                ("m", Err(SdpError::BadMedia(_)))
                    | ("pt", Err(SdpError::BadPayloadType(_)))
                    | ("rtpmap", Err(SdpError::BadRtpmap(_)))
                    | ("c", Err(SdpError::BadConnection(_)))
            );
            assert!(ok, "{line:?} -> {r:?}");
        }
        // Non-RTP profiles keep non-numeric formats (RFC 4566 5.14).
        assert!(parse(format!("{base}m=application 9 UDP/BFCP *\r\n").as_bytes()).is_ok());
    }

    #[test]
    fn rfc4566_5_no_panic_on_random_bytes_and_truncations() {
        // Deterministic xorshift so failures reproduce.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"v=omcat0123456789 ./:\r\nINIP46audioRTP/AVPrtpmap\xff";
        for i in 0..400 {
            let len = (next() % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if i % 2 == 0 {
                        r as u8
                    } else {
                        alphabet[(r % alphabet.len() as u64) as usize]
                    }
                })
                .collect();
            let _ = parse(&bytes);
            let mut prefixed = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n".to_vec();
            prefixed.extend_from_slice(&bytes);
            if let Ok(sd) = parse(&prefixed) {
                if let Ok(n) = negotiate(&sd, &all()) {
                    let _ = answer(&sd, &n, &local(), Direction::SendRecv, 1, 1);
                }
            }
        }
        let full = TYPICAL.to_string() + "m=video 40002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n";
        let b = full.as_bytes();
        for cut in 0..=b.len() {
            if let Ok(sd) = parse(&b[..cut]) {
                if let Ok(n) = negotiate(&sd, &all()) {
                    let a = answer(&sd, &n, &local(), Direction::SendRecv, 1, 1);
                    assert!(
                        parse(a.as_bytes()).is_ok(),
                        "answer to cut {cut} does not parse"
                    );
                }
            }
            // Corrupt one byte at each position as well.
            let mut m = b.to_vec();
            if cut < m.len() {
                m[cut] = (next() as u8) | 0x80;
                let _ = parse(&m);
            }
        }
    }

    #[test]
    fn rfc3264_answer_with_out_of_range_index_rejects_all() {
        // A stale Negotiated must not panic; every line is rejected.
        let off = p(TYPICAL);
        let mut n = negotiate(&off, &all()).unwrap();
        n.audio_index = 9;
        let ans = p(&answer(&off, &n, &local(), Direction::SendRecv, 1, 1));
        assert_eq!(ans.media.len(), 1);
        assert_eq!(ans.media[0].port, 0);
    }

    #[test]
    fn direction_reverse_and_as_str() {
        use Direction::*;
        assert_eq!(SendOnly.reverse(), RecvOnly);
        assert_eq!(RecvOnly.reverse(), SendOnly);
        assert_eq!(SendRecv.reverse(), SendRecv);
        assert_eq!(Inactive.reverse(), Inactive);
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(Direction::from_attr(d.as_str()), Some(d));
        }
    }

    // ----- SDES (RFC 4568) -----

    /// base64 of bytes 0..30: key 00..0f, salt 10..1d.
    const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

    fn key_0_29() -> SrtpKey {
        let mut k = [0u8; 30];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        SrtpKey(k)
    }

    fn savp_offer(crypto: &[&str]) -> String {
        let mut s = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
            .to_string();
        for c in crypto {
            s.push_str(&format!("a=crypto:{c}\r\n"));
        }
        s
    }

    fn srtp_local() -> LocalMedia {
        LocalMedia {
            srtp_key: Some(SrtpKey([0xa5; 30])),
            ..local()
        }
    }

    #[test]
    fn rfc4568_9_1_parses_crypto_lines() {
        let c = parse_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}")).unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(c.key, key_0_29());
        // Lifetimes (power of two or decimal), WSH and FEC_ORDER are accepted; a 9-digit tag.
        for v in [
            format!("123456789 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}|2^20"),
            format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}|1048576 WSH=64"),
            format!("2 AES_CM_128_HMAC_SHA1_32 INLINE:{KEY_B64} FEC_ORDER=FEC_SRTP KDR=0"),
            format!("2  AES_CM_128_HMAC_SHA1_32   inline:{KEY_B64}  "),
        ] {
            let c = parse_crypto(&v).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(c.suite, CryptoSuite::AesCm128HmacSha1_32);
            assert_eq!(c.key, key_0_29());
        }
    }

    #[test]
    fn rfc4568_6_rejects_what_we_cannot_use_and_never_echoes_the_key() {
        let k = KEY_B64;
        let cases: Vec<(String, CryptoError)> = vec![
            (String::new(), CryptoError::Malformed),
            ("1 AES_CM_128_HMAC_SHA1_80".into(), CryptoError::Malformed),
            (
                format!("x AES_CM_128_HMAC_SHA1_80 inline:{k}"),
                CryptoError::BadTag,
            ),
            (
                format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{k}"),
                CryptoError::BadTag,
            ),
            (
                format!("1 AES_256_CM_HMAC_SHA1_80 inline:{k}"),
                CryptoError::UnsupportedSuite("AES_256_CM_HMAC_SHA1_80".into()),
            ),
            (
                format!("1 AEAD_AES_128_GCM inline:{k}"),
                CryptoError::UnsupportedSuite("AEAD_AES_128_GCM".into()),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 uri:{k}"),
                CryptoError::KeyMethod,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {k}"),
                CryptoError::KeyMethod,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^20|1:4"),
                CryptoError::Mki,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|1:4"),
                CryptoError::Mki,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^20|1:4;inline:{k}|2^20|2:4"),
                CryptoError::Mki,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^99"),
                CryptoError::BadLifetime,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|0"),
                CryptoError::BadLifetime,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64".into(),
                CryptoError::BadKey,
            ),
            // 29 and 31 bytes.
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", &k[..38]),
                CryptoError::BadKey,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}AAAA"),
                CryptoError::BadKey,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k} UNENCRYPTED_SRTP"),
                CryptoError::SessionParam("UNENCRYPTED_SRTP".into()),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k} UNAUTHENTICATED_SRTP"),
                CryptoError::SessionParam("UNAUTHENTICATED_SRTP".into()),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k} KDR=10"),
                CryptoError::SessionParam("KDR".into()),
            ),
        ];
        for (v, want) in cases {
            let got = parse_crypto(&v);
            assert_eq!(got, Err(want), "{v}");
            if let Err(e) = got {
                assert!(!e.to_string().contains(&k[..10]), "{e}");
            }
        }
    }

    #[test]
    fn rfc4568_7_1_srtp_policy_decides_which_line_is_used() {
        let savp = p(&savp_offer(&[&format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}"
        )]));
        let avp = p(TYPICAL);
        // Off: today's behaviour, SAVP is never chosen.
        assert_eq!(
            negotiate_srtp(&savp, &all(), SrtpPolicy::Off),
            Err(SdpError::SrtpNotEnabled)
        );
        assert_eq!(negotiate(&savp, &all()), Err(SdpError::SrtpNotEnabled));
        assert_eq!(
            negotiate_srtp(&avp, &all(), SrtpPolicy::Off).unwrap().srtp,
            None
        );
        // Optional: SAVP gets SRTP, AVP plain RTP.
        let n = negotiate_srtp(&savp, &all(), SrtpPolicy::Optional).unwrap();
        let c = n.srtp.unwrap();
        assert_eq!(
            (c.tag, c.suite, c.key),
            (1, CryptoSuite::AesCm128HmacSha1_80, key_0_29())
        );
        assert_eq!(
            negotiate_srtp(&avp, &all(), SrtpPolicy::Optional)
                .unwrap()
                .srtp,
            None
        );
        // Required: plain RTP is refused.
        assert!(negotiate_srtp(&savp, &all(), SrtpPolicy::Required)
            .unwrap()
            .srtp
            .is_some());
        assert_eq!(
            negotiate_srtp(&avp, &all(), SrtpPolicy::Required),
            Err(SdpError::SrtpRequired)
        );
        // SAVPF is SAVP for us.
        let savpf = p(
            &savp_offer(&[&format!("1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}")])
                .replace("RTP/SAVP", "RTP/SAVPF"),
        );
        assert!(negotiate_srtp(&savpf, &all(), SrtpPolicy::Required)
            .unwrap()
            .srtp
            .is_some());
        // DTLS-SRTP is not SDES: never chosen.
        let dtls = p(&savp_offer(&[]).replace("RTP/SAVP", "UDP/TLS/RTP/SAVP"));
        assert_eq!(
            negotiate_srtp(&dtls, &all(), SrtpPolicy::Required),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn rfc4568_7_1_2_first_usable_crypto_in_offer_order() {
        let k = KEY_B64;
        let s = savp_offer(&[
            &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{k}{k}"),
            &format!("2 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^20|1:4"),
            &format!("3 AES_CM_128_HMAC_SHA1_32 inline:{k}"),
            &format!("4 AES_CM_128_HMAC_SHA1_80 inline:{k}"),
        ]);
        let c = negotiate_srtp(&p(&s), &all(), SrtpPolicy::Optional)
            .unwrap()
            .srtp
            .unwrap();
        assert_eq!((c.tag, c.suite), (3, CryptoSuite::AesCm128HmacSha1_32));
        // Nothing usable: 488 material, and the reason says crypto, not codecs.
        let s = savp_offer(&[
            &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{k}{k}"),
            &format!("2 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^20|1:4"),
        ]);
        assert_eq!(
            negotiate_srtp(&p(&s), &all(), SrtpPolicy::Optional),
            Err(SdpError::NoUsableCrypto)
        );
        assert_eq!(
            negotiate_srtp(&p(&savp_offer(&[])), &all(), SrtpPolicy::Required),
            Err(SdpError::NoUsableCrypto)
        );
        // A usable crypto but no common codec: the codec is the reason.
        let g722 = savp_offer(&[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}")])
            .replace("RTP/SAVP 0 101", "RTP/SAVP 9");
        assert_eq!(
            negotiate_srtp(&p(&g722), &all(), SrtpPolicy::Required),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn rfc4568_7_1_two_audio_lines_secure_and_plain() {
        // The two-m-line pattern: the same stream offered as SAVP and as AVP.
        let k = KEY_B64;
        let s = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\n\
m=audio 4002 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}\r\n"
        );
        let off = p(&s);
        let n = negotiate_srtp(&off, &all(), SrtpPolicy::Optional).unwrap();
        assert_eq!(
            (n.audio_index, n.srtp.is_none()),
            (0, true),
            "offerer's order"
        );
        let n = negotiate_srtp(&off, &all(), SrtpPolicy::Required).unwrap();
        assert_eq!(n.audio_index, 1);
        let ans = p(&answer(&off, &n, &srtp_local(), Direction::SendRecv, 1, 1));
        assert_eq!((ans.media[0].port, ans.media[1].port), (0, 30000));
        let n = negotiate_srtp(&off, &all(), SrtpPolicy::Off).unwrap();
        assert_eq!(n.audio_index, 0);
    }

    #[test]
    fn rfc4568_7_1_2_answer_has_one_crypto_with_the_offer_tag_and_our_key() {
        let k = KEY_B64;
        let off = p(&savp_offer(&[
            &format!("7 AES_CM_128_HMAC_SHA1_32 inline:{k}|2^31"),
            &format!("8 AES_CM_128_HMAC_SHA1_80 inline:{k}"),
        ]));
        let n = negotiate_srtp(&off, &all(), SrtpPolicy::Optional).unwrap();
        let a = answer(&off, &n, &srtp_local(), Direction::SendRecv, 1, 1);
        assert!(a.contains("m=audio 30000 RTP/SAVP 0 101\r\n"), "{a}");
        let crypto: Vec<&str> = a.lines().filter(|l| l.starts_with("a=crypto:")).collect();
        assert_eq!(crypto.len(), 1, "{a}");
        let ours = parse_crypto(crypto[0].strip_prefix("a=crypto:").unwrap()).unwrap();
        assert_eq!(ours.tag, 7);
        assert_eq!(ours.suite, CryptoSuite::AesCm128HmacSha1_32);
        assert_eq!(ours.key, SrtpKey([0xa5; 30]), "our key, not theirs");
        // The answer is itself negotiable with SRTP required (as a late-offer ACK would be).
        let back = negotiate_srtp(&p(&a), &all(), SrtpPolicy::Required).unwrap();
        assert_eq!(back.srtp.unwrap().key, SrtpKey([0xa5; 30]));
        // Without a key of ours the SRTP line cannot be answered: it is rejected.
        let ans = p(&answer(&off, &n, &local(), Direction::SendRecv, 1, 1));
        assert_eq!(ans.media[0].port, 0);
        // Plain RTP answers carry no crypto even when we have a key.
        let plain = p(TYPICAL);
        let n = negotiate_srtp(&plain, &all(), SrtpPolicy::Optional).unwrap();
        let a = answer(&plain, &n, &srtp_local(), Direction::SendRecv, 1, 1);
        assert!(!a.contains("crypto") && a.contains("RTP/AVP"), "{a}");
    }

    #[test]
    fn rfc4568_7_1_1_offer_with_a_key_is_savp_with_both_suites() {
        let o = offer(&srtp_local(), Direction::SendRecv, 1, 1);
        let sd = p(&o);
        assert_eq!(sd.media[0].proto, "RTP/SAVP");
        let suites: Vec<_> = sd.media[0]
            .attributes
            .iter()
            .filter(|(n, _)| n == "crypto")
            .map(|(_, v)| parse_crypto(v.as_deref().unwrap()).unwrap())
            .map(|c| (c.tag, c.suite))
            .collect();
        assert_eq!(
            suites,
            vec![
                (1, CryptoSuite::AesCm128HmacSha1_80),
                (2, CryptoSuite::AesCm128HmacSha1_32)
            ]
        );
        assert!(offer(&local(), Direction::SendRecv, 1, 1).contains("RTP/AVP"));
    }

    #[test]
    fn srtp_keys_never_in_debug_output() {
        let off = p(&savp_offer(&[&format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}"
        )]));
        let n = negotiate_srtp(&off, &all(), SrtpPolicy::Optional).unwrap();
        let d = format!("{n:?} {:?}", srtp_local());
        assert!(d.contains("redacted"), "{d}");
        assert!(!d.contains(&KEY_B64[..8]) && !d.contains("165, 165"), "{d}");
        assert!(!d.contains("[0, 1, 2"), "{d}");
    }

    #[test]
    fn srtp_policy_names() {
        for p in [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Required] {
            assert_eq!(SrtpPolicy::from_name(p.as_str()), Some(p));
        }
        assert_eq!(SrtpPolicy::from_name("on"), None);
        assert_eq!(SrtpPolicy::default(), SrtpPolicy::Off);
    }
}
