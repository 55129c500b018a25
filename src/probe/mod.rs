//! Probes: measure a service the way a citizen meets it, one fresh
//! connection per probe, and report what was seen as a [`ProbeOutcome`].
//!
//! Every kind has the same shape, the [`Prober`] trait: a spec as written
//! in YAML compiles once, when the configuration loads, into a probe that
//! is then run as often as its interval says.
//!
//! A service that is down is a normal outcome with a typed
//! [`FailureReason`]; `Err(ProbeError)` is only for the monitor's own
//! failures (no permission to open a raw socket, a CA file that vanished).

use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, Location, Validator};

pub mod dns;
pub mod http;
pub mod icmp;
pub(crate) mod net;
pub mod parity;
pub mod sip;
pub mod tcp;
pub mod tls;
pub mod tls_pin;
pub mod tls_util;

/// One kind of probe. `compile` is the only way to get one, so a probe that
/// runs has been validated: there is no unchecked spec to fall back on.
pub trait Prober: Sized {
    /// The spec as written in YAML (serde, with source positions). Its
    /// `Hash` ignores the positions, as `Spanned`'s does: a compiled probe
    /// keeps only its [`SpecDigest`].
    type Spec: Hash;

    /// Check a written spec and build what probing needs (parsed URL,
    /// compiled regex, shared TLS client...). Every problem is recorded in
    /// `v` at its place; `None` means at least one was.
    fn compile(spec: Self::Spec, at: Location, v: &mut Validator) -> Option<Self>;

    /// The digest of the spec this probe was compiled from: equal digests,
    /// equal definitions, wherever in the file they were written.
    fn digest(&self) -> SpecDigest;

    /// Probe once. A service that is down is an `Ok` outcome with a reason.
    fn probe(
        &self,
        ctx: &ProbeContext,
    ) -> impl Future<Output = Result<ProbeOutcome, ProbeError>> + Send;
}

/// What a check's definition was, in 16 bytes: the first half of the
/// SHA-256 of its written spec, positions left out. A compiled probe keeps
/// this instead of the spec itself (a spec with its strings was about
/// 300 bytes per check, 3 MiB at 10,000 checks), so that a reload can
/// still tell a changed definition from an unchanged one. A spec that
/// names a file (`password_file`, `ca_file`) is digested together with
/// what the file held when it compiled: a secret or CA rotated under the
/// same path is a changed definition, and the probe is compiled anew.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpecDigest([u8; 16]);

impl SpecDigest {
    /// Digest anything whose `Hash` covers the whole definition. A
    /// cryptographic hash, not `DefaultHasher`: two different definitions
    /// must never look the same to a reload.
    pub fn of<T: Hash + ?Sized>(spec: &T) -> SpecDigest {
        let mut h = Sha256Hasher(Sha256::new());
        spec.hash(&mut h);
        let full: [u8; 32] = h.0.finalize().into();
        let mut half = [0u8; 16];
        half.copy_from_slice(&full[..16]);
        SpecDigest(half)
    }
}

/// Feeds what `Hash` writes into SHA-256. `Hash` already separates
/// fields unambiguously (lengths before sequences, a terminator after
/// strings, discriminants before variants). Its integers are in native
/// byte order, which is fine: digests are only compared within one
/// process.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // `Hash` implementations never call `finish`; only `of` reads
        // the result, in full.
        let full: [u8; 32] = self.0.clone().finalize().into();
        u64::from_le_bytes(full[..8].try_into().expect("8 bytes"))
    }
}

/// A name from a closed list (an HTTP method, a DNS record type...),
/// written in any case. An unknown one is recorded at its place with the
/// closest known name as the hint.
pub(crate) fn known_name<'a>(
    written: &crate::config::Spanned<String>,
    known: &[&'a str],
    what: &str,
    v: &mut Validator,
) -> Option<&'a str> {
    let upper = written.value.trim().to_ascii_uppercase();
    if let Some(name) = known.iter().find(|k| **k == upper) {
        return Some(name);
    }
    let hint = match crate::config::closest(&upper, known.iter().copied()) {
        Some(c) => format!("did you mean {c}?"),
        None => format!("use one of {}", known.join(", ")),
    };
    v.error(
        written.referenced,
        format!("unknown {what} '{}'", written.value),
        Some(hint),
    );
    None
}

