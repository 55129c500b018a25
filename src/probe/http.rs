//! HTTP(S) probe: one request over a fresh connection per hop (no pooling),
//! timed phase by phase, with status, body, JSON and response-time checks.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{Location, Spanned};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use regex::Regex;
use serde::{Deserialize, Deserializer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::net::{connect, excerpt};
use super::parity::{self, CompareSpec, Observed, OldSide};
use super::tcp::compile_regex;
use super::tls::{checked_server_name, tls_client};
use super::tls_util::{self, TlsClient};
use super::{
    FailureReason, ProbeContext, ProbeError, ProbeOutcome, Prober, SpecDigest, known_name, phase,
};
use crate::config::{Dur, Validator};

/// Default `max_body_bytes`: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Default `max_redirects`.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
const USER_AGENT: &str = concat!("continuity/", env!("CARGO_PKG_VERSION"), " (service probe)");

#[derive(Debug, Clone, PartialEq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
// Options most checks leave out are boxed: an absent one costs 8 bytes
// instead of 32, on each of 10,000 checks.
pub struct HttpSpec {
    /// `http://` or `https://` URL.
    pub url: Spanned<String>,
    /// Request method; `GET` when absent.
    #[serde(default)]
    pub method: Option<Box<Spanned<String>>>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// Acceptable final status codes: `200`, `"200-299"`, `"2xx"`, or a
    /// list of them; `200-399` when absent.
    #[serde(default)]
    pub expect_status: Option<Box<Spanned<StatusList>>>,
    /// Text the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Regular expression the body must match.
    #[serde(default)]
    pub body_regex: Option<Box<Spanned<String>>>,
    /// Values the body, parsed as JSON, must hold.
    #[serde(default)]
    pub json: Vec<JsonExpectation>,
    /// A successful probe slower than this fails with `slow`.
    #[serde(default)]
    pub max_response_time: Option<Spanned<Dur>>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// `false` accepts any certificate (its expiry is still reported).
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// PEM file of the CA(s) to trust instead of the public roots.
    #[serde(default)]
    pub ca_file: Option<Box<Spanned<String>>>,
    /// SHA-256 pins of public keys to trust instead of any CA.
    #[serde(default)]
    pub tls_pin_sha256: Option<Box<Spanned<Vec<Spanned<String>>>>>,
    /// Read at most this many body bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: Spanned<u64>,
    /// `Host` header to send instead of the URL's authority.
    #[serde(default)]
    pub host_header: Option<Box<Spanned<String>>>,
    /// SNI and certificate name instead of the URL's host (defaults to the
    /// host of `host_header` when that is set).
    #[serde(default)]
    pub server_name: Option<Box<Spanned<String>>>,
    /// The old endpoint, probed side by side with `url` while old and new
    /// run in parallel (same scheme, same request).
    #[serde(default)]
    pub compare_with: Option<Box<Spanned<String>>>,
    /// What parity compares; status and body similarity when absent.
    #[serde(default)]
    pub compare: Option<Box<Spanned<CompareSpec>>>,
}

/// One `json:` entry: the value at `pointer` must exist and, when `equals`
/// is given, equal it.
#[derive(Debug, Clone, PartialEq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonExpectation {
    /// RFC 6901 JSON pointer, e.g. `/status` or `/items/0/name`.
    pub pointer: Spanned<String>,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
}

/// Status codes and ranges as written: one scalar or a list of them.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct StatusList(pub Vec<String>);

