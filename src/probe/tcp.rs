//! TCP probe: open a fresh connection to `host:port`, optionally send a line
//! and wait for a reply matching a pattern. Also home of the timed
//! resolve-and-connect step the http and tls probes build on.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Location, Spanned};
use regex::Regex;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{FailureReason, ProbeContext, ProbeError, ProbeOutcome, phase};
use crate::config::{ConfigError, Dur, Validator};

/// Most bytes read while waiting for `expect` to match.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// `host:port`, e.g. `mail.gemeente.nl:25`.
    pub target: Spanned<String>,
    /// Sent after connecting; `\r`, `\n`, `\t`, `\\`, `\0` and `\xNN` escapes.
    #[serde(default)]
    pub send: Option<Spanned<String>>,
    /// Regular expression the reply must match.
    #[serde(default)]
    pub expect: Option<Spanned<String>>,
    #[serde(skip)]
    compiled: Option<Arc<CompiledTcp>>,
}

#[derive(Debug)]
struct CompiledTcp {
    host: String,
    port: u16,
    send: Vec<u8>,
    expect: Option<Regex>,
}

impl PartialEq for TcpSpec {
    fn eq(&self, other: &Self) -> bool {
        // Positions in the file do not change what a probe does.
        let TcpSpec {
            target,
            send,
            expect,
            compiled: _,
        } = self;
        target.value == other.target.value
            && send.as_ref().map(|s| &s.value) == other.send.as_ref().map(|s| &s.value)
            && expect.as_ref().map(|s| &s.value) == other.expect.as_ref().map(|s| &s.value)
    }
}

impl TcpSpec {
    pub fn validate(&mut self, v: &mut Validator, _at: Location) {
        self.compiled = self.compile(v).map(Arc::new);
    }

    fn compile(&self, v: &mut Validator) -> Option<CompiledTcp> {
        let target = match parse_target(&self.target.value) {
            Ok(t) => Some(t),
            Err((msg, hint)) => {
                v.error(self.target.referenced, msg, Some(hint));
                None
            }
        };
        let send = match &self.send {
            None => Some(Vec::new()),
            Some(s) => match unescape(&s.value) {
                Ok(b) => Some(b),
                Err(msg) => {
                    v.error(
                        s.referenced,
                        format!("send: {msg}"),
                        Some(r"use \r, \n, \t, \\, \0 or \xNN (two hex digits)".into()),
                    );
                    None
                }
            },
        };
        let expect = match &self.expect {
            None => Some(None),
            Some(e) => compile_regex("expect", e, v).map(Some),
        };
        let ((host, port), send, expect) = (target?, send?, expect?);
        Some(CompiledTcp {
            host,
            port,
            send,
            expect,
        })
    }
}

/// Compile a user-written regular expression, reporting a syntax error at
/// its place.
pub(crate) fn compile_regex(field: &str, re: &Spanned<String>, v: &mut Validator) -> Option<Regex> {
    match Regex::new(&re.value) {
        Ok(r) => Some(r),
        Err(e) => {
            // The regex error spans several lines with a caret; the last
            // line says what is wrong.
            let why = e.to_string();
            let why = why.lines().last().unwrap_or("invalid").trim().to_string();
            v.error(
                re.referenced,
                format!(
                    "{field}: '{}' is not a valid regular expression: {why}",
                    re.value
                ),
                Some(
                    "Rust regex syntax; escape special characters like . ( ) [ with a backslash"
                        .into(),
                ),
            );
            None
        }
    }
}

/// A spec that was never validated (built in code, not loaded) is compiled
/// on first use; its problems are the monitor's, not the target's.
pub(crate) fn setup_error(v: Validator) -> ProbeError {
    ProbeError::Setup(ConfigError { issues: v.issues }.to_string())
}

/// Split `host:port` (IPv6 in brackets: `[::1]:53`). The error is a message
/// and a hint.
pub(crate) fn parse_target(s: &str) -> Result<(String, u16), (String, String)> {
    let hint = "write host:port, e.g. portal.gemeente.nl:443 or [2001:db8::1]:443".to_string();
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once("]:") {
            Some((h, p)) => (h, p),
            None => return Err((format!("target '{s}' has no port"), hint)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err((
                    format!("target '{s}' looks like an IPv6 address without brackets"),
                    hint,
                ));
            }
            Some((h, p)) => (h, p),
            None => return Err((format!("target '{s}' has no port"), hint)),
        }
    };
    if host.is_empty() {
        return Err((format!("target '{s}' has no host"), hint));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_string(), p)),
        _ => Err((
            format!("target '{s}': port '{port}' is not a number from 1 to 65535"),
            hint,
        )),
    }
}

