//! `compare:` as written and as compiled, and the old side of a check: the
//! check's own spec compiled again for the `compare_with` target. Every
//! problem is reported at its place when the configuration loads.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use super::{Aspect, DEFAULT_MIN_LATENCY_DIFFERENCE, DEFAULT_SIMILARITY, KindAspects};
use crate::config::{Dur, Location, Spanned, Validator};
use crate::probe::Prober;

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

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BodyMode {
    Similarity(f64),
    Exact,
}

/// A compiled `compare:` block: what parity looks at, for one check.
#[derive(Debug)]
pub struct Comparison {
    /// Bit per [`Aspect`] compared.
    pub(super) aspects: u16,
    pub(super) body: BodyMode,
    pub(super) json_fields: Box<[String]>,
    pub(super) max_latency_ratio: f64,
    pub(super) min_latency_difference: Duration,
    /// Every `ignore` pattern in one alternation: one pass per body.
    pub(super) ignore: Option<Regex>,
    /// JSON fields learned as volatile (bit i: `json_fields[i]`), kept
    /// across ticks: a field that once differed between two old answers
    /// carries a value of the moment, and two answers within the same
    /// second may not show it again.
    pub(super) noisy_fields: AtomicU64,
}

impl Comparison {
    pub(super) fn has(&self, a: Aspect) -> bool {
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
        match crate::probe::tcp::compile_regex("compare: ignore", re, v) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::parity::HTTP;

    #[test]
    fn every_aspect_off_is_refused() {
        let spec: CompareSpec = serde_saphyr::from_str("{ status: false, body: off }").unwrap();
        let mut v = Validator::new("checks.yaml".into());
        assert!(compile(HTTP, Some(&spec), Location::new(4, 11), &mut v).is_none());
        assert!(
            v.issues[0]
                .to_string()
                .starts_with("checks.yaml:4:11: compare: every aspect is turned off"),
            "{:?}",
            v.issues
        );
    }
}