/// Compile a spec written as `yaml` in `file`, as configuration loading
/// does: the probe when it compiled, and every issue as printed.
#[cfg(test)]
pub(crate) fn compile_yaml<P: Prober>(file: &str, yaml: &str) -> (Option<P>, Vec<String>)
where
    P::Spec: serde::de::DeserializeOwned,
{
    let spec: P::Spec = serde_saphyr::from_str(yaml).expect("yaml parses");
    let mut v = Validator::new(file.into());
    let probe = P::compile(spec, Location::UNKNOWN, &mut v);
    (probe, v.issues.iter().map(|i| i.to_string()).collect())
}

/// Compile a spec outside configuration loading (tests, demos, tools), as
/// if it were written in `file`; the error lists every issue.
pub fn compile<P: Prober>(spec: P::Spec, file: &str) -> Result<P, ConfigError> {
    let mut v = Validator::new(file.into());
    match P::compile(spec, Location::UNKNOWN, &mut v) {
        Some(p) if v.is_ok() => Ok(p),
        _ => Err(ConfigError { issues: v.issues }),
    }
}

/// Why a probe found a service down. Becomes the `reason` label of
/// `continuity_probe_failures_total`, so the set is closed and stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Nothing (or not enough) came back before the timeout.
    Timeout,
    /// Connection refused, reset, or ICMP unreachable.
    Refused,
    /// The name did not resolve (or the DNS check's answer was wrong rcode).
    Dns,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// Unexpected status code (HTTP status, SIP code).
    Status,
    /// Body did not contain / match what was expected.
    Body,
    /// Another expectation failed (JSON pointer, DNS answer, TCP reply).
    Expectation,
    /// Answered correctly but slower than `max_response_time`.
    Slow,
    /// Credentials rejected (SIP REGISTER).
    Auth,
    /// A reply that could not be parsed.
    Malformed,
    /// Any other network error (unreachable host, connection reset mid-way).
    Network,
}

impl FailureReason {
    pub const ALL: [FailureReason; 11] = [
        FailureReason::Timeout,
        FailureReason::Refused,
        FailureReason::Dns,
        FailureReason::Tls,
        FailureReason::Status,
        FailureReason::Body,
        FailureReason::Expectation,
        FailureReason::Slow,
        FailureReason::Auth,
        FailureReason::Malformed,
        FailureReason::Network,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Refused => "refused",
            FailureReason::Dns => "dns",
            FailureReason::Tls => "tls",
            FailureReason::Status => "status",
            FailureReason::Body => "body",
            FailureReason::Expectation => "expectation",
            FailureReason::Slow => "slow",
            FailureReason::Auth => "auth",
            FailureReason::Malformed => "malformed",
            FailureReason::Network => "network",
        }
    }

    pub fn parse(s: &str) -> Option<FailureReason> {
        FailureReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed probe: the typed reason plus a sentence for humans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub reason: FailureReason,
    pub detail: String,
}

/// Names of probe phases, the `phase` label of
/// `continuity_probe_phase_duration_seconds`.
pub mod phase {
    pub const RESOLVE: &str = "resolve";
    pub const CONNECT: &str = "connect";
    pub const TLS: &str = "tls";
    pub const PROCESSING: &str = "processing";
    pub const TRANSFER: &str = "transfer";
    pub const RESPONSE: &str = "response";
    pub const RINGING: &str = "ringing";
    pub const ANSWER: &str = "answer";
    pub const RTT: &str = "rtt";

    /// Every phase, in the order of the metric's series.
    pub const ALL: [&str; 9] = [
        RESOLVE, CONNECT, TLS, PROCESSING, TRANSFER, RESPONSE, RINGING, ANSWER, RTT,
    ];
}

