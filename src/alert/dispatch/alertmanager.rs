//! The Alertmanager path: stateless. The firing set is posted to every
//! configured Alertmanager on every change and every `resend_interval`,
//! with `endsAt` four intervals ahead; resolved alerts are re-sent with
//! their real `endsAt` for `resolved_resend_for`. Nothing is stored: the
//! next round repairs any failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::{Shared, count, stopped};
use crate::alert::config::AlertingSpec;
use crate::alert::notify::alertmanager::{self, PostableAlert};
use crate::alert::rules::{Alert, AlertSet};

/// Which Alertmanagers get alerts, and how often.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AmConfig {
    urls: Vec<String>,
    resend: Duration,
    resolved_for: Duration,
}

impl AmConfig {
    pub(super) fn from_spec(spec: &AlertingSpec) -> AmConfig {
        AmConfig {
            urls: spec
                .alertmanagers
                .iter()
                .map(|u| u.value.trim_end_matches('/').to_string())
                .collect(),
            resend: spec
                .resend_interval()
                .clamp(Duration::from_millis(100), Duration::from_secs(3600)),
            resolved_for: spec.resolved_resend_for(),
        }
    }
}

/// The firing set and why alerts that left it resolved.
#[derive(Debug, Clone, Default)]
pub(super) struct AmUpdate {
    pub(super) set: AlertSet,
    pub(super) notes: BTreeMap<String, String>,
}

pub(super) async fn alertmanager_task(
    shared: Arc<Shared>,
    mut updates: watch::Receiver<AmUpdate>,
    mut config: watch::Receiver<AmConfig>,
    stop: watch::Receiver<bool>,
) {
    let stopped = stopped(stop);
    tokio::pin!(stopped);
    let mut cfg = config.borrow_and_update().clone();
    let mut ticker = resend_ticker(cfg.resend);
    let mut known = Known::default();
    let mut have_set = false;
    loop {
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() { break; }
                let update = updates.borrow_and_update().clone();
                // Without an Alertmanager nothing is posted, so nothing
                // is tracked: the next update after a reload that adds
                // one finds every alert new and posts them all.
                if cfg.urls.is_empty() {
                    known = Known::default();
                    have_set = false;
                    continue;
                }
                let first = !have_set;
                have_set = true;
                // Fingerprinting 10,000 firing alerts takes milliseconds,
                // every tick of an outage: not on the runtime thread,
                // which also runs the scheduler.
                let news;
                (known, news) = match tokio::task::spawn_blocking(move || {
                    let news = known.take(&update);
                    (known, news)
                })
                .await
                {
                    Ok(done) => done,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot compare the firing set; posting it whole");
                        (Known::default(), true)
                    }
                };
                if news || first {
                    post_all(&shared, &cfg, &known.firing, &mut known.resolved).await;
                }
            }
            _ = ticker.tick() => {
                if have_set {
                    post_all(&shared, &cfg, &known.firing, &mut known.resolved).await;
                }
            }
            changed = config.changed() => {
                if changed.is_err() { break; }
                cfg = config.borrow_and_update().clone();
                ticker = resend_ticker(cfg.resend);
            }
            _ = &mut stopped => break,
        }
    }
}

/// What the Alertmanagers were last told.
#[derive(Default)]
struct Known {
    firing: BTreeMap<String, Arc<Alert>>,
    /// fingerprint -> (alert with its resolution note, ended at, and
    /// when that was learnt in real time: resending is about real
    /// messages, also when the daemon runs on a test's manual clock).
    resolved: BTreeMap<String, (Alert, Timestamp, std::time::Instant)>,
}

impl Known {
    /// Take the new firing set; whether anything started or ended.
    fn take(&mut self, update: &AmUpdate) -> bool {
        let at = update.set.at.unwrap_or_else(Timestamp::now);
        let next: BTreeMap<String, Arc<Alert>> = update
            .set
            .alerts
            .iter()
            .map(|a| (a.fingerprint(), a.clone()))
            .collect();
        let mut news = false;
        for (fp, a) in &self.firing {
            if !next.contains_key(fp) {
                let mut a = Alert::clone(a);
                if let Some(n) = update.notes.get(fp) {
                    a.annotations.insert("resolution_note".into(), n.clone());
                }
                self.resolved
                    .insert(fp.clone(), (a, at, std::time::Instant::now()));
                news = true;
            }
        }
        for fp in next.keys() {
            self.resolved.remove(fp);
            if !self.firing.contains_key(fp) {
                news = true;
            }
        }
        self.firing = next;
        news
    }
}

fn resend_ticker(every: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

async fn post_all(
    shared: &Shared,
    cfg: &AmConfig,
    firing: &BTreeMap<String, Arc<Alert>>,
    resolved: &mut BTreeMap<String, (Alert, Timestamp, std::time::Instant)>,
) {
    if cfg.urls.is_empty() {
        return;
    }
    let now = Timestamp::now();
    resolved.retain(|_, (_, _, learnt)| learnt.elapsed() < cfg.resolved_for);
    let ahead = jiff::SignedDuration::try_from(cfg.resend.saturating_mul(4)).unwrap_or_default();
    let ends = now.checked_add(ahead).unwrap_or(now);
    let mut batch: Vec<PostableAlert> = firing
        .values()
        .map(|a| PostableAlert::new(a, ends))
        .collect();
    batch.extend(
        resolved
            .values()
            .map(|(a, ended, _)| PostableAlert::new(a, *ended)),
    );
    let posts = cfg.urls.iter().map(|url| {
        let batch = &batch;
        async move {
            let result = alertmanager::post(&shared.http, url, batch).await;
            (url, result)
        }
    });
    for (url, result) in futures::future::join_all(posts).await {
        let name = alertmanager::display_name(url);
        let outcome = match &result {
            Ok(()) => "delivered",
            Err(e) => {
                tracing::warn!(alertmanager = %name, error = %e, "cannot post alerts; will re-send");
                "failed"
            }
        };
        count(shared, &name, outcome, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(service: &str) -> Arc<Alert> {
        Arc::new(Alert {
            labels: [("alertname", "ServiceDown"), ("service", service)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: Timestamp::UNIX_EPOCH,
            generator_url: None,
        })
    }

    fn update(alerts: &[&Arc<Alert>], notes: &[(&Arc<Alert>, &str)]) -> AmUpdate {
        AmUpdate {
            set: AlertSet {
                at: Some(Timestamp::from_second(60).unwrap()),
                alerts: alerts.iter().map(|a| Arc::clone(a)).collect(),
            },
            notes: notes
                .iter()
                .map(|(a, n)| (a.fingerprint(), n.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_new_alert_is_news_and_the_same_set_again_is_not() {
        let (portal, mail) = (alert("portal"), alert("mail"));
        let mut known = Known::default();
        assert!(known.take(&update(&[&portal], &[])));
        assert!(!known.take(&update(&[&portal], &[])));
        assert!(known.take(&update(&[&portal, &mail], &[])));
        assert_eq!(known.firing.len(), 2);
    }

    #[test]
    fn an_alert_leaving_the_set_is_resolved_with_its_note_until_it_fires_again() {
        let portal = alert("portal");
        let mut known = Known::default();
        known.take(&update(&[&portal], &[]));
        assert!(known.take(&update(&[], &[(&portal, "maintenance")])));
        let (resolved, ended, _) = &known.resolved[&portal.fingerprint()];
        assert_eq!(resolved.annotations["resolution_note"], "maintenance");
        assert_eq!(*ended, Timestamp::from_second(60).unwrap());
        assert!(known.take(&update(&[&portal], &[])));
        assert!(known.resolved.is_empty());
    }
}
