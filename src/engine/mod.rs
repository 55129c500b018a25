//! The state engine: takes finished probes from the scheduler, feeds them
//! through the SLA state machines (`crate::sla`), and from there updates
//! metrics, the status board, the store and the alert view.
//!
//! Everything that counts time lives in `crate::sla` and is shared with
//! recomputation; this module only decides when to run it and where the
//! results go.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::alert::view::{
    AlertView, CheckView, MaintenanceView, MigrationView, ServiceView, SlaView,
};
use crate::clock::Clock;
use crate::config::{Config, MaintenanceSpec, Service};
use crate::scheduler::ProbeReport;
use crate::sla::{
    self, CheckState, IncidentChange, Segment, ServiceMaintenance, ServiceState, ServiceTracker,
    ServiceUpdate, SlaCalendar, TimeRange, Timeline,
};
use crate::store::WriteOp;
use crate::store::convert::{incident_record, probe_result, result_record, transition_record};
use crate::telemetry::{ServiceMetrics, Telemetry};

mod restore;
pub mod status;
mod verification;

pub use restore::Restorer;
pub use status::{
    CheckStatus, LastOutcome, ParityStatus, ServiceStatus, SharedStatus, StatusBoard,
};

/// Where the engine's writes go: the store's batching writer, or nowhere
/// (the `probe` command and unit tests).
pub trait Sink: Send {
    fn write(&self, ops: Vec<WriteOp>);
}

impl Sink for crate::store::writer::StoreWriter {
    fn write(&self, ops: Vec<WriteOp>) {
        self.submit_all(ops);
    }
}

/// Discards writes.
pub struct NoSink;

impl Sink for NoSink {
    fn write(&self, _ops: Vec<WriteOp>) {}
}

/// The SLA state of one SLA of a service, for metrics and alerts.
#[derive(Debug, Clone)]
pub struct SlaRuntime {
    pub spec: crate::config::SlaSpec,
    /// Time up to which `continuity_sla_*_seconds_total` have counted.
    counted_until: Timestamp,
    pub last: Option<sla::status::SlaStatus>,
}

/// Everything the engine keeps about one service.
pub struct ServiceRuntime {
    pub tracker: ServiceTracker,
    /// The stored timeline before `cut`; the tracker's own from `cut` on.
    pub history: Timeline,
    pub cut: Timestamp,
    pub slas: Vec<SlaRuntime>,
    /// Start of the open incident, as stored.
    pub open_incident: Option<Timestamp>,
    /// The maintenance window covering the service now, if any. Boxed:
    /// 88 bytes inline on every service, and few are in maintenance.
    pub maintenance: Option<Box<sla::MaintenanceWindow>>,
}

impl ServiceRuntime {
    /// The service's state segments over `range`: stored history before
    /// the cut, the live tracker after it.
    pub fn segments(&self, range: TimeRange) -> Vec<Segment> {
        let mut out = Vec::new();
        if range.start < self.cut {
            let end = range.end.min(self.cut);
            out.extend(self.history.segments(TimeRange::new(range.start, end)));
        }
        if range.end > self.cut {
            let start = range.start.max(self.cut);
            out.extend(
                self.tracker
                    .timeline()
                    .segments(TimeRange::new(start, range.end)),
            );
        }
        out
    }
}

pub struct Engine {
    config: Arc<Config>,
    telemetry: Arc<Telemetry>,
    status: SharedStatus,
    sink: Box<dyn Sink>,
    restorer: Option<Restorer>,
    /// Service indices in the order of their ids, to find a report's
    /// service by binary search: 4 bytes a service, where a map from
    /// (service, check) held two shared strings and an entry per check.
    by_id: Vec<u32>,
    services: Vec<ServiceRuntime>,
    /// Each service's series, by service index.
    metrics: Vec<ServiceMetrics>,
    calendars: BTreeMap<String, SlaCalendar>,
    /// Maintenance windows added at run time (through the API).
    adhoc: Vec<MaintenanceSpec>,
    /// What each service's state metrics last said, so that unchanged
    /// services cost nothing per tick.
    published: Vec<Option<(ServiceState, bool, bool)>>,
    /// The canary checks (`alerting.canaries`), as (service index, check
    /// index).
    canaries: Vec<(usize, usize)>,
    /// Every canary is down: the monitor's own network is the likely cause,
    /// so other checks' failures are not believed and service states are
    /// shown as unknown rather than down. Decided here, where every result
    /// arrives, and handed to the alert rules in the view.
    network_degraded: bool,
    /// Cutover verification rounds under way and done.
    verifications: verification::Verifications,
    /// By service id: the cutover (reference) after whose window the
    /// service has been seen up, and since when. Looked up in the
    /// timeline until found, then kept, so a service that came up costs
    /// nothing per tick.
    came_up: HashMap<String, (String, Timestamp)>,
    /// What time it is (the daemon's clock; a test's manual one).
    clock: Clock,
}

