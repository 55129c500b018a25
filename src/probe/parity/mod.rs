//! Side-by-side probing of an old and a new endpoint while a service
//! moves to a new supplier: a check names both (`compare_with`), both are
//! probed in the same tick with the same request, and a [`ParityResult`]
//! says whether the new one behaves like the old one, aspect by aspect.
//!
//! The check's own success is about the new endpoint only. The old side is
//! probed twice, the way Twitter's Diffy separates noise: what differs
//! between two answers of the same side (a date, a CSRF token, a build
//! stamp) is volatile and is not held against the new side. Configured
//! `ignore` patterns are removed before anything is compared.
//!
//! Every kind compares what means something for it: HTTP the status, the
//! body and named JSON fields; TCP that both connect; TLS the issuer, the
//! expiry and the names of the certificate; DNS the answer sets; SIP the
//! response code. Every kind can bound the latency ratio.

mod compare;
mod compile;
pub mod similarity;

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{ProbeContext, ProbeError, ProbeOutcome, Prober};
pub use compile::{CompareSpec, Comparison, OldSide, Ratio, compile, compile_old_side};

/// Default `compare.similarity`.
pub const DEFAULT_SIMILARITY: f64 = 0.9;
/// Default `compare.min_latency_difference`: below this, a ratio says
/// more about scheduling jitter than about the service (1 ms against
/// 0.4 ms is a ratio of 2.5).
pub const DEFAULT_MIN_LATENCY_DIFFERENCE: Duration = Duration::from_millis(20);

/// One thing parity looks at. Becomes the `aspect` label of
/// `continuity_parity_mismatches_total`, so the set is closed and stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aspect {
    /// The same HTTP status.
    Status,
    /// Body similarity above the threshold, volatile parts aside.
    Body,
    /// The named JSON fields equal.
    JsonFields,
    /// The new side no slower than `max_latency_ratio` times the old.
    Latency,
    /// TCP: both connect.
    Connect,
    /// TLS: the same certificate issuer.
    Issuer,
    /// TLS: the new certificate expires no earlier than the old one.
    Expiry,
    /// TLS: the same names (SANs) on the certificate.
    Sans,
    /// DNS: the same answer set.
    Answers,
    /// SIP: the same final response code.
    Code,
}

impl Aspect {
    pub const ALL: [Aspect; 10] = [
        Aspect::Status,
        Aspect::Body,
        Aspect::JsonFields,
        Aspect::Latency,
        Aspect::Connect,
        Aspect::Issuer,
        Aspect::Expiry,
        Aspect::Sans,
        Aspect::Answers,
        Aspect::Code,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Aspect::Status => "status",
            Aspect::Body => "body",
            Aspect::JsonFields => "json_fields",
            Aspect::Latency => "latency",
            Aspect::Connect => "connect",
            Aspect::Issuer => "issuer",
            Aspect::Expiry => "expiry",
            Aspect::Sans => "sans",
            Aspect::Answers => "answers",
            Aspect::Code => "code",
        }
    }

    /// This aspect's bit in a set of aspects (`ParityResult::compared`).
    pub fn bit(self) -> u16 {
        1 << Aspect::ALL.iter().position(|a| *a == self).unwrap_or(0)
    }
}

/// The aspects of one kind of check: which it can compare, and which it
/// compares when `compare` does not say.
#[derive(Debug, Clone, Copy)]
pub struct KindAspects {
    pub kind: &'static str,
    pub allowed: &'static [Aspect],
    pub default: &'static [Aspect],
}

