//! What receivers (webhooks, chat, e-mail) hear about: the difference
//! between what fires and what they were last told, at most one
//! notification per `flapping.notify_every` for a flapping alert, and a
//! note on why an alert resolved when it did not resolve by itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use jiff::Timestamp;

use super::flapping::FlapDetector;
use super::model::{Alert, AlertChange, without_severity};

/// What receivers were last told about an alert.
#[derive(Debug, Clone)]
struct Notified {
    firing: bool,
    at: Timestamp,
    /// What they were told, while it fires. A resolved entry only gates
    /// the next notification (its `at`), so it lets go of the alert: after
    /// a mass recovery these entries stay for `notify_every`.
    alert: Option<Arc<Alert>>,
}

/// What receivers were told, and the changes they have yet to hear.
#[derive(Debug, Default)]
pub(super) struct ChangeLog {
    notified: BTreeMap<String, Notified>,
    pending: Vec<AlertChange>,
}

impl ChangeLog {
    /// The changes queued since the last call.
    pub(super) fn take(&mut self) -> Vec<AlertChange> {
        std::mem::take(&mut self.pending)
    }

    /// Compare what fires with what receivers were told, and queue the
    /// differences, at most one per `notify_every` for flapping alerts.
    pub(super) fn diff(
        &mut self,
        active: &BTreeMap<String, Arc<Alert>>,
        held_back: &HashMap<String, String>,
        flapping: &FlapDetector,
        now: Timestamp,
    ) {
        let gate = flapping.limits.notify_every;
        // What fires now by labels without severity, for resolutions that
        // are escalations; built on the first resolution of this round.
        let mut severities: Option<HashMap<String, String>> = None;
        let mut fps: BTreeSet<String> = active.keys().cloned().collect();
        fps.extend(
            self.notified
                .iter()
                .filter(|(_, n)| n.firing)
                .map(|(k, _)| k.clone()),
        );
        for fp in fps {
            let current = active.get(&fp);
            let told = self.notified.get(&fp);
            let told_firing = told.is_some_and(|n| n.firing);
            if current.is_some() == told_firing {
                if let (Some(a), Some(n)) = (current, self.notified.get_mut(&fp))
                    && n.alert.as_ref().is_some_and(|told| !Arc::ptr_eq(a, told))
                {
                    // Same labels and start; keep the annotations fresh for
                    // the eventual resolution.
                    n.alert = Some(a.clone());
                }
                continue;
            }
            let subject = current.or(told.and_then(|n| n.alert.as_ref()));
            let flapping = subject.is_some_and(|a| flapping.is_flapping(a));
            if flapping && let Some(n) = told {
                let since = now.duration_since(n.at);
                if since < jiff::SignedDuration::try_from(gate).unwrap_or_default() {
                    continue;
                }
            }
            match current {
                Some(a) => {
                    self.pending.push(AlertChange::Firing(Alert::clone(a)));
                    self.notified.insert(
                        fp,
                        Notified {
                            firing: true,
                            at: now,
                            alert: Some(a.clone()),
                        },
                    );
                }
                None => {
                    let Some(told) = self.notified.get(&fp).and_then(|n| n.alert.clone()) else {
                        continue;
                    };
                    let note = held_back.get(told.label("service")).cloned().or_else(|| {
                        let by_key = severities.get_or_insert_with(|| severity_by_key(active));
                        by_key
                            .get(&without_severity(&told))
                            .map(|severity| format!("resolved: continues at severity {severity}"))
                    });
                    let Some(n) = self.notified.get_mut(&fp) else {
                        continue;
                    };
                    n.firing = false;
                    n.at = now;
                    n.alert = None;
                    self.pending.push(AlertChange::Resolved {
                        alert: Arc::unwrap_or_clone(told),
                        ended_at: now,
                        note,
                    });
                }
            }
        }
        // Resolved entries are only kept while they can still gate a
        // flapping alert.
        let keep = jiff::SignedDuration::try_from(gate).unwrap_or_default();
        self.notified
            .retain(|_, n| n.firing || now.duration_since(n.at) < keep);
    }
}

/// The severity of each alert firing now, by its labels without
/// severity: when the same alert fires again at another severity (a
/// certificate closer to expiry), the old one resolved because of that.
fn severity_by_key(active: &BTreeMap<String, Arc<Alert>>) -> HashMap<String, String> {
    active
        .values()
        .map(|b| (without_severity(b), b.label("severity").to_string()))
        .collect()
}
