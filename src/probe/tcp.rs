//! TCP probe: open a fresh connection to `host:port`, optionally send a line
//! and wait for a reply matching a pattern.

use crate::config::{Location, Spanned};
use regex::Regex;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::net::{checked_target, connect, excerpt};
use super::parity::{self, CompareSpec, OldSide};
use super::{FailureReason, ProbeContext, ProbeError, ProbeOutcome, Prober, SpecDigest, phase};
use crate::config::{Dur, Validator};

/// Most bytes read while waiting for `expect` to match.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Hash, Deserialize)]
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
    /// The old endpoint, probed side by side with this one while old and
    /// new run in parallel.
    #[serde(default)]
    pub compare_with: Option<Spanned<String>>,
    /// What parity compares; the kind's default aspects when absent.
    #[serde(default)]
    pub compare: Option<Spanned<CompareSpec>>,
}

/// A compiled tcp check.
#[derive(Debug)]
pub struct TcpProbe {
    digest: SpecDigest,
    host: String,
    port: u16,
    send: Vec<u8>,
    expect: Option<Regex>,
    /// The old endpoint and what to compare with it (`compare_with`).
    parity: Option<Box<OldSide<TcpProbe>>>,
}

impl TcpProbe {
    /// The old side, for a `compare_with` check.
    pub fn parity(&self) -> Option<&OldSide<TcpProbe>> {
        self.parity.as_deref()
    }
}

impl Prober for TcpProbe {
    type Spec = TcpSpec;

    fn compile(spec: TcpSpec, at: Location, v: &mut Validator) -> Option<TcpProbe> {
        let target = checked_target(&spec.target, v);
        let parity = parity::compile_old_side(
            parity::TCP,
            spec.compare_with.as_ref(),
            spec.compare.as_ref(),
            &spec.target.value,
            |with| TcpSpec {
                target: with,
                compare_with: None,
                compare: None,
                ..spec.clone()
            },
            at,
            v,
        );
        let send = match &spec.send {
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
        let expect = match &spec.expect {
            None => Some(None),
            Some(e) => compile_regex("expect", e, v).map(Some),
        };
        let ((host, port), send, expect, parity) = (target?, send?, expect?, parity?);
        Some(TcpProbe {
            digest: SpecDigest::of(&spec),
            host,
            port,
            send,
            expect,
            parity,
        })
    }

    fn digest(&self) -> SpecDigest {
        self.digest
    }

    async fn probe(&self, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
        Ok(self.exchange(ctx).await)
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

impl TcpProbe {
    /// Connect, send, and read until the reply matches, fails or times out.
    async fn exchange(&self, ctx: &ProbeContext) -> ProbeOutcome {
        let c = self;
        let mut outcome = ProbeOutcome::default();
        let Some(mut stream) = connect(&c.host, c.port, ctx, &mut outcome).await else {
            return outcome;
        };
        let within = Dur(ctx.timeout);
        let started = Instant::now();
        if !c.send.is_empty() {
            match tokio::time::timeout_at(ctx.deadline(), stream.write_all(&c.send)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    outcome.phase(phase::RESPONSE, started.elapsed());
                    outcome.fail_io(&e, format!("sending failed: {e}"));
                    return outcome;
                }
                Err(_) => {
                    outcome.phase(phase::RESPONSE, started.elapsed());
                    outcome.fail(
                        FailureReason::Timeout,
                        format!("could not send within {within}"),
                    );
                    return outcome;
                }
            }
        }
        let Some(expect) = &c.expect else {
            if !c.send.is_empty() {
                outcome.phase(phase::RESPONSE, started.elapsed());
            }
            return outcome;
        };

        let mut reply = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if expect.is_match(&String::from_utf8_lossy(&reply)) {
                outcome.phase(phase::RESPONSE, started.elapsed());
                outcome.detail("reply", excerpt(&reply, 200));
                return outcome;
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
                return outcome;
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
                    return outcome;
                }
                Ok(Ok(n)) => reply.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => {
                    outcome.phase(phase::RESPONSE, started.elapsed());
                    outcome.fail(
                        FailureReason::Network,
                        format!("reading the reply failed: {e}"),
                    );
                    return outcome;
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
                    return outcome;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(yaml: &str) -> (Option<TcpProbe>, Vec<String>) {
        crate::probe::compile_yaml("checks.yaml", yaml)
    }

    #[test]
    fn target_without_port_is_a_config_error_at_its_place() {
        let (_, issues) = validated("target: mail.gemeente.nl\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].starts_with("checks.yaml:1:9: target 'mail.gemeente.nl' has no port"));
        assert!(issues[0].contains("host:port"));
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
        let spec = |yaml: &str| validated(yaml).0.expect("compiles").digest;
        let a = spec("target: a.nl:1\nexpect: ok\n");
        assert_eq!(a, spec("\n\nexpect: ok\ntarget: a.nl:1\n"));
        assert_ne!(a, spec("target: a.nl:2\nexpect: ok\n"));
    }
}
