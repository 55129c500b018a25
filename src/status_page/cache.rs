//! What the status page keeps between requests, so that a page for 1,000
//! services answers in milliseconds instead of re-reading 90 days of
//! history each time.
//!
//! - The daily figures ([`crate::report::daily`]). A complete day changes
//!   only when its history is rewritten (a recomputation, an import), when
//!   maintenance is added or removed, or with the configuration; today
//!   changes all the time. So at most once per refresh interval yesterday
//!   and today are counted again, and the whole 90 days only when the
//!   configuration, the newest recomputation or the maintenance windows
//!   changed, and at least once an hour, which also catches an import
//!   (it rewrites history without a recomputation record).
//! - The incidents of the last 30 days and the ad-hoc maintenance windows,
//!   read again when older than a few seconds: the store trails the engine
//!   by a batch anyway, and the current state comes from the status board.
//!
//! A request never waits for a recount: it gets the figures as they are
//! while one thread counts them again. Only the first count after the
//! start is waited for. Everything here runs off the runtime's threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use super::bar::{DateLabels, write_bar};
use super::texts;
use crate::config::Config;
use crate::report::daily::{ServiceDays, daily_availability};
use crate::report::locale::Lang;
use crate::store::{IncidentRecord, MaintenanceRecord, Store, StoreError};

/// Days in each service's bar.
pub const BAR_DAYS: usize = 90;
/// Days of incident history on the page and in the feed.
pub const HISTORY_DAYS: i64 = 30;
/// Days ahead that planned maintenance is announced.
pub const ANNOUNCE_DAYS: i64 = 14;
/// How old the incidents and ad-hoc windows read from the store may be.
const RECORDS_MAX_AGE: Duration = Duration::from_secs(5);
/// Every 90 days are counted again at least this often.
const FULL_RECOUNT: Duration = Duration::from_secs(3600);
/// Days counted again on a refresh: today, and yesterday for the results
/// that were still on their way to the disk at midnight.
const RECENT_DAYS: usize = 2;

/// The daily figures of every service, and what they were counted from.
#[derive(Debug)]
pub struct Daily {
    /// In the configuration's order.
    pub services: Vec<ServiceDays>,
    pub counted_at: Timestamp,
    index: HashMap<String, usize>,
    /// The bars drawn from these figures, per language, drawn once: at
    /// 1,000 services they are 90,000 cells, most of a page's work.
    bars: [OnceLock<Vec<Bar>>; 2],
    counted: Instant,
    full_count: Instant,
    basis: Basis,
}

/// A service's bar as drawn, and the line of text under it.
#[derive(Debug)]
pub struct Bar {
    pub svg: String,
    pub summary: String,
}

impl Daily {
    fn new(services: Vec<ServiceDays>, now: Timestamp, full_count: Instant, basis: Basis) -> Daily {
        Daily {
            index: services
                .iter()
                .enumerate()
                .map(|(i, d)| (d.service.clone(), i))
                .collect(),
            services,
            counted_at: now,
            bars: Default::default(),
            counted: Instant::now(),
            full_count,
            basis,
        }
    }

    /// The days of `service`, if it was in the configuration they were
    /// counted with.
    pub fn of(&self, service: &str) -> Option<&ServiceDays> {
        self.index.get(service).map(|&i| &self.services[i])
    }

    /// The bar of `service` in `lang`.
    pub fn bar(&self, service: &str, lang: Lang) -> Option<&Bar> {
        let i = *self.index.get(service)?;
        self.bars_in(lang).get(i)
    }

    fn bars_in(&self, lang: Lang) -> &[Bar] {
        self.bars[lang_index(lang)].get_or_init(|| {
            let t = texts::texts(lang);
            let mut labels = DateLabels::default();
            self.services
                .iter()
                .map(|days| {
                    let mut svg = String::new();
                    let summary = write_bar(&mut svg, days, lang, t, &mut labels);
                    svg.shrink_to_fit();
                    Bar { svg, summary }
                })
                .collect()
        })
    }
}

fn lang_index(lang: Lang) -> usize {
    match lang {
        Lang::Nl => 0,
        Lang::En => 1,
    }
}

/// What makes complete days change; a different basis means all 90 days
/// are counted again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Basis {
    config: String,
    recomputation: Option<i64>,
    /// Id and deleted flag of every ad-hoc window that touches the bars.
    maintenances: Vec<(i64, bool)>,
}

/// Incidents and ad-hoc maintenance, as last read.
#[derive(Debug)]
pub struct Records {
    /// Overlapping the last 30 days, oldest first.
    pub incidents: Vec<IncidentRecord>,
    /// Not deleted, not ended before now.
    pub maintenances: Vec<MaintenanceRecord>,
    read: Instant,
}

/// The status page's cache; one per daemon, shared by its requests.
#[derive(Default)]
pub struct PageCache {
    daily: Arc<Refreshed<Daily>>,
    records: Arc<Refreshed<Records>>,
}

