//! Per-check series, kept in one compact cell per check rather than in
//! prometheus-client families: with 10,000 checks that is about 250,000
//! series, and a family keeps a hash entry, a label set and an `Arc` per
//! series. A cell holds plain numbers behind one lock, its labels rendered
//! once; a probe updates it with one lock, a scrape reads it line by line.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::text::{Chunks, Desc, Format, Kind, labels, le_label, one_label, push_float, push_int};
use super::{LATENCY_BUCKETS, Table, lock, names};
use crate::probe::parity::{Aspect, ParityResult};
use crate::probe::phase;
use crate::probe::{FailureReason, ProbeOutcome};

/// Label strings of the closed sets, derived once from the lists they
/// name so that they never drift from them.
static PHASE_LABELS: LazyLock<[Box<str>; phase::ALL.len()]> =
    LazyLock::new(|| one_label("phase", phase::ALL));
static ASPECT_LABELS: LazyLock<[Box<str>; Aspect::ALL.len()]> =
    LazyLock::new(|| one_label("aspect", Aspect::ALL.map(|a| a.as_str())));
static REASON_LABELS: LazyLock<[Box<str>; FailureReason::ALL.len()]> =
    LazyLock::new(|| one_label("reason", FailureReason::ALL.map(|r| r.as_str())));
/// `le` labels in the text format, then in OpenMetrics.
static LE_LABELS: LazyLock<[[Box<str>; LATENCY_BUCKETS.len()]; 2]> = LazyLock::new(|| {
    [
        LATENCY_BUCKETS.map(|b| le_label(b, Format::Text)),
        LATENCY_BUCKETS.map(|b| le_label(b, Format::OpenMetrics)),
    ]
});

/// What one check's series say.
#[derive(Debug, Default, Clone)]
struct Values {
    /// At least one probe finished: the last-result gauges exist.
    probed: bool,
    success: bool,
    duration: f64,
    /// Observations per latency bucket (not cumulative); the last slot is
    /// above the largest bound. 32 bits last a check at a 1 s interval
    /// 136 years; they halve the cell.
    latency: [u32; LATENCY_BUCKETS.len() + 1],
    latency_sum: f64,
    ok: u64,
    failed: u64,
    phases: [f64; phase::ALL.len()],
    /// Which phases the last probe reported (bit i: `phase::ALL[i]`).
    present: u16,
    reasons: [u32; FailureReason::ALL.len()],
    http_status: Option<u16>,
    sip_code: Option<u16>,
    cert_not_after: Option<i64>,
    errors: u64,
    /// Boxed: only `compare_with` checks have it.
    parity: Option<Box<ParityValues>>,
}

/// The parity series of a `compare_with` check.
#[derive(Debug, Default, Clone)]
struct ParityValues {
    /// The last judged probe matched; `None` until one was judged.
    matched: Option<bool>,
    compare_up: bool,
    /// The aspects the check compares (bit per `Aspect::bit`).
    compared: u16,
    mismatches: [u32; Aspect::ALL.len()],
    latency_ratio: Option<f64>,
    similarity: Option<f64>,
}

impl ParityValues {
    fn observe(&mut self, p: &ParityResult) {
        self.compare_up = p.old_up;
        self.compared = p.compared;
        // A tick without the old side up judges nothing: the last
        // verdict and ratios stand, and `compare_up` says why.
        if p.matched.is_none() {
            return;
        }
        self.matched = p.matched;
        for m in &p.mismatches {
            if let Some(i) = Aspect::ALL.iter().position(|a| *a == m.aspect) {
                self.mismatches[i] = self.mismatches[i].wrapping_add(1);
            }
        }
        self.latency_ratio = p.latency_ratio.or(self.latency_ratio);
        self.similarity = p.similarity.or(self.similarity);
    }
}

#[derive(Debug)]
struct Cell {
    kind: &'static str,
    /// `service="…",check="…",kind="…"`.
    labels: Box<str>,
    values: Mutex<Values>,
}

impl Cell {
    fn values(&self) -> std::sync::MutexGuard<'_, Values> {
        lock(&self.values)
    }
}

/// A check's series, held by its probe task.
#[derive(Debug, Clone)]
pub struct CheckMetrics(Arc<Cell>);

