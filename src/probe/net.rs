//! Network steps every prober shares: split a `host:port` target, resolve a
//! name before the probe's deadline, open a fresh TCP connection, and the
//! words and reasons for what went wrong on the way. One copy, so that the
//! tcp, tls, http, dns, icmp and sip probes time and name these steps alike.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{FailureReason, ProbeContext, ProbeOutcome, phase};
use crate::config::{Dur, Spanned, Validator};

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

/// A spec's `target`, split; an error is recorded at its place.
pub(crate) fn checked_target(target: &Spanned<String>, v: &mut Validator) -> Option<(String, u16)> {
    match parse_target(&target.value) {
        Ok(t) => Some(t),
        Err((msg, hint)) => {
            v.error(target.referenced, msg, Some(hint));
            None
        }
    }
}

/// Resolve `host` with the system resolver before the probe's deadline,
/// recording the `resolve` phase. On failure the outcome carries the reason
/// (dns or timeout) and `None` is returned; a `Some` list is never empty.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    ctx: &ProbeContext,
    outcome: &mut ProbeOutcome,
) -> Option<Vec<SocketAddr>> {
    let started = Instant::now();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let lookup = tokio::time::timeout_at(ctx.deadline(), tokio::net::lookup_host((bare, port)));
    let found = lookup.await;
    outcome.phase(phase::RESOLVE, started.elapsed());
    match found {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                outcome.fail(
                    FailureReason::Dns,
                    format!("name '{bare}' has no addresses"),
                );
                return None;
            }
            Some(addrs)
        }
        Ok(Err(e)) => {
            let detail = format!("name '{bare}' does not resolve: {e}");
            match super::Shortage::of(&e, || detail.clone()) {
                Some(_) => outcome.fail_io(&e, detail),
                None => outcome.fail(FailureReason::Dns, detail),
            }
            None
        }
        Err(_) => {
            outcome.fail(
                FailureReason::Timeout,
                format!("name '{bare}' did not resolve within {}", Dur(ctx.timeout)),
            );
            None
        }
    }
}

/// Resolve `host` and open a fresh TCP connection to `port`, recording the
/// `resolve` and `connect` phases. On failure the outcome carries the
/// reason (dns, refused, timeout, network) and `None` is returned.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    ctx: &ProbeContext,
    outcome: &mut ProbeOutcome,
) -> Option<TcpStream> {
    let addrs = resolve(host, port, ctx, outcome).await?;
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
                    format!("no TCP connection to {addr} within {}", Dur(ctx.timeout)),
                );
                return None;
            }
        }
    }
    outcome.phase(phase::CONNECT, started.elapsed());
    if let Some((e, addr)) = last_error {
        let what = match io_reason(&e) {
            FailureReason::Refused => "connection refused",
            _ => "cannot connect",
        };
        outcome.fail_io(&e, format!("{what} by {addr}: {e}"));
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

/// Bytes as a short, printable excerpt for details.
pub(crate) fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut out: String = text.escape_debug().collect();
    if bytes.len() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn excerpts_are_escaped_and_marked_when_cut() {
        assert_eq!(excerpt(b"220 ok\r\n", 200), "220 ok\\r\\n");
        assert_eq!(excerpt(b"abcdef", 3), "abc…");
    }

    #[tokio::test]
    async fn an_unresolvable_name_is_a_dns_failure_with_its_phase() {
        let ctx = ProbeContext::new(std::time::Duration::from_secs(3));
        let mut o = ProbeOutcome::default();
        assert!(
            resolve("nonexistent.invalid", 80, &ctx, &mut o)
                .await
                .is_none()
        );
        assert_eq!(o.reason(), Some(FailureReason::Dns));
        assert_eq!(o.phases.len(), 1);
        assert_eq!(o.phases[0].0, phase::RESOLVE);
    }
}
