//! Incidents: each continuous spell of Down is one incident, from the
//! instant the service went Down to the instant it left Down (open while
//! it is still Down), with the checks and first failure that caused it.
//!
//! Incidents are derived from the timeline, never kept alongside it, so a
//! back-dated rewrite cannot leave them out of step; [`diff_incidents`]
//! turns a rewrite into opened/updated/retracted incidents for the live
//! engine.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::range::ms;
use super::state::ServiceState;
use super::timeline::{CheckCause, ServiceTransition, StatePoint, Timeline};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub start: Timestamp,
    /// `None` while the service is still Down.
    pub end: Option<Timestamp>,
    /// The checks that took the service Down, with their first failures.
    pub cause: Vec<CheckCause>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.end.is_none()
    }

    /// Milliseconds from start to end, or to `now` while open.
    pub fn duration_ms(&self, now: Timestamp) -> i64 {
        (ms(self.end.unwrap_or(now)) - ms(self.start)).max(0)
    }

    fn overlaps_or_touches(&self, other: &Incident) -> bool {
        let ends_after = |i: &Incident, t: Timestamp| i.end.is_none_or(|e| e >= t);
        ends_after(self, other.start) && ends_after(other, self.start)
    }
}

/// Every incident in a timeline.
pub fn incidents(timeline: &Timeline) -> Vec<Incident> {
    from_points(timeline.points().iter().map(|p| (p.at, p.state, &p.cause)))
}

/// The incidents that end at or after `t`, or are still open: the only
/// ones a rewrite from `t` can change.
pub fn incidents_since(timeline: &Timeline, t: Timestamp) -> Vec<Incident> {
    let points: &[StatePoint] = timeline.points();
    // Include the spell in force just before `t`, which may extend past
    // it; an incident can reach across Unknown, so go back to where the
    // run of Down and Unknown began.
    let mut i = points.partition_point(|p| p.at < t).saturating_sub(1);
    while i > 0 && matches!(points[i].state, ServiceState::Down | ServiceState::Unknown) {
        i -= 1;
    }
    from_points(points[i..].iter().map(|p| (p.at, p.state, &p.cause)))
        .into_iter()
        .filter(|inc| inc.end.is_none_or(|e| e >= t))
        .collect()
}

/// Incidents from stored transitions (in time order), e.g. for reports.
pub fn incidents_from_transitions(transitions: &[ServiceTransition]) -> Vec<Incident> {
    from_points(transitions.iter().map(|t| (t.at, t.to, &t.cause)))
}

/// Each spell of Down is one incident. A spell of Unknown inside it (the
/// monitor was not running, or could not see) does not split it: if the
/// service is Down again when we see it next, it is the same incident; if
/// it is up, the incident ended when we lost sight of it. An incident
/// whose service has been Unknown since stays open: it is not known to
/// have ended.
fn from_points<'a>(
    points: impl Iterator<Item = (Timestamp, ServiceState, &'a Vec<CheckCause>)>,
) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    let mut blind_since: Option<Timestamp> = None;
    for (at, state, cause) in points {
        let open = out.last_mut().filter(|i| i.end.is_none());
        match (open, state) {
            (Some(_), ServiceState::Down) => blind_since = None,
            (Some(_), ServiceState::Unknown) => {
                blind_since.get_or_insert(at);
            }
            (Some(open), _) => open.end = Some(blind_since.take().unwrap_or(at)),
            (None, ServiceState::Down) => out.push(Incident {
                start: at,
                end: None,
                cause: cause.clone(),
            }),
            (None, _) => {}
        }
    }
    out
}

/// How a rewrite changed the incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentChange {
    /// A new incident.
    Opened(Incident),
    /// An incident known as `before` (stored under `before.start`) is now
    /// `after`: it ended, reopened, moved its start earlier, or merged.
    Updated { before: Incident, after: Incident },
    /// An incident that turned out not to have happened this way (merged
    /// into another, or rewritten away).
    Retracted(Incident),
}