/// What one probe saw. Built by a prober; the scheduler adds the total
/// duration and turns it into metrics, state and stored evidence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProbeOutcome {
    /// `None` when the probe succeeded.
    pub failure: Option<Failure>,
    /// Wall time of the whole probe, including every phase.
    pub duration: Duration,
    /// Phase timings in the order they happened.
    pub phases: Vec<(&'static str, Duration)>,
    /// Human-readable facts (status line, certificate subject, answers...).
    pub details: Vec<(String, String)>,
    /// Last HTTP status code seen, if any.
    pub http_status: Option<u16>,
    /// Final SIP response code seen, if any.
    pub sip_code: Option<u16>,
    /// Earliest `notAfter` in the presented certificate chain (Unix seconds),
    /// reported even when the chain is invalid or expired.
    pub cert_not_after: Option<i64>,
    /// A protocol transcript summary for `continuity probe` (SIP exchanges).
    pub exchange: Vec<String>,
    /// The monitor itself ran out of a resource on the way: the probe says
    /// nothing about the target, and [`run`] turns it into
    /// [`ProbeError::Resource`]. Boxed: it is almost always `None`.
    #[serde(skip)]
    pub shortage: Option<Box<Shortage>>,
    /// What parity compares (a body, a certificate, answers); only when
    /// the probe's context asks to observe, and boxed: absent, it costs
    /// every outcome 8 bytes.
    #[serde(skip)]
    pub observed: Option<Box<parity::Observed>>,
    /// How the new side compared with the old one (`compare_with`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parity: Option<Box<parity::ParityResult>>,
}

/// One of the monitor's own resources that ran out (too many open files,
/// no buffer space, no memory), seen as an I/O error during a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    /// `descriptors`, `buffers` or `memory`: the `resource` label.
    pub resource: &'static str,
    /// The error as the system named it (`EMFILE`...).
    pub errno: &'static str,
    /// What the probe was doing, and the error.
    pub detail: String,
}

impl Shortage {
    /// The shortage `e` reports, if it reports one: errors that say the
    /// monitor is out of descriptors, buffers or memory, whatever the target.
    pub fn of(e: &std::io::Error, detail: impl FnOnce() -> String) -> Option<Shortage> {
        let (resource, errno) = match e.raw_os_error() {
            Some(libc::EMFILE) => ("descriptors", "EMFILE"),
            Some(libc::ENFILE) => ("descriptors", "ENFILE"),
            Some(libc::ENOBUFS) => ("buffers", "ENOBUFS"),
            Some(libc::ENOMEM) => ("memory", "ENOMEM"),
            _ if e.kind() == std::io::ErrorKind::OutOfMemory => ("memory", "ENOMEM"),
            _ => return None,
        };
        Some(Shortage {
            resource,
            errno,
            detail: detail(),
        })
    }
}

impl ProbeOutcome {
    pub fn success(&self) -> bool {
        self.failure.is_none()
    }

    pub fn fail(&mut self, reason: FailureReason, detail: impl Into<String>) {
        // Keep the first failure: it is the cause, later ones are consequences.
        if self.failure.is_none() {
            self.failure = Some(Failure {
                reason,
                detail: detail.into(),
            });
        }
    }

    pub fn failed(reason: FailureReason, detail: impl Into<String>) -> Self {
        let mut o = ProbeOutcome::default();
        o.fail(reason, detail);
        o
    }

    pub fn phase(&mut self, name: &'static str, took: Duration) {
        self.phases.push((name, took));
    }

    pub fn detail(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.details.push((key.into(), value.into()));
    }

    pub fn reason(&self) -> Option<FailureReason> {
        self.failure.as_ref().map(|f| f.reason)
    }

    /// Record an I/O error: the monitor's own shortage when it is one
    /// (the probe then ends as [`ProbeError::Resource`]), else the
    /// target's failure with the reason [`net::io_reason`] gives.
    pub(crate) fn fail_io(&mut self, e: &std::io::Error, detail: impl Into<String>) {
        let detail = detail.into();
        match Shortage::of(e, || detail.clone()) {
            Some(s) => {
                if self.shortage.is_none() {
                    self.shortage = Some(Box::new(s));
                }
                self.fail(FailureReason::Network, detail);
            }
            None => self.fail(net::io_reason(e), detail),
        }
    }
}

/// The monitor itself could not run a probe. Counted and logged; the
/// check's time becomes `unknown`, never `down`.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("ICMP needs CAP_NET_RAW or net.ipv4.ping_group_range including this group: {0}")]
    IcmpPermission(String),
    #[error("could not read {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("the monitor ran out of {} ({}): {}", .0.resource, .0.errno, .0.detail)]
    Resource(Shortage),
}

/// What every probe gets besides its own spec.
#[derive(Debug, Clone)]
pub struct ProbeContext {
    /// The check's timeout; a probe must give up by then.
    pub timeout: std::time::Duration,
    /// When the probe started (for phase arithmetic and the deadline).
    pub started: tokio::time::Instant,
    /// Fill `ProbeOutcome::details` (for `continuity probe`). The daemon
    /// never shows them, and formatting them for every probe of 10,000
    /// checks is CPU for nobody.
    pub details: bool,
    /// Keep what parity compares in `ProbeOutcome::observed` (set for
    /// the sides of a `compare_with` check).
    pub observe: bool,
}

