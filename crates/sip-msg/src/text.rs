//! Lexical rules of RFC 3261 section 25.1: tokens, quoted strings, list and parameter splitting.

/// `token` characters (RFC 3261 25.1).
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// Characters that may appear in a `word` (Call-ID, RFC 3261 25.1).
pub(crate) fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| is_token_char(c) || "()<>:\\\"/[]?{}".contains(c))
}

pub(crate) fn is_lws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Length in bytes of the quoted string at the start of `s` (which starts with `"`), including
/// both quotes, or `None` if it never closes.
pub(crate) fn quoted_len(s: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    chars.next()?; // opening quote
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next()?;
            }
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Split `s` at `sep` outside quoted strings and `<...>`. Returns `None` on an unterminated quote.
pub(crate) fn split_outside_quotes(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_angle = false;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c == '"' {
            i += quoted_len(&s[i..])?;
            continue;
        }
        if c == '<' {
            in_angle = true;
        } else if c == '>' {
            in_angle = false;
        } else if c == sep && !in_angle {
            parts.push(&s[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// A `name[=value]` parameter; the value keeps its quotes if it had them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

impl Param {
    pub fn new(name: impl Into<String>, value: Option<String>) -> Self {
        Param {
            name: name.into(),
            value,
        }
    }
}

/// Parse `;name[=value]` parameters (the text after the first `;`, already split).
/// LWS around `;` and `=` is allowed (RFC 3261 25.1 SEMI and EQUAL).
pub(crate) fn parse_params(parts: &[&str], header: &str) -> Result<Vec<Param>, crate::ParseError> {
    let mut out = Vec::with_capacity(parts.len());
    for raw in parts {
        let raw = raw.trim_matches(is_lws);
        let (name, value) = match raw.split_once('=') {
            Some((n, v)) => (n.trim_matches(is_lws), Some(v.trim_matches(is_lws))),
            None => (raw, None),
        };
        if name.is_empty() {
            return Err(crate::ParseError::header(
                header,
                "empty parameter (RFC 3261 25.1 generic-param)",
            ));
        }
        if !name
            .chars()
            .all(|c| is_token_char(c) || "[]/:&+$".contains(c))
        {
            return Err(crate::ParseError::header(
                header,
                "parameter name is not a token (RFC 3261 25.1)",
            ));
        }
        let value = match value {
            None => None,
            Some(v) if v.starts_with('"') => {
                if quoted_len(v) != Some(v.len()) {
                    return Err(crate::ParseError::header(
                        header,
                        "unterminated quoted parameter value (RFC 3261 25.1)",
                    ));
                }
                Some(v.to_string())
            }
            Some(v) => {
                if v.is_empty() || !v.chars().all(|c| is_token_char(c) || "[]:/&+$".contains(c)) {
                    return Err(crate::ParseError::header(
                        header,
                        "bad parameter value (RFC 3261 25.1 gen-value)",
                    ));
                }
                Some(v.to_string())
            }
        };
        out.push(Param::new(name, value));
    }
    Ok(out)
}

pub(crate) fn write_params(out: &mut String, params: &[Param]) {
    for p in params {
        out.push(';');
        out.push_str(&p.name);
        if let Some(v) = &p.value {
            out.push('=');
            out.push_str(v);
        }
    }
}

pub(crate) fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Decode `%HH` escapes (RFC 3261 19.1.2); invalid escapes are kept literally.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        let parts = split_outside_quotes(r#""a,b" <sip:x;y=1,2>, c"#, ',').unwrap();
        assert_eq!(parts, vec![r#""a,b" <sip:x;y=1,2>"#, " c"]);
        assert!(split_outside_quotes("\"open", ',').is_none());
    }

    #[test]
    fn unescape_decodes_hex_and_keeps_bad_escapes() {
        assert_eq!(unescape("%75se%72"), b"user");
        assert_eq!(unescape("%Z%45"), b"%ZE");
        assert_eq!(unescape("%00"), vec![0u8]);
        assert_eq!(unescape("a%4"), b"a%4");
    }
}
