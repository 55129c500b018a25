//! SIP messages on the wire: a parser that never panics and never grows
//! past [`MAX_MESSAGE`], stream framing by `Content-Length`, SIP URIs, and
//! the request text the probe sends (RFC 3261 sections 7, 18.3, 19, 20).

use std::fmt;

/// Largest message accepted. A SIP response to a probe is a few hundred
/// bytes; anything this large is a broken or hostile peer, reported as
/// `malformed` instead of being buffered.
pub const MAX_MESSAGE: usize = 32 * 1024;

/// Why bytes from the peer are not a SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    TooLarge(usize),
    NoHeaderEnd,
    BadStartLine(String),
    BadHeader(String),
    BadContentLength(String),
    ShortBody { declared: usize, got: usize },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooLarge(n) => write!(
                f,
                "message of {n} bytes exceeds the {MAX_MESSAGE} byte limit"
            ),
            ParseError::NoHeaderEnd => f.write_str("no empty line ends the headers"),
            ParseError::BadStartLine(l) => {
                write!(f, "not a SIP start line: {}", escape(l.as_bytes(), 80))
            }
            ParseError::BadHeader(l) => {
                write!(f, "not a header line: {}", escape(l.as_bytes(), 80))
            }
            ParseError::BadContentLength(v) => {
                write!(f, "bad Content-Length: {}", escape(v.as_bytes(), 40))
            }
            ParseError::ShortBody { declared, got } => {
                write!(
                    f,
                    "Content-Length says {declared} bytes, only {got} arrived"
                )
            }
        }
    }
}

/// Headers in arrival order; names keep their spelling, lookups are
/// case-insensitive and understand compact forms (`v` for `Via`...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        let long = full_name(name);
        self.0
            .iter()
            .find(|(n, _)| full_name(n).eq_ignore_ascii_case(long))
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let long = full_name(name);
        self.0
            .iter()
            .filter(move |(n, _)| full_name(n).eq_ignore_ascii_case(long))
            .map(|(_, v)| v.as_str())
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Every value of a header that may be comma-separated (Via,
    /// Record-Route), split outside quotes and angle brackets.
    pub fn values<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.all(name).flat_map(split_commas).collect()
    }
}

/// RFC 3261 7.3.3 compact header names.
fn full_name(name: &str) -> &str {
    match name {
        "v" | "V" => "via",
        "f" | "F" => "from",
        "t" | "T" => "to",
        "i" | "I" => "call-id",
        "m" | "M" => "contact",
        "l" | "L" => "content-length",
        "c" | "C" => "content-type",
        "k" | "K" => "supported",
        "e" | "E" => "content-encoding",
        "s" | "S" => "subject",
        other => other,
    }
}

fn split_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut angle = false;
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

/// The parts of a message a transaction is matched on (RFC 3261 17.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids<'a> {
    pub branch: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    pub method: &'a str,
}

/// Branch, Call-ID and CSeq of a message, or `None` when one is missing.
pub fn ids(headers: &Headers) -> Option<Ids<'_>> {
    let via = headers.values("via").into_iter().next()?;
    let branch = param(via, "branch")?;
    let call_id = headers.get("call-id")?.trim();
    let (cseq, method) = cseq(headers.get("cseq")?)?;
    Some(Ids {
        branch,
        call_id,
        cseq,
        method,
    })
}

pub fn cseq(value: &str) -> Option<(u32, &str)> {
    let mut parts = value.split_whitespace();
    let number = parts.next()?.parse().ok()?;
    let method = parts.next()?;
    parts.next().is_none().then_some((number, method))
}

/// A `;name=value` parameter of a header value (outside `<...>`), e.g.
/// the branch of a Via or the tag of a To. Names are case-insensitive.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let outside = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    outside.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The URI inside a name-addr (`"Name" <sip:x@y>;tag=1` → `sip:x@y`).
pub fn addr_uri(value: &str) -> &str {
    match (value.find('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or("").trim(),
    }
}

/// Parse one complete message (a datagram, or a frame cut by [`frame`]).
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    let bytes = trim_leading_crlf(bytes);
    let (head_len, body_start) = header_end(bytes).ok_or(ParseError::NoHeaderEnd)?;
    let head = String::from_utf8_lossy(&bytes[..head_len]);
    let mut lines = unfolded_lines(&head).into_iter();
    let start = lines.next().unwrap_or_default();
    let mut headers = Headers::default();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError::BadHeader(line));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::BadHeader(line));
        }
        headers.push(name, value.trim());
    }
    let rest = &bytes[body_start..];
    let body = match headers.get("content-length") {
        Some(v) => {
            let declared = content_length(v)?;
            if declared > rest.len() {
                return Err(ParseError::ShortBody {
                    declared,
                    got: rest.len(),
                });
            }
            rest[..declared].to_vec()
        }
        None => rest.to_vec(),
    };
    if let Some(status) = start.strip_prefix("SIP/2.0 ") {
        let (code, reason) = status.split_once(' ').unwrap_or((status, ""));
        let code: u16 = match code.parse() {
            Ok(c) if (100..=699).contains(&c) && code.len() == 3 => c,
            _ => return Err(ParseError::BadStartLine(start)),
        };
        return Ok(Message::Response(Response {
            code,
            reason: reason.trim().to_string(),
            headers,
            body,
        }));
    }
    let mut parts = start.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(uri), Some("SIP/2.0"), None)
            if !method.is_empty() && method.bytes().all(is_token_byte) && !uri.is_empty() =>
        {
            Ok(Message::Request(Request {
                method: method.to_string(),
                uri: uri.to_string(),
                headers,
                body,
            }))
        }
        _ => Err(ParseError::BadStartLine(start)),
    }
}