impl PageCache {
    /// The daily figures, counted again as the module doc says.
    pub fn daily(
        &self,
        config: &Arc<Config>,
        store: &Arc<dyn Store>,
        now: Timestamp,
    ) -> Result<Arc<Daily>, StoreError> {
        let refresh = config.status_page.refresh;
        let (config, store, fresh_config) = (config.clone(), store.clone(), config.clone());
        self.daily.get(
            move |d| d.counted.elapsed() < refresh && same_services(d, &fresh_config),
            move |old| count_daily(&config, store.as_ref(), old.as_deref(), now),
        )
    }

    /// Incidents of the last 30 days and current or coming ad-hoc
    /// maintenance windows.
    pub fn records(
        &self,
        store: &Arc<dyn Store>,
        now: Timestamp,
    ) -> Result<Arc<Records>, StoreError> {
        let store = store.clone();
        self.records.get(
            |r| r.read.elapsed() < RECORDS_MAX_AGE,
            move |_| {
                let from = now - SignedDuration::from_hours(24 * HISTORY_DAYS);
                Ok(Records {
                    incidents: store.incidents(None, from, now)?,
                    maintenances: store.maintenances(now, Timestamp::MAX, false)?,
                    read: Instant::now(),
                })
            },
        )
    }
}

/// Count the days: only the recent ones over `old` when nothing that
/// changes complete days has changed, all of them otherwise.
fn count_daily(
    config: &Config,
    store: &dyn Store,
    old: Option<&Daily>,
    now: Timestamp,
) -> Result<Daily, StoreError> {
    let basis = basis(config, store, now)?;
    let fresh = match old {
        Some(old)
            if old.basis == basis
                && old.full_count.elapsed() < FULL_RECOUNT
                && same_services(old, config) =>
        {
            let recent = daily_availability(config, store, RECENT_DAYS, now)?;
            let services = recent
                .into_iter()
                .zip(&old.services)
                .map(|(new, old)| new.over(old, BAR_DAYS))
                .collect();
            Daily::new(services, now, old.full_count, basis)
        }
        _ => Daily::new(
            daily_availability(config, store, BAR_DAYS, now)?,
            now,
            Instant::now(),
            basis,
        ),
    };
    // Drawn here, off the requests, in the languages people asked for.
    for lang in Lang::ALL {
        if old.is_some_and(|o| o.bars[lang_index(lang)].get().is_some()) {
            fresh.bars_in(lang);
        }
    }
    Ok(fresh)
}

/// A value counted on demand and kept. A request that finds it stale gets
/// it as it is while one thread counts it again (no request waits for a
/// recount); only the very first count is waited for, by every request
/// that comes meanwhile, so it is made once.
struct Refreshed<T> {
    slot: Mutex<Option<Arc<T>>>,
    first: Mutex<()>,
    recounting: AtomicBool,
}

impl<T> Default for Refreshed<T> {
    fn default() -> Self {
        Refreshed {
            slot: Mutex::new(None),
            first: Mutex::new(()),
            recounting: AtomicBool::new(false),
        }
    }
}

impl<T: Send + Sync + 'static> Refreshed<T> {
    fn get<F>(self: &Arc<Self>, fresh: impl Fn(&T) -> bool, count: F) -> Result<Arc<T>, StoreError>
    where
        F: FnOnce(Option<Arc<T>>) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(v) = self.current() {
            if !fresh(&v) && !self.recounting.swap(true, Ordering::AcqRel) {
                let this = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("status-page".into())
                    .spawn(move || {
                        if let Err(e) = this.count(count) {
                            tracing::warn!(error = %e, "status page figures not refreshed; showing the previous ones");
                        }
                        this.recounting.store(false, Ordering::Release);
                    });
                if spawned.is_err() {
                    self.recounting.store(false, Ordering::Release);
                }
            }
            return Ok(v);
        }
        let _first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        match self.current() {
            Some(v) => Ok(v),
            None => self.count(count),
        }
    }

    fn current(&self) -> Option<Arc<T>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn count<F>(&self, count: F) -> Result<Arc<T>, StoreError>
    where
        F: FnOnce(Option<Arc<T>>) -> Result<T, StoreError>,
    {
        let v = Arc::new(count(self.current())?);
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(v.clone());
        Ok(v)
    }
}

fn basis(config: &Config, store: &dyn Store, now: Timestamp) -> Result<Basis, StoreError> {
    let from = now - SignedDuration::from_hours(24 * (BAR_DAYS as i64 + 2));
    Ok(Basis {
        config: config.digest.clone(),
        recomputation: store.recomputations(None, 1)?.first().map(|r| r.id),
        maintenances: store
            .maintenances(from, now, true)?
            .iter()
            .map(|m| (m.id, m.deleted))
            .collect(),
    })
}

fn same_services(old: &Daily, config: &Config) -> bool {
    old.services.len() == config.services.len()
        && old
            .services
            .iter()
            .zip(&config.services)
            .all(|(d, s)| d.service == s.id)
}