/// How far behind now a result may still arrive: the longest check
/// timeout plus scheduling slack. Time before the watermark is complete.
fn watermark(config: &Config, now: Timestamp) -> Timestamp {
    let longest = config
        .services
        .iter()
        .flat_map(|s| s.checks.iter().map(|c| c.timeout))
        .max()
        .unwrap_or_default();
    now - SignedDuration::try_from(longest).unwrap_or_default() - SignedDuration::from_secs(2)
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        telemetry: Arc<Telemetry>,
        status: SharedStatus,
        sink: Box<dyn Sink>,
        restorer: Option<Restorer>,
        clock: Clock,
    ) -> Engine {
        let mut e = Engine {
            config: config.clone(),
            telemetry,
            status,
            sink,
            restorer,
            by_id: Vec::new(),
            services: Vec::new(),
            metrics: Vec::new(),
            calendars: BTreeMap::new(),
            adhoc: Vec::new(),
            published: Vec::new(),
            canaries: Vec::new(),
            network_degraded: false,
            verifications: verification::Verifications::default(),
            came_up: HashMap::new(),
            clock,
        };
        let now = e.clock.now();
        e.rebuild(config, now, true);
        e
    }

    pub fn services(&self) -> &[ServiceRuntime] {
        &self.services
    }

    /// Replace the maintenance windows created at run time.
    pub fn set_adhoc_maintenances(&mut self, windows: Vec<MaintenanceSpec>) {
        self.adhoc = windows;
        self.tick(self.clock.now());
    }

    /// Switch to a new configuration. Services whose checks are unchanged
    /// keep their trackers; the others are rebuilt from the store.
    pub fn apply_config(&mut self, config: Arc<Config>) {
        let now = self.clock.now();
        self.rebuild(config, now, false);
    }

    fn rebuild(&mut self, config: Arc<Config>, now: Timestamp, first: bool) {
        self.telemetry.retain_config(&config);
        self.metrics.clear();
        let mut old: HashMap<String, ServiceRuntime> = HashMap::new();
        for (s, rt) in self.config.services.iter().zip(self.services.drain(..)) {
            old.insert(s.id.clone(), rt);
        }
        let old_config = self.config.clone();
        let old_board = std::mem::take(&mut *self.status.write().expect("status lock"));
        // By id: scanning the old board for each service is quadratic, and
        // at 10,000 services a reload would stall the loop for a while.
        let old_services = old_config.services_by_id();
        let old_status: HashMap<&str, &ServiceStatus> = old_board
            .services
            .iter()
            .map(|s| (s.service.id.as_str(), s))
            .collect();

        self.calendars = config
            .calendars
            .iter()
            .map(|(name, spec)| (name.clone(), SlaCalendar::new(spec)))
            .collect();
        self.by_id = ids_in_order(&config);
        self.services.reserve_exact(config.services.len());
        self.metrics.reserve_exact(config.services.len());
        let mut board = StatusBoard {
            location: config.location.clone(),
            services: Vec::with_capacity(config.services.len()),
        };
        for service in &config.services {
            let unchanged = old_services
                .get(service.id.as_str())
                .is_some_and(|o| same_rules(o, service));
            let mut runtime = match old.remove(&service.id) {
                Some(rt) if unchanged && !first => rt,
                _ => self.fresh_runtime(service, now),
            };
            runtime.slas = service
                .slas
                .iter()
                .map(|spec| {
                    let kept = runtime.slas.iter().find(|r| r.spec == *spec);
                    SlaRuntime {
                        spec: spec.clone(),
                        counted_until: kept.map(|k| k.counted_until).unwrap_or(now),
                        last: kept.and_then(|k| k.last.clone()),
                    }
                })
                .collect();
            let prev = old_status.get(service.id.as_str()).copied();
            let checks = service
                .checks
                .iter()
                .map(|c| {
                    let kept = prev.and_then(|p| {
                        p.checks
                            .iter()
                            .find(|x| x.check.id == c.id && x.check.kind.name() == c.kind.name())
                    });
                    let last = kept.and_then(|x| x.last.clone());
                    let parity = kept.and_then(|x| x.parity.clone());
                    CheckStatus {
                        check: c.clone(),
                        state: CheckState::Unknown,
                        since: None,
                        slow: false,
                        flapping: false,
                        last,
                        parity,
                    }
                })
                .collect();
            board.services.push(ServiceStatus {
                service: service.clone(),
                state: ServiceState::Unknown,
                up: false,
                maintenance: None,
                incident_since: None,
                checks,
            });
            self.services.push(runtime);
            self.metrics.push(self.telemetry.services.register(service));
        }
        *self.status.write().expect("status lock") = board;
        self.canaries = self.resolve_canaries(&config);
        self.config = config;
        self.published = vec![None; self.services.len()];
        self.tick(now);
    }

    fn fresh_runtime(&self, service: &Service, now: Timestamp) -> ServiceRuntime {
        match &self.restorer {
            Some(r) => r.restore(service, now, self.sink.as_ref()),
            None => ServiceRuntime {
                tracker: ServiceTracker::new(service, now),
                history: Timeline::new(now, ServiceState::Unknown),
                cut: sla::range::to_millisecond(now),
                slas: Vec::new(),
                open_incident: None,
                maintenance: None,
            },
        }
    }

    /// One finished probe.
    pub fn on_report(&mut self, r: ProbeReport) {
        let Some((si, ci)) = locate(&self.config, &self.by_id, &r.service, &r.check) else {
            // A probe of a check removed by a reload finished late.
            return;
        };
        let last = status::last_outcome(&r);
        {
            let mut board = self.status.write().expect("status lock");
            let cs = &mut board.services[si].checks[ci];
            cs.last = Some(last);
            if let Ok(o) = &r.outcome {
                cs.parity = o.parity.as_deref().map(|p| {
                    Box::new(ParityStatus::observe(cs.parity.take().map(|b| *b), p, r.at))
                });
            }
        }
        let Ok(outcome) = &r.outcome else {
            // The monitor's own failure: no evidence either way. The
            // check's last result goes stale and its time becomes unknown.
            return;
        };
        let record = result_record(&r.service, &r.check, r.at, outcome);
        let failure = (!record.success).then(|| record.reason.as_deref().unwrap_or("failed"));
        let verified = self
            .verifications
            .observe(&self.config.services[si], ci, r.at, failure);
        // The state machine reads the result exactly as a replay from the
        // store will.
        let result = probe_result(record.clone());
        let mut ops = vec![WriteOp::Result(record)];
        ops.extend(verified.map(WriteOp::CutoverVerification));
        // While every canary fails, a failure says more about our own
        // network than about the service: it is kept as evidence but not
        // fed to the state machine, so the check goes stale and its time
        // counts as unknown, not down. Canaries themselves are always fed,
        // or we would never see the network come back.
        let canary = self.canaries.contains(&(si, ci));
        if self.network_degraded && !result.success && !canary {
            self.sink.write(ops);
            self.publish(si, self.clock.now());
            return;
        }
        let update = self.services[si].tracker.observe(&result);
        self.persist(si, &update, &mut ops);
        self.sink.write(ops);
        self.publish(si, self.clock.now());
        // Decided as the canary's result arrives, not at the next tick:
        // the very next failure of another check must already be judged
        // by it.
        if canary {
            self.decide_network(self.clock.now());
        }
    }

    /// The canaries' positions in the configuration; none when one of them
    /// is missing (validation prevents that), as a verdict that needs
    /// every canary down cannot be reached without it.
    fn resolve_canaries(&self, config: &Config) -> Vec<(usize, usize)> {
        let resolved: Option<Vec<_>> = config
            .alerting
            .canary_checks
            .iter()
            .map(|(s, c)| locate(config, &self.by_id, s, c))
            .collect();
        resolved.unwrap_or_default()
    }

    /// Decide whether the monitor's own network is degraded (every canary
    /// check confirmed down); when the verdict changes, every service's
    /// shown state changes with it.
    fn decide_network(&mut self, now: Timestamp) {
        let degraded = !self.canaries.is_empty()
            && self.canaries.iter().all(|&(si, ci)| {
                self.services[si]
                    .tracker
                    .checks()
                    .nth(ci)
                    .is_some_and(|c| c.state() == CheckState::Down)
            });
        if self.network_degraded != degraded {
            self.network_degraded = degraded;
            for si in 0..self.services.len() {
                self.publish(si, now);
            }
        }
    }

    /// Turn a tracker update into store writes and incident metrics.
    fn persist(&mut self, si: usize, update: &ServiceUpdate, ops: &mut Vec<WriteOp>) {
        let service = &self.config.services[si];
        for t in &update.retracted {
            ops.push(WriteOp::RetractServiceTransition {
                service: service.id.clone(),
                at: t.at,
            });
        }
        for t in &update.added {
            ops.push(WriteOp::ServiceTransition(transition_record(
                &service.id,
                t,
            )));
        }
        for change in &update.incidents {
            match change {
                IncidentChange::Opened(i) => {
                    self.metrics[si].incident_opened();
                    ops.push(WriteOp::Incident(incident_record(&service.id, i)));
                }
                IncidentChange::Updated { before, after } => {
                    if before.start != after.start {
                        ops.push(WriteOp::RetractIncident {
                            service: service.id.clone(),
                            started_at: before.start,
                        });
                    }
                    ops.push(WriteOp::Incident(incident_record(&service.id, after)));
                }
                IncidentChange::Retracted(i) => ops.push(WriteOp::RetractIncident {
                    service: service.id.clone(),
                    started_at: i.start,
                }),
            }
        }
        let rt = &mut self.services[si];
        rt.open_incident = sla::incident::incidents(rt.tracker.timeline())
            .into_iter()
            .rev()
            .find(|i| i.is_open())
            .map(|i| i.start);
    }

    /// Periodic work: staleness, maintenance, SLA figures, memory bounds.
    pub fn tick(&mut self, now: Timestamp) {
        let mark = watermark(&self.config, now);
        let mut ops: Vec<WriteOp> = self
            .verifications
            .expire(now)
            .into_iter()
            .map(WriteOp::CutoverVerification)
            .collect();
        let specs = self.maintenance_specs();
        for si in 0..self.services.len() {
            let update = self.services[si].tracker.advance(mark);
            if !update.is_empty() {
                self.persist(si, &update, &mut ops);
            }
            let at = crate::migration::position(&self.config.services[si], now);
            self.metrics[si].set_position(at.phase, at.supplier);
            self.update_slas(si, now, &specs);
            // Keep four weeks of live timeline (the longest rolling period)
            // plus slack; older time is in the store.
            let keep = now - SignedDuration::from_hours(24 * 35);
            self.services[si].tracker.forget_before(keep);
            self.publish(si, now);
            self.publish_slas(si);
        }
        if !ops.is_empty() {
            self.sink.write(ops);
        }
        // A canary that went stale is no longer down: the verdict follows
        // the states the tick just advanced.
        self.decide_network(now);
    }

    fn update_slas(&mut self, si: usize, now: Timestamp, specs: &[MaintenanceSpec]) {
        let service = &self.config.services[si];
        let three_days = SignedDuration::from_hours(72);
        // Maintenance over the whole current month (longest period) and
        // the burn windows before it.
        let span = TimeRange::new(
            now - SignedDuration::from_hours(24 * 35),
            now + SignedDuration::from_hours(24 * 35),
        );
        let maintenance = if specs.is_empty() {
            ServiceMaintenance::from_windows(Vec::new())
        } else {
            ServiceMaintenance::for_service(specs, service, span)
        };
        let rt = &mut self.services[si];
        rt.maintenance = maintenance.active_at(now).cloned().map(Box::new);
        if rt.slas.is_empty() {
            return;
        }
        let settled = rt.tracker.settled_before().min(now);
        for i in 0..rt.slas.len() {
            let spec = rt.slas[i].spec.clone();
            let calendar = self
                .calendars
                .get(&spec.calendar)
                .cloned()
                .unwrap_or_else(SlaCalendar::always);
            let period = sla::period_containing(spec.period, now, calendar.tz());
            let from = period.start().min(now - three_days);
            let segments = rt.segments(TimeRange::new(from, now));
            let status =
                sla::status::sla_status(&spec, &calendar, &segments, &maintenance.excluded, now);
            // Counters only count settled time: a back-dated verdict can
            // still rewrite what is newer, and a counter cannot go down.
            // Counters carry the supplier of their time: across a cutover's
            // start they start afresh under the new supplier, and the
            // old supplier's series has ended, so only the new one's
            // time is counted here.
            let counted = service
                .migrations
                .iter()
                .map(|m| m.cutover.start)
                .filter(|s| *s <= settled)
                .fold(rt.slas[i].counted_until, Timestamp::max);
            if settled > counted {
                let range = TimeRange::new(counted, settled);
                let segs = rt.segments(range);
                let open = calendar.open_ranges(range);
                let f = sla::account(&segs, range, &open, &maintenance.excluded);
                self.metrics[si].add_sla_seconds(
                    i,
                    f.eligible as f64 / 1000.0,
                    f.good as f64 / 1000.0,
                );
                rt.slas[i].counted_until = settled;
            }
            rt.slas[i].last = Some(status);
        }
    }

    /// Metrics and status board for one service.
    fn publish(&mut self, si: usize, now: Timestamp) {
        let rt = &self.services[si];
        let mut state = rt.tracker.state().shown(rt.maintenance.is_some());
        if self.network_degraded && state == ServiceState::Down {
            state = ServiceState::Unknown;
        }
        let mut board = self.status.write().expect("status lock");
        let status = &mut board.services[si];
        for (c, cs) in rt.tracker.checks().zip(status.checks.iter_mut()) {
            cs.state = c.state();
            cs.since = (c.state() != CheckState::Unknown).then(|| c.since());
            cs.slow = c.is_slow();
            cs.flapping = c.is_flapping(now);
        }
        status.up = status
            .checks
            .iter()
            .filter(|c| c.critical())
            .all(|c| c.last.as_ref().is_some_and(|l| l.success));
        status.state = state;
        status.maintenance = rt.maintenance.as_ref().map(|m| m.reference.clone());
        status.incident_since = rt.open_incident;
        let up = status.up;
        drop(board);

        let shown = (state, up, rt.maintenance.is_some());
        if self.published.get(si).copied().flatten() != Some(shown) {
            self.metrics[si].set_state(up, state, rt.maintenance.is_some());
            if let Some(p) = self.published.get_mut(si) {
                *p = Some(shown);
            }
        }
    }

    /// SLA gauges of one service (after the tick computed them).
    fn publish_slas(&self, si: usize) {
        for (i, s) in self.services[si].slas.iter().enumerate() {
            if let Some(st) = &s.last {
                self.metrics[si].set_sla(
                    i,
                    st.figures.availability(),
                    st.budget.remaining_ratio,
                    &st.burn,
                );
            }
        }
    }

    /// What the alert rules see: confirmed states, back-dated, with the
    /// SLA figures of the last tick and the network verdict. Names are
    /// borrowed from the configuration; only a failing check's last-probe
    /// text is copied (out of the status board's lock).
    pub fn alert_view(&mut self, now: Timestamp) -> AlertView<'_> {
        let up_after = self.up_after_windows(now);
        let board = self.status.read().expect("status lock");
        let mut services = Vec::with_capacity(self.services.len());
        for (si, (service, rt)) in self.config.services.iter().zip(&self.services).enumerate() {
            let checks = rt
                .tracker
                .checks()
                .enumerate()
                .map(|(ci, c)| {
                    let last = board.services[si].checks[ci].last.as_ref();
                    let parity = board.services[si].checks[ci].parity.as_deref();
                    let failure = c.failure();
                    let copy = |t: &Option<String>| t.clone().map(Cow::Owned);
                    CheckView {
                        id: Cow::Borrowed(c.id()),
                        critical: c.critical(),
                        state: c.state(),
                        down_since: (c.state() == CheckState::Down).then(|| c.since()),
                        reason: failure
                            .and_then(|f| f.reason.map(|r| Cow::Borrowed(r.as_str())))
                            .or_else(|| last.and_then(|l| copy(&l.reason))),
                        detail: failure
                            .map(|f| Cow::Borrowed(f.detail.as_str()))
                            .or_else(|| last.and_then(|l| copy(&l.detail))),
                        slow_since: c.slow_since(),
                        cert_not_after: last.and_then(|l| l.cert_not_after),
                        parity_failing_since: parity.and_then(|p| p.failing_since),
                        compare_up: parity.map(|p| p.compare_up),
                    }
                })
                .collect();
            let slas = rt
                .slas
                .iter()
                .map(|s| SlaView {
                    name: Cow::Borrowed(&s.spec.name),
                    objective_ratio: s.spec.ratio(),
                    availability: s.last.as_ref().and_then(|l| l.figures.availability()),
                    budget_remaining_ratio: s.last.as_ref().and_then(|l| l.budget.remaining_ratio),
                    burn_rates: s
                        .last
                        .as_ref()
                        .map(|l| {
                            l.burn
                                .iter()
                                .map(|(w, r)| (Cow::Borrowed(w.label()), r))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect();
            services.push(ServiceView {
                id: Cow::Borrowed(&service.id),
                name: Cow::Borrowed(&service.name),
                category: Cow::Borrowed(&service.category),
                // The supplier responsible now, so that after a cutover
                // alerts route to the new supplier's desk.
                supplier: Cow::Borrowed(crate::config::migration::supplier_at(
                    &service.supplier,
                    &service.migrations,
                    now,
                )),
                runbook_url: service.runbook_url.as_deref().map(Cow::Borrowed),
                maintenance: rt.maintenance.as_ref().map(|m| MaintenanceView {
                    reference: Cow::Borrowed(&m.reference),
                    effect: m.effect,
                }),
                checks,
                slas,
                migration: migration_view(service, now, up_after[si]).map(Box::new),
            });
        }
        drop(board);
        AlertView {
            now,
            location: Cow::Borrowed(&self.config.location),
            external_url: self
                .config
                .server
                .external_url
                .as_deref()
                .map(Cow::Borrowed),
            network_degraded: self.network_degraded,
            services,
        }
    }

    /// Per service, the first instant it was up (or degraded) after the
    /// window of the cutover it is in hypercare from; `None` when it has
    /// not been, or when it is not in hypercare.
    fn up_after_windows(&mut self, now: Timestamp) -> Vec<Option<Timestamp>> {
        let mut out = vec![None; self.services.len()];
        for (si, service) in self.config.services.iter().enumerate() {
            let at = crate::migration::position(service, now);
            let (crate::migration::Phase::Hypercare, Some(m)) = (at.phase, at.migration) else {
                continue;
            };
            let reference = &m.cutover.reference;
            if let Some((r, t)) = self.came_up.get(&service.id)
                && r == reference
            {
                out[si] = Some(*t);
                continue;
            }
            let first_up = self.services[si]
                .segments(TimeRange::new(m.cutover.end, now))
                .into_iter()
                .find(|s| matches!(s.state, ServiceState::Up | ServiceState::Degraded))
                .map(|s| s.start.max(m.cutover.end));
            if let Some(t) = first_up {
                self.came_up
                    .insert(service.id.clone(), (reference.clone(), t));
            }
            out[si] = first_up;
        }
        out
    }

    /// Every maintenance window: configured ones and those added through
    /// the API.
    fn maintenance_specs(&self) -> Vec<MaintenanceSpec> {
        self.config
            .maintenances
            .iter()
            .chain(self.adhoc.iter())
            .cloned()
            .collect()
    }
}

/// What the cutover rules need of a service's migration at `now`.
fn migration_view(
    service: &Service,
    now: Timestamp,
    up_after_window: Option<Timestamp>,
) -> Option<MigrationView<'_>> {
    let at = crate::migration::position(service, now);
    let m = at.migration?;
    Some(MigrationView {
        phase: at.phase,
        from: Cow::Borrowed(&m.from),
        to: Cow::Borrowed(&m.to),
        reference: Cow::Borrowed(&m.cutover.reference),
        window_end: m.cutover.end,
        grace_end: m.grace_end(),
        parity_for: m.parity_for,
        up_after_window,
    })
}

/// The indices of `config`'s services, ordered by id.
fn ids_in_order(config: &Config) -> Vec<u32> {
    let mut order: Vec<u32> = (0..config.services.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        config.services[a as usize]
            .id
            .cmp(&config.services[b as usize].id)
    });
    order
}