fn content_length(v: &str) -> Result<usize, ParseError> {
    let v = v.trim();
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadContentLength(v.to_string()));
    }
    v.parse()
        .map_err(|_| ParseError::BadContentLength(v.to_string()))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Keep-alive CRLFs (RFC 5626) may precede a message on a stream.
fn trim_leading_crlf(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    &bytes[n..]
}

/// Length of the header section and where the body starts. Accepts bare
/// LF line ends, as lenient parsers do.
fn header_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            match bytes.get(i + 1) {
                Some(b'\n') => return Some((i, i + 2)),
                Some(b'\r') if bytes.get(i + 2) == Some(&b'\n') => return Some((i, i + 3)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Header lines with continuation lines (leading whitespace) joined.
fn unfolded_lines(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with([' ', '\t']) && !out.is_empty() {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            out.push(line.to_string());
        }
    }
    out
}

/// How a stream buffer starts: a complete message of `n` bytes (after any
/// keep-alive CRLFs), not yet complete, or not SIP at all.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Complete(usize),
    Incomplete,
}

/// Find the first complete message in a stream buffer (RFC 3261 18.3:
/// streams are framed by `Content-Length`, which defaults to 0 here).
pub fn frame(buf: &[u8]) -> Result<Frame, ParseError> {
    let skip = buf.len() - trim_leading_crlf(buf).len();
    let rest = &buf[skip..];
    let Some((head_len, body_start)) = header_end(rest) else {
        if rest.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge(rest.len()));
        }
        return Ok(Frame::Incomplete);
    };
    let head = String::from_utf8_lossy(&rest[..head_len]);
    let mut declared = 0;
    for line in unfolded_lines(&head).iter().skip(1) {
        if let Some((name, value)) = line.split_once(':')
            && full_name(name.trim()).eq_ignore_ascii_case("content-length")
        {
            declared = content_length(value)?;
        }
    }
    let total = body_start.saturating_add(declared);
    if total > MAX_MESSAGE {
        return Err(ParseError::TooLarge(total));
    }
    if rest.len() < total {
        Ok(Frame::Incomplete)
    } else {
        Ok(Frame::Complete(skip + total))
    }
}

/// Printable, escaped, bounded rendering of peer bytes for details.
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(max) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > max {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
}

/// A SIP or SIPS URI, enough of RFC 3261 19.1 to address a request:
/// `sip:user@host:port;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    pub user: Option<String>,
    /// Host without IPv6 brackets.
    pub host: String,
    pub port: Option<u16>,
    /// `;name=value` parameters, as written.
    pub params: Vec<(String, Option<String>)>,
}