impl CheckMetrics {
    /// Record one probe outcome.
    pub fn observe(&self, o: &ProbeOutcome) {
        let secs = o.duration.as_secs_f64();
        let mut v = self.0.values();
        v.probed = true;
        v.success = o.success();
        v.duration = secs;
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        v.latency[bucket] = v.latency[bucket].wrapping_add(1);
        v.latency_sum += secs;
        // Phases not seen this time are dropped, so a stale connect time
        // from an earlier probe never sits beside a failed DNS lookup.
        v.present = 0;
        for (name, took) in &o.phases {
            if let Some(i) = phase::ALL.iter().position(|p| p == name) {
                v.present |= 1 << i;
                v.phases[i] = took.as_secs_f64();
            }
        }
        match o.reason() {
            Some(reason) => {
                v.failed += 1;
                if let Some(i) = FailureReason::ALL.iter().position(|r| *r == reason) {
                    v.reasons[i] = v.reasons[i].wrapping_add(1);
                }
            }
            None => v.ok += 1,
        }
        if o.http_status.is_some() {
            v.http_status = o.http_status;
        }
        if o.sip_code.is_some() {
            v.sip_code = o.sip_code;
        }
        if o.cert_not_after.is_some() {
            v.cert_not_after = o.cert_not_after;
        }
        match &o.parity {
            Some(p) => v.parity.get_or_insert_default().observe(p),
            None => v.parity = None,
        }
    }

    /// Count a probe the monitor itself could not run.
    pub fn monitor_error(&self) {
        self.0.values().errors += 1;
    }
}

/// Service and check id.
type Key = (Arc<str>, Arc<str>);

