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

pub mod similarity;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ProbeContext, ProbeError, ProbeOutcome, Prober};
use crate::config::{Dur, Location, Spanned, Validator};
use similarity::Shingles;

/// Default `compare.similarity`.
pub const DEFAULT_SIMILARITY: f64 = 0.9;
/// Default `compare.min_latency_difference`: below this, a ratio says
/// more about scheduling jitter than about the service (1 ms against
/// 0.4 ms is a ratio of 2.5).
pub const DEFAULT_MIN_LATENCY_DIFFERENCE: Duration = Duration::from_millis(20);
/// A new certificate may expire this much before the old one and still
/// match: certificates issued a few hours apart are equally good.
const EXPIRY_SLACK_SECONDS: i64 = 86_400;

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

/// A ratio as written (`1.5`); hashed by its bits, so that specs holding
/// one can still be digested.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Ratio(pub f64);

impl std::hash::Hash for Ratio {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

/// `compare:` as written. Each aspect is `true`/`false`, except `body`
/// (`similarity`, `exact` or `off`); `json_fields` and
/// `max_latency_ratio` turn their aspect on by being there.
#[derive(Debug, Clone, Default, PartialEq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareSpec {
    #[serde(default)]
    pub status: Option<Spanned<bool>>,
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    /// RFC 6901 pointers whose values must be equal on both sides.
    #[serde(default)]
    pub json_fields: Vec<Spanned<String>>,
    /// The new side may take at most this many times the old side's time.
    #[serde(default)]
    pub max_latency_ratio: Option<Spanned<Ratio>>,
    /// Latency differences below this never mismatch (default 20ms).
    #[serde(default)]
    pub min_latency_difference: Option<Spanned<Dur>>,
    /// Body similarity threshold, 0 to 1 (default 0.9).
    #[serde(default)]
    pub similarity: Option<Spanned<Ratio>>,
    /// Regular expressions for volatile parts, removed from both bodies.
    #[serde(default)]
    pub ignore: Vec<Spanned<String>>,
    #[serde(default)]
    pub connect: Option<Spanned<bool>>,
    #[serde(default)]
    pub issuer: Option<Spanned<bool>>,
    #[serde(default)]
    pub expiry: Option<Spanned<bool>>,
    #[serde(default)]
    pub sans: Option<Spanned<bool>>,
    #[serde(default)]
    pub answers: Option<Spanned<bool>>,
    #[serde(default)]
    pub code: Option<Spanned<bool>>,
}

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

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BodyMode {
    Similarity(f64),
    Exact,
}

/// A compiled `compare:` block: what parity looks at, for one check.
#[derive(Debug)]
pub struct Comparison {
    /// Bit per [`Aspect`] compared.
    aspects: u16,
    body: BodyMode,
    json_fields: Box<[String]>,
    max_latency_ratio: f64,
    min_latency_difference: Duration,
    /// Every `ignore` pattern in one alternation: one pass per body.
    ignore: Option<Regex>,
    /// JSON fields learned as volatile (bit i: `json_fields[i]`), kept
    /// across ticks: a field that once differed between two old answers
    /// carries a value of the moment, and two answers within the same
    /// second may not show it again.
    noisy_fields: AtomicU64,
}

impl Comparison {
    fn has(&self, a: Aspect) -> bool {
        self.aspects & a.bit() != 0
    }

    /// The aspects compared, in the order of [`Aspect::ALL`].
    pub fn aspects(&self) -> impl Iterator<Item = Aspect> + '_ {
        Aspect::ALL.into_iter().filter(|a| self.has(*a))
    }
}