impl<'de> Deserialize<'de> for StatusList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StatusList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a status code, a range like \"200-299\", or a list of them")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusList, E> {
                Ok(StatusList(vec![v.to_string()]))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusList, E> {
                Ok(StatusList(vec![v.to_string()]))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StatusList, E> {
                Ok(StatusList(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StatusList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<StatusItem>()? {
                    out.push(item.0);
                }
                Ok(StatusList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One status code or range inside a list.
struct StatusItem(String);

impl<'de> Deserialize<'de> for StatusItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = StatusItem;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a status code or a range like \"200-299\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusItem, E> {
                Ok(StatusItem(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusItem, E> {
                Ok(StatusItem(v.to_string()))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StatusItem, E> {
                Ok(StatusItem(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

fn yes() -> bool {
    true
}
fn default_max_redirects() -> u32 {
    DEFAULT_MAX_REDIRECTS
}
fn default_max_body_bytes() -> Spanned<u64> {
    Spanned::new(DEFAULT_MAX_BODY_BYTES, Location::UNKNOWN)
}

/// A compiled http check: the spec checked and turned into what a probe
/// needs.
#[derive(Debug)]
pub struct HttpProbe {
    digest: SpecDigest,
    url: Uri,
    method: Method,
    /// Extra headers, each name's values together. A list, not a
    /// `HeaderMap`: most checks have none, and an empty map is 96 bytes
    /// on each of 10,000 checks.
    headers: Box<[(HeaderName, HeaderValue)]>,
    body: Bytes,
    status: Box<[(u16, u16)]>,
    /// How many redirects to follow; `None` when they are not followed.
    max_redirects: Option<u32>,
    max_body_bytes: usize,
    max_response_time: Option<Dur>,
    /// Boxed: most checks look at the status only.
    content: Option<Box<ContentChecks>>,
    tls: std::sync::Arc<TlsClient>,
    /// Boxed: set on few checks, and 32 bytes inline on every one.
    server_name: Option<Box<rustls::pki_types::ServerName<'static>>>,
    /// The old endpoint and what to compare with it (`compare_with`).
    parity: Option<Box<OldSide<HttpProbe>>>,
}

impl HttpProbe {
    /// The old side, for a `compare_with` check.
    pub fn parity(&self) -> Option<&OldSide<HttpProbe>> {
        self.parity.as_deref()
    }
}

/// What the body must hold, checked in this order.
#[derive(Debug)]
struct ContentChecks {
    contains: Option<String>,
    regex: Option<Regex>,
    json: Vec<JsonExpectation>,
}

impl Prober for HttpProbe {
    type Spec = HttpSpec;

    fn compile(spec: HttpSpec, at: Location, v: &mut Validator) -> Option<HttpProbe> {
        let mut ok = true;
        let url = check_url(&spec.url, v);
        let parity = compile_parity(&spec, url.as_ref(), at, v);
        let method = match &spec.method {
            None => Some(Method::GET),
            Some(m) => known_name(m, &METHODS, "HTTP method", v)
                .and_then(|name| name.parse::<Method>().ok()),
        };

        let mut headers = HeaderMap::new();
        for (name, value) in &spec.headers {
            let parsed_name = HeaderName::from_bytes(name.as_bytes());
            let parsed_value = HeaderValue::from_str(&value.value);
            match (parsed_name, parsed_value) {
                (Ok(n), Ok(val)) => {
                    headers.append(n, val);
                }
                (Err(_), _) => {
                    ok = false;
                    v.error(
                        value.referenced,
                        format!("'{name}' is not a valid HTTP header name"),
                        Some(
                            "header names are letters, digits and '-', e.g. Accept-Language".into(),
                        ),
                    );
                }
                (_, Err(_)) => {
                    ok = false;
                    v.error(
                        value.referenced,
                        format!(
                            "the value of header '{name}' contains characters HTTP does not allow"
                        ),
                        Some("remove control characters and line breaks".into()),
                    );
                }
            }
        }
        if let Some(h) = &spec.host_header {
            if headers.contains_key(header::HOST) {
                ok = false;
                v.error(
                    h.referenced,
                    "host_header and a Host entry in headers both set the Host header",
                    Some("keep only host_header".into()),
                );
            } else if let Ok(val) = HeaderValue::from_str(h.value.trim()) {
                headers.insert(header::HOST, val);
            } else {
                ok = false;
                v.error(
                    h.referenced,
                    "host_header is not a valid header value",
                    None,
                );
            }
        }

        let status = match &spec.expect_status {
            None => Some(vec![(200, 399)]),
            Some(list) => {
                let mut ranges = Vec::new();
                let mut good = true;
                if list.value.0.is_empty() {
                    good = false;
                    v.error(
                        list.referenced,
                        "expect_status is empty",
                        Some("list the acceptable codes, e.g. [200, \"300-399\"], or remove it for 200-399".into()),
                    );
                }
                for item in &list.value.0 {
                    match parse_status(item) {
                        Ok(r) => ranges.push(r),
                        Err(msg) => {
                            good = false;
                            v.error(
                                list.referenced,
                                format!("expect_status: {msg}"),
                                Some("write codes like 200, ranges like \"200-299\" or classes like \"2xx\"".into()),
                            );
                        }
                    }
                }
                good.then_some(ranges)
            }
        };

        let body_regex = match &spec.body_regex {
            None => Some(None),
            Some(re) => compile_regex("body_regex", re, v).map(Some),
        };
        for j in &spec.json {
            let p = &j.pointer.value;
            if !(p.is_empty() || p.starts_with('/')) {
                ok = false;
                v.error(
                    j.pointer.referenced,
                    format!("'{p}' is not a JSON pointer"),
                    Some(format!("JSON pointers start with '/', e.g. /{p}")),
                );
            }
        }
        if let Some(t) = &spec.max_response_time
            && t.value.0.is_zero()
        {
            ok = false;
            v.error(
                t.referenced,
                "max_response_time must be longer than zero",
                Some("e.g. max_response_time: 2s".into()),
            );
        }
        if spec.max_body_bytes.value == 0 {
            ok = false;
            v.error(
                spec.max_body_bytes.referenced,
                "max_body_bytes must be at least 1",
                Some(format!("the default is {DEFAULT_MAX_BODY_BYTES} (1 MiB)")),
            );
        }

        let name_source = spec.server_name.as_deref().cloned().or_else(|| {
            spec.host_header.as_ref().map(|h| {
                let host = h.value.trim();
                // Strip a port, but not the colons of a bracketed IPv6 address.
                let host = match host.rsplit_once(':') {
                    Some((h, p))
                        if !h.is_empty()
                            && p.chars().all(|c| c.is_ascii_digit())
                            && (!h.contains(':') || h.ends_with(']')) =>
                    {
                        h
                    }
                    _ => host,
                };
                Spanned::new(host.to_string(), h.referenced)
            })
        });
        let server_name = match &name_source {
            None => Some(None),
            Some(n) => checked_server_name(n, v).map(|n| Some(Box::new(n))),
        };
        // Built for http:// URLs too: a redirect may lead to https.
        let tls = tls_client(
            spec.ca_file.as_deref(),
            spec.tls_pin_sha256.as_deref(),
            spec.tls_verify,
            &[b"http/1.1"],
            spec.url.referenced,
            v,
        );

        let (url, method, status, body_regex, server_name, tls, parity) = (
            url?,
            method?,
            status?,
            body_regex?,
            server_name?,
            tls?,
            parity?,
        );
        if !ok {
            return None;
        }
        // The CA file by content, not only by path: see `SpecDigest`.
        let digest = SpecDigest::of(&(&spec, tls.ca_content()));
        let content = (spec.body_contains.is_some()
            || body_regex.is_some()
            || !spec.json.is_empty())
        .then(|| {
            Box::new(ContentChecks {
                contains: spec.body_contains,
                regex: body_regex,
                json: spec.json,
            })
        });
        Some(HttpProbe {
            digest,
            url,
            method,
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: Bytes::from(spec.body.unwrap_or_default()),
            status: status.into(),
            max_redirects: spec.follow_redirects.then_some(spec.max_redirects),
            max_body_bytes: usize::try_from(spec.max_body_bytes.value).unwrap_or(usize::MAX),
            max_response_time: spec.max_response_time.map(|t| t.value),
            content,
            tls,
            server_name,
            parity,
        })
    }

    fn digest(&self) -> SpecDigest {
        self.digest
    }

    async fn probe(&self, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
        fetch(self, ctx).await
    }
}

/// The old side of a `compare_with` check: its URL must have the scheme
/// of `url`, so that both sides get the same request; the rest is every
/// kind's (`parity::compile_old_side`).
fn compile_parity(
    spec: &HttpSpec,
    url: Option<&Uri>,
    at: Location,
    v: &mut Validator,
) -> Option<Option<Box<OldSide<HttpProbe>>>> {
    if let (Some(with), Some(url)) = (&spec.compare_with, url)
        && let Ok(old_url) = with.value.trim().parse::<Uri>()
        && old_url.scheme_str().is_some()
        && old_url.scheme_str() != url.scheme_str()
    {
        let (old, new) = (
            old_url.scheme_str().unwrap_or(""),
            url.scheme_str().unwrap_or(""),
        );
        v.error(
            with.referenced,
            format!(
                "compare_with '{}' uses {old}, url uses {new}: the sides would not get the same request",
                with.value.trim()
            ),
            Some(format!(
                "probe both the same way, e.g. compare_with: {new}://{}{}",
                old_url.authority().map(|a| a.as_str()).unwrap_or(""),
                old_url.path()
            )),
        );
        return None;
    }
    parity::compile_old_side(
        parity::HTTP,
        spec.compare_with.as_deref(),
        spec.compare.as_deref(),
        &spec.url.value,
        |with| HttpSpec {
            url: with,
            compare_with: None,
            compare: None,
            ..spec.clone()
        },
        at,
        v,
    )
}

fn check_url(url: &Spanned<String>, v: &mut Validator) -> Option<Uri> {
    let s = url.value.trim();
    let hint = Some(format!(
        "write a full URL like https://{}/",
        if s.is_empty() {
            "portal.gemeente.nl"
        } else {
            s.trim_start_matches('/')
        }
    ));
    let uri = match s.parse::<Uri>() {
        Ok(u) => u,
        Err(e) => {
            v.error(
                url.referenced,
                format!("url '{s}' does not parse: {e}"),
                hint,
            );
            return None;
        }
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            v.error(
                url.referenced,
                format!("url '{s}' has scheme '{other}'; the http check speaks http and https"),
                Some("use https://... (or a tcp/tls check for other protocols)".into()),
            );
            return None;
        }
        None => {
            v.error(url.referenced, format!("url '{s}' has no scheme"), hint);
            return None;
        }
    }
    let Some(authority) = uri.authority() else {
        v.error(url.referenced, format!("url '{s}' has no host"), hint);
        return None;
    };
    if authority.as_str().contains('@') {
        v.error(
            url.referenced,
            format!("url '{s}' carries credentials"),
            Some("put them in headers, e.g. headers: {Authorization: \"Basic ...\"}".into()),
        );
        return None;
    }
    if authority.host().is_empty() {
        v.error(url.referenced, format!("url '{s}' has no host"), hint);
        return None;
    }
    Some(uri)
}

/// `200`, `200-299` or `2xx` as an inclusive range.
fn parse_status(s: &str) -> Result<(u16, u16), String> {
    let t = s.trim();
    let code = |x: &str| -> Result<u16, String> {
        match x.trim().parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Ok(c),
            _ => Err(format!("'{t}' is not a status code from 100 to 599")),
        }
    };
    let lower = t.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        let c = code(&format!("{class}00"))?;
        return Ok((c, c + 99));
    }
    if let Some((a, b)) = t.split_once('-') {
        let (a, b) = (code(a)?, code(b)?);
        if a > b {
            return Err(format!("range '{t}' runs backwards"));
        }
        return Ok((a, b));
    }
    code(t).map(|c| (c, c))
}

/// Same scheme, host (case-insensitive) and port, the port defaulted by
/// the scheme: the origin of RFC 6454, which browsers and curl use to
/// decide where credentials may go.
fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| {
        u.port_u16().unwrap_or(if u.scheme_str() == Some("https") {
            443
        } else {
            80
        })
    };
    a.scheme_str() == b.scheme_str()
        && a.host()
            .zip(b.host())
            .is_some_and(|(x, y)| x.eq_ignore_ascii_case(y))
        && port(a) == port(b)
}

/// Resolve a `Location` header against the URL it came from.
fn resolve_location(base: &Uri, location: &str) -> Result<Uri, String> {
    let location = location.trim();
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    let has_scheme = location.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let absolute = if has_scheme {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if let Some(query) = location.strip_prefix('?') {
        format!("{scheme}://{authority}{}?{query}", base.path())
    } else {
        let dir = match base.path().rfind('/') {
            Some(i) => &base.path()[..=i],
            None => "/",
        };
        format!(
            "{scheme}://{authority}{}",
            remove_dot_segments(&format!("{dir}{location}"))
        )
    };
    let uri: Uri = absolute
        .parse()
        .map_err(|e| format!("redirect to '{location}' is not a valid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(format!("redirect to '{location}' is not an http(s) URL")),
    }
}

fn remove_dot_segments(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {}
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
            }
            s => out.push(s),
        }
        let last = i + 1 == segments.len();
        if last && (*seg == "." || *seg == "..") {
            out.push("");
        }
    }
    let mut p = out.join("/");
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    match query {
        Some(q) => format!("{p}?{q}"),
        None => p,
    }
}

/// Any stream an HTTP/1 exchange can run over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Aborts the connection task when the probe is done (or dropped by the
/// scheduler's backstop), so no connection outlives its probe.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one hop returned.
struct HopResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    truncated: bool,
}

/// One request on a fresh connection. Phases, certificate expiry and any
/// failure go into `out`; `None` means the hop failed.
async fn exchange(
    c: &HttpProbe,
    url: &Uri,
    method: &Method,
    body: &Bytes,
    ctx: &ProbeContext,
    out: &mut ProbeOutcome,
) -> Result<Option<HopResponse>, ProbeError> {
    let within = Dur(ctx.timeout);
    let https = url.scheme_str() == Some("https");
    let host = url.host().unwrap_or_default();
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    // Overrides and configured headers are for the configured URL's
    // origin, not for wherever a redirect leads.
    let overrides = same_origin(url, &c.url);

    let Some(tcp) = connect(host, port, ctx, out).await else {
        return Ok(None);
    };
    let io: Box<dyn Io> = if https {
        let name = match (&c.server_name, overrides) {
            (Some(n), true) => (**n).clone(),
            _ => match tls_util::server_name(host) {
                Ok(n) => n,
                Err(msg) => {
                    out.fail(FailureReason::Tls, msg);
                    return Ok(None);
                }
            },
        };
        let hs = tls_util::handshake(tcp, &c.tls, name, ctx, out).await;
        if ctx.details {
            for (k, v) in hs.chain.details() {
                out.detail(k, v);
            }
        }
        match hs.stream {
            Some(s) => Box::new(s),
            None => return Ok(None),
        }
    } else {
        Box::new(tcp)
    };

    let started = Instant::now();
    let handshake = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(io));
    let (mut sender, conn) = match tokio::time::timeout_at(ctx.deadline(), handshake).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            out.phase(phase::PROCESSING, started.elapsed());
            out.fail(
                FailureReason::Network,
                format!("HTTP connection setup failed: {e}"),
            );
            return Ok(None);
        }
        Err(_) => {
            out.phase(phase::PROCESSING, started.elapsed());
            out.fail(
                FailureReason::Timeout,
                format!("no HTTP connection within {within}"),
            );
            return Ok(None);
        }
    };
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));

    let path = url.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = Request::builder()
        .method(method.clone())
        .uri(path)
        .body(Full::new(body.clone()))
        .map_err(|e| ProbeError::Setup(format!("cannot build request for {url}: {e}")))?;
    let h = req.headers_mut();
    if let Some(authority) = url.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        h.insert(header::HOST, v);
    }
    h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    // Every configured header may carry a credential (Authorization,
    // Cookie, X-Api-Key, ...), so none is sent to another origin: curl's
    // --location without --location-trusted, for every header.
    let mut replaced: Option<&HeaderName> = None;
    for (name, value) in c.headers.iter().filter(|_| overrides) {
        if replaced != Some(name) {
            h.remove(name);
            replaced = Some(name);
        }
        h.append(name.clone(), value.clone());
    }