/// Every check's cell, by service and check id.
#[derive(Debug, Default)]
pub struct CheckTable {
    cells: Table<Key, Cell>,
    /// Monitor errors of checks no longer in the table, by kind: the
    /// per-kind total adds them, so it never goes down when a reload
    /// removes a check (Prometheus would read that as a reset).
    removed_errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl CheckTable {
    /// The series of a check, made on first use. A check whose kind changed
    /// starts afresh (its old series carried the old `kind` label).
    pub fn register(
        &self,
        service: &Arc<str>,
        check: &Arc<str>,
        kind: &'static str,
    ) -> CheckMetrics {
        let mut cells = self.cells.write();
        let key = (service.clone(), check.clone());
        if let Some(c) = cells.get(&key).filter(|c| c.kind == kind) {
            return CheckMetrics(c.clone());
        }
        let cell = Arc::new(Cell {
            kind,
            labels: labels(&[("service", service), ("check", check), ("kind", kind)]),
            values: Mutex::default(),
        });
        if let Some(old) = cells.insert(key, cell.clone()) {
            self.carry_errors(&old);
        }
        CheckMetrics(cell)
    }

    /// Drop the series of every check `keep` says no to.
    pub fn retain(&self, mut keep: impl FnMut(&str, &str, &'static str) -> bool) {
        self.cells.write().retain(|(s, c), cell| {
            let kept = keep(s, c, cell.kind);
            if !kept {
                self.carry_errors(cell);
            }
            kept
        });
    }

    fn carry_errors(&self, cell: &Cell) {
        let errors = cell.values().errors;
        if errors > 0 {
            *lock(&self.removed_errors).entry(cell.kind).or_default() += errors;
        }
    }

    /// Write every per-check family; `compact` leaves out the latency
    /// histogram's finite buckets (`metrics.detail: compact`).
    pub fn render(&self, w: &mut Chunks<'_>, format: Format, compact: bool) {
        let cells = self.cells.snapshot();
        let le: &[Box<str>] = match (compact, format) {
            (true, _) => &[],
            (false, Format::Text) => &LE_LABELS[0],
            (false, Format::OpenMetrics) => &LE_LABELS[1],
        };
        let mut kind_errors = lock(&self.removed_errors).clone();
        for (family, desc) in FAMILIES {
            desc.header(&mut w.buf, format);
            for cell in &cells {
                let v = cell.values();
                write_family(&mut w.buf, family, desc, &cell.labels, &v, le, format);
                if let Family::Errors = family {
                    *kind_errors.entry(cell.kind).or_default() += v.errors;
                }
                drop(v);
                w.maybe_flush();
                if w.closed {
                    return;
                }
            }
        }
        // Every kind that has a check, at zero from the start: the
        // per-check errors series appears only at its first error, which
        // `rate()` and `increase()` cannot see.
        let d = &names::PROBE_KIND_ERRORS;
        d.header(&mut w.buf, format);
        for (kind, n) in kind_errors {
            d.int(&mut w.buf, &labels(&[("kind", kind)]), "", n as i64);
        }
    }
}

#[derive(Clone, Copy)]
enum Family {
    Success,
    Duration,
    Phases,
    Latency,
    Probes,
    Failures,
    HttpStatus,
    SipCode,
    CertNotAfter,
    Errors,
    ParityMatch,
    ParityMismatches,
    ParityLatencyRatio,
    ParitySimilarityRatio,
    ParityCompareUp,
}

/// The per-check families, in the order they are exposed.
const FAMILIES: [(Family, &Desc); 15] = [
    (Family::Success, &names::PROBE_SUCCESS),
    (Family::Duration, &names::PROBE_DURATION),
    (Family::Phases, &names::PROBE_PHASE_DURATION),
    (Family::Latency, &names::PROBE_LATENCY),
    (Family::Probes, &names::PROBES),
    (Family::Failures, &names::PROBE_FAILURES),
    (Family::HttpStatus, &names::HTTP_STATUS_CODE),
    (Family::SipCode, &names::SIP_RESPONSE_CODE),
    (Family::CertNotAfter, &names::TLS_CERT_NOT_AFTER),
    (Family::Errors, &names::PROBE_ERRORS),
    (Family::ParityMatch, &names::PARITY_MATCH),
    (Family::ParityMismatches, &names::PARITY_MISMATCHES),
    (Family::ParityLatencyRatio, &names::PARITY_LATENCY_RATIO),
    (
        Family::ParitySimilarityRatio,
        &names::PARITY_SIMILARITY_RATIO,
    ),
    (Family::ParityCompareUp, &names::PARITY_COMPARE_UP),
];

/// `service="…",check="…"`: the check's labels without `kind`, as the
/// parity families are documented (kind values are plain words, so the
/// last `,kind="` is where it starts).
fn without_kind(l: &str) -> &str {
    l.rfind(",kind=\"").map_or(l, |i| &l[..i])
}

/// One cell's lines of one family.
fn write_family(
    out: &mut String,
    family: Family,
    d: &Desc,
    l: &str,
    v: &Values,
    le: &[Box<str>],
    format: Format,
) {
    match family {
        Family::Success if v.probed => d.int(out, l, "", v.success as i64),
        Family::Duration if v.probed => d.float(out, l, "", v.duration),
        Family::Phases => {
            for (i, p) in PHASE_LABELS.iter().enumerate() {
                if v.present & (1 << i) != 0 {
                    d.float(out, l, p, v.phases[i]);
                }
            }
        }
        Family::Latency => write_histogram(out, d, l, v, le, format),
        Family::Probes => {
            d.int(out, l, "result=\"success\"", v.ok as i64);
            d.int(out, l, "result=\"failure\"", v.failed as i64);
        }
        Family::Failures => {
            for (i, n) in v.reasons.iter().enumerate() {
                if *n > 0 {
                    d.int(out, l, &REASON_LABELS[i], *n as i64);
                }
            }
        }
        Family::HttpStatus => {
            if let Some(code) = v.http_status {
                d.int(out, l, "", code as i64);
            }
        }
        Family::SipCode => {
            if let Some(code) = v.sip_code {
                d.int(out, l, "", code as i64);
            }
        }
        Family::CertNotAfter => {
            if let Some(at) = v.cert_not_after {
                d.int(out, l, "", at);
            }
        }
        Family::Errors if v.errors > 0 => d.int(out, l, "", v.errors as i64),
        Family::ParityMatch
        | Family::ParityMismatches
        | Family::ParityLatencyRatio
        | Family::ParitySimilarityRatio
        | Family::ParityCompareUp => {
            if let Some(p) = &v.parity {
                write_parity(out, family, d, without_kind(l), p);
            }
        }
        _ => {}
    }
}

fn write_parity(out: &mut String, family: Family, d: &Desc, l: &str, p: &ParityValues) {
    match family {
        Family::ParityMatch => {
            if let Some(m) = p.matched {
                d.int(out, l, "", m as i64);
            }
        }
        Family::ParityMismatches => {
            for (i, n) in p.mismatches.iter().enumerate() {
                if p.compared & Aspect::ALL[i].bit() != 0 || *n > 0 {
                    d.int(out, l, &ASPECT_LABELS[i], *n as i64);
                }
            }
        }
        Family::ParityLatencyRatio => {
            if let Some(r) = p.latency_ratio {
                d.float(out, l, "", r);
            }
        }
        Family::ParitySimilarityRatio => {
            if let Some(r) = p.similarity {
                d.float(out, l, "", r);
            }
        }
        Family::ParityCompareUp => d.int(out, l, "", p.compare_up as i64),
        _ => {}
    }
}

/// Buckets, `+Inf`, `_sum`, `_count`, in the order each format's
/// prometheus-client encoder uses. `le` has the finite buckets' labels, or
/// none in compact mode; `+Inf` always counts every observation.
fn write_histogram(
    out: &mut String,
    d: &Desc,
    l: &str,
    v: &Values,
    le: &[Box<str>],
    format: Format,
) {
    debug_assert_eq!(d.kind, Kind::Histogram);
    let count: u64 = v.latency.iter().map(|n| u64::from(*n)).sum();
    let sum_count = |out: &mut String| {
        d.start(out, "_sum", l, "");
        push_float(out, v.latency_sum);
        out.push('\n');
        d.start(out, "_count", l, "");
        push_int(out, count);
        out.push('\n');
    };
    if format == Format::OpenMetrics {
        sum_count(out);
    }
    let mut cumulative = 0u64;
    for (i, bound) in le.iter().enumerate() {
        cumulative += u64::from(v.latency[i]);
        d.start(out, "_bucket", l, bound);
        push_int(out, cumulative);
        out.push('\n');
    }
    d.start(out, "_bucket", l, "le=\"+Inf\"");
    push_int(out, count);
    out.push('\n');
    if format == Format::Text {
        sum_count(out);
    }
}
