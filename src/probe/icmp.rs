//! ICMP probe: echo requests to a host on a fresh socket, unprivileged
//! (ping socket) where the kernel allows it, raw with CAP_NET_RAW otherwise.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Location, Spanned};
use serde::Deserialize;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};

use super::net::resolve;
use super::{FailureReason, ProbeContext, ProbeError, ProbeOutcome, Prober, SpecDigest, phase};
use crate::config::{Dur, Validator};

/// Most echo requests one probe may send.
pub const MAX_COUNT: u32 = 10;
/// Payload size of `ping`'s default packet.
const PAYLOAD: [u8; 56] = [0; 56];

#[derive(Debug, Clone, PartialEq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpSpec {
    /// A name or an IP address.
    pub host: Spanned<String>,
    /// Echo requests per probe, 1 to 10; 1 when absent.
    #[serde(default)]
    pub count: Option<Spanned<u32>>,
    /// A probe whose average round trip is longer fails with `slow`.
    #[serde(default)]
    pub max_rtt: Option<Spanned<Dur>>,
}

/// A compiled icmp check.
#[derive(Debug)]
pub struct IcmpProbe {
    digest: SpecDigest,
    host: String,
    count: u16,
    max_rtt: Option<Dur>,
}

impl Prober for IcmpProbe {
    type Spec = IcmpSpec;

    fn compile(spec: IcmpSpec, _at: Location, v: &mut Validator) -> Option<IcmpProbe> {
        let host = spec
            .host
            .value
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut ok = true;
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            ok = false;
            v.error(
                spec.host.referenced,
                format!(
                    "host '{}' is not a host name or IP address",
                    spec.host.value
                ),
                Some("write a name like gw.gemeente.nl or an address like 192.0.2.1".into()),
            );
        }
        let count = match &spec.count {
            None => 1,
            Some(c) if (1..=MAX_COUNT).contains(&c.value) => c.value as u16,
            Some(c) => {
                ok = false;
                v.error(
                    c.referenced,
                    format!("count {} is outside 1 to {MAX_COUNT}", c.value),
                    Some("a few echo requests are enough to see a host; use count: 3".into()),
                );
                1
            }
        };
        if let Some(m) = &spec.max_rtt
            && m.value.0.is_zero()
        {
            ok = false;
            v.error(
                m.referenced,
                "max_rtt must be longer than zero",
                Some("e.g. max_rtt: 100ms".into()),
            );
        }
        ok.then(|| IcmpProbe {
            digest: SpecDigest::of(&spec),
            host,
            count,
            max_rtt: spec.max_rtt.map(|m| m.value),
        })
    }

    fn digest(&self) -> SpecDigest {
        self.digest
    }

    async fn probe(&self, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
        let c = self;
        let within = Dur(ctx.timeout);
        let mut outcome = ProbeOutcome::default();

        let ip = match c.host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => match resolve(&c.host, 0, ctx, &mut outcome).await {
                Some(addrs) => addrs[0].ip(),
                None => return Ok(outcome),
            },
        };
        outcome.detail("address", ip.to_string());

        let config = match ip {
            IpAddr::V4(_) => Config::builder().kind(ICMP::V4).build(),
            IpAddr::V6(_) => Config::builder().kind(ICMP::V6).build(),
        };
        let client = Client::new(&config).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                // surge-ping wraps the OS error in a multi-line how-to that
                // ProbeError already says in one line.
                let text = e.to_string();
                let os = text.rsplit("Original error: ").next().unwrap_or(&text);
                ProbeError::IcmpPermission(os.trim().to_string())
            } else {
                ProbeError::Setup(format!("cannot open an ICMP socket for {ip}: {e}"))
            }
        })?;
        let mut pinger = client.pinger(ip, PingIdentifier(rand::random())).await;

        let mut rtts: Vec<Duration> = Vec::new();
        let mut trouble: Option<(FailureReason, String)> = None;
        for seq in 0..c.count {
            let left = ctx.remaining();
            if left.is_zero() {
                break;
            }
            pinger.timeout(left);
            match pinger.ping(PingSequence(seq), &PAYLOAD).await {
                Ok((_, rtt)) => rtts.push(rtt),
                Err(SurgeError::Timeout { .. }) => {}
                Err(SurgeError::IOError(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Err(ProbeError::IcmpPermission(e.to_string()));
                }
                Err(SurgeError::IOError(e)) => {
                    trouble = Some((
                        FailureReason::Network,
                        format!("sending to {ip} failed: {e}"),
                    ));
                    break;
                }
                Err(e) => {
                    trouble = Some((FailureReason::Network, format!("ping {ip} failed: {e}")));
                    break;
                }
            }
        }
        let sent = u32::from(c.count);
        let received = rtts.len() as u32;
        outcome.detail("replies", format!("{received}/{sent}"));
        if rtts.is_empty() {
            let (reason, detail) = trouble.unwrap_or((
                FailureReason::Timeout,
                format!("no echo reply from {ip} within {within}"),
            ));
            outcome.fail(reason, detail);
            return Ok(outcome);
        }
        let avg = rtts.iter().sum::<Duration>() / received;
        outcome.phase(phase::RTT, avg);
        let ms = |d: Duration| format!("{:.3}ms", d.as_secs_f64() * 1000.0);
        outcome.detail("rtt_avg", ms(avg));
        if let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) {
            outcome.detail("rtt_min", ms(*min));
            outcome.detail("rtt_max", ms(*max));
        }
        if let Some(limit) = c.max_rtt
            && avg > limit.0
        {
            outcome.fail(
                FailureReason::Slow,
                format!(
                    "average round trip {} to {ip} exceeds max_rtt {}",
                    ms(avg),
                    limit
                ),
            );
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(yaml: &str) -> Vec<String> {
        crate::probe::compile_yaml::<IcmpProbe>("checks.yaml", yaml).1
    }

    #[test]
    fn count_is_kept_small() {
        assert!(issues("host: 192.0.2.1\ncount: 3\n").is_empty());
        let found = issues("host: 192.0.2.1\ncount: 50\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("checks.yaml:2:8: count 50 is outside 1 to 10"),
            "{found:?}"
        );
        assert_eq!(issues("host: 192.0.2.1\ncount: 0\n").len(), 1);
    }

    #[test]
    fn host_must_look_like_a_host() {
        let found = issues("host: http://gw.gemeente.nl/\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("is not a host name or IP address"),
            "{found:?}"
        );
    }
}