impl SipUri {
    pub fn parse(s: &str) -> Result<SipUri, String> {
        let s = s.trim();
        let (secure, rest) = if let Some(r) = strip_prefix_ci(s, "sips:") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(s, "sip:") {
            (false, r)
        } else {
            return Err(format!("'{s}' is not a sip: or sips: URI"));
        };
        if rest.contains('?') {
            return Err(format!(
                "'{s}' has URI headers ('?...'), which a probe does not send"
            ));
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("'{s}' contains spaces or control characters"));
        }
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let user = match userinfo {
            Some("") => return Err(format!("'{s}' has an empty user part before '@'")),
            Some(u) if u.contains(':') => {
                return Err(format!(
                    "'{s}' has a password in the URI; use the password or password_file field"
                ));
            }
            Some(u)
                if !u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()%&=+$,;?/".contains(c)) =>
            {
                return Err(format!(
                    "'{s}': user part '{u}' has characters a SIP URI does not allow"
                ));
            }
            Some(u) => Some(u.to_string()),
            None => None,
        };
        let mut pieces = hostpart.split(';');
        let hostport = pieces.next().unwrap_or("");
        let params = pieces
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (p.to_string(), None),
            })
            .collect();
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let Some((h, after)) = v6.split_once(']') else {
                return Err(format!("'{s}' has an IPv6 address without a closing ']'"));
            };
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("'{s}': '{h}' is not an IPv6 address"));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("'{s}': junk after ']'"))?,
                ),
            };
            (h.to_string(), port)
        } else {
            let (h, p) = match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            if !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(format!(
                    "'{s}': '{h}' is not a host name or IP address (write IPv6 in brackets)"
                ));
            }
            (h.to_string(), p)
        };
        if host.is_empty() {
            return Err(format!("'{s}' has no host"));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(format!("'{s}': port '{p}' is not a number from 1 to 65535")),
            },
        };
        Ok(SipUri {
            secure,
            user,
            host,
            port,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Host as it appears in a URI or Via (IPv6 in brackets).
    pub fn host_for_uri(&self) -> String {
        bracket_host(&self.host)
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        f.write_str(&self.host_for_uri())?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

pub fn bracket_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// An outgoing request, written out with `Content-Length` last.
#[derive(Debug, Clone)]
pub struct OutRequest {
    pub method: &'static str,
    pub uri: String,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl OutRequest {
    pub fn request_line(&self) -> String {
        format!("{} {} SIP/2.0", self.method, self.uri)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.request_line();
        out.push_str("\r\n");
        for (n, v) in &self.headers {
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        if let Some(ct) = self.content_type {
            out.push_str("Content-Type: ");
            out.push_str(ct);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A response to a received request (used by the responders), copying
/// Via, From, To (adding a tag), Call-ID and CSeq as RFC 3261 8.2.6 says.
pub fn response_to(req: &Request, code: u16, reason: &str, to_tag: Option<&str>) -> Vec<u8> {
    response_with(req, code, reason, to_tag, &[], None)
}

/// Like [`response_to`], with extra headers and a typed body.
pub fn response_with(
    req: &Request,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, String)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in req.headers.values("via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    for (name, canonical) in [
        ("from", "From"),
        ("to", "To"),
        ("call-id", "Call-ID"),
        ("cseq", "CSeq"),
    ] {
        if let Some(v) = req.headers.get(name) {
            let mut v = v.to_string();
            if name == "to"
                && let Some(tag) = to_tag
                && param(&v, "tag").is_none()
            {
                v.push_str(";tag=");
                v.push_str(tag);
            }
            out.push_str(&format!("{canonical}: {v}\r\n"));
        }
    }
    for (n, v) in extra {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    let body = match body {
        Some((content_type, bytes)) => {
            out.push_str(&format!("Content-Type: {content_type}\r\n"));
            bytes
        }
        None => &[],
    };
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OK: &str = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport=5070;received=127.0.0.1\r\n\
        From: <sip:continuity@example.org>;tag=f1\r\n\
        To: <sip:ping@example.org>;tag=t9\r\n\
        Call-ID: c1@example.org\r\n\
        CSeq: 1 OPTIONS\r\n\
        Content-Length: 4\r\n\
        \r\n\
        v=0\n";

    #[test]
    fn parses_a_response_with_the_ids_a_transaction_matches_on() {
        let Message::Response(r) = parse(OK.as_bytes()).unwrap() else {
            panic!("expected a response")
        };
        assert_eq!((r.code, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.body, b"v=0\n");
        let ids = ids(&r.headers).unwrap();
        assert_eq!(ids.branch, "z9hG4bKabc");
        assert_eq!(ids.call_id, "c1@example.org");
        assert_eq!((ids.cseq, ids.method), (1, "OPTIONS"));
        assert_eq!(param(r.headers.get("to").unwrap(), "tag"), Some("t9"));
    }

    #[test]
    fn compact_header_names_and_folded_lines_are_understood() {
        let text = "SIP/2.0 180 Ringing\nv: SIP/2.0/UDP a;branch=z9hG4bK1,\n SIP/2.0/UDP b;branch=z9hG4bK2\ni: x\nCSeq: 7\n  INVITE\nl: 0\n\n";
        let Message::Response(r) = parse(text.as_bytes()).unwrap() else {
            panic!("expected a response")
        };
        let ids = ids(&r.headers).unwrap();
        assert_eq!(
            (ids.branch, ids.cseq, ids.method),
            ("z9hG4bK1", 7, "INVITE")
        );
        assert_eq!(r.headers.values("via").len(), 2);
    }

    #[test]
    fn a_short_body_or_missing_header_end_is_an_error() {
        let cut = OK.replace("Content-Length: 4", "Content-Length: 40");
        assert!(matches!(
            parse(cut.as_bytes()),
            Err(ParseError::ShortBody { declared: 40, .. })
        ));
        assert_eq!(
            parse(b"SIP/2.0 200 OK\r\nVia: x\r\n"),
            Err(ParseError::NoHeaderEnd)
        );
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\n\r\n"),
            Err(ParseError::BadStartLine(_))
        ));
        assert!(matches!(
            parse(b"SIP/2.0 2000 OK\r\n\r\n"),
            Err(ParseError::BadStartLine(_))
        ));
    }

    #[test]
    fn oversized_messages_are_refused_without_buffering() {
        let big = vec![b'a'; MAX_MESSAGE + 1];
        assert_eq!(parse(&big), Err(ParseError::TooLarge(MAX_MESSAGE + 1)));
        assert_eq!(frame(&big), Err(ParseError::TooLarge(MAX_MESSAGE + 1)));
        let huge_len = "SIP/2.0 200 OK\r\nContent-Length: 999999\r\n\r\n";
        assert!(matches!(
            frame(huge_len.as_bytes()),
            Err(ParseError::TooLarge(_))
        ));
    }

    #[test]
    fn stream_framing_uses_content_length_and_skips_keepalives() {
        let two = format!("\r\n\r\n{OK}{OK}");
        let Ok(Frame::Complete(n)) = frame(two.as_bytes()) else {
            panic!("expected a frame")
        };
        assert_eq!(n, 4 + OK.len());
        assert_eq!(frame(&two.as_bytes()[..20]), Ok(Frame::Incomplete));
        assert_eq!(frame(&OK.as_bytes()[..OK.len() - 1]), Ok(Frame::Incomplete));
    }

    #[test]
    fn sip_uris_parse_and_print_back() {
        let u = SipUri::parse("sip:ping@sbc.example.org:5060;transport=tcp").unwrap();
        assert_eq!(u.user.as_deref(), Some("ping"));
        assert_eq!((u.host.as_str(), u.port), ("sbc.example.org", Some(5060)));
        assert_eq!(u.param("transport"), Some(Some("tcp")));
        assert_eq!(u.to_string(), "sip:ping@sbc.example.org:5060;transport=tcp");
        let v6 = SipUri::parse("sips:[2001:db8::1]:5061").unwrap();
        assert!(v6.secure);
        assert_eq!(v6.host, "2001:db8::1");
        assert_eq!(v6.to_string(), "sips:[2001:db8::1]:5061");
        for bad in [
            "http://x",
            "sip:",
            "sip:@host",
            "sip:a:secret@host",
            "sip:host:99999",
            "sip:host:0",
            "sip:ho st",
            "sip:host?subject=x",
            "sip:[::1",
            "sip:exa_mple.org",
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn responses_to_requests_copy_the_matching_headers_and_add_a_tag() {
        let req = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x>\r\nCall-ID: c\r\nCSeq: 3 OPTIONS\r\n\r\n";
        let Message::Request(r) = parse(req.as_bytes()).unwrap() else {
            panic!("expected a request")
        };
        let resp = response_to(&r, 200, "OK", Some("t1"));
        let Message::Response(p) = parse(&resp).unwrap() else {
            panic!("expected a response")
        };
        assert_eq!(ids(&p.headers), ids(&r.headers));
        assert_eq!(param(p.headers.get("to").unwrap(), "tag"), Some("t1"));
    }

    #[test]
    fn escape_keeps_details_printable_and_short() {
        assert_eq!(escape(b"a\r\n\x00\xff", 10), "a\\r\\n\\x00\\xff");
        assert!(escape(&[b'x'; 500], 200).ends_with("... (500 bytes)"));
    }

    fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
        let mut v = base.to_vec();
        for &(pos, op, byte) in edits {
            if v.is_empty() {
                v.push(byte);
                continue;
            }
            let i = pos % v.len();
            match op % 3 {
                0 => v[i] = byte,
                1 => v.insert(i, byte),
                _ => {
                    v.remove(i);
                }
            }
        }
        v
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse(&bytes);
            let _ = frame(&bytes);
        }

        #[test]
        fn parser_never_panics_on_mutated_responses(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..24)
        ) {
            let bytes = mutate(OK.as_bytes(), &edits);
            if let Ok(m) = parse(&bytes) {
                let _ = ids(m.headers());
            }
            if let Ok(Frame::Complete(n)) = frame(&bytes) {
                prop_assert!(n <= bytes.len());
            }
        }

        #[test]
        fn uri_parser_never_panics(s in "(sips?:)?[a-z0-9@:;=.\\[\\]-]{0,30}|\\PC{0,40}") {
            if let Ok(u) = SipUri::parse(&s) {
                let again = SipUri::parse(&u.to_string());
                prop_assert_eq!(again, Ok(u));
            }
        }
    }
}
