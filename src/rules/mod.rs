//! The Prometheus rule file `continuity rules` prints: recording rules for
//! SLA availability and burn rate over the daemon's windows, made from the
//! time-based SLA counters (so office hours and maintenance count exactly as
//! in the daemon), the daemon's own multiwindow burn-rate alerts with the
//! same names, factors, windows and severities (read from the catalogue's
//! `alerting.burn_rate`), a quorum alert across locations and an alert for a
//! location whose monitor stopped being scraped.
//!
//! Every location runs its own continuity and Prometheus scrapes each with a
//! `location` target label (the value of that instance's `location:`); two
//! instances of one location (high availability) are summed, so their
//! figures count once. Metric names come from `telemetry`, alert names from
//! `alert::model::names`: nothing here spells a name of its own.

mod yaml;

use std::fmt::Write as _;

use thiserror::Error;

use crate::alert::config::{BurnWindow, window_key};
use crate::alert::model::names as alert_names;
use crate::config::Config;
use crate::sla::ServiceState;
use crate::telemetry::BURN_WINDOWS;
use crate::telemetry::names as metric;
use crate::telemetry::recording;
use crate::telemetry::text::{Desc, Kind};

use yaml::{Group, Rule};

/// The alerts this file adds to the daemon's own.
pub mod names {
    pub const SERVICE_DOWN_QUORUM: &str = "ServiceDownQuorum";
    pub const MONITOR_ABSENT: &str = "ContinuityMonitorAbsent";
}

/// How long a monitor must be unscraped before `ContinuityMonitorAbsent`
/// fires: two missed minutes, not one slow scrape.
const ABSENT_FOR: &str = "2m";
/// How long a quorum must hold before `ServiceDownQuorum` fires. The
/// daemon's states are already confirmed (`failure_threshold`), so this
/// only rides out locations confirming a few scrapes apart.
const QUORUM_FOR: &str = "1m";

/// What the rule file is generated for, beyond the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesOptions {
    /// `N` locations, of which `K` must see a service down.
    pub quorum: Option<Quorum>,
    /// The Prometheus job that scrapes the continuity instances.
    pub job: String,
    /// Wrap the rules in a Prometheus Operator `PrometheusRule` resource.
    pub kubernetes: bool,
    /// The command line written into the file's header, so that a reader
    /// knows how to regenerate it.
    pub command: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    pub locations: u32,
    pub needed: u32,
}

#[derive(Debug, Error, PartialEq)]
pub enum RulesError {
    #[error(
        "--quorum {needed} is more than the {locations} locations given with --locations: a service could never be seen down by enough locations; use --quorum 1..={locations}"
    )]
    QuorumTooLarge { needed: u32, locations: u32 },
    #[error("--quorum 0 would page on every service: use --quorum 1 or more")]
    QuorumZero,
    #[error("--locations 0: at least one location runs continuity")]
    NoLocations,
    #[error(
        "--job '{0}' is not a Prometheus label value that can be written in a rule (no quotes, backslashes or line breaks)"
    )]
    BadJob(String),
    #[error(
        "alerting.burn_rate uses a window of {0}, which the daemon does not measure; use one of {windows}",
        windows = BURN_WINDOWS.join(", ")
    )]
    UnknownWindow(String),
}

impl Quorum {
    pub fn new(locations: u32, needed: u32) -> Result<Quorum, RulesError> {
        if locations == 0 {
            Err(RulesError::NoLocations)
        } else if needed == 0 {
            Err(RulesError::QuorumZero)
        } else if needed > locations {
            Err(RulesError::QuorumTooLarge { needed, locations })
        } else {
            Ok(Quorum { locations, needed })
        }
    }
}

/// The command that regenerates a file, for its header.
pub fn command_line(
    config: &std::path::Path,
    quorum: Option<Quorum>,
    job: &str,
    kubernetes: bool,
) -> String {
    let mut c = format!("continuity rules --config {}", config.display());
    if let Some(q) = quorum {
        let _ = write!(c, " --locations {} --quorum {}", q.locations, q.needed);
    }
    if job != "continuity" {
        let _ = write!(c, " --job {job}");
    }
    if kubernetes {
        c.push_str(" --kubernetes");
    }
    c
}

/// The series name of a family as Prometheus stores it (counters with
/// their `_total`).
fn series(d: &Desc) -> String {
    match d.kind {
        Kind::Counter => format!("{}_total", d.name),
        Kind::Gauge | Kind::Histogram => d.name.to_string(),
    }
}

/// Labels the SLA records keep: one series per location, service and SLA.
const SLA_BY: &str = "location, service, sla";