/// Turn `\r\n`-style escapes into bytes.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 => out.push(b),
                    _ => return Err(format!("'\\x{hex}' is not \\x followed by two hex digits")),
                }
            }
            Some(other) => return Err(format!("unknown escape '\\{other}'")),
            None => return Err("ends with a lone backslash".into()),
        }
    }
    Ok(out)
}

/// Bytes as a short, printable excerpt for details.
pub(crate) fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut out: String = text.escape_debug().collect();
    if bytes.len() > max {
        out.push('…');
    }
    out
}

/// Resolve `host` with the system resolver and open a fresh TCP connection
/// to `port`, recording the `resolve` and `connect` phases. On failure the
/// outcome carries the reason (dns, refused, timeout, network) and `None`
/// is returned.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    ctx: &ProbeContext,
    outcome: &mut ProbeOutcome,
) -> Option<TcpStream> {
    let within = Dur(ctx.timeout);
    let started = Instant::now();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let lookup = tokio::time::timeout_at(ctx.deadline(), tokio::net::lookup_host((bare, port)));
    let addrs: Vec<SocketAddr> = match lookup.await {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => {
            outcome.phase(phase::RESOLVE, started.elapsed());
            outcome.fail(
                FailureReason::Dns,
                format!("name '{bare}' does not resolve: {e}"),
            );
            return None;
        }
        Err(_) => {
            outcome.phase(phase::RESOLVE, started.elapsed());
            outcome.fail(
                FailureReason::Timeout,
                format!("name '{bare}' did not resolve within {within}"),
            );
            return None;
        }
    };
    outcome.phase(phase::RESOLVE, started.elapsed());
    if addrs.is_empty() {
        outcome.fail(
            FailureReason::Dns,
            format!("name '{bare}' has no addresses"),
        );
        return None;
    }

    let started = Instant::now();
    let mut last_error: Option<(std::io::Error, SocketAddr)> = None;
    for addr in &addrs {
        match tokio::time::timeout_at(ctx.deadline(), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                outcome.phase(phase::CONNECT, started.elapsed());
                if ctx.details {
                    outcome.detail("address", addr.to_string());
                }
                // Probes send small requests; do not let Nagle delay them.
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Ok(Err(e)) => last_error = Some((e, *addr)),
            Err(_) => {
                outcome.phase(phase::CONNECT, started.elapsed());
                outcome.fail(
                    FailureReason::Timeout,
                    format!("no TCP connection to {addr} within {within}"),
                );
                return None;
            }
        }
    }
    outcome.phase(phase::CONNECT, started.elapsed());
    if let Some((e, addr)) = last_error {
        let reason = io_reason(&e);
        let what = match reason {
            FailureReason::Refused => "connection refused",
            _ => "cannot connect",
        };
        outcome.fail(reason, format!("{what} by {addr}: {e}"));
    }
    None
}

/// The failure reason for an I/O error on an established or opening
/// connection.
pub(crate) fn io_reason(e: &std::io::Error) -> FailureReason {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | ConnectionReset => FailureReason::Refused,
        TimedOut => FailureReason::Timeout,
        _ => FailureReason::Network,
    }
}