    let response = tokio::time::timeout_at(ctx.deadline(), sender.send_request(req)).await;
    out.phase(phase::PROCESSING, started.elapsed());
    let response = match response {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let (reason, what) = if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
                (FailureReason::Malformed, "the response is not valid HTTP/1")
            } else {
                (
                    FailureReason::Network,
                    "the connection failed before response headers",
                )
            };
            let cause = std::error::Error::source(&e)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            out.fail(reason, format!("{what}: {e}{cause}"));
            return Ok(None);
        }
        Err(_) => {
            out.fail(
                FailureReason::Timeout,
                format!("no response headers from {url} within {within}"),
            );
            return Ok(None);
        }
    };
    let status = response.status();
    out.http_status = Some(status.as_u16());
    let (parts, mut incoming) = response.into_parts();
    let mut hop = HopResponse {
        status,
        headers: parts.headers,
        body: Vec::new(),
        truncated: false,
    };
    // A redirect that will be followed has no body worth reading.
    if c.max_redirects.is_some() && is_redirect(status) {
        return Ok(Some(hop));
    }

    let cap = c.max_body_bytes;
    let started = Instant::now();
    loop {
        match tokio::time::timeout_at(ctx.deadline(), incoming.frame()).await {
            Ok(None) => break,
            Ok(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let room = cap - hop.body.len();
                if data.len() > room {
                    hop.body.extend_from_slice(&data[..room]);
                    hop.truncated = true;
                    break;
                }
                hop.body.extend_from_slice(&data);
                if hop.body.len() == cap {
                    // Stop at the cap; more may or may not have followed.
                    hop.truncated = !hyper::body::Body::is_end_stream(&incoming);
                    break;
                }
            }
            Ok(Some(Err(e))) => {
                out.phase(phase::TRANSFER, started.elapsed());
                out.fail(
                    FailureReason::Network,
                    format!(
                        "reading the body failed after {} bytes: {e}",
                        hop.body.len()
                    ),
                );
                return Ok(None);
            }
            Err(_) => {
                out.phase(phase::TRANSFER, started.elapsed());
                out.fail(
                    FailureReason::Timeout,
                    format!(
                        "body not complete within {within} ({} bytes read)",
                        hop.body.len()
                    ),
                );
                return Ok(None);
            }
        }
    }
    out.phase(phase::TRANSFER, started.elapsed());
    Ok(Some(hop))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Fold one hop's observations into the probe's: phases are summed by
