//! The verification round of a cutover: when the window ends, the
//! scheduler probes every check of the service at once (an extra slot),
//! and the first result of each check from the window's end on is the
//! round. When every check has answered, or the round's time is up, the
//! round is recorded in the store as the cutover's verification: passed
//! when every check succeeded, otherwise with the failing checks.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::config::Service;
use crate::store::VerificationRecord;

/// Slack on top of a check's interval and timeout for its round result
/// to arrive: a probe slot can start a little late under load.
const ROUND_SLACK: Duration = Duration::from_secs(10);

/// What a check answered in the round: `None` not yet, `Some(None)`
/// succeeded, `Some(Some(reason))` failed.
type Answer = Option<Option<String>>;

#[derive(Debug)]
struct Round {
    reference: String,
    /// After this the checks that have not answered count as failing.
    deadline: Timestamp,
    answers: Vec<Answer>,
    checks: Vec<String>,
}

/// The rounds under way and the cutovers whose round is recorded, by
/// service id (so a reload, which renumbers services, keeps them).
#[derive(Debug, Default)]
pub struct Verifications {
    rounds: HashMap<String, Round>,
    done: HashSet<(String, String)>,
}

/// How long after a window's end a check's first result still belongs to
/// the round: one interval and timeout of the slowest check, plus slack.
fn round_length(service: &Service) -> SignedDuration {
    let longest = service
        .checks
        .iter()
        .map(|c| c.interval + c.timeout)
        .max()
        .unwrap_or_default();
    crate::config::migration::signed(longest + ROUND_SLACK)
}

impl Verifications {
    /// A result of check `ci` of `service`, probed at `at`. Returns the
    /// round's record when this result completes it.
    pub fn observe(
        &mut self,
        service: &Service,
        ci: usize,
        at: Timestamp,
        failure: Option<&str>,
    ) -> Option<VerificationRecord> {
        let length = round_length(service);
        let m = service
            .migrations
            .iter()
            .find(|m| m.cutover.end <= at && at < m.cutover.end + length)?;
        let key = (service.id.clone(), m.cutover.reference.clone());
        if self.done.contains(&key) {
            return None;
        }
        let round = self
            .rounds
            .entry(service.id.clone())
            .or_insert_with(|| Round {
                reference: m.cutover.reference.clone(),
                deadline: m.cutover.end + length,
                answers: vec![None; service.checks.len()],
                checks: service.checks.iter().map(|c| c.id.clone()).collect(),
            });
        if round.reference != m.cutover.reference || round.answers.len() != service.checks.len() {
            return None;
        }
        let answer = round.answers.get_mut(ci)?;
        if answer.is_none() {
            *answer = Some(failure.map(|f| f.to_string()));
        }
        if round.answers.iter().all(Option::is_some) {
            let round = self.rounds.remove(&service.id)?;
            self.done.insert(key);
            return Some(record(&service.id, round, at));
        }
        None
    }

    /// Rounds whose time is up at `now`, recorded with the checks that did
    /// not answer as failing.
    pub fn expire(&mut self, now: Timestamp) -> Vec<VerificationRecord> {
        let due: Vec<String> = self
            .rounds
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(s, _)| s.clone())
            .collect();
        due.into_iter()
            .filter_map(|service| {
                let round = self.rounds.remove(&service)?;
                self.done.insert((service.clone(), round.reference.clone()));
                let at = round.deadline;
                Some(record(&service, round, at))
            })
            .collect()
    }
}

fn record(service: &str, round: Round, at: Timestamp) -> VerificationRecord {
    let failing: Vec<String> = round
        .checks
        .iter()
        .zip(&round.answers)
        .filter_map(|(check, answer)| match answer {
            Some(None) => None,
            Some(Some(reason)) => Some(format!("{check}: {reason}")),
            None => Some(format!("{check}: no result in the verification round")),
        })
        .collect();
    VerificationRecord {
        service: service.to_string(),
        reference: round.reference,
        at,
        passed: failing.is_empty(),
        failing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const YAML: &str = "services:\n  - id: portal\n    migration:\n      from: old\n      to: new\n      cutover: { start: 2026-12-05T22:00:00Z, end: 2026-12-06T06:00:00Z, reference: CHG-1042 }\n    checks:\n      - id: home\n        interval: 30s\n        tcp: { target: 127.0.0.1:9 }\n      - id: login\n        interval: 30s\n        tcp: { target: 127.0.0.1:9 }\n";

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_result_of_every_check_after_the_window_is_the_round() {
        let config = Config::from_str("t.yaml", YAML).unwrap();
        let s = &config.services[0];
        let mut v = Verifications::default();
        // Before the end: not part of the round.
        assert!(
            v.observe(s, 0, ts("2026-12-06T05:59:59Z"), Some("refused"))
                .is_none()
        );
        assert!(v.observe(s, 0, ts("2026-12-06T06:00:00Z"), None).is_none());
        // A later result of the same check does not replace its answer.
        assert!(
            v.observe(s, 0, ts("2026-12-06T06:00:01Z"), Some("timeout"))
                .is_none()
        );
        let done = v
            .observe(s, 1, ts("2026-12-06T06:00:00.020Z"), Some("refused"))
            .expect("every check answered");
        assert_eq!(done.reference, "CHG-1042");
        assert!(!done.passed);
        assert_eq!(done.failing, vec!["login: refused".to_string()]);
        // Recorded once.
        assert!(v.observe(s, 1, ts("2026-12-06T06:00:05Z"), None).is_none());
    }

    #[test]
    fn a_check_that_does_not_answer_in_time_fails_the_round() {
        let config = Config::from_str("t.yaml", YAML).unwrap();
        let s = &config.services[0];
        let mut v = Verifications::default();
        assert!(v.observe(s, 0, ts("2026-12-06T06:00:00Z"), None).is_none());
        assert!(v.expire(ts("2026-12-06T06:00:30Z")).is_empty());
        let done = v.expire(ts("2026-12-06T06:01:00Z"));
        assert_eq!(done.len(), 1);
        assert_eq!(
            done[0].failing,
            vec!["login: no result in the verification round".to_string()]
        );
    }
}