pub async fn probe(spec: &TcpSpec, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    let c = match &spec.compiled {
        Some(c) => c.clone(),
        None => {
            let mut v = Validator::new("tcp check".into());
            Arc::new(spec.compile(&mut v).ok_or_else(|| setup_error(v))?)
        }
    };
    let mut outcome = ProbeOutcome::default();
    let Some(mut stream) = connect(&c.host, c.port, ctx, &mut outcome).await else {
        return Ok(outcome);
    };
    let within = Dur(ctx.timeout);
    let started = Instant::now();
    if !c.send.is_empty() {
        match tokio::time::timeout_at(ctx.deadline(), stream.write_all(&c.send)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                outcome.phase(phase::RESPONSE, started.elapsed());
                outcome.fail(io_reason(&e), format!("sending failed: {e}"));
                return Ok(outcome);
            }
            Err(_) => {
                outcome.phase(phase::RESPONSE, started.elapsed());
                outcome.fail(
                    FailureReason::Timeout,
                    format!("could not send within {within}"),
                );
                return Ok(outcome);
            }
        }
    }
    let Some(expect) = &c.expect else {
        if !c.send.is_empty() {
            outcome.phase(phase::RESPONSE, started.elapsed());
        }
        return Ok(outcome);
    };

    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if expect.is_match(&String::from_utf8_lossy(&reply)) {
            outcome.phase(phase::RESPONSE, started.elapsed());
            outcome.detail("reply", excerpt(&reply, 200));
            return Ok(outcome);
        }
        if reply.len() >= MAX_REPLY_BYTES {
            outcome.phase(phase::RESPONSE, started.elapsed());
            outcome.detail("reply", excerpt(&reply, 200));
            outcome.fail(
                FailureReason::Expectation,
                format!(
                    "first {} bytes of the reply do not match /{}/",
                    MAX_REPLY_BYTES,
                    expect.as_str()
                ),
            );
            return Ok(outcome);
        }
        let room = (MAX_REPLY_BYTES - reply.len()).min(chunk.len());
        match tokio::time::timeout_at(ctx.deadline(), stream.read(&mut chunk[..room])).await {
            Ok(Ok(0)) => {
                outcome.phase(phase::RESPONSE, started.elapsed());
                outcome.detail("reply", excerpt(&reply, 200));
                let got = if reply.is_empty() {
                    "the server closed the connection without replying".to_string()
                } else {
                    format!("reply '{}' does not match", excerpt(&reply, 200))
                };
                outcome.fail(
                    FailureReason::Expectation,
                    format!("{got} /{}/", expect.as_str()),
                );
                return Ok(outcome);
            }
            Ok(Ok(n)) => reply.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => {
                outcome.phase(phase::RESPONSE, started.elapsed());
                outcome.fail(
                    FailureReason::Network,
                    format!("reading the reply failed: {e}"),
                );
                return Ok(outcome);
            }
            Err(_) => {
                outcome.phase(phase::RESPONSE, started.elapsed());
                let got = if reply.is_empty() {
                    "no reply".to_string()
                } else {
                    format!(
                        "no reply matching /{}/ (got '{}')",
                        expect.as_str(),
                        excerpt(&reply, 200)
                    )
                };
                outcome.fail(FailureReason::Timeout, format!("{got} within {within}"));
                return Ok(outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(yaml: &str) -> (TcpSpec, Vec<String>) {
        let mut spec: TcpSpec = serde_saphyr::from_str(yaml).expect("yaml parses");
        let mut v = Validator::new("checks.yaml".into());
        spec.validate(&mut v, Location::UNKNOWN);
        (spec, v.issues.iter().map(|i| i.to_string()).collect())
    }

    #[test]
    fn target_without_port_is_a_config_error_at_its_place() {
        let (_, issues) = validated("target: mail.gemeente.nl\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].starts_with("checks.yaml:1:9: target 'mail.gemeente.nl' has no port"));
        assert!(issues[0].contains("host:port"));
    }

    #[test]
    fn target_accepts_names_ipv4_and_bracketed_ipv6() {
        assert_eq!(parse_target("a.nl:25").unwrap(), ("a.nl".into(), 25));
        assert_eq!(
            parse_target("10.0.0.1:80").unwrap(),
            ("10.0.0.1".into(), 80)
        );
        assert_eq!(parse_target("[::1]:53").unwrap(), ("::1".into(), 53));
        assert!(parse_target("::1:53").unwrap_err().0.contains("brackets"));
        assert!(parse_target("a.nl:0").is_err());
        assert!(parse_target("a.nl:http").is_err());
    }

    #[test]
    fn send_understands_escapes_and_rejects_unknown_ones() {
        assert_eq!(unescape(r"PING\r\n").unwrap(), b"PING\r\n");
        assert_eq!(unescape(r"\x41\\\t").unwrap(), b"A\\\t");
        let (_, issues) = validated("target: a.nl:1\nsend: \"HELO\\\\q\"\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].contains(r"unknown escape '\q'"), "{issues:?}");
    }

    #[test]
    fn bad_expect_regex_is_a_config_error() {
        let (_, issues) = validated("target: a.nl:1\nexpect: '^220 (ESMTP'\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].starts_with(
                "checks.yaml:2:9: expect: '^220 (ESMTP' is not a valid regular expression"
            ),
            "{issues:?}"
        );
    }

    #[test]
    fn specs_are_equal_regardless_of_their_place_in_the_file() {
        let (a, _) = validated("target: a.nl:1\nexpect: ok\n");
        let (b, _) = validated("\n\nexpect: ok\ntarget: a.nl:1\n");
        assert_eq!(a, b);
        let (c, _) = validated("target: a.nl:2\nexpect: ok\n");
        assert_ne!(a, c);
    }
}