/// Turn `aspect` on or off in `aspects`; `false` (and an error at its
/// place) when the kind cannot compare it.
fn set(
    kind: KindAspects,
    aspects: &mut u16,
    aspect: Aspect,
    on: bool,
    place: Location,
    v: &mut Validator,
) -> bool {
    if !kind.allowed.contains(&aspect) {
        v.error(
            place,
            format!(
                "compare: aspect '{}' does not apply to a {} check",
                aspect.as_str(),
                kind.kind
            ),
            Some(format!(
                "a {} check compares {}",
                kind.kind,
                kind.allowed
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
        return false;
    }
    if on {
        *aspects |= aspect.bit();
    } else {
        *aspects &= !aspect.bit();
    }
    true
}

/// Compile `compare:` for a check of `kind`; `spec` is `None` when only
/// `compare_with` was written (the kind's default aspects).
pub fn compile(
    kind: KindAspects,
    spec: Option<&CompareSpec>,
    at: Location,
    v: &mut Validator,
) -> Option<Comparison> {
    let mut ok = true;
    let default = CompareSpec::default();
    let s = spec.unwrap_or(&default);
    let mut aspects: u16 = kind.default.iter().fold(0, |m, a| m | a.bit());
    for (aspect, flag) in [
        (Aspect::Status, &s.status),
        (Aspect::Connect, &s.connect),
        (Aspect::Issuer, &s.issuer),
        (Aspect::Expiry, &s.expiry),
        (Aspect::Sans, &s.sans),
        (Aspect::Answers, &s.answers),
        (Aspect::Code, &s.code),
    ] {
        if let Some(f) = flag {
            ok &= set(kind, &mut aspects, aspect, f.value, f.referenced, v);
        }
    }
    let mut body = BodyMode::Similarity(DEFAULT_SIMILARITY);
    if let Some(b) = &s.body {
        match b.value.trim() {
            "similarity" => ok &= set(kind, &mut aspects, Aspect::Body, true, b.referenced, v),
            "exact" => {
                body = BodyMode::Exact;
                ok &= set(kind, &mut aspects, Aspect::Body, true, b.referenced, v);
            }
            "off" | "false" | "no" => {
                ok &= set(kind, &mut aspects, Aspect::Body, false, b.referenced, v)
            }
            other => {
                ok = false;
                v.error(
                    b.referenced,
                    format!("compare: body '{other}' is not a way to compare bodies"),
                    Some("use body: similarity (the default), exact, or off".into()),
                );
            }
        }
    }
    if let Some(t) = &s.similarity {
        if !(0.0..=1.0).contains(&t.value.0) {
            ok = false;
            v.error(
                t.referenced,
                format!("compare: similarity {} is not between 0 and 1", t.value.0),
                Some(format!(
                    "e.g. similarity: {DEFAULT_SIMILARITY} (90 % of the body alike)"
                )),
            );
        } else if body != BodyMode::Exact {
            body = BodyMode::Similarity(t.value.0);
        }
        ok &= set(kind, &mut aspects, Aspect::Body, true, t.referenced, v);
    }
    if let Some(first) = s.json_fields.first() {
        ok &= set(
            kind,
            &mut aspects,
            Aspect::JsonFields,
            true,
            first.referenced,
            v,
        );
    }
    if s.json_fields.len() > 64 {
        ok = false;
        v.error(
            s.json_fields[64].referenced,
            "compare: more than 64 json_fields",
            Some("compare the fields that say what a release is (version, status), not the whole document".into()),
        );
    }
    for f in &s.json_fields {
        let p = &f.value;
        if !(p.is_empty() || p.starts_with('/')) {
            ok = false;
            v.error(
                f.referenced,
                format!("compare: '{p}' is not a JSON pointer"),
                Some(format!("JSON pointers start with '/', e.g. /{p}")),
            );
        }
    }
    let mut max_latency_ratio = f64::INFINITY;
    if let Some(r) = &s.max_latency_ratio {
        if !(r.value.0.is_finite() && r.value.0 >= 1.0) {
            ok = false;
            v.error(
                r.referenced,
                format!(
                    "compare: max_latency_ratio {} must be a number of at least 1",
                    r.value.0
                ),
                Some("e.g. max_latency_ratio: 1.5 (new may take 50 % longer than old)".into()),
            );
        }
        max_latency_ratio = r.value.0;
        ok &= set(kind, &mut aspects, Aspect::Latency, true, r.referenced, v);
    }
    if let Some(d) = &s.min_latency_difference
        && s.max_latency_ratio.is_none()
    {
        ok = false;
        v.error(
            d.referenced,
            "compare: min_latency_difference without max_latency_ratio",
            Some("add max_latency_ratio: 1.5, or remove min_latency_difference".into()),
        );
    }
    let mut patterns = Vec::new();
    for re in &s.ignore {
        if kind.kind != "http" {
            ok = false;
            v.error(
                re.referenced,
                format!(
                    "compare: ignore applies to bodies; a {} check has none",
                    kind.kind
                ),
                Some("remove ignore".into()),
            );
            continue;
        }
        match super::tcp::compile_regex("compare: ignore", re, v) {
            Some(_) => patterns.push(format!("(?:{})", re.value)),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    if aspects == 0 {
        v.error(
            at,
            "compare: every aspect is turned off, so nothing would be compared",
            Some(format!(
                "turn one on, e.g. {}: true, or remove compare_with",
                kind.default[0].as_str()
            )),
        );
        return None;
    }
    let ignore = match patterns.is_empty() {
        true => None,
        false => Regex::new(&patterns.join("|")).ok(),
    };
    Some(Comparison {
        aspects,
        body,
        json_fields: s.json_fields.iter().map(|f| f.value.clone()).collect(),
        max_latency_ratio,
        min_latency_difference: s
            .min_latency_difference
            .as_ref()
            .map(|d| d.value.0)
            .unwrap_or(DEFAULT_MIN_LATENCY_DIFFERENCE),
        ignore,
        noisy_fields: AtomicU64::new(0),
    })
}

/// The old side of a `compare_with` check: the same spec compiled for the
/// old target, and what to compare.
#[derive(Debug)]
pub struct OldSide<P> {
    pub old: P,
    pub comparison: Comparison,
}

/// Compile the old side of a check of `kind`: `compare_with` (written in
/// the form of the kind's target, which `new_target` is) becomes the
/// target of `old_spec`, a copy of the check's spec. `Some(None)` when
/// the check compares nothing; `None` when an error was recorded.
pub fn compile_old_side<P: Prober>(
    kind: KindAspects,
    compare_with: Option<&Spanned<String>>,
    compare: Option<&Spanned<CompareSpec>>,
    new_target: &str,
    old_spec: impl FnOnce(Spanned<String>) -> P::Spec,
    at: Location,
    v: &mut Validator,
) -> Option<Option<Box<OldSide<P>>>> {
    let Some(with) = compare_with else {
        if let Some(c) = compare {
            v.error(
                c.referenced,
                "compare without compare_with: there is no old endpoint to compare with",
                Some(format!(
                    "add compare_with: <old endpoint> next to the {} check's target, or remove compare",
                    kind.kind
                )),
            );
            return None;
        }
        return Some(None);
    };
    if with.value.trim() == new_target.trim() {
        v.error(
            with.referenced,
            format!(
                "compare_with '{}' is the check's own target",
                with.value.trim()
            ),
            Some(
                "compare_with names the old endpoint; the check's own target is the new one".into(),
            ),
        );
        return None;
    }
    let comparison = compile(
        kind,
        compare.map(|c| &c.value),
        compare.map_or(with.referenced, |c| c.referenced),
        v,
    )?;
    // Everything but the target is the new side's spec, whose problems are
    // already reported: only those at `compare_with` are the old side's.
    let mut scratch = Validator::new(v.file().clone());
    let old = P::compile(old_spec(with.clone()), at, &mut scratch);
    let here = v.place(with.referenced);
    v.issues.extend(
        scratch
            .issues
            .into_iter()
            .filter(|i| i.place.line == here.line && i.place.column == here.column),
    );
    Some(Some(Box::new(OldSide {
        old: old?,
        comparison,
    })))
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

impl Comparison {
    /// Compare new with the old side's answers (those that came back).
    pub fn compare(&self, new: &ProbeOutcome, olds: &[ProbeOutcome]) -> ParityResult {
        let up: Vec<&ProbeOutcome> = olds.iter().filter(|o| o.success()).collect();
        let mut r = ParityResult {
            matched: None,
            old_up: !up.is_empty(),
            mismatches: Vec::new(),
            latency_ratio: None,
            similarity: None,
            volatile: 0,
            compared: self.aspects,
        };
        let Some(reference) = up.first().copied() else {
            return r;
        };
        // The second answer teaches noise only when it is an answer too.
        let noise = up.get(1).copied();
        let mut miss = |aspect: Aspect, detail: String| {
            r.mismatches.push(Mismatch { aspect, detail });
        };

        if self.has(Aspect::Latency) {
            let old_mean =
                up.iter().map(|o| o.duration.as_secs_f64()).sum::<f64>() / up.len() as f64;
            let new_secs = new.duration.as_secs_f64();
            let ratio = if old_mean > 0.0 {
                new_secs / old_mean
            } else {
                1.0
            };
            r.latency_ratio = Some(ratio);
            let slower = new
                .duration
                .saturating_sub(Duration::from_secs_f64(old_mean));
            if ratio > self.max_latency_ratio && slower >= self.min_latency_difference {
                miss(
                    Aspect::Latency,
                    format!(
                        "new took {:.0} ms, {ratio:.2} times old's {:.0} ms (at most {} allowed)",
                        new_secs * 1000.0,
                        old_mean * 1000.0,
                        self.max_latency_ratio
                    ),
                );
            }
        }
        if self.has(Aspect::Connect) && !new.success() {
            miss(
                Aspect::Connect,
                format!("old connects, new does not: {}", failure_text(new)),
            );
        }
        if self.has(Aspect::Status) {
            match new.http_status {
                None => miss(
                    Aspect::Status,
                    format!(
                        "old answers {}, new gives no HTTP response: {}",
                        code_text(reference.http_status),
                        failure_text(new)
                    ),
                ),
                Some(code) if !up.iter().any(|o| o.http_status == Some(code)) => miss(
                    Aspect::Status,
                    format!(
                        "status {code}, old answers {}",
                        code_text(reference.http_status)
                    ),
                ),
                Some(_) => {}
            }
        }
        if self.has(Aspect::Code) {
            match new.sip_code {
                Some(code) if up.iter().any(|o| o.sip_code == Some(code)) => {}
                got => miss(
                    Aspect::Code,
                    format!(
                        "SIP {}, old answers {}",
                        got.map_or_else(
                            || format!("no final response ({})", failure_text(new)),
                            |c| c.to_string()
                        ),
                        code_text(reference.sip_code)
                    ),
                ),
            }
        }

        let observed = |o: &ProbeOutcome| o.observed.as_deref().cloned().unwrap_or_default();
        let (new_seen, old_seen) = (observed(new), observed(reference));
        let noise_seen = noise.map(observed);

        if let (true, Some(old_body)) = (
            self.has(Aspect::Body) || self.has(Aspect::JsonFields),
            &old_seen.body,
        ) {
            let old_text = self.masked(old_body);
            let new_text = new_seen.body.as_deref().map(|b| self.masked(b));
            let noise_text = noise_seen
                .as_ref()
                .and_then(|n| n.body.as_deref())
                .map(|b| self.masked(b));
            if self.has(Aspect::Body) {
                match &new_text {
                    None => miss(
                        Aspect::Body,
                        format!("new gives no body: {}", failure_text(new)),
                    ),
                    Some(new_text) => {
                        let (score, volatile) = similarity::similarity(
                            &Shingles::of(new_text),
                            &Shingles::of(&old_text),
                            noise_text.as_deref().map(Shingles::of).as_ref(),
                        );
                        r.similarity = Some(score);
                        r.volatile = volatile;
                        let threshold = match self.body {
                            BodyMode::Similarity(t) => t,
                            BodyMode::Exact => 1.0,
                        };
                        if score < threshold {
                            miss(
                                Aspect::Body,
                                format!(
                                    "body {:.1} % like old's, less than the {:.1} % asked; new starts '{}'",
                                    score * 100.0,
                                    threshold * 100.0,
                                    super::net::excerpt(new_text.as_bytes(), 80)
                                ),
                            );
                        }
                    }
                }
            }
            if self.has(Aspect::JsonFields) {
                self.compare_json(
                    new_text.as_deref(),
                    &old_text,
                    noise_text.as_deref(),
                    &mut miss,
                );
            }
        }

        if let (Some(new_cert), Some(old_cert)) = (&new_seen.certificate, &old_seen.certificate) {
            if self.has(Aspect::Issuer) && new_cert.issuer != old_cert.issuer {
                miss(
                    Aspect::Issuer,
                    format!(
                        "issuer '{}', old's is '{}'",
                        new_cert.issuer, old_cert.issuer
                    ),
                );
            }
            if self.has(Aspect::Expiry)
                && new_cert.not_after + EXPIRY_SLACK_SECONDS < old_cert.not_after
            {
                miss(
                    Aspect::Expiry,
                    format!(
                        "new certificate expires {}, before old's {}",
                        unix_text(new_cert.not_after),
                        unix_text(old_cert.not_after)
                    ),
                );
            }
            if self.has(Aspect::Sans) && new_cert.sans != old_cert.sans {
                miss(
                    Aspect::Sans,
                    format!(
                        "names [{}], old's are [{}]",
                        new_cert.sans.join(", "),
                        old_cert.sans.join(", ")
                    ),
                );
            }
        } else if old_seen.certificate.is_some()
            && [Aspect::Issuer, Aspect::Sans, Aspect::Expiry]
                .iter()
                .any(|a| self.has(*a))
        {
            let first = [Aspect::Issuer, Aspect::Sans, Aspect::Expiry]
                .into_iter()
                .find(|a| self.has(*a))
                .unwrap_or(Aspect::Issuer);
            miss(
                first,
                format!("new presents no certificate: {}", failure_text(new)),
            );
        }

        if self.has(Aspect::Answers)
            && let Some(old_answers) = &old_seen.answers
        {
            // Round-robin servers answer subsets: two differing old answers
            // make every name either gave an acceptable one.
            let mut accepted: Vec<&String> = old_answers.iter().collect();
            if let Some(more) = noise_seen.as_ref().and_then(|n| n.answers.as_ref()) {
                accepted.extend(more.iter());
            }
            let exact = noise_seen
                .as_ref()
                .and_then(|n| n.answers.as_ref())
                .is_none_or(|more| more == old_answers);
            match &new_seen.answers {
                None => miss(
                    Aspect::Answers,
                    format!("new gives no answers: {}", failure_text(new)),
                ),
                Some(got) => {
                    let fits = if exact {
                        got == old_answers
                    } else {
                        !got.is_empty() && got.iter().all(|a| accepted.contains(&a))
                    };
                    if !fits {
                        miss(
                            Aspect::Answers,
                            format!(
                                "answers [{}], old's are [{}]",
                                got.join(", "),
                                old_answers.join(", ")
                            ),
                        );
                    }
                }
            }
        }

        r.matched = Some(r.mismatches.is_empty());
        r
    }

    /// The body as text with the `ignore` patterns taken out.
    fn masked(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        match &self.ignore {
            Some(re) => re.replace_all(&text, "").into_owned(),
            None => text.into_owned(),
        }
    }

    fn compare_json(
        &self,
        new: Option<&str>,
        old: &str,
        noise: Option<&str>,
        miss: &mut impl FnMut(Aspect, String),
    ) {
        let Ok(old_doc) = serde_json::from_str::<serde_json::Value>(old) else {
            // Old is not JSON: there is nothing to hold new to.
            return;
        };
        let new_doc = match new.map(serde_json::from_str::<serde_json::Value>) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                miss(
                    Aspect::JsonFields,
                    format!("old answers JSON, new does not: {e}"),
                );
                return;
            }
            None => {
                miss(Aspect::JsonFields, "new gives no body".into());
                return;
            }
        };
        let noise_doc = noise.and_then(|n| serde_json::from_str::<serde_json::Value>(n).ok());
        for (i, pointer) in self.json_fields.iter().enumerate() {
            let bit = 1u64 << i;
            let old_value = old_doc.pointer(pointer);
            if let Some(again) = &noise_doc
                && again.pointer(pointer) != old_value
            {
                self.noisy_fields.fetch_or(bit, Ordering::Relaxed);
            }
            if self.noisy_fields.load(Ordering::Relaxed) & bit != 0 {
                continue;
            }
            let new_value = new_doc.pointer(pointer);
            if new_value != old_value {
                let shown = |v: Option<&serde_json::Value>| {
                    v.map_or("nothing".to_string(), |v| v.to_string())
                };
                miss(
                    Aspect::JsonFields,
                    format!(
                        "{pointer} is {}, old has {}",
                        shown(new_value),
                        shown(old_value)
                    ),
                );
            }
        }
    }
}

fn failure_text(o: &ProbeOutcome) -> String {
    match &o.failure {
        Some(f) => format!("{}: {}", f.reason, f.detail),
        None => "no failure".into(),
    }
}

fn code_text(code: Option<u16>) -> String {
    code.map_or_else(|| "nothing".into(), |c| c.to_string())
}

fn unix_text(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map_or_else(|_| secs.to_string(), |t| t.to_string())
}
