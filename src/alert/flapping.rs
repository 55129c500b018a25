//! Flapping: a check that changes state (up <-> down) more than
//! `flapping.changes` times within `flapping.window`. The rules keep its
//! alerts firing until it settles and limit notifications about it; this
//! file only counts the changes and marks the alerts.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use jiff::Timestamp;

use super::config::AlertingSpec;
use super::model::Alert;
use super::view::AlertView;
use crate::sla::CheckState;

/// The `flapping:` settings of the `alerting:` section.
#[derive(Debug, Clone)]
pub(super) struct FlapLimits {
    changes: u32,
    window: Duration,
    /// At most one notification per alert this often while it flaps.
    pub(super) notify_every: Duration,
}

impl FlapLimits {
    pub(super) fn from_spec(spec: &AlertingSpec) -> FlapLimits {
        FlapLimits {
            changes: spec.flapping.changes.value,
            window: spec.flapping.window.value.0,
            notify_every: spec.flapping.notify_every.value.0,
        }
    }
}

/// State changes of one check within the flapping window.
#[derive(Debug, Default)]
struct FlapTrack {
    last: Option<CheckState>,
    /// Boxed, and made at the first change: most checks never change
    /// state, and an empty deque is 32 bytes on each of 10,000 checks.
    #[allow(clippy::box_collection)]
    changes: Option<Box<VecDeque<Timestamp>>>,
    /// The evaluation that last saw the check; older entries belong to
    /// checks a reload removed.
    seen: u64,
}

/// The flap table's key, (service, check), looked up as a pair of `&str`:
/// every check is looked up on every tick, and building two `String`s
/// per lookup would be most of the rules' work at 10,000 checks.
trait CheckKey {
    fn parts(&self) -> (&str, &str);
}

/// An owned key: both ids in one allocation (two `String`s were two
/// allocations and 48 bytes in every entry), split where the service's
/// id ends.
#[derive(Debug, PartialEq, Eq)]
struct FlapKey {
    ids: Box<str>,
    split: u32,
}

impl FlapKey {
    fn new(service: &str, check: &str) -> FlapKey {
        FlapKey {
            ids: [service, check].concat().into(),
            split: service.len() as u32,
        }
    }
}

impl CheckKey for FlapKey {
    fn parts(&self) -> (&str, &str) {
        self.ids.split_at(self.split as usize)
    }
}

// As its parts, like the borrowed form it is looked up by.
impl Hash for FlapKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.parts().hash(h)
    }
}

impl CheckKey for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        *self
    }
}

// Hashes as the pair of parts, whichever key it is, which `Borrow` requires.
impl Hash for dyn CheckKey + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.parts().hash(h)
    }
}

impl PartialEq for dyn CheckKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn CheckKey + '_ {}

impl<'a> Borrow<dyn CheckKey + 'a> for FlapKey {
    fn borrow(&self) -> &(dyn CheckKey + 'a) {
        self
    }
}

/// Recent state changes of every check, evaluation after evaluation.
#[derive(Debug)]
pub(super) struct FlapDetector {
    pub(super) limits: FlapLimits,
    flaps: HashMap<FlapKey, FlapTrack>,
    /// Counts evaluations, to sweep `flaps` without a set of the keys seen.
    evaluations: u64,
}

impl FlapDetector {
    pub(super) fn new(limits: FlapLimits) -> FlapDetector {
        FlapDetector {
            limits,
            flaps: HashMap::new(),
            evaluations: 0,
        }
    }

    /// Checks changing state too often right now, as (service, check).
    pub(super) fn flapping_checks(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .flaps
            .iter()
            .filter(|(_, f)| self.too_many(f))
            .map(|(k, _)| {
                let (service, check) = k.parts();
                (service.to_string(), check.to_string())
            })
            .collect();
        out.sort();
        out
    }

    /// Record the state of every check in the view; checks no longer in
    /// it are forgotten.
    pub(super) fn track(&mut self, view: &AlertView) {
        let window = jiff::SignedDuration::try_from(self.limits.window).unwrap_or_default();
        self.evaluations += 1;
        let seen = self.evaluations;
        for s in &view.services {
            for c in &s.checks {
                let key: (&str, &str) = (&s.id, &c.id);
                let key = &key as &dyn CheckKey;
                if !self.flaps.contains_key(key) {
                    self.flaps
                        .insert(FlapKey::new(&s.id, &c.id), FlapTrack::default());
                }
                let Some(track) = self.flaps.get_mut(key) else {
                    continue;
                };
                track.seen = seen;
                if c.state != CheckState::Unknown {
                    if track.last.is_some_and(|l| l != c.state) {
                        track.changes.get_or_insert_default().push_back(view.now);
                    }
                    track.last = Some(c.state);
                }
                if let Some(changes) = &mut track.changes {
                    while changes
                        .front()
                        .is_some_and(|t| view.now.duration_since(*t) > window)
                    {
                        changes.pop_front();
                    }
                    if changes.is_empty() {
                        track.changes = None;
                    }
                }
            }
        }
        self.flaps.retain(|_, t| t.seen == seen);
    }

    pub(super) fn check_flapping(&self, service: &str, check: &str) -> bool {
        self.flaps
            .get(&(service, check) as &dyn CheckKey)
            .is_some_and(|f| self.too_many(f))
    }

    /// Whether the check an alert is about is flapping (never for alerts
    /// not about a check).
    pub(super) fn is_flapping(&self, a: &Alert) -> bool {
        let check = a.label("check");
        !check.is_empty() && self.check_flapping(a.label("service"), check)
    }

    fn too_many(&self, f: &FlapTrack) -> bool {
        f.changes.as_ref().map_or(0, |c| c.len()) > self.limits.changes as usize
    }

    /// Say in the alert that its check flaps, and what that means for
    /// whoever receives it; marking twice changes nothing.
    pub(super) fn mark(&self, a: &mut Alert) {
        if a.annotations.get("flapping").is_some_and(|f| f == "true") {
            return;
        }
        a.annotations.insert("flapping".into(), "true".into());
        if let Some(s) = a.annotations.get_mut("summary") {
            s.push_str(" (flapping)");
        }
        let note = format!(
            " The check is flapping: it changed state more than {} times in {}; this alert stays firing until it settles, and notifications are limited to one per {}.",
            self.limits.changes,
            crate::config::Dur(self.limits.window),
            crate::config::Dur(self.limits.notify_every)
        );
        a.annotations
            .entry("description".into())
            .or_default()
            .push_str(&note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_by_its_two_ids_and_never_by_another_split_of_the_same_text() {
        let mut flaps = HashMap::new();
        flaps.insert(FlapKey::new("ab", "c"), 1);
        flaps.insert(FlapKey::new("a", "bc"), 2);
        let get = |s: &str, c: &str| flaps.get(&(s, c) as &dyn CheckKey).copied();
        assert_eq!(get("ab", "c"), Some(1));
        assert_eq!(get("a", "bc"), Some(2));
        assert_eq!(get("abc", ""), None);
    }
}