/// The rule file for `config`, as YAML text.
pub fn generate(config: &Config, opts: &RulesOptions) -> Result<String, RulesError> {
    if opts.job.contains(['"', '\\', '\n', '\r']) {
        return Err(RulesError::BadJob(opts.job.clone()));
    }
    // One group: its rules run in order at each evaluation, so the alerts
    // read the burn rates recorded the same moment, not the last round's.
    let mut rules = sla_records();
    rules.extend(alerts(config, opts)?);
    let groups = vec![Group {
        name: "continuity",
        rules,
    }];
    let mut out = header(opts);
    if opts.kubernetes {
        yaml::prometheus_rule(&mut out, &groups);
    } else {
        yaml::rule_file(&mut out, &groups);
    }
    Ok(out)
}

/// Says how to regenerate the file. Nothing in it depends on the
/// services listed (the rules are per series), so adding a service does
/// not make a kept file stale; the thresholds do.
fn header(opts: &RulesOptions) -> String {
    format!(
        "# Generated by `{}`; do not edit, regenerate.\n\
         # Prometheus scrapes every continuity instance with a `location` target label\n\
         # (the instance's `location:`); see docs/deployment.md and docs/metrics.md.\n",
        opts.command
    )
}

/// Availability and burn rate per window, from the time-based counters.
fn sla_records() -> Vec<Rule> {
    let good = series(&metric::SLA_GOOD_SECONDS);
    let eligible = series(&metric::SLA_ELIGIBLE_SECONDS);
    let objective = metric::SLA_OBJECTIVE.name;
    let up = metric::SERVICE_UP.name;
    let mut rules = Vec::new();
    for w in BURN_WINDOWS {
        // A window without eligible time (closed hours, excluded
        // maintenance) has no availability rather than NaN, so nothing
        // downstream fires or draws on it.
        rules.push(Rule::record(
            recording::availability(w),
            format!(
                "(\n  sum by ({SLA_BY}) (rate({good}[{w}]))\n/\n  (sum by ({SLA_BY}) (rate({eligible}[{w}])) > 0)\n)\n\
                 * on (location, service) group_left (category, supplier)\n  \
                 group by (location, service, category, supplier) ({up})"
            ),
        ));
    }
    for w in BURN_WINDOWS {
        rules.push(Rule::record(
            recording::burn_rate(w),
            format!(
                "(1 - {avail})\n/ on ({SLA_BY}) group_left ()\n  (1 - max by ({SLA_BY}) ({objective}))",
                avail = recording::availability(w)
            ),
        ));
    }
    rules.push(Rule::record(
        recording::DOWN_LOCATIONS.to_string(),
        format!(
            "count by (service) (\n  max by (location, service) ({state}{{state=\"{down}\"}}) == 1\n  unless on (location) {degraded}\n)\n\
             * on (service) group_left (category, supplier)\n  group by (service, category, supplier) ({up})",
            state = metric::SERVICE_STATE.name,
            down = ServiceState::Down.as_str(),
            degraded = network_degraded(),
        ),
    ));
    rules
}

/// Locations whose own network is degraded (every canary check fails): the
/// daemon holds back their service alerts, and so do these rules.
fn network_degraded() -> String {
    format!(
        "(max by (location) ({}{{alertname=\"{}\"}}) > 0)",
        crate::telemetry::ALERTS_FIRING,
        alert_names::NETWORK_DEGRADED
    )
}

/// Services in a maintenance window: the daemon sends none of their alerts.
fn in_maintenance() -> String {
    format!(
        "(max by (location, service) ({}) == 1)",
        metric::MAINTENANCE_ACTIVE.name
    )
}

/// `(long >= f and short >= f) or …` over the recorded burn rates; the
/// value is the long window's rate. `>=` is `sla::reaches`, the daemon's
/// own comparison: both fire at the same figure.
fn burning(windows: &[BurnWindow]) -> Result<String, RulesError> {
    let mut terms = Vec::new();
    for w in windows {
        let key = |d| window_key(d).ok_or_else(|| RulesError::UnknownWindow(d.to_string()));
        let (long, short) = (key(w.long)?, key(w.short)?);
        terms.push(format!(
            "(\n    {} >= {f}\n  and\n    {} >= {f}\n  )",
            recording::burn_rate(long),
            recording::burn_rate(short),
            f = factor(w.factor)
        ));
    }
    Ok(if terms.is_empty() {
        // No rule of this severity: an expression that is never true.
        "vector(0) == 1".to_string()
    } else {
        format!("(\n  {}\n)", terms.join("\n  or\n  "))
    })
}