/// (service index, check index) of a check of `config`, by ids; `by_id`
/// is [`ids_in_order`] of `config`.
fn locate(config: &Config, by_id: &[u32], service: &str, check: &str) -> Option<(usize, usize)> {
    let at = by_id
        .binary_search_by(|&i| config.services[i as usize].id.as_str().cmp(service))
        .ok()?;
    let si = by_id[at] as usize;
    let ci = config.services[si]
        .checks
        .iter()
        .position(|c| c.id == check)?;
    Some((si, ci))
}

/// Two versions of a service whose checks decide state the same way.
fn same_rules(a: &Service, b: &Service) -> bool {
    a.checks.len() == b.checks.len()
        && a.checks.iter().zip(&b.checks).all(|(x, y)| {
            sla::CheckRules::of(x) == sla::CheckRules::of(y) && x.kind.name() == y.kind.name()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{FailureReason, ProbeOutcome};
    use crate::store::{ResultRecord, ResultSource};
    use std::sync::RwLock;

    const CONFIG: &str = "alerting:\n  canaries: [canary/gateway]\nservices:\n  - id: canary\n    checks:\n      - id: gateway\n        interval: 1s\n        timeout: 500ms\n        failure_threshold: 2\n        tcp:\n          target: 127.0.0.1:9\n  - id: portal\n    checks:\n      - id: home\n        interval: 1s\n        timeout: 500ms\n        failure_threshold: 2\n        http:\n          url: http://127.0.0.1:9/\n";

    fn engine() -> Engine {
        let config = Arc::new(Config::from_str("test.yaml", CONFIG).unwrap());
        Engine::new(
            config,
            Arc::new(Telemetry::new()),
            Arc::new(RwLock::new(StatusBoard::default())),
            Box::new(NoSink),
            None,
            Clock::system(),
        )
    }

    fn report(service: &str, check: &str, at: Timestamp, ok: bool) -> ProbeReport {
        let outcome = if ok {
            ProbeOutcome::default()
        } else {
            ProbeOutcome::failed(FailureReason::Timeout, "no answer")
        };
        ProbeReport {
            service: service.into(),
            check: check.into(),
            at,
            outcome: Ok(outcome),
        }
    }

    /// Instants `s` seconds after the test started.
    fn seconds_from_now() -> impl Fn(i64) -> Timestamp {
        let t0 = Timestamp::now();
        move |s| t0 + SignedDuration::from_secs(s)
    }

    fn state(e: &Engine, service: usize) -> ServiceState {
        e.services()[service].tracker.state()
    }

    #[test]
    fn after_a_cutover_the_view_names_the_new_supplier_and_the_phase() {
        let now = Timestamp::now();
        let yaml = format!(
            "services:\n  - id: portal\n    supplier: in-house\n    migration:\n      from: in-house\n      to: northhost\n      cutover: {{ start: {}, end: {}, reference: CHG-1 }}\n    checks:\n      - id: home\n        tcp: {{ target: 127.0.0.1:9 }}\n",
            now - SignedDuration::from_hours(5),
            now - SignedDuration::from_hours(1)
        );
        let config = Arc::new(Config::from_str("test.yaml", &yaml).unwrap());
        let mut e = Engine::new(
            config,
            Arc::new(Telemetry::new()),
            Arc::new(RwLock::new(StatusBoard::default())),
            Box::new(NoSink),
            None,
            Clock::system(),
        );
        let view = e.alert_view(now);
        let s = &view.services[0];
        assert_eq!(s.supplier, "northhost");
        let m = s.migration.as_ref().unwrap();
        assert_eq!(m.phase, crate::migration::Phase::Hypercare);
        assert_eq!((&*m.from, &*m.to), ("in-house", "northhost"));
        // Nothing was up since the window ended.
        assert_eq!(m.up_after_window, None);
    }

    #[test]
    fn a_slow_check_is_slow_since_its_first_slow_result_also_after_a_restart() {
        let yaml = "services:\n  - id: portal\n    checks:\n      - id: home\n        interval: 30s\n        latency_threshold: 500ms\n        http:\n          url: http://127.0.0.1:9/\n";
        let config = Arc::new(Config::from_str("test.yaml", yaml).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("c.db")).unwrap());
        // Fast, then slow from ten minutes ago on, as the last run recorded
        // (the store keeps milliseconds).
        let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
        let ago = |s: i64| now - SignedDuration::from_secs(s);
        let ops: Vec<WriteOp> = (1..=24)
            .map(|n| {
                let secs = 720 - n * 30;
                WriteOp::Result(ResultRecord {
                    service: "portal".into(),
                    check: "home".into(),
                    at: ago(secs),
                    success: true,
                    duration: std::time::Duration::from_millis(if secs <= 600 { 900 } else { 100 }),
                    reason: None,
                    detail: None,
                    source: ResultSource::Live,
                })
            })
            .collect();
        crate::store::BatchStore::write_batch(store.as_ref(), &ops).unwrap();
        let first_slow = ago(600);

        let mut e = Engine::new(
            config,
            Arc::new(Telemetry::new()),
            Arc::new(RwLock::new(StatusBoard::default())),
            Box::new(NoSink),
            Some(Restorer::new(store)),
            Clock::system(),
        );
        let view = e.alert_view(now);
        assert_eq!(view.services[0].checks[0].slow_since, Some(first_slow));
        // Another slow result does not move it.
        e.on_report(ProbeReport {
            service: "portal".into(),
            check: "home".into(),
            at: now,
            outcome: Ok(ProbeOutcome {
                duration: std::time::Duration::from_millis(900),
                ..ProbeOutcome::default()
            }),
        });
        let view = e.alert_view(now + SignedDuration::from_secs(5));
        assert_eq!(view.services[0].checks[0].slow_since, Some(first_slow));
    }

    #[test]
    fn failures_while_every_canary_is_down_do_not_count_as_down() {
        let mut e = engine();
        let at = seconds_from_now();
        for s in 0..3 {
            e.on_report(report("portal", "home", at(s), true));
        }
        assert_eq!(state(&e, 1), ServiceState::Up);
        for s in 3..8 {
            e.on_report(report("canary", "gateway", at(s), false));
            e.on_report(report("portal", "home", at(s), false));
        }
        // The canary itself is still judged; from its confirmed failure
        // on, the portal's failures are not believed.
        assert_eq!(state(&e, 0), ServiceState::Down);
        assert_ne!(state(&e, 1), ServiceState::Down);
        e.tick(at(10));
        assert_eq!(state(&e, 1), ServiceState::Unknown, "blind time is unknown");

        // With a canary back (two successes), failures count again.
        e.on_report(report("canary", "gateway", at(11), true));
        e.on_report(report("canary", "gateway", at(12), true));
        for s in 13..16 {
            e.on_report(report("portal", "home", at(s), false));
        }
        assert_eq!(state(&e, 1), ServiceState::Down);
    }

    #[test]
    fn the_engine_decides_the_network_verdict_as_canary_results_arrive() {
        let mut e = engine();
        let at = seconds_from_now();
        for s in 0..3 {
            e.on_report(report("canary", "gateway", at(s), true));
            e.on_report(report("portal", "home", at(s), s < 1));
        }
        assert_eq!(state(&e, 1), ServiceState::Down);
        let shown = |e: &Engine| e.status.read().unwrap().services[1].state;
        assert_eq!(shown(&e), ServiceState::Down);
        assert!(!e.alert_view(at(3)).network_degraded);

        // One failure is not yet a confirmed Down (threshold 2), the
        // second is: the verdict follows at once, without a tick and
        // without the alert rules.
        e.on_report(report("canary", "gateway", at(3), false));
        assert!(!e.alert_view(at(3)).network_degraded);
        e.on_report(report("canary", "gateway", at(4), false));
        assert!(e.alert_view(at(4)).network_degraded);
        assert_eq!(shown(&e), ServiceState::Unknown, "down is shown as unknown");

        // Recovery takes two successes, as any Up does.
        e.on_report(report("canary", "gateway", at(5), true));
        assert!(e.alert_view(at(5)).network_degraded);
        e.on_report(report("canary", "gateway", at(6), true));
        assert!(!e.alert_view(at(6)).network_degraded);
        assert_eq!(shown(&e), ServiceState::Down);
    }

    #[test]
    fn a_canary_gone_stale_ends_the_network_verdict_at_the_tick() {
        let mut e = engine();
        let at = seconds_from_now();
        for s in 0..2 {
            e.on_report(report("canary", "gateway", at(s), false));
        }
        assert!(e.alert_view(at(2)).network_degraded);
        // No result for a long while: the canary's Down is no longer
        // confirmed, so neither is the verdict.
        e.tick(at(120));
        assert_eq!(
            e.services()[0].tracker.checks().next().unwrap().state(),
            CheckState::Unknown
        );
        assert!(!e.alert_view(at(120)).network_degraded);
    }

    #[test]
    fn parity_failing_since_is_when_match_turned_to_mismatch_and_compare_up_follows_the_old_side() {
        use crate::probe::parity::{Aspect, Mismatch, ParityResult};
        let mut e = engine();
        let at = seconds_from_now();
        let with = |matched: Option<bool>, old_up: bool, t: i64| {
            let mut r = report("portal", "home", at(t), true);
            if let Ok(o) = &mut r.outcome {
                o.parity = Some(Box::new(ParityResult {
                    matched,
                    old_up,
                    mismatches: match matched {
                        Some(false) => vec![Mismatch {
                            aspect: Aspect::Status,
                            detail: "status 203, old answers 200".into(),
                        }],
                        _ => Vec::new(),
                    },
                    latency_ratio: None,
                    similarity: None,
                    volatile: 0,
                    compared: Aspect::Status.bit(),
                }));
            }
            r
        };
        let view = |e: &mut Engine, t: i64| {
            let v = e.alert_view(at(t));
            let c = v.check("portal", "home").unwrap();
            (c.parity_failing_since, c.compare_up)
        };
        assert_eq!(view(&mut e, 0), (None, None), "no compare_with result yet");
        e.on_report(with(Some(true), true, 1));
        assert_eq!(view(&mut e, 1), (None, Some(true)));
        e.on_report(with(Some(false), true, 2));
        e.on_report(with(Some(false), true, 3));
        assert_eq!(view(&mut e, 3), (Some(at(2)), Some(true)));
        // The old side down judges nothing: the spell goes on.
        e.on_report(with(None, false, 4));
        assert_eq!(view(&mut e, 4), (Some(at(2)), Some(false)));
        e.on_report(with(Some(true), true, 5));
        assert_eq!(view(&mut e, 5), (None, Some(true)));
        // A check without compare_with has neither.
        e.on_report(report("portal", "home", at(6), true));
        assert_eq!(view(&mut e, 6), (None, None));
    }
}
