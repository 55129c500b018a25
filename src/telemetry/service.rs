//! Per-service and per-SLA series, in one compact cell per service (see
//! `check.rs` for why not prometheus-client families). The engine owns the
//! handles and is their only writer.

use std::sync::{Arc, LazyLock, Mutex};

use super::text::{Chunks, Desc, Format, labels, one_label};
use super::{BURN_WINDOWS, SERVICE_STATES, Table, lock, names};
use crate::config::Service;
use crate::migration::Phase;
use crate::sla::{BurnRates, ServiceState};

/// Label strings of the closed sets, derived once from their lists.
static STATE_LABELS: LazyLock<[Box<str>; SERVICE_STATES.len()]> =
    LazyLock::new(|| one_label("state", SERVICE_STATES.map(ServiceState::as_str)));
static PHASE_LABELS: LazyLock<[Box<str>; Phase::ALL.len()]> =
    LazyLock::new(|| one_label("phase", Phase::ALL.map(Phase::as_str)));
static WINDOW_LABELS: LazyLock<[Box<str>; BURN_WINDOWS.len()]> =
    LazyLock::new(|| one_label("window", BURN_WINDOWS));

#[derive(Debug, Clone)]
struct Sla {
    name: String,
    /// `service="…",sla="…"`.
    labels: Box<str>,
    objective: f64,
    availability: Option<f64>,
    budget_remaining: Option<f64>,
    burn: Option<[f64; BURN_WINDOWS.len()]>,
    eligible_seconds: f64,
    good_seconds: f64,
}

#[derive(Debug)]
struct Values {
    /// The engine has published a state: the state series exist.
    published: bool,
    up: bool,
    /// Index into `SERVICE_STATES`.
    state: u8,
    maintenance: bool,
    /// Where the service stands in its supplier timeline, once the engine
    /// has said: the index into `Phase::ALL`.
    phase: Option<u8>,
    incidents: u64,
    slas: Vec<Sla>,
    /// The supplier the SLA and info series are labelled with now, when
    /// a cutover made it other than the configured one.
    moved_to: Option<Box<str>>,
    /// The service as last registered: its id, category, supplier and
    /// cutovers label the info, phase and cutover series. Shared with the
    /// configuration rather than copied (four strings and a label set per
    /// service were about 3 MB at 10,000 services); a reload registers
    /// the new one.
    service: Arc<Service>,
}

impl Values {
    /// The supplier the service's time belongs to now.
    fn supplier(&self) -> &str {
        self.moved_to.as_deref().unwrap_or(&self.service.supplier)
    }
}

#[derive(Debug)]
struct Cell {
    /// `service="…",category="…",supplier="…"`, for `continuity_service_up`.
    up_labels: Box<str>,
    /// `service="…"`.
    service_label: Box<str>,
    values: Mutex<Values>,
}

impl Cell {
    fn values(&self) -> std::sync::MutexGuard<'_, Values> {
        lock(&self.values)
    }
}

/// One service's series, held by the engine.
#[derive(Debug, Clone)]
pub struct ServiceMetrics(Arc<Cell>);

impl ServiceMetrics {
    /// The service's shown state, whether every critical check passed,
    /// and whether maintenance covers it.
    pub fn set_state(&self, up: bool, state: ServiceState, maintenance: bool) {
        let mut v = self.0.values();
        v.published = true;
        v.up = up;
        v.state = SERVICE_STATES
            .iter()
            .position(|s| *s == state)
            .unwrap_or(SERVICE_STATES.len() - 1) as u8;
        v.maintenance = maintenance;
    }

    pub fn incident_opened(&self) {
        self.0.values().incidents += 1;
    }