/// A factor as PromQL writes it (no exponent, no trailing `.0`).
fn factor(f: f64) -> String {
    let s = format!("{f}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn held_back(expr: String) -> String {
    format!(
        "{expr}\nunless on (location, service) {}\nunless on (location) {}",
        in_maintenance(),
        network_degraded()
    )
}

fn alerts(config: &Config, opts: &RulesOptions) -> Result<Vec<Rule>, RulesError> {
    let spec = &config.alerting.burn_rate;
    let page: Vec<BurnWindow> = spec.page.iter().map(|w| w.value.clone()).collect();
    let ticket: Vec<BurnWindow> = spec.ticket.iter().map(|w| w.value.clone()).collect();
    let fast = burning(&page)?;
    let slow = burning(&ticket)?;
    let thresholds = |ws: &[BurnWindow]| {
        ws.iter()
            .map(|w| {
                format!(
                    "{}x over {} and {}",
                    factor(w.factor),
                    window_key(w.long).unwrap_or("?"),
                    window_key(w.short).unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", or ")
    };
    let mut rules = vec![
        Rule::alert(
            alert_names::FAST_BURN,
            held_back(fast.clone()),
            None,
            crate::alert::config::Severity::Page,
            "{{ $labels.service }}: error budget of SLA {{ $labels.sla }} burns too fast".into(),
            format!(
                "SLA {{{{ $labels.sla }}}} of {{{{ $labels.service }}}} (supplier {{{{ $labels.supplier }}}}) seen from {{{{ $labels.location }}}} burns its error budget at {{{{ $value | printf \"%.1f\" }}}}x, at or over the threshold ({}). See {}<window>.",
                thresholds(&page),
                recording::BURN_RATE_PREFIX
            ),
        ),
        Rule::alert(
            alert_names::SLOW_BURN,
            // A fast burn implies a slow one; as in the daemon, one alert
            // is enough.
            held_back(format!("{slow}\nunless on ({SLA_BY}) {fast}")),
            None,
            crate::alert::config::Severity::Ticket,
            "{{ $labels.service }}: error budget of SLA {{ $labels.sla }} burns too fast".into(),
            format!(
                "SLA {{{{ $labels.sla }}}} of {{{{ $labels.service }}}} (supplier {{{{ $labels.supplier }}}}) seen from {{{{ $labels.location }}}} burns its error budget at {{{{ $value | printf \"%.1f\" }}}}x, at or over the threshold ({}). See {}<window>.",
                thresholds(&ticket),
                recording::BURN_RATE_PREFIX
            ),
        ),
    ];
    if let Some(q) = opts.quorum {
        rules.push(Rule::alert(
            names::SERVICE_DOWN_QUORUM,
            format!("{} >= {}", recording::DOWN_LOCATIONS, q.needed),
            Some(QUORUM_FOR),
            crate::alert::config::Severity::Page,
            format!(
                "{{{{ $labels.service }}}} is down from {{{{ $value }}}} of {} locations",
                q.locations
            ),
            format!(
                "{{{{ $value }}}} of the {} monitoring locations see {{{{ $labels.service }}}} (category {{{{ $labels.category }}}}, supplier {{{{ $labels.supplier }}}}) down; {} are needed to page, so one location's own network trouble pages nobody.",
                q.locations, q.needed
            ),
        ));
    }
    rules.extend(absent_alerts(opts));
    Ok(rules)
}

/// The label that tells the `ContinuityMonitorAbsent` rules apart: one
/// location, discovery short of locations, or every instance.
const SCOPE: &str = "scope";

/// A location whose continuity stopped being scraped, a location missing
/// from discovery altogether, and no continuity at all.
fn absent_alerts(opts: &RulesOptions) -> Vec<Rule> {
    use crate::alert::config::Severity;
    let job = &opts.job;
    // Losing one location is a page only when the remaining ones can no
    // longer make the quorum: then a real outage would go unpaged.
    let one_lost = match opts.quorum {
        Some(q) if q.locations > q.needed => Severity::Ticket,
        _ => Severity::Page,
    };
    let mut rules = vec![Rule::alert(
        names::MONITOR_ABSENT,
        format!("max by (location) (up{{job=\"{job}\"}}) == 0"),
        Some(ABSENT_FOR),
        one_lost,
        "continuity at location {{ $labels.location }} is not being scraped".into(),
        format!(
            "Prometheus cannot scrape any continuity instance of location {{{{ $labels.location }}}} (job {job}): the services are not watched from there. Check the instance (systemctl status continuity, /healthz) and the network between it and Prometheus."
        ),
    )
    .with_label(SCOPE, "location")];
    if let Some(q) = opts.quorum {
        rules.push(Rule::alert(
            names::MONITOR_ABSENT,
            format!(
                "count(count by (location) (up{{job=\"{job}\"}})) < {}",
                q.locations
            ),
            Some(ABSENT_FOR),
            one_lost,
            format!("only {{{{ $value }}}} of {} continuity locations are known to Prometheus", q.locations),
            format!(
                "Service discovery finds continuity at {{{{ $value }}}} locations, not {}: a location's instance is gone from the targets (job {job}). Quorum alerts need {} of them.",
                q.locations, q.needed
            ),
        )
        .with_label(SCOPE, "discovery"));
    }
    rules.push(Rule::alert(
        names::MONITOR_ABSENT,
        format!("absent(up{{job=\"{job}\"}} == 1)"),
        Some(ABSENT_FOR),
        Severity::Page,
        "no continuity instance is being scraped".into(),
        format!(
            "No instance of job {job} answers Prometheus: nobody watches the citizens' services. Restore a continuity instance first."
        ),
    )
    .with_label(SCOPE, "all"));
    rules
}

#[cfg(test)]
mod tests;