/// name, the earliest certificate expiry wins, details are the last hop's.
fn absorb(total: &mut ProbeOutcome, hop: ProbeOutcome) {
    for (name, took) in hop.phases {
        match total.phases.iter_mut().find(|(n, _)| *n == name) {
            Some((_, sum)) => *sum += took,
            None => total.phases.push((name, took)),
        }
    }
    if let Some(f) = hop.failure {
        total.fail(f.reason, f.detail);
    }
    if let Some(t) = hop.cert_not_after {
        total.cert_not_after = Some(total.cert_not_after.map_or(t, |e| e.min(t)));
    }
    total.http_status = hop.http_status.or(total.http_status);
    total.details.retain(|(k, _)| k.starts_with("redirect"));
    total.details.extend(hop.details);
}

/// Request the URL, following redirects as configured, and check the
/// final response.
async fn fetch(c: &HttpProbe, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    let mut outcome = ProbeOutcome::default();
    let mut url = c.url.clone();
    let mut method = c.method.clone();
    let mut body = c.body.clone();
    let mut redirects = 0u32;
    let response = loop {
        let mut hop = ProbeOutcome::default();
        let reply = exchange(c, &url, &method, &body, ctx, &mut hop).await?;
        absorb(&mut outcome, hop);
        let Some(reply) = reply else {
            return Ok(outcome);
        };
        let Some(max_redirects) = c.max_redirects.filter(|_| is_redirect(reply.status)) else {
            break reply;
        };
        let Some(location) = reply.headers.get(header::LOCATION) else {
            outcome.fail(
                FailureReason::Status,
                format!(
                    "{} redirect from {url} without a Location header",
                    reply.status
                ),
            );
            return Ok(outcome);
        };
        if redirects >= max_redirects {
            outcome.fail(
                FailureReason::Status,
                format!(
                    "more than {} redirects (last: {} from {url})",
                    max_redirects, reply.status
                ),
            );
            return Ok(outcome);
        }
        let next = match location
            .to_str()
            .map_err(|_| "redirect Location is not text".to_string())
            .and_then(|l| resolve_location(&url, l))
        {
            Ok(n) => n,
            Err(msg) => {
                outcome.fail(FailureReason::Status, msg);
                return Ok(outcome);
            }
        };
        redirects += 1;
        if ctx.details {
            outcome.detail(
                format!("redirect_{redirects}"),
                format!("{} {url} -> {next}", reply.status.as_u16()),
            );
        }
        // Browsers turn a redirected POST into a GET except on 307/308.
        let keeps_method = matches!(reply.status.as_u16(), 307 | 308);
        if !keeps_method && method != Method::HEAD {
            method = Method::GET;
            body = Bytes::new();
        }
        // A configured body (a login form, a token) is for the configured
        // origin only: a 307/308 elsewhere keeps the method, not the body.
        if !same_origin(&next, &c.url) {
            body = Bytes::new();
        }
        url = next;
    };

    if ctx.details {
        outcome.detail("url", url.to_string());
        outcome.detail(
            "status",
            format!(
                "{} {}",
                response.status.as_u16(),
                response.status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string(),
        );
        if let Some(ct) = response
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            outcome.detail("content_type", ct);
        }
        outcome.detail("body_bytes", response.body.len().to_string());
        if response.truncated {
            outcome.detail(
                "body_truncated",
                format!(
                    "stopped reading at max_body_bytes ({} bytes); checks ran on those",
                    response.body.len()
                ),
            );
        }
    }
    check_response(c, &response, &mut outcome);
    if ctx.observe {
        outcome.observed = Some(Box::new(Observed {
            body: Some(response.body),
            ..Observed::default()
        }));
    }

    if let Some(max) = c.max_response_time
        && outcome.success()
    {
        let took = ctx.started.elapsed();
        if took > max.0 {
            outcome.fail(
                FailureReason::Slow,
                format!(
                    "answered correctly but took {}, more than max_response_time {}",
                    Dur(Duration::from_millis(took.as_millis() as u64)),
                    max
                ),
            );
        }
    }
    Ok(outcome)
}