    /// The service's phase and the supplier its time belongs to now. SLA
    /// series carry that supplier: at a cutover they start afresh under
    /// the new one, so each supplier's counters hold only its own time.
    pub fn set_position(&self, phase: Phase, supplier: &str) {
        let mut v = self.0.values();
        let index = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0) as u8;
        v.phase = Some(index);
        if v.supplier() == supplier {
            return;
        }
        v.moved_to = (supplier != v.service.supplier).then(|| supplier.into());
        let service = v.service.clone();
        for s in &mut v.slas {
            s.labels = sla_labels(&service.id, &s.name, supplier);
            s.eligible_seconds = 0.0;
            s.good_seconds = 0.0;
        }
    }

    /// Settled time newly counted for SLA `i` (in the order of the
    /// service's `slas`).
    pub fn add_sla_seconds(&self, i: usize, eligible: f64, good: f64) {
        if let Some(s) = self.0.values().slas.get_mut(i) {
            s.eligible_seconds += eligible;
            s.good_seconds += good;
        }
    }

    /// The figures of SLA `i` at the last tick.
    pub fn set_sla(
        &self,
        i: usize,
        availability: Option<f64>,
        budget_remaining: Option<f64>,
        burn: &BurnRates,
    ) {
        if let Some(s) = self.0.values().slas.get_mut(i) {
            s.availability = availability;
            s.budget_remaining = budget_remaining;
            let mut rates = [0.0; BURN_WINDOWS.len()];
            for (slot, (_, r)) in rates.iter_mut().zip(burn.iter()) {
                *slot = r;
            }
            s.burn = Some(rates);
        }
    }
}

/// Every service's cell, by service id.
#[derive(Debug, Default)]
pub struct ServiceTable {
    cells: Table<String, Cell>,
}

impl ServiceTable {
    /// The series of a service, made on first use. When its category or
    /// supplier changed it starts afresh (the old series carried the old
    /// labels); SLAs follow the service's list, keeping the counts of
    /// those that stay.
    pub fn register(&self, service: &Arc<Service>) -> ServiceMetrics {
        let up_labels = labels(&[
            ("service", &service.id),
            ("category", &service.category),
            ("supplier", &service.supplier),
        ]);
        let mut cells = self.cells.write();
        let cell = match cells.get(&service.id).filter(|c| c.up_labels == up_labels) {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(Cell {
                    up_labels,
                    service_label: labels(&[("service", &service.id)]),
                    values: Mutex::new(Values {
                        published: false,
                        up: false,
                        state: 0,
                        maintenance: false,
                        phase: None,
                        incidents: 0,
                        slas: Vec::new(),
                        moved_to: None,
                        service: service.clone(),
                    }),
                });
                cells.insert(service.id.clone(), c.clone());
                c
            }
        };
        drop(cells);
        {
            let mut v = cell.values();
            v.service = service.clone();
            let old = std::mem::take(&mut v.slas);
            let supplier = v.supplier().to_owned();
            v.slas = service
                .slas
                .iter()
                .map(|spec| {
                    let mut s = old
                        .iter()
                        .find(|o| o.name == spec.name)
                        .cloned()
                        .unwrap_or(Sla {
                            name: spec.name.clone(),
                            labels: sla_labels(&service.id, &spec.name, &supplier),
                            objective: 0.0,
                            availability: None,
                            budget_remaining: None,
                            burn: None,
                            eligible_seconds: 0.0,
                            good_seconds: 0.0,
                        });
                    s.objective = spec.ratio();
                    s
                })
                .collect();
        }
        ServiceMetrics(cell)
    }

    /// Drop the series of every service `keep` says no to.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.cells.write().retain(|id, _| keep(id));
    }

    /// Write every per-service and per-SLA family.
    pub fn render(&self, w: &mut Chunks<'_>, format: Format) {
        let cells = self.cells.snapshot();
        for (family, desc) in FAMILIES {
            desc.header(&mut w.buf, format);
            for cell in &cells {
                let v = cell.values();
                write_family(&mut w.buf, family, desc, cell, &v);
                drop(v);
                w.maybe_flush();
                if w.closed {
                    return;
                }
            }
        }
    }
}

fn sla_labels(service: &str, sla: &str, supplier: &str) -> Box<str> {
    labels(&[("service", service), ("sla", sla), ("supplier", supplier)])
}