pub const HTTP: KindAspects = KindAspects {
    kind: "http",
    allowed: &[
        Aspect::Status,
        Aspect::Body,
        Aspect::JsonFields,
        Aspect::Latency,
    ],
    default: &[Aspect::Status, Aspect::Body],
};
pub const TCP: KindAspects = KindAspects {
    kind: "tcp",
    allowed: &[Aspect::Connect, Aspect::Latency],
    default: &[Aspect::Connect],
};
pub const TLS: KindAspects = KindAspects {
    kind: "tls",
    allowed: &[
        Aspect::Issuer,
        Aspect::Expiry,
        Aspect::Sans,
        Aspect::Latency,
    ],
    default: &[Aspect::Issuer, Aspect::Expiry, Aspect::Sans],
};
pub const DNS: KindAspects = KindAspects {
    kind: "dns",
    allowed: &[Aspect::Answers, Aspect::Latency],
    default: &[Aspect::Answers],
};
pub const SIP: KindAspects = KindAspects {
    kind: "sip",
    allowed: &[Aspect::Code, Aspect::Latency],
    default: &[Aspect::Code],
};

/// What a side showed that parity compares and a probe does not otherwise
/// keep; filled only when [`ProbeContext::observe`] asks for it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// HTTP: the final response's body (up to `max_body_bytes`).
    pub body: Option<Vec<u8>>,
    /// TLS: the leaf certificate's issuer, names and expiry.
    pub certificate: Option<CertificateFacts>,
    /// DNS: the answers, sorted and without duplicates.
    pub answers: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CertificateFacts {
    pub issuer: String,
    /// Sorted, without duplicates.
    pub sans: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
}

/// One aspect on which new did not match old.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    pub aspect: Aspect,
    pub detail: String,
}

/// Whether new matched old in one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParityResult {
    /// `None` when the old side was not up in this tick: there is nothing
    /// to hold the new side against.
    pub matched: Option<bool>,
    /// At least one of the old side's two probes succeeded.
    pub old_up: bool,
    pub mismatches: Vec<Mismatch>,
    /// New time over old time (the mean of the old side's answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ratio: Option<f64>,
    /// Body similarity, volatile parts aside (HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    /// Old body bigrams learned as volatile in this tick.
    #[serde(skip_serializing_if = "is_zero")]
    pub volatile: usize,
    /// The aspects compared (bit per [`Aspect::bit`]).
    #[serde(skip)]
    pub compared: u16,
}

impl ParityResult {
    /// Lines for a person (`continuity probe`): the verdict, the ratios and
    /// every mismatch with why.
    pub fn summary(&self) -> Vec<String> {
        let verdict = match self.matched {
            Some(true) => "match".to_string(),
            Some(false) => format!("MISMATCH ({} aspects)", self.mismatches.len()),
            None => "not judged: the old endpoint (compare_with) is not up".to_string(),
        };
        let mut out = vec![format!("parity: {verdict}")];
        if let Some(r) = self.latency_ratio {
            out.push(format!("  latency ratio (new/old): {r:.2}"));
        }
        if let Some(s) = self.similarity {
            out.push(format!(
                "  body similarity: {:.1} % ({} volatile bigrams learned)",
                s * 100.0,
                self.volatile
            ));
        }
        for m in &self.mismatches {
            out.push(format!("  {}: {}", m.aspect.as_str(), m.detail));
        }
        out
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Probe `new` and, in the same tick, `old` twice, with the same request;
/// the outcome is new's, with the parity result attached. A monitor error
/// on the new side is the check's error; on the old side it leaves the
/// old side unobserved for this tick.
pub async fn side_by_side<P: Prober + Sync>(
    new: &P,
    old: &P,
    comparison: &Comparison,
    ctx: &ProbeContext,
) -> Result<ProbeOutcome, ProbeError> {
    let mut side = ctx.clone();
    side.observe = true;
    let (n, a, b) = tokio::join!(timed(new, &side), timed(old, &side), timed(old, &side));
    let mut n = n?;
    let olds: Vec<ProbeOutcome> = [a, b].into_iter().filter_map(Result::ok).collect();
    n.parity = Some(Box::new(comparison.compare(&n, &olds)));
    if !ctx.observe {
        n.observed = None;
    }
    Ok(n)
}

/// One side's probe, with its own duration (the sides run together, so
/// the context's start is everyone's).
async fn timed<P: Prober>(p: &P, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    let t = Instant::now();
    let mut o = p.probe(ctx).await?;
    o.duration = t.elapsed();
    Ok(o)
}