/// The status, body and JSON expectations, in that order; the first that
/// fails is the reason.
fn check_response(c: &HttpProbe, r: &HopResponse, out: &mut ProbeOutcome) {
    let code = r.status.as_u16();
    if !c.status.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code)) {
        let expected: Vec<String> = c
            .status
            .iter()
            .map(|(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        out.fail(
            FailureReason::Status,
            format!("status {code}, expected {}", expected.join(", ")),
        );
        return;
    }
    let Some(content) = &c.content else {
        return;
    };
    let truncated = if r.truncated {
        " (in the truncated body)"
    } else {
        ""
    };
    let text = String::from_utf8_lossy(&r.body);
    if let Some(needle) = &content.contains
        && !text.contains(needle.as_str())
    {
        out.fail(
            FailureReason::Body,
            format!(
                "body does not contain '{needle}'{truncated}; it starts '{}'",
                excerpt(&r.body, 120)
            ),
        );
        return;
    }
    if let Some(re) = &content.regex
        && !re.is_match(&text)
    {
        out.fail(
            FailureReason::Body,
            format!("body does not match /{}/{truncated}", re.as_str()),
        );
        return;
    }
    if content.json.is_empty() {
        return;
    }
    let doc: serde_json::Value = match serde_json::from_slice(&r.body) {
        Ok(d) => d,
        Err(e) => {
            out.fail(
                FailureReason::Expectation,
                format!("body is not JSON{truncated}: {e}"),
            );
            return;
        }
    };
    for j in &content.json {
        let pointer = &j.pointer.value;
        match (doc.pointer(pointer), &j.equals) {
            (None, _) => {
                out.fail(
                    FailureReason::Expectation,
                    format!("JSON has nothing at {pointer}"),
                );
                return;
            }
            (Some(found), Some(want)) if !json_equals(found, want) => {
                out.fail(
                    FailureReason::Expectation,
                    format!("JSON {pointer} is {found}, expected {want}"),
                );
                return;
            }
            (Some(found), _) => out.detail(format!("json {pointer}"), found.to_string()),
        }
    }
}

/// Compare a JSON value with a scalar written in YAML: `ok` equals `"ok"`,
/// `200` equals `200` and `"200"`, `1.0` equals `1`.
fn json_equals(found: &serde_json::Value, want: &serde_json::Value) -> bool {
    use serde_json::Value;
    if let (Some(a), Some(b)) = (as_number(found), as_number(want)) {
        return a == b;
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match (found, want) {
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            found == want
        }
        _ => text(found) == text(want),
    }
}

fn as_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(yaml: &str) -> (Option<HttpProbe>, Vec<String>) {
        crate::probe::compile_yaml("checks.yaml", yaml)
    }

    fn one_issue(yaml: &str) -> String {
        let (_, issues) = validated(yaml);
        assert_eq!(issues.len(), 1, "{issues:?}");
        issues[0].clone()
    }

    #[test]
    fn minimal_spec_gets_the_documented_defaults() {
        let (probe, issues) = validated("url: https://portal.gemeente.nl/\n");
        assert!(issues.is_empty(), "{issues:?}");
        let c = probe.unwrap();
        assert_eq!(c.max_redirects, Some(10));
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert!(c.max_response_time.is_none() && c.content.is_none());
        assert_eq!(c.method, Method::GET);
        assert_eq!(*c.status, [(200, 399)]);
        assert!(matches!(c.tls.trust(), tls_util::Trust::PublicRoots));
    }

    #[test]
    fn url_without_scheme_is_rejected_with_an_example() {
        let issue = one_issue("url: portal.gemeente.nl/login\n");
        assert!(
            issue.starts_with("checks.yaml:1:6: url 'portal.gemeente.nl/login'"),
            "{issue}"
        );
        assert!(
            issue.contains("https://portal.gemeente.nl/login"),
            "{issue}"
        );
    }

    #[test]
    fn url_with_other_scheme_or_spaces_is_rejected() {
        assert!(one_issue("url: ftp://files.gemeente.nl/\n").contains("scheme 'ftp'"));
        assert!(one_issue("url: https://portal gemeente.nl/\n").contains("does not parse"));
    }

    #[test]
    fn unknown_method_suggests_the_closest() {
        let issue = one_issue("url: http://a.nl/\nmethod: PSOT\n");
        assert!(
            issue.starts_with("checks.yaml:2:9: unknown HTTP method 'PSOT'"),
            "{issue}"
        );
        assert!(issue.contains("did you mean POST?"), "{issue}");
        let (spec, _) = validated("url: http://a.nl/\nmethod: head\n");
        assert_eq!(spec.unwrap().method, Method::HEAD);
    }

    #[test]
    fn expect_status_takes_codes_ranges_and_classes() {
        let (spec, issues) =
            validated("url: http://a.nl/\nexpect_status: [200, \"300-302\", 4xx]\n");
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(*spec.unwrap().status, [(200, 200), (300, 302), (400, 499)]);
        let (spec, _) = validated("url: http://a.nl/\nexpect_status: 204\n");
        assert_eq!(*spec.unwrap().status, [(204, 204)]);
    }

    #[test]
    fn bad_status_range_is_a_config_error() {
        let issue = one_issue("url: http://a.nl/\nexpect_status: [\"299-200\"]\n");
        assert!(issue.contains("runs backwards"), "{issue}");
        let issue = one_issue("url: http://a.nl/\nexpect_status: [700]\n");
        assert!(issue.contains("'700' is not a status code"), "{issue}");
    }

    #[test]
    fn invalid_body_regex_is_a_config_error_at_its_place() {
        let issue = one_issue("url: http://a.nl/\nbody_regex: 'Welkom ['\n");
        assert!(
            issue.starts_with(
                "checks.yaml:2:13: body_regex: 'Welkom [' is not a valid regular expression"
            ),
            "{issue}"
        );
    }

    #[test]
    fn json_pointer_must_start_with_a_slash() {
        let issue = one_issue("url: http://a.nl/\njson:\n  - pointer: status\n    equals: ok\n");
        assert!(issue.contains("'status' is not a JSON pointer"), "{issue}");
        assert!(issue.contains("/status"), "{issue}");
    }

    #[test]
    fn bad_header_name_and_double_host_are_reported() {
        let issue = one_issue("url: http://a.nl/\nheaders:\n  'Bad Header': x\n");
        assert!(
            issue.contains("'Bad Header' is not a valid HTTP header name"),
            "{issue}"
        );
        let issue = one_issue("url: http://a.nl/\nhost_header: b.nl\nheaders:\n  Host: c.nl\n");
        assert!(issue.contains("both set the Host header"), "{issue}");
    }

    #[test]
    fn host_header_also_sets_the_tls_server_name() {
        let (spec, issues) =
            validated("url: https://10.0.0.5/\nhost_header: portal.gemeente.nl:8443\n");
        assert!(issues.is_empty(), "{issues:?}");
        let c = spec.unwrap();
        assert_eq!(
            c.server_name.as_deref(),
            Some(&rustls::pki_types::ServerName::try_from("portal.gemeente.nl").unwrap())
        );
        let host = c.headers.iter().find(|(k, _)| k == header::HOST);
        assert_eq!(host.unwrap().1, "portal.gemeente.nl:8443");
    }

    #[test]
    fn zero_limits_are_rejected() {
        assert!(
            one_issue("url: http://a.nl/\nmax_body_bytes: 0\n")
                .contains("max_body_bytes must be at least 1")
        );
        assert!(
            one_issue("url: http://a.nl/\nmax_response_time: 0s\n").contains("longer than zero")
        );
    }

    #[test]
    fn status_patterns_parse() {
        assert_eq!(parse_status("200").unwrap(), (200, 200));
        assert_eq!(parse_status(" 200 - 204 ").unwrap(), (200, 204));
        assert_eq!(parse_status("5XX").unwrap(), (500, 599));
        assert!(parse_status("abc").is_err());
        assert!(parse_status("9xx").is_err());
    }

    #[test]
    fn redirect_locations_resolve_like_a_browser() {
        let base: Uri = "https://a.nl/dir/page?x=1".parse().unwrap();
        let r = |l: &str| resolve_location(&base, l).unwrap().to_string();
        assert_eq!(r("https://b.nl/x"), "https://b.nl/x");
        assert_eq!(r("//c.nl/y"), "https://c.nl/y");
        assert_eq!(r("/root"), "https://a.nl/root");
        assert_eq!(r("other"), "https://a.nl/dir/other");
        assert_eq!(r("../up?q=2"), "https://a.nl/up?q=2");
        assert_eq!(r("?page=2"), "https://a.nl/dir/page?page=2");
        assert!(resolve_location(&base, "mailto:x@a.nl").is_err());
    }

    #[test]
    fn json_values_compare_like_people_write_them() {
        use serde_json::json;
        assert!(json_equals(&json!("ok"), &json!("ok")));
        assert!(json_equals(&json!(200), &json!("200")));
        assert!(json_equals(&json!(1), &json!(1.0)));
        assert!(json_equals(&json!(true), &json!(true)));
        assert!(!json_equals(&json!("ok"), &json!("OK")));
        assert!(!json_equals(&json!(null), &json!("")));
    }

    #[test]
    fn specs_are_equal_regardless_of_their_place_in_the_file() {
        let spec = |yaml: &str| validated(yaml).0.unwrap().digest;
        let a = spec("url: http://a.nl/\nbody_regex: W.lkom\njson: [{pointer: /s, equals: ok}]\n");
        let b =
            spec("\njson: [{pointer: /s, equals: ok}]\n\nbody_regex: W.lkom\nurl: http://a.nl/\n");
        assert_eq!(a, b);
        let c = spec("url: http://a.nl/\nbody_regex: W.lkom\njson: [{pointer: /s, equals: ko}]\n");
        assert_ne!(a, c);
    }
}