#[derive(Clone, Copy)]
enum Family {
    Up,
    State,
    Maintenance,
    Incidents,
    SlaObjective,
    SlaAvailability,
    SlaBudgetRemaining,
    SlaBurnRate,
    SlaEligibleSeconds,
    SlaGoodSeconds,
    Info,
    Phase,
    CutoverStart,
    CutoverEnd,
}

/// The per-service families, in the order they are exposed.
const FAMILIES: [(Family, &Desc); 14] = [
    (Family::Up, &names::SERVICE_UP),
    (Family::State, &names::SERVICE_STATE),
    (Family::Maintenance, &names::MAINTENANCE_ACTIVE),
    (Family::Incidents, &names::INCIDENTS),
    (Family::SlaObjective, &names::SLA_OBJECTIVE),
    (Family::SlaAvailability, &names::SLA_AVAILABILITY),
    (Family::SlaBudgetRemaining, &names::SLA_BUDGET_REMAINING),
    (Family::SlaBurnRate, &names::SLA_BURN_RATE),
    (Family::SlaEligibleSeconds, &names::SLA_ELIGIBLE_SECONDS),
    (Family::SlaGoodSeconds, &names::SLA_GOOD_SECONDS),
    (Family::Info, &names::SERVICE_INFO),
    (Family::Phase, &names::SERVICE_PHASE),
    (Family::CutoverStart, &names::CUTOVER_START),
    (Family::CutoverEnd, &names::CUTOVER_END),
];

