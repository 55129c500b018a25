//! Every dashboard query against a real Prometheus scraping two real
//! `continuity demo`s (two locations), as Grafana would send it: the variables are resolved
//! through Prometheus's label API (as the variable queries do), "All"
//! becomes the variable's all value or the regex of its values, a
//! single-choice variable is tried with each of its values, a repeated
//! panel with each value of its variable, and `$__rate_interval`,
//! `$__interval` and `$__range` are what Grafana computes for a 1 s scrape.
//! Each query must return data, except the ones listed in
//! [`MAY_BE_EMPTY`] with the reason the demo leaves them empty. The demo
//! gets one TLS check more, so that the certificate panels have data.
//!
//! When the Prometheus rule file generated from the example catalogue
//! (deploy/prometheus/rules.yml) exists, Prometheus loads it too.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::dashboards::{self, Board, Query, expand, label_values, variable_query};
use support::demo::Demo;
use support::prometheus::Prometheus;

/// Queries the demo may leave empty: (dashboard file, panel title, target
/// index, why).
const MAY_BE_EMPTY: [(&str, &str, usize, &str); 10] = [
    (
        "overview.json",
        "Earliest certificate expiry",
        0,
        "the demo has no TLS checks",
    ),
    (
        "overview.json",
        "Certificates expiring soonest",
        0,
        "the demo has no TLS checks",
    ),
    (
        "service-detail.json",
        "Certificate expires in",
        0,
        "the demo has no TLS checks",
    ),
    (
        "overview.json",
        "Down or in maintenance now",
        0,
        "empty while no demo service is down, and the demo has no maintenance windows",
    ),
    (
        "service-detail.json",
        "annotation Incidents",
        0,
        "a demo service goes down only now and then (the appointments outage is 45 s in every 180 s)",
    ),
    (
        "service-detail.json",
        "annotation Maintenance",
        0,
        "the demo has no maintenance windows",
    ),
    (
        "monitor.json",
        "Notifications by result",
        0,
        "the demo has no receivers",
    ),
    (
        "monitor.json",
        "Monitor errors and alerts firing",
        0,
        "the demo's monitor runs every probe; a check's error series appears with its first error",
    ),
    (
        "service-detail.json",
        "Monitor errors",
        0,
        "the demo's monitor runs every probe; a check's error series appears with its first error",
    ),
    (
        "telephony.json",
        "Failure reasons over time",
        0,
        "the demo's phone line fails only in its outage, 40 s in every 4 minutes",
    ),
];

/// Grafana's `$__rate_interval` for a 1 s scrape interval: four scrapes.
const RATE_INTERVAL: &str = "4s";

/// The values a dashboard's variables take, resolved through Prometheus.
struct Resolved {
    /// Value substituted for each variable with all its values chosen.
    all: BTreeMap<String, String>,
    /// Each value of every variable, for single choices and repeats.
    values: BTreeMap<String, Vec<String>>,
}