impl ProbeContext {
    pub fn new(timeout: std::time::Duration) -> Self {
        ProbeContext {
            timeout,
            started: tokio::time::Instant::now(),
            details: false,
            observe: false,
        }
    }

    pub fn deadline(&self) -> tokio::time::Instant {
        self.started + self.timeout
    }

    /// Time left before the deadline (zero when passed).
    pub fn remaining(&self) -> std::time::Duration {
        self.deadline()
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

/// Run one check once. The timeout is always enforced here too, so a
/// prober that forgets a deadline still cannot hang the scheduler.
pub async fn run(
    kind: &crate::config::CheckKind,
    timeout: std::time::Duration,
) -> Result<ProbeOutcome, ProbeError> {
    run_in(kind, ProbeContext::new(timeout)).await
}

/// [`run`], with the details a person debugging a check wants to see.
pub async fn run_with_details(
    kind: &crate::config::CheckKind,
    timeout: std::time::Duration,
) -> Result<ProbeOutcome, ProbeError> {
    let mut ctx = ProbeContext::new(timeout);
    ctx.details = true;
    run_in(kind, ctx).await
}

/// Probe one kind: on its own, or side by side with its old endpoint.
async fn probe_kind<P: Prober + Sync>(
    p: &P,
    old: Option<&parity::OldSide<P>>,
    ctx: &ProbeContext,
) -> Result<ProbeOutcome, ProbeError> {
    match old {
        Some(o) => Box::pin(parity::side_by_side(p, &o.old, &o.comparison, ctx)).await,
        None => Box::pin(p.probe(ctx)).await,
    }
}

async fn run_in(
    kind: &crate::config::CheckKind,
    ctx: ProbeContext,
) -> Result<ProbeOutcome, ProbeError> {
    use crate::config::CheckKind;
    let timeout = ctx.timeout;
    // Each prober's future is boxed on its own: inline, the largest of
    // them (several KiB) would be the size of every probe task, copied
    // each time one is spawned.
    let fut = async {
        match kind {
            CheckKind::Http(p) => probe_kind(p, p.parity(), &ctx).await,
            CheckKind::Tcp(p) => probe_kind(p, p.parity(), &ctx).await,
            CheckKind::Tls(p) => probe_kind(p, p.parity(), &ctx).await,
            CheckKind::Dns(p) => probe_kind(p, p.parity(), &ctx).await,
            CheckKind::Icmp(p) => probe_kind(p, None, &ctx).await,
            CheckKind::Sip(p) => probe_kind(&**p, p.parity(), &ctx).await,
        }
    };
    // A little grace so that a prober's own, more precise timeout
    // (naming the phase that hung) wins over this backstop.
    let backstop = timeout + std::time::Duration::from_millis(250);
    let mut outcome = match tokio::time::timeout(backstop, fut).await {
        Ok(r) => r?,
        Err(_) => ProbeOutcome::failed(
            FailureReason::Timeout,
            format!(
                "no result within the {} timeout",
                crate::config::Dur(timeout)
            ),
        ),
    };
    if let Some(s) = outcome.shortage.take() {
        return Err(ProbeError::Resource(*s));
    }
    outcome.duration = ctx.started.elapsed();
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Spanned;

    #[test]
    fn spec_digest_ignores_positions_but_not_values() {
        let at = |line, value: &str| Spanned::new(value.to_string(), Location::new(line, 3));
        assert_eq!(
            SpecDigest::of(&at(1, "a.nl")),
            SpecDigest::of(&at(9, "a.nl"))
        );
        assert_ne!(
            SpecDigest::of(&at(1, "a.nl")),
            SpecDigest::of(&at(1, "b.nl"))
        );
    }

    #[test]
    fn spec_digest_tells_where_one_field_ends_and_the_next_begins() {
        let split = |a: &str, b: &str| SpecDigest::of(&(a.to_string(), b.to_string()));
        assert_ne!(split("ab", "c"), split("a", "bc"));
        assert_ne!(
            SpecDigest::of(&None::<String>),
            SpecDigest::of(&Some(String::new()))
        );
    }
}
