//! What a tick's answers say: the new side held against the old one's, on
//! each aspect the check compares, with the old side's two answers telling
//! volatile parts from real differences.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::compile::{BodyMode, Comparison};
use super::similarity::{self, Shingles};
use super::{Aspect, Mismatch, ParityResult};
use crate::probe::ProbeOutcome;

/// A new certificate may expire this much before the old one and still
/// match: certificates issued a few hours apart are equally good.
const EXPIRY_SLACK_SECONDS: i64 = 86_400;

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
                                    crate::probe::net::excerpt(new_text.as_bytes(), 80)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Location, Validator};
    use crate::probe::parity::compile::compile;
    use crate::probe::parity::{CompareSpec, DNS, HTTP, KindAspects, Observed};

    fn comparison(kind: KindAspects, yaml: &str) -> Comparison {
        let spec: CompareSpec = serde_saphyr::from_str(yaml).expect("yaml parses");
        let mut v = Validator::new("checks.yaml".into());
        let c = compile(kind, Some(&spec), Location::UNKNOWN, &mut v);
        assert!(v.is_ok(), "{:?}", v.issues);
        c.expect("compiles")
    }

    fn answer(ms: u64, body: Option<&str>, answers: Option<&[&str]>) -> ProbeOutcome {
        ProbeOutcome {
            duration: Duration::from_millis(ms),
            http_status: body.map(|_| 200),
            observed: Some(Box::new(Observed {
                body: body.map(|b| b.as_bytes().to_vec()),
                answers: answers.map(|a| a.iter().map(|s| s.to_string()).collect()),
                ..Observed::default()
            })),
            ..ProbeOutcome::default()
        }
    }

    #[test]
    fn a_slower_new_side_within_the_minimum_difference_is_not_a_latency_mismatch() {
        let c = comparison(HTTP, "{ max_latency_ratio: 1.5 }");
        let r = c.compare(
            &answer(9, Some("a"), None),
            &[answer(2, Some("a"), None), answer(2, Some("a"), None)],
        );
        assert_eq!(r.matched, Some(true), "{r:?}");
        assert!(r.latency_ratio.is_some_and(|x| x > 4.0));
        let r = c.compare(
            &answer(90, Some("a"), None),
            &[answer(20, Some("a"), None), answer(20, Some("a"), None)],
        );
        assert_eq!(r.mismatches[0].aspect, Aspect::Latency, "{r:?}");
    }

    #[test]
    fn round_robin_answers_of_the_old_server_accept_any_of_them() {
        let c = comparison(DNS, "{}");
        let old = [
            answer(1, None, Some(&["A 192.0.2.10"])),
            answer(1, None, Some(&["A 192.0.2.11"])),
        ];
        let r = c.compare(&answer(1, None, Some(&["A 192.0.2.11"])), &old);
        assert_eq!(r.matched, Some(true), "{r:?}");
        let r = c.compare(&answer(1, None, Some(&["A 198.51.100.1"])), &old);
        assert_eq!(r.mismatches[0].aspect, Aspect::Answers, "{r:?}");
        // Two equal old answers ask for exactly that set.
        let same = [
            answer(1, None, Some(&["A 192.0.2.10", "A 192.0.2.11"])),
            answer(1, None, Some(&["A 192.0.2.10", "A 192.0.2.11"])),
        ];
        let r = c.compare(&answer(1, None, Some(&["A 192.0.2.10"])), &same);
        assert_eq!(r.matched, Some(false), "{r:?}");
    }

    #[test]
    fn a_json_field_once_seen_volatile_stays_volatile() {
        let c = comparison(HTTP, "{ body: off, json_fields: [/time, /version] }");
        let doc = |t: u32, v: &str| format!("{{\"time\":{t},\"version\":\"{v}\"}}");
        let r = c.compare(
            &answer(1, Some(&doc(3, "2")), None),
            &[
                answer(1, Some(&doc(1, "2")), None),
                answer(1, Some(&doc(2, "2")), None),
            ],
        );
        assert_eq!(r.matched, Some(true), "{r:?}");
        // The next two old answers share a time; it is still noise.
        let r = c.compare(
            &answer(1, Some(&doc(9, "3")), None),
            &[
                answer(1, Some(&doc(5, "2")), None),
                answer(1, Some(&doc(5, "2")), None),
            ],
        );
        assert_eq!(r.mismatches.len(), 1, "{r:?}");
        assert!(r.mismatches[0].detail.starts_with("/version"), "{r:?}");
    }

    #[test]
    fn the_summary_names_the_verdict_and_each_mismatch() {
        let c = comparison(HTTP, "{ max_latency_ratio: 1.5 }");
        let r = c.compare(
            &answer(90, Some("b"), None),
            &[answer(20, Some("a"), None), answer(20, Some("a"), None)],
        );
        let lines = r.summary();
        assert_eq!(lines[0], "parity: MISMATCH (2 aspects)", "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("  body: body 0.0 % like old's")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("  latency: new took 90 ms, 4.50 times")),
            "{lines:?}"
        );
        let none = c.compare(&answer(1, Some("a"), None), &[]);
        assert!(
            none.summary()[0].contains("not judged"),
            "{:?}",
            none.summary()
        );
    }
}