fn resolve(prom: &Prometheus, board: &Board, globals: &dyn Fn(&str) -> Option<String>) -> Resolved {
    let mut r = Resolved {
        all: BTreeMap::new(),
        values: BTreeMap::new(),
    };
    for v in board.variables() {
        let name = v["name"].as_str().unwrap_or("").to_string();
        let values: Vec<String> = match v["type"].as_str() {
            Some("query") => {
                let query = variable_query(v).unwrap_or("");
                let (selector, label) = label_values(query).unwrap_or_else(|| {
                    panic!(
                        "{}: variable {name}: only label_values is resolved here",
                        board.file
                    )
                });
                let mut params = vec![
                    ("start", format!("{}", Prometheus::now() - 3600.0)),
                    ("end", format!("{}", Prometheus::now())),
                ];
                if let Some(s) = selector {
                    params.push(("match[]", substitute(s, &r, globals, None)));
                }
                let params: Vec<(&str, &str)> =
                    params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let answer = prom.api(&format!("/api/v1/label/{label}/values"), &params);
                answer["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            }
            Some("custom") => v["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["value"].as_str().map(str::to_string))
                .collect(),
            _ => continue,
        };
        let all = if v["includeAll"] == true {
            match v["allValue"].as_str() {
                Some(a) => a.to_string(),
                None => regex_of(&values),
            }
        } else {
            // A single choice: Grafana shows the current or the first value.
            v["current"]["value"]
                .as_str()
                .map(str::to_string)
                .or_else(|| values.first().cloned())
                .unwrap_or_default()
        };
        r.all.insert(name.clone(), all);
        r.values.insert(name, values);
    }
    r
}

/// A value as Grafana's Prometheus datasource puts it into a query: regex
/// metacharacters escaped with a backslash that is itself escaped, since
/// the value lands inside a PromQL string.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\^$*+?.()|{}[]".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Grafana's regex for several values of a variable: `(a|b|c)`, escaped.
fn regex_of(values: &[String]) -> String {
    let escaped: Vec<String> = values.iter().map(|v| escape(v)).collect();
    match escaped.len() {
        1 => escaped[0].clone(),
        _ => format!("({})", escaped.join("|")),
    }
}

fn substitute(
    text: &str,
    r: &Resolved,
    globals: &dyn Fn(&str) -> Option<String>,
    pinned: Option<(&str, &str)>,
) -> String {
    expand(text, &|name, _format| {
        if let Some((n, v)) = pinned
            && n == name
        {
            return escape(v);
        }
        globals(name)
            .or_else(|| r.all.get(name).cloned())
            .unwrap_or_else(|| panic!("variable ${name} is not defined"))
    })
}

/// Whether Prometheus's answer holds at least one value.
fn has_data(answer: &Value) -> bool {
    let result = &answer["data"]["result"];
    match answer["data"]["resultType"].as_str() {
        Some("scalar" | "string") => true,
        _ => result.as_array().is_some_and(|a| !a.is_empty()),
    }
}

/// The variable choices to try a query with: every value of the board's
/// single-choice variables and of the panel's repeat variable.
fn choices<'a>(board: &Board, q: &'a Query, r: &'a Resolved) -> Vec<Option<(&'a str, &'a str)>> {
    let mut pinned: Vec<&str> = board
        .variables()
        .iter()
        .filter(|v| v["type"] == "query" && v["includeAll"] != true)
        .filter_map(|v| {
            r.values
                .get_key_value(v["name"].as_str()?)
                .map(|(k, _)| k.as_str())
        })
        .collect();
    if let Some(repeat) = &q.repeat {
        pinned.push(repeat);
    }
    let mut out: Vec<Option<(&str, &str)>> = pinned
        .iter()
        .flat_map(|name| {
            r.values[*name]
                .iter()
                .map(move |v| Some((*name, v.as_str())))
        })
        .collect();
    if out.is_empty() {
        out.push(None);
    }
    out
}

#[test]
fn every_dashboard_query_returns_data_from_prometheus_scraping_the_demo() {
    assert!(
        support::prometheus::binary().is_some(),
        "prometheus is not installed (scripts/test installs it: apt-get install prometheus)"
    );
    // The demo has no certificate to watch: one TLS check is added, on a
    // local server whose certificate has 20 days left.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = support::TestCa::new("Gemeente test CA");
    let gateway = runtime.block_on(support::tls_server(
        &ca.leaf(&["localhost"], support::Validity::DaysLeft(20)),
    ));
    let catalogue = dir.path().join("demo.yaml");
    let demo_yaml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/probes/demo.yaml"))
            .expect("probes/demo.yaml");
    std::fs::write(
        &catalogue,
        format!(
            "{demo_yaml}\n  - id: login-gateway\n    name: Citizen login gateway\n    category: network\n    supplier: network-partner\n    checks:\n      - id: certificate\n        tls:\n          target: {gateway}\n          server_name: localhost\n          ca_file: {}\n",
            ca.write_pem(dir.path()).display()
        ),
    )
    .expect("write catalogue");
    // Two locations, as a deployment has them (inside the municipal
    // network and outside as a citizen), so that every join and grouping
    // meets the same service twice.
    let inside = Demo::start_with(Some(&catalogue));
    let outside = Demo::start_with(Some(&catalogue));
    let rules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules.yml");
    let rule_files: Vec<std::path::PathBuf> = if rules.exists() { vec![rules] } else { vec![] };
    let prom = Prometheus::start(
        &[(inside.addr, "inside"), (outside.addr, "outside")],
        &rule_files,
    );
    let started = Prometheus::now();
    // A few scrapes, and the SLA series of the daemon's first 5 s ticks.
    support::daemon::wait_for(
        "Prometheus to scrape the demo's SLA series",
        Duration::from_secs(60),
        || {
            has_data(&prom.api(
                "/api/v1/query",
                &[("query", "continuity_sla_availability_ratio")],
            ))
        },
    );
    std::thread::sleep(Duration::from_secs(5));

    let boards = dashboards::load_all();
    let mut pending: Vec<(String, Query)> = boards
        .iter()
        .flat_map(|b| b.queries().into_iter().map(|q| (b.file.clone(), q)))
        .collect();
    let total = pending.len();
    assert!(total > 50, "only {total} queries in the dashboards");
    for (file, panel, idx, _) in MAY_BE_EMPTY {
        assert!(
            pending
                .iter()
                .any(|(f, q)| f == file && q.panel == panel && q.idx == idx),
            "MAY_BE_EMPTY names {file} '{panel}' target {idx}, which no dashboard has"
        );
    }
    let limit = Instant::now() + Duration::from_secs(90);
    loop {
        let now = Prometheus::now();
        let range = format!("{}s", (now - started).ceil() as u64);
        let globals = |name: &str| -> Option<String> {
            Some(match name {
                "__rate_interval" => RATE_INTERVAL.to_string(),
                "__interval" => "1s".to_string(),
                "__range" => range.clone(),
                "__range_s" => range.trim_end_matches('s').to_string(),
                _ => return None,
            })
        };
        let resolved: BTreeMap<&str, Resolved> = boards
            .iter()
            .map(|b| (b.file.as_str(), resolve(&prom, b, &globals)))
            .collect();
        assert_eq!(
            resolved["overview.json"].values["location"],
            ["inside", "outside"],
            "the location variable lists the locations Prometheus labels"
        );
        pending.retain(|(file, q)| {
            let board = boards.iter().find(|b| &b.file == file).expect("board");
            let r = &resolved[file.as_str()];
            !choices(board, q, r).into_iter().any(|pin| {
                let expr = substitute(&q.expr, r, &globals, pin);
                let answer = if q.instant {
                    prom.api(
                        "/api/v1/query",
                        &[("query", &expr), ("time", &format!("{now}"))],
                    )
                } else {
                    prom.api(
                        "/api/v1/query_range",
                        &[
                            ("query", &expr),
                            ("start", &format!("{started}")),
                            ("end", &format!("{now}")),
                            ("step", "1"),
                        ],
                    )
                };
                has_data(&answer)
            })
        });
        let waiting = pending.iter().filter(|(f, q)| {
            !MAY_BE_EMPTY
                .iter()
                .any(|(file, panel, idx, _)| f == file && q.panel == *panel && q.idx == *idx)
        });
        if waiting.clone().count() == 0 {
            eprintln!(
                "{} of {total} dashboard queries returned data; empty as the demo leaves them: {:?}",
                total - pending.len(),
                pending
                    .iter()
                    .map(|(f, q)| format!("{f} '{}'", q.panel))
                    .collect::<Vec<_>>()
            );
            return;
        }
        if Instant::now() > limit {
            let list: Vec<String> = waiting
                .map(|(f, q)| format!("{f} panel '{}' target {}: {}", q.panel, q.idx, q.expr))
                .collect();
            panic!(
                "{} dashboard queries returned no data:\n{}",
                list.len(),
                list.join("\n")
            );
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}
