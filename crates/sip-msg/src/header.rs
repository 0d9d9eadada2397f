//! Header names (long and compact forms, RFC 3261 7.3.3) and the ordered header list.

use std::fmt;

macro_rules! header_names {
    ($( $variant:ident => $canon:literal $(, $compact:literal)? ;)*) => {
        /// A header name. Known names are matched case-insensitively, compact forms included;
        /// unknown names keep their spelling and are serialized verbatim.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $( $variant, )*
            Other(Box<str>),
        }

        impl HeaderName {
            /// The name as written on the wire (long form for known headers).
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canon, )*
                    HeaderName::Other(s) => s,
                }
            }

            /// Parse a header name; `name` must already be a token.
            pub fn from_wire(name: &str) -> HeaderName {
                $(
                    if name.eq_ignore_ascii_case($canon) $(|| name.eq_ignore_ascii_case($compact))? {
                        return HeaderName::$variant;
                    }
                )*
                HeaderName::Other(name.into())
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    MaxForwards => "Max-Forwards";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentEncoding => "Content-Encoding", "e";
    ContentDisposition => "Content-Disposition";
    Contact => "Contact", "m";
    Route => "Route";
    RecordRoute => "Record-Route";
    Allow => "Allow";
    AllowEvents => "Allow-Events", "u";
    Supported => "Supported", "k";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Accept => "Accept";
    AcceptEncoding => "Accept-Encoding";
    AcceptLanguage => "Accept-Language";
    SessionExpires => "Session-Expires", "x";
    MinSe => "Min-SE";
    RetryAfter => "Retry-After";
    Date => "Date";
    Expires => "Expires";
    UserAgent => "User-Agent";
    Server => "Server";
    Reason => "Reason";
    Event => "Event", "o";
    Subject => "Subject", "s";
    Warning => "Warning";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    PAssertedIdentity => "P-Asserted-Identity";
    ReferTo => "Refer-To", "r";
}

impl HeaderName {
    /// Headers whose grammar is a comma-separated list (RFC 3261 7.3.1): several lines of the
    /// same name are one list.
    pub fn is_list(&self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Allow
                | HeaderName::AllowEvents
                | HeaderName::Supported
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Unsupported
                | HeaderName::Accept
                | HeaderName::AcceptEncoding
                | HeaderName::AcceptLanguage
                | HeaderName::ContentEncoding
                | HeaderName::Warning
                | HeaderName::PAssertedIdentity
        )
    }

    /// Headers that may appear once only (RFC 3261 20).
    pub fn is_single(&self) -> bool {
        matches!(
            self,
            HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::From
                | HeaderName::To
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::SessionExpires
                | HeaderName::MinSe
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line: name and its value with folding already replaced by single spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

/// Headers in the order received. Unknown headers are kept verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// First value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Every line of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Replace every line of `name` with one line, at the position of the first (or the end).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(pos) => {
                self.0[pos].value = value;
                let mut i = 0;
                self.0.retain(|h| {
                    let keep = h.name != name || i == pos;
                    i += 1;
                    keep
                });
            }
            None => self.push(name, value),
        }
    }

    /// The first line of `name`, for in-place edits (the top Via's received/rport).
    pub fn first_mut(&mut self, name: &HeaderName) -> Option<&mut String> {
        self.0
            .iter_mut()
            .find(|h| &h.name == name)
            .map(|h| &mut h.value)
    }

    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// Insert at the top (used for Via on requests we send).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// All comma-separated elements of a list header, across lines.
    pub fn list(&self, name: &HeaderName) -> Vec<String> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            if let Some(parts) = crate::text::split_outside_quotes(v, ',') {
                out.extend(
                    parts
                        .into_iter()
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty()),
                );
            }
        }
        out
    }

    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        for h in &self.0 {
            out.extend_from_slice(h.name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_7_3_3_compact_forms_are_the_same_header() {
        assert_eq!(HeaderName::from_wire("v"), HeaderName::Via);
        assert_eq!(
            HeaderName::from_wire("MaX-fOrWaRdS"),
            HeaderName::MaxForwards
        );
        assert_eq!(HeaderName::from_wire("i"), HeaderName::CallId);
        assert_eq!(
            HeaderName::from_wire("C%6Fntact"),
            HeaderName::Other("C%6Fntact".into())
        );
    }

    #[test]
    fn set_replaces_all_lines_in_place() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "a");
        h.push(HeaderName::Contact, "x");
        h.push(HeaderName::Contact, "y");
        h.set(HeaderName::Contact, "z");
        assert_eq!(
            h.get_all(&HeaderName::Contact).collect::<Vec<_>>(),
            vec!["z"]
        );
        assert_eq!(h.len(), 2);
    }
}