/// What changed between the incidents before and after a rewrite. An
/// incident after is paired with the first unpaired one before that it
/// overlaps or touches.
pub fn diff_incidents(before: &[Incident], after: &[Incident]) -> Vec<IncidentChange> {
    let mut old: Vec<Option<&Incident>> = before
        .iter()
        .filter(|i| !after.contains(i))
        .map(Some)
        .collect();
    let mut out = Vec::new();
    for new in after.iter().filter(|i| !before.contains(i)) {
        let paired = old
            .iter_mut()
            .find(|o| o.is_some_and(|o| o.overlaps_or_touches(new)))
            .and_then(Option::take);
        out.push(match paired {
            Some(b) => IncidentChange::Updated {
                before: b.clone(),
                after: new.clone(),
            },
            None => IncidentChange::Opened(new.clone()),
        });
    }
    out.extend(
        old.into_iter()
            .flatten()
            .cloned()
            .map(IncidentChange::Retracted),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::check::tests::t;
    use ServiceState::{Degraded, Down, Unknown, Up};

    fn timeline(points: &[(i64, ServiceState)]) -> Timeline {
        let mut tl = Timeline::new(t(points[0].0), points[0].1);
        for &(s, st) in &points[1..] {
            tl.record(t(s), st, vec![]);
        }
        tl
    }

    fn spans(v: &[Incident]) -> Vec<(Timestamp, Option<Timestamp>)> {
        v.iter().map(|i| (i.start, i.end)).collect()
    }

    #[test]
    fn each_continuous_spell_of_down_is_one_incident() {
        let tl = timeline(&[
            (0, Unknown),
            (10, Up),
            (100, Down),
            (200, Degraded),
            (300, Down),
        ]);
        let inc = incidents(&tl);
        assert_eq!(spans(&inc), vec![(t(100), Some(t(200))), (t(300), None)]);
        assert_eq!(inc[0].duration_ms(t(1000)), 100_000);
        assert_eq!(inc[1].duration_ms(t(1000)), 700_000);
        assert_eq!(incidents_from_transitions(&tl.transitions()), inc);
    }

    #[test]
    fn an_incident_spanning_a_monitor_restart_stays_one_incident() {
        let tl = timeline(&[(0, Up), (100, Down), (160, Unknown), (400, Down), (500, Up)]);
        assert_eq!(spans(&incidents(&tl)), vec![(t(100), Some(t(500)))]);
        assert_eq!(
            incidents_from_transitions(&tl.transitions()),
            incidents(&tl)
        );
    }

    #[test]
    fn incidents_since_sees_an_incident_reaching_across_a_blind_spell() {
        let tl = timeline(&[(0, Up), (100, Down), (160, Unknown), (400, Down)]);
        assert_eq!(spans(&incidents_since(&tl, t(400))), vec![(t(100), None)]);
    }

    #[test]
    fn an_incident_found_over_after_a_blind_spell_ends_where_sight_was_lost() {
        let tl = timeline(&[(0, Up), (100, Down), (160, Unknown), (400, Up)]);
        assert_eq!(spans(&incidents(&tl)), vec![(t(100), Some(t(160)))]);
        let tl = timeline(&[(0, Up), (100, Down), (160, Unknown)]);
        assert_eq!(
            spans(&incidents(&tl)),
            vec![(t(100), None)],
            "not known to have ended"
        );
    }

    #[test]
    fn incidents_since_includes_the_spell_reaching_into_the_rewrite() {
        let tl = timeline(&[(0, Up), (100, Down), (200, Up), (300, Down), (400, Up)]);
        assert_eq!(
            spans(&incidents_since(&tl, t(250))),
            vec![(t(300), Some(t(400)))]
        );
        assert_eq!(spans(&incidents_since(&tl, t(150))).len(), 2);
        assert_eq!(
            spans(&incidents_since(&tl, t(200))).len(),
            2,
            "an end at t counts"
        );
    }

    #[test]
    fn diff_reports_opened_updated_and_retracted() {
        let a = Incident {
            start: t(100),
            end: None,
            cause: vec![],
        };
        let closed = Incident {
            end: Some(t(200)),
            ..a.clone()
        };
        assert_eq!(
            diff_incidents(&[], std::slice::from_ref(&a)),
            vec![IncidentChange::Opened(a.clone())]
        );
        assert_eq!(
            diff_incidents(std::slice::from_ref(&a), std::slice::from_ref(&closed)),
            vec![IncidentChange::Updated {
                before: a.clone(),
                after: closed.clone()
            }]
        );
        assert!(
            diff_incidents(std::slice::from_ref(&closed), std::slice::from_ref(&closed)).is_empty()
        );
        // Two incidents merged into one by a back-dated Down.
        let b = Incident {
            start: t(300),
            end: Some(t(400)),
            cause: vec![],
        };
        let merged = Incident {
            start: t(100),
            end: Some(t(400)),
            cause: vec![],
        };
        assert_eq!(
            diff_incidents(&[closed.clone(), b.clone()], std::slice::from_ref(&merged)),
            vec![
                IncidentChange::Updated {
                    before: closed,
                    after: merged
                },
                IncidentChange::Retracted(b)
            ]
        );
    }
}
