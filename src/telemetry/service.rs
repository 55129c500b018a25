//! Per-service and per-SLA series, in one compact cell per service (see
//! `check.rs` for why not prometheus-client families). The engine owns the
//! handles and is their only writer.

use std::sync::{Arc, LazyLock, Mutex};

use super::text::{Chunks, Desc, Format, labels, one_label};
use super::{BURN_WINDOWS, SERVICE_STATES, Table, lock, names};
use crate::config::Service;
use crate::sla::{BurnRates, ServiceState};

/// Label strings of the closed sets, derived once from their lists.
static STATE_LABELS: LazyLock<[Box<str>; SERVICE_STATES.len()]> =
    LazyLock::new(|| one_label("state", SERVICE_STATES.map(ServiceState::as_str)));
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

#[derive(Debug, Default)]
struct Values {
    /// The engine has published a state: the state series exist.
    published: bool,
    up: bool,
    /// Index into `SERVICE_STATES`.
    state: usize,
    maintenance: bool,
    incidents: u64,
    slas: Vec<Sla>,
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
            .unwrap_or(SERVICE_STATES.len() - 1);
        v.maintenance = maintenance;
    }

    pub fn incident_opened(&self) {
        self.0.values().incidents += 1;
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
    pub fn register(&self, service: &Service) -> ServiceMetrics {
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
                    values: Mutex::default(),
                });
                cells.insert(service.id.clone(), c.clone());
                c
            }
        };
        drop(cells);
        {
            let mut v = cell.values();
            let old = std::mem::take(&mut v.slas);
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
                            labels: labels(&[("service", &service.id), ("sla", &spec.name)]),
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
}

/// The per-service families, in the order they are exposed.
const FAMILIES: [(Family, &Desc); 10] = [
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
];

fn write_family(out: &mut String, family: Family, d: &Desc, cell: &Cell, v: &Values) {
    if !v.published {
        return;
    }
    let service = &*cell.service_label;
    match family {
        Family::Up => d.int(out, &cell.up_labels, "", v.up as i64),
        Family::State => {
            for (i, l) in STATE_LABELS.iter().enumerate() {
                d.int(out, service, l, (i == v.state) as i64);
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