fn write_family(out: &mut String, family: Family, d: &Desc, cell: &Cell, v: &Values) {
    let service = &*cell.service_label;
    // The timeline comes from the configuration, not from probes: it is
    // known before the first result.
    match family {
        Family::Info => {
            if let Some(phase) = v.phase {
                let info = labels(&[
                    ("service", &v.service.id),
                    ("supplier", v.supplier()),
                    ("phase", Phase::ALL[phase as usize].as_str()),
                    ("category", &v.service.category),
                ]);
                d.int(out, &info, "", 1);
            }
            return;
        }
        // Only for services with a timeline: for one that never moves the
        // phase is always `steady`, and `continuity_service_info` says so
        // (four series per service, 40,000 at 10,000 services, for nothing).
        Family::Phase => {
            if let Some(current) = v.phase.filter(|_| !v.service.migrations.is_empty()) {
                for (i, l) in PHASE_LABELS.iter().enumerate() {
                    d.int(out, service, l, (i == current as usize) as i64);
                }
            }
            return;
        }
        Family::CutoverStart | Family::CutoverEnd => {
            for m in &v.service.migrations {
                let l = labels(&[
                    ("service", &v.service.id),
                    ("from", &m.from),
                    ("to", &m.to),
                    ("reference", &m.cutover.reference),
                ]);
                let at = if matches!(family, Family::CutoverStart) {
                    m.cutover.start
                } else {
                    m.cutover.end
                };
                d.float(out, &l, "", at.as_millisecond() as f64 / 1000.0);
            }
            return;
        }
        _ => {}
    }
    if !v.published {
        return;
    }
    match family {
        Family::Info | Family::Phase | Family::CutoverStart | Family::CutoverEnd => {}
        Family::Up => d.int(out, &cell.up_labels, "", v.up as i64),
        Family::State => {
            for (i, l) in STATE_LABELS.iter().enumerate() {
                d.int(out, service, l, (i == v.state as usize) as i64);
            }
        }
        Family::Maintenance => d.int(out, service, "", v.maintenance as i64),
        Family::Incidents => d.int(out, service, "", v.incidents as i64),
        Family::SlaObjective => {
            for s in &v.slas {
                d.float(out, &s.labels, "", s.objective);
            }
        }
        Family::SlaAvailability => {
            for s in &v.slas {
                if let Some(a) = s.availability {
                    d.float(out, &s.labels, "", a);
                }
            }
        }
        Family::SlaBudgetRemaining => {
            for s in &v.slas {
                if let Some(r) = s.budget_remaining {
                    d.float(out, &s.labels, "", r);
                }
            }
        }
        Family::SlaBurnRate => {
            for s in &v.slas {
                for (rate, l) in s.burn.iter().flatten().zip(WINDOW_LABELS.iter()) {
                    d.float(out, &s.labels, l, *rate);
                }
            }
        }
        Family::SlaEligibleSeconds => {
            for s in &v.slas {
                d.float(out, &s.labels, "", s.eligible_seconds);
            }
        }
        Family::SlaGoodSeconds => {
            for s in &v.slas {
                d.float(out, &s.labels, "", s.good_seconds);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::migration::Phase;
    use crate::telemetry::Telemetry;

    const MOVING: &str = "    migration:\n      from: in-house\n      to: northhost\n      cutover: { start: 2026-12-05T22:00:00+01:00, end: 2026-12-06T06:00:00+01:00, reference: CHG-1042 }\n";

    fn catalogue(migration: &str) -> Config {
        let yaml = format!(
            "services:\n  - id: portal\n    category: web\n    supplier: in-house\n{migration}    checks:\n      - id: home\n        tcp: {{ target: 127.0.0.1:9 }}\n"
        );
        Config::from_str("t.yaml", &yaml).unwrap()
    }

    fn lines<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .collect()
    }

    #[test]
    fn a_service_that_never_moves_has_its_info_series_but_no_phase_or_cutover_series() {
        let t = Telemetry::new();
        let cfg = catalogue("");
        t.services
            .register(&cfg.services[0])
            .set_position(Phase::Steady, "in-house");
        let text = t.render(false);
        assert_eq!(
            lines(&text, "continuity_service_info"),
            [
                "continuity_service_info{service=\"portal\",supplier=\"in-house\",phase=\"steady\",category=\"web\"} 1"
            ]
        );
        assert!(
            lines(&text, "continuity_service_phase").is_empty(),
            "{text}"
        );
        assert!(
            lines(
                &text,
                "continuity_migration_cutover_start_timestamp_seconds"
            )
            .is_empty()
        );
    }

    #[test]
    fn a_moving_service_has_one_hot_phases_its_windows_and_the_supplier_of_now() {
        let t = Telemetry::new();
        let cfg = catalogue(MOVING);
        let m = t.services.register(&cfg.services[0]);
        m.set_position(Phase::Baseline, "in-house");
        m.set_position(Phase::Hypercare, "northhost");
        let text = t.render(false);
        assert_eq!(
            lines(&text, "continuity_service_info"),
            [
                "continuity_service_info{service=\"portal\",supplier=\"northhost\",phase=\"hypercare\",category=\"web\"} 1"
            ]
        );
        assert_eq!(
            lines(&text, "continuity_service_phase"),
            [
                "continuity_service_phase{service=\"portal\",phase=\"baseline\"} 0",
                "continuity_service_phase{service=\"portal\",phase=\"cutover\"} 0",
                "continuity_service_phase{service=\"portal\",phase=\"hypercare\"} 1",
                "continuity_service_phase{service=\"portal\",phase=\"steady\"} 0",
            ]
        );
        let labels =
            "{service=\"portal\",from=\"in-house\",to=\"northhost\",reference=\"CHG-1042\"}";
        assert!(text.contains(&format!(
            "continuity_migration_cutover_start_timestamp_seconds{labels} 1796504400.0\n"
        )));
        assert!(text.contains(&format!(
            "continuity_migration_cutover_end_timestamp_seconds{labels} 1796533200.0\n"
        )));
        // A reload that drops the timeline drops its series with it.
        t.services.register(&catalogue("").services[0]);
        let text = t.render(false);
        assert!(
            lines(&text, "continuity_service_phase").is_empty(),
            "{text}"
        );
        assert!(lines(&text, "continuity_migration_cutover_end_timestamp_seconds").is_empty());
    }
}
