//! The public status page (`GET /`, `/status`), its Atom feed
//! (`/feed.atom`) and per-service badges (`/badge/<service>.svg`), for
//! citizens and the contact centre, in Dutch by default.
//!
//! Where each figure comes from, so that the page never counts in a way of
//! its own: the current state from the engine's status board, incidents
//! and ad-hoc maintenance from the store, configured maintenance from the
//! configuration, and each day's availability from
//! [`crate::report::daily`], which counts with the SLA code behind
//! `continuity sla`. [`cache`] keeps the daily figures and store records
//! between requests; everything here runs on a blocking thread, never on
//! the runtime threads that probe, and takes the status board's lock only
//! to copy the few fields it shows.

pub mod badge;
pub mod bar;
pub mod cache;
pub mod feed;
pub mod page;
pub mod texts;

use std::sync::{Arc, RwLock};

use jiff::Timestamp;

use crate::clock::Clock;
use crate::config::{Check, Config, Service};
use crate::engine::SharedStatus;
use crate::report::locale::Lang;
use crate::sla::{CheckState, ServiceState};
use crate::store::{Store, StoreError};
use cache::PageCache;

/// A status page could not be made: the monitor's own trouble.
#[derive(Debug, thiserror::Error)]
pub enum StatusPageError {
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    #[error("rendering: {0}")]
    Render(#[from] askama::Error),
}

/// The few fields of a service's live status the page shows, copied out
/// of the status board so that its lock is held for microseconds.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub service: Arc<Service>,
    pub state: ServiceState,
    pub incident_since: Option<Timestamp>,
    pub checks: Vec<(Arc<Check>, CheckState)>,
}

/// What serves the page: the daemon's shared state and the cache.
pub struct StatusPage {
    config: Arc<RwLock<Arc<Config>>>,
    status: SharedStatus,
    store: Arc<dyn Store>,
    cache: PageCache,
    clock: Clock,
}

impl StatusPage {
    pub fn new(
        config: Arc<RwLock<Arc<Config>>>,
        status: SharedStatus,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> StatusPage {
        StatusPage {
            config,
            status,
            store,
            cache: PageCache::default(),
            clock,
        }
    }

    /// The time the page is rendered at (the daemon's clock).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The running configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn board(&self, only: Option<&str>) -> Vec<ServiceView> {
        let board = self.status.read().unwrap_or_else(|p| p.into_inner());
        board
            .services
            .iter()
            .filter(|s| only.is_none_or(|id| s.service.id == id))
            .map(|s| ServiceView {
                service: s.service.clone(),
                state: s.state,
                incident_since: s.incident_since,
                checks: s
                    .checks
                    .iter()
                    .map(|c| (c.check.clone(), c.state))
                    .collect(),
            })
            .collect()
    }

    /// The HTML page. Blocking: call it from a blocking thread.
    pub fn page(&self, lang: Lang, now: Timestamp) -> Result<String, StatusPageError> {
        let config = self.config();
        let daily = self.cache.daily(&config, &self.store, now)?;
        let records = self.cache.records(&self.store, now)?;
        let board = self.board(None);
        Ok(page::render(&page::Sources {
            config: &config,
            board: &board,
            daily: &daily,
            records: &records,
            lang,
            now,
        })?)
    }

    /// The Atom feed. Blocking.
    pub fn feed(&self, lang: Lang, now: Timestamp) -> Result<String, StatusPageError> {
        let config = self.config();
        let records = self.cache.records(&self.store, now)?;
        Ok(feed::render(&config, &records, lang, now)?)
    }

    /// The badge of `service`; `None` when the page does not show such a
    /// service. Blocking.
    pub fn badge(&self, service: &str, lang: Lang) -> Result<Option<String>, StatusPageError> {
        let config = self.config();
        if !config.status_page.is_public(service) || config.service(service).is_none() {
            return Ok(None);
        }
        let Some(status) = self.board(Some(service)).into_iter().next() else {
            return Ok(None);
        };
        let daily = self.cache.daily(&config, &self.store, self.now())?;
        Ok(Some(badge::render(&status, daily.of(service), lang)?))
    }
}
