//! How our own HTTP server defends itself: connection cap, header, body
//! and idle timeouts, body size, the bounded graceful shutdown, and
//! whether `POST /-/reload` is served at all. Written under `server:` in
//! the main file; each field has a default that is safe on a network where
//! anyone can open a connection to the monitor.

use std::time::Duration;

use super::{Dur, Spanned, Validator};

/// The hardening fields of `server:` as written.
/// (Fields of `RawServer` itself, gathered here to be compiled: serde's
/// `flatten` would lose their places in the file.)
#[derive(Debug, Default)]
pub(super) struct RawServerLimits {
    pub max_connections: Option<Spanned<usize>>,
    pub header_read_timeout: Option<Spanned<Dur>>,
    pub body_read_timeout: Option<Spanned<Dur>>,
    pub idle_timeout: Option<Spanned<Dur>>,
    pub max_request_body_bytes: Option<Spanned<usize>>,
    pub shutdown_timeout: Option<Spanned<Dur>>,
    pub enable_reload_endpoint: Option<Spanned<bool>>,
}

/// The server's limits, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once; more wait in the kernel's backlog, where
    /// they hold none of our file descriptors.
    pub max_connections: usize,
    /// A request's headers must have arrived this long after the
    /// connection opened (or after the previous response); also how long a
    /// kept-alive connection may sit between requests.
    pub header_read_timeout: Duration,
    /// A request's body must have arrived this long after its headers.
    pub body_read_timeout: Duration,
    /// A connection on which no byte moved either way for this long is
    /// closed (a client that stops reading a response, say).
    pub idle_timeout: Duration,
    /// Largest request body accepted (only the maintenance API takes one).
    pub max_request_body_bytes: usize,
    /// How long a shutdown waits for open connections before closing them.
    pub shutdown_timeout: Duration,
    /// Serve `POST /-/reload` (off by default, like Prometheus'
    /// `--web.enable-lifecycle`): SIGHUP always reloads.
    pub enable_reload_endpoint: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_request_body_bytes: 64 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            enable_reload_endpoint: false,
        }
    }
}

/// Longest any of the server's timeouts may be: beyond this a "timeout"
/// no longer protects anything.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl RawServerLimits {
    pub(super) fn compile(self, v: &mut Validator) -> ServerLimits {
        let d = ServerLimits::default();
        let timeout =
            |f: Option<Spanned<Dur>>, name: &str, default: Duration, v: &mut Validator| {
                let Some(t) = f else { return default };
                if t.value.0.is_zero() || t.value.0 > MAX_TIMEOUT {
                    v.error(
                        t.referenced,
                        format!("server.{name} must be more than 0s and at most 1h"),
                        Some(format!("the default is {}", Dur(default))),
                    );
                    return default;
                }
                t.value.0
            };
        let count = |f: Option<Spanned<usize>>,
                     name: &str,
                     range: std::ops::RangeInclusive<usize>,
                     default: usize,
                     v: &mut Validator| {
            let Some(n) = f else { return default };
            if !range.contains(&n.value) {
                v.error(
                    n.referenced,
                    format!(
                        "server.{name} must be from {} to {}",
                        range.start(),
                        range.end()
                    ),
                    Some(format!("the default is {default}")),
                );
                return default;
            }
            n.value
        };
        ServerLimits {
            max_connections: count(
                self.max_connections,
                "max_connections",
                1..=100_000,
                d.max_connections,
                v,
            ),
            header_read_timeout: timeout(
                self.header_read_timeout,
                "header_read_timeout",
                d.header_read_timeout,
                v,
            ),
            body_read_timeout: timeout(
                self.body_read_timeout,
                "body_read_timeout",
                d.body_read_timeout,
                v,
            ),
            idle_timeout: timeout(self.idle_timeout, "idle_timeout", d.idle_timeout, v),
            max_request_body_bytes: count(
                self.max_request_body_bytes,
                "max_request_body_bytes",
                1024..=16 * 1024 * 1024,
                d.max_request_body_bytes,
                v,
            ),
            shutdown_timeout: timeout(
                self.shutdown_timeout,
                "shutdown_timeout",
                d.shutdown_timeout,
                v,
            ),
            enable_reload_endpoint: self.enable_reload_endpoint.is_some_and(|e| e.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Location;

    fn compile(raw: RawServerLimits) -> (ServerLimits, Vec<String>) {
        let mut v = Validator::new("continuity.yaml".into());
        let l = raw.compile(&mut v);
        (l, v.issues.iter().map(|i| i.to_string()).collect())
    }

    #[test]
    fn the_defaults_are_safe_and_the_reload_endpoint_is_off() {
        let (l, issues) = compile(RawServerLimits::default());
        assert!(issues.is_empty());
        assert_eq!(l, ServerLimits::default());
        assert!(!l.enable_reload_endpoint);
        assert_eq!(l.shutdown_timeout, Duration::from_secs(10));
    }

    #[test]
    fn a_zero_or_endless_timeout_and_a_zero_cap_are_refused_at_their_place() {
        let (_, issues) = compile(RawServerLimits {
            idle_timeout: Some(Spanned::new(Dur(Duration::ZERO), Location::new(4, 17))),
            shutdown_timeout: Some(Spanned::new(
                Dur(Duration::from_secs(86_400)),
                Location::new(5, 21),
            )),
            max_connections: Some(Spanned::new(0, Location::new(3, 20))),
            ..RawServerLimits::default()
        });
        assert_eq!(issues.len(), 3, "{issues:?}");
        assert!(issues[0].contains("continuity.yaml:3:20"), "{issues:?}");
        assert!(issues[0].contains("max_connections must be from 1"));
        assert!(issues[1].contains(":4:17") && issues[1].contains("idle_timeout"));
        assert!(issues[2].contains(":5:21") && issues[2].contains("default is 10s"));
    }
}
