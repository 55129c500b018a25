//! The Grafana dashboards (`dashboards/*.json`) as a reviewer would check
//! them before provisioning:
//! - they are what `dashboards/generate.mjs` writes (no hand edit lost);
//! - they pass the rules of Grafana's dashboard-linter (there is no Go
//!   toolchain here, so the rules are written out below, as the linter's
//!   `lint/rule_*.go` define them, some a little stricter), with the
//!   exclusions of `dashboards/.lint` in the linter's own format;
//! - every expression parses as PromQL once Grafana's variables are
//!   substituted, and names only metrics a live `continuity demo` exports;
//! - they match Grafana's published schema (`@grafana/schema`, checked by
//!   node in tests/grafana/).
//!
//! tests/dashboards_live.rs runs every query against a real Prometheus.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use promql_parser::parser::{self, Expr};
use serde::Deserialize;
use serde_json::Value;
use support::daemon::{get, wait_until};
use support::dashboards::{self, Board, expand, label_values, variable_query, walk};
use support::demo::Demo;

// ------------------------------------------------------------ lint file

/// `dashboards/.lint`, the linter's configuration file: rule name to the
/// places where the rule is excluded (or downgraded to a warning).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LintFile {
    #[serde(default)]
    exclusions: BTreeMap<String, Option<RuleEntries>>,
    #[serde(default)]
    warnings: BTreeMap<String, Option<RuleEntries>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntries {
    reason: Option<String>,
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    reason: Option<String>,
    dashboard: Option<String>,
    panel: Option<String>,
    #[serde(rename = "targetIdx")]
    target_idx: Option<String>,
}

impl Entry {
    /// The linter's `ConfigurationEntry.IsMatch`: every field given must
    /// equal the finding's.
    fn matches(&self, f: &Finding) -> bool {
        self.dashboard.as_ref().is_none_or(|d| *d == f.dashboard)
            && self
                .panel
                .as_ref()
                .is_none_or(|p| Some(p) == f.panel.as_ref())
            && self
                .target_idx
                .as_ref()
                .is_none_or(|i| Some(i.as_str()) == f.target.map(|t| t.to_string()).as_deref())
    }
}

/// The rule of `list` that covers finding `f`, if any.
fn excluded_by<'a>(
    list: &'a BTreeMap<String, Option<RuleEntries>>,
    f: &Finding,
) -> Option<&'a str> {
    list.get_key_value(f.rule)
        .filter(|(_, e)| rule_matches(e, f))
        .map(|(rule, _)| rule.as_str())
}

fn rule_matches(entries: &Option<RuleEntries>, f: &Finding) -> bool {
    match entries {
        None => true,
        Some(e) if e.entries.is_empty() => true,
        Some(e) => e.entries.iter().any(|x| x.matches(f)),
    }
}

fn load_lint_file() -> LintFile {
    let path = dashboards::dir().join(".lint");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
    {
        return LintFile::default();
    }
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ------------------------------------------------------------- findings

/// One rule violation, placed as the linter places it.
#[derive(Debug, Clone)]
struct Finding {
    rule: &'static str,
    dashboard: String,
    panel: Option<String>,
    target: Option<usize>,
    message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] dashboard '{}'", self.rule, self.dashboard)?;
        if let Some(p) = &self.panel {
            write!(f, ", panel '{p}'")?;
        }
        if let Some(t) = self.target {
            write!(f, ", target {t}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The rules this test implements, by the linter's names.
const RULES: [&str; 12] = [
    "template-datasource-rule",
    "template-job-rule",
    "template-instance-rule",
    "template-label-promql-rule",
    "template-on-time-change-reload-rule",
    "panel-datasource-rule",
    "panel-title-description-rule",
    "panel-units-rule",
    "panel-no-targets-rule",
    "target-promql-rule",
    "target-rate-interval-rule",
    "target-counter-agg-rule",
];

/// Sample values the linter gives Grafana's global variables: odd
/// durations (under 2^32 ms, which the parser holds), so that `[$__rate_interval]` can be recognised once parsed.
const RATE_INTERVAL: &str = "886999078ms";
const GLOBALS: [(&str, &str); 8] = [
    ("__rate_interval", RATE_INTERVAL),
    ("__interval", "486785661ms"),
    ("__interval_ms", "7781188786"),
    ("__range", "606977074ms"),
    ("__range_s", "9397795485"),
    ("__range_ms", "6737667980"),
    ("__from", "1594671549254"),
    ("__to", "1594671549254"),
];

/// Grafana's unit ids (the linter's list, from grafana-data's
/// valueFormats/categories.ts).
#[rustfmt::skip]
const UNITS: &[&str] = &[
    "none", "string", "short", "percent", "percentunit", "humidity", "dB", "hex0x", "hex",
    "sci", "locale", "pixel", "accMS2", "accFS2", "accG", "degree", "radian", "grad", "arcmin",
    "arcsec", "areaM2", "areaF2", "areaMI2", "flops", "mflops", "gflops", "tflops", "pflops",
    "eflops", "zflops", "yflops", "ppm", "conppb", "conngm3", "conngNm3", "conμgm3",
    "conμgNm3", "conmgm3", "conmgNm3", "congm3", "congNm3", "conmgdL", "conmmolL",
    "currencyUSD", "currencyGBP", "currencyEUR", "currencyJPY", "currencyRUB", "currencyUAH",
    "currencyBRL", "currencyDKK", "currencyISK", "currencyNOK", "currencySEK", "currencyCZK",
    "currencyCHF", "currencyPLN", "currencyBTC", "currencymBTC", "currencyμBTC",
    "currencyZAR", "currencyINR", "currencyKRW", "currencyIDR", "currencyPHP", "currencyVND",
    "bytes", "decbytes", "bits", "decbits", "kbytes", "deckbytes", "mbytes", "decmbytes",
    "gbytes", "decgbytes", "tbytes", "dectbytes", "pbytes", "decpbytes", "pps", "binBps",
    "Bps", "binbps", "bps", "KiBs", "Kibits", "KBs", "Kbits", "MiBs", "Mibits", "MBs", "Mbits",
    "GiBs", "Gibits", "GBs", "Gbits", "TiBs", "Tibits", "TBs", "Tbits", "PiBs", "Pibits",
    "PBs", "Pbits", "dateTimeAsIso", "dateTimeAsIsoNoDateIfToday", "dateTimeAsUS",
    "dateTimeAsUSNoDateIfToday", "dateTimeAsLocal", "dateTimeAsLocalNoDateIfToday",
    "dateTimeAsSystem", "dateTimeFromNow", "watt", "kwatt", "megwatt", "gwatt", "mwatt", "Wm2",
    "voltamp", "kvoltamp", "voltampreact", "kvoltampreact", "watth", "watthperkg", "kwatth",
    "kwattm", "amph", "kamph", "mamph", "joule", "ev", "amp", "kamp", "mamp", "volt", "kvolt",
    "mvolt", "dBm", "ohm", "kohm", "Mohm", "farad", "µfarad", "nfarad", "pfarad", "ffarad",
    "henry", "mhenry", "µhenry", "lumens", "flowgpm", "flowcms", "flowcfs", "flowcfm",
    "litreh", "flowlpm", "flowmlpm", "lux", "forceNm", "forcekNm", "forceN", "forcekN", "Hs",
    "KHs", "MHs", "GHs", "THs", "PHs", "EHs", "massmg", "massg", "masslb", "masskg", "masst",
    "lengthmm", "lengthin", "lengthft", "lengthm", "lengthkm", "lengthmi", "pressurembar",
    "pressurebar", "pressurekbar", "pressurepa", "pressurehpa", "pressurekpa", "pressurehg",
    "pressurepsi", "radbq", "radci", "radgy", "radrad", "radsv", "radmsv", "radusv", "radrem",
    "radexpckg", "radr", "radsvh", "radmsvh", "radusvh", "rotrpm", "rothz", "rotrads",
    "rotdegs", "celsius", "fahrenheit", "kelvin", "hertz", "ns", "µs", "ms", "s", "m", "h",
    "d", "dtdurationms", "dtdurations", "dthms", "dtdhms", "timeticks", "clockms", "clocks",
    "cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm", "mps", "mpm",
    "velocityms", "velocitykmh", "velocitymph", "velocityknot", "mlitre", "litre", "m3", "Nm3",
    "dm3", "gallons", "bool", "bool_yes_no", "bool_on_off",
];

/// Panel types that show query results: the linter's list, with the bar
/// gauge and the state and status timelines these dashboards use too. The
/// first seven show numbers, which need a unit.
const QUERY_PANELS: [&str; 9] = [
    "stat",
    "singlestat",
    "gauge",
    "bargauge",
    "graph",
    "timeseries",
    "table",
    "state-timeline",
    "status-history",
];

/// The value the lint substitutes for a variable: a global's sample, a
/// custom variable's current value, a query variable's "All" value.
fn lint_value(board: &Board, name: &str) -> Option<String> {
    if let Some((_, v)) = GLOBALS.iter().find(|(n, _)| *n == name) {
        return Some(v.to_string());
    }
    let v = board.variable(name)?;
    Some(match v["type"].as_str() {
        Some("custom" | "constant" | "textbox") => v["current"]["value"]
            .as_str()
            .or_else(|| v["query"].as_str())
            .unwrap_or("")
            .to_string(),
        _ => v["allValue"].as_str().unwrap_or(".*").to_string(),
    })
}

/// `expr` with the variables substituted, or which variables are unknown.
fn lint_expand(board: &Board, expr: &str) -> Result<String, String> {
    let unknown: Vec<String> = dashboards::referenced_variables(expr)
        .into_iter()
        .filter(|n| lint_value(board, n).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(format!("refers to undefined variables {unknown:?}"));
    }
    Ok(expand(expr, &|name, _| {
        lint_value(board, name).unwrap_or_default()
    }))
}

fn parse(board: &Board, expr: &str) -> Result<Expr, String> {
    if expr.trim().is_empty() {
        return Err("empty query".into());
    }
    let expanded = lint_expand(board, expr)?;
    parser::parse(&expanded).map_err(|e| format!("invalid PromQL '{expanded}': {e}"))
}

fn is_datasource_ref(v: &Value) -> bool {
    let uid = v["uid"].as_str().or(v.as_str()).unwrap_or("");
    matches!(uid, "$datasource" | "${datasource}")
}

/// Every finding of the twelve rules in one dashboard.
fn lint(board: &Board) -> Vec<Finding> {
    let mut out = Vec::new();
    let dashboard = board.title().to_string();
    let mut add =
        |rule: &'static str, panel: Option<&str>, target: Option<usize>, message: String| {
            out.push(Finding {
                rule,
                dashboard: dashboard.clone(),
                panel: panel.map(str::to_string),
                target,
                message,
            })
        };

    // template-datasource: one templated datasource, named and labelled
    // as the linter wants.
    let datasources: Vec<&Value> = board
        .variables()
        .iter()
        .filter(|v| v["type"] == "datasource")
        .collect();
    if datasources.is_empty() {
        add(
            "template-datasource-rule",
            None,
            None,
            "does not have a templated data source".into(),
        );
    }
    for ds in &datasources {
        let query = ds["query"].as_str().unwrap_or("");
        let (name, label) = (
            ds["name"].as_str().unwrap_or(""),
            ds["label"].as_str().unwrap_or(""),
        );
        let specific = format!("{}_datasource", query.to_lowercase());
        let name_ok = name == specific || (datasources.len() == 1 && name == "datasource");
        let label_ok = label == format!("{} data source", capitalise(query))
            || (datasources.len() == 1 && label == "Data source");
        if !name_ok {
            add(
                "template-datasource-rule",
                None,
                None,
                format!(
                    "templated data source variable named '{name}', should be named '{specific}' or 'datasource'"
                ),
            );
        }
        if !label_ok {
            add(
                "template-datasource-rule",
                None,
                None,
                format!(
                    "templated data source variable labeled '{label}', should be labeled 'Data source'"
                ),
            );
        }
    }
    let prometheus = datasources.iter().any(|d| d["query"] == "prometheus");

    // template-job and template-instance: multi-select Prometheus query
    // variables on the templated datasource, with `.+` for All.
    if prometheus {
        for (rule, name) in [
            ("template-job-rule", "job"),
            ("template-instance-rule", "instance"),
        ] {
            let Some(v) = board.variable(name) else {
                add(rule, None, None, format!("is missing the {name} template"));
                continue;
            };
            if !is_datasource_ref(&v["datasource"]) {
                add(
                    rule,
                    None,
                    None,
                    format!(
                        "{name} template should use datasource '$datasource', is currently {}",
                        v["datasource"]
                    ),
                );
            }
            if v["type"] != "query" {
                add(
                    rule,
                    None,
                    None,
                    format!(
                        "{name} template should be a Prometheus query, is currently {}",
                        v["type"]
                    ),
                );
            }
            if v["label"] != capitalise(name).as_str() {
                add(
                    rule,
                    None,
                    None,
                    format!(
                        "{name} template should be labeled '{}', is currently {}",
                        capitalise(name),
                        v["label"]
                    ),
                );
            }
            if v["multi"] != true {
                add(
                    rule,
                    None,
                    None,
                    format!("{name} template should be a multi select"),
                );
            }
            if v["allValue"] != ".+" {
                add(
                    rule,
                    None,
                    None,
                    format!(
                        "{name} template allValue should be '.+', is currently {}",
                        v["allValue"]
                    ),
                );
            }
        }
    }

    for v in board.variables().iter().filter(|v| v["type"] == "query") {
        let name = v["name"].as_str().unwrap_or("");
        // template-on-time-change-reload: values follow the time range.
        if v["refresh"] != 2 {
            add(
                "template-on-time-change-reload-rule",
                None,
                None,
                format!(
                    "templated datasource variable named '{name}', should be set to be refreshed 'On Time Range Change (value 2)', is currently '{}'",
                    v["refresh"]
                ),
            );
        }
        // template-label-promql: a Prometheus variable function whose
        // argument is valid PromQL.
        if prometheus && let Err(e) = check_variable_query(board, variable_query(v).unwrap_or("")) {
            add(
                "template-label-promql-rule",
                None,
                None,
                format!(
                    "template '{name}' invalid templated label '{}': {e}",
                    variable_query(v).unwrap_or("")
                ),
            );
        }
    }

    for p in board.panels() {
        let ty = p["type"].as_str().unwrap_or("");
        if ty == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("");
        let panel = Some(title);
        // panel-datasource: the panel and its targets use the variable.
        if !is_datasource_ref(&p["datasource"]) {
            add(
                "panel-datasource-rule",
                panel,
                None,
                format!(
                    "does not use a templated datasource, uses {}",
                    p["datasource"]
                ),
            );
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        for (i, t) in targets.iter().enumerate() {
            if !t["datasource"].is_null() && !is_datasource_ref(&t["datasource"]) {
                add(
                    "panel-datasource-rule",
                    panel,
                    Some(i),
                    format!(
                        "target does not use a templated datasource, uses {}",
                        t["datasource"]
                    ),
                );
            }
        }
        if !QUERY_PANELS.contains(&ty) {
            continue;
        }
        // panel-title-description.
        let description = p["description"].as_str().unwrap_or("");
        if title.trim().is_empty() || description.trim().is_empty() {
            add(
                "panel-title-description-rule",
                panel,
                None,
                format!(
                    "has missing title or description, currently has title '{title}' and description: '{description}'"
                ),
            );
        }
        // panel-no-targets.
        if targets.is_empty() {
            add(
                "panel-no-targets-rule",
                panel,
                None,
                "has no targets".into(),
            );
        }
        // panel-units: a known unit, or value mappings, or a stat of
        // non-numeric fields.
        if QUERY_PANELS[..7].contains(&ty) {
            let unit = configured_unit(p);
            let has_mappings = p["fieldConfig"]["defaults"]["mappings"]
                .as_array()
                .is_some_and(|m| !m.is_empty())
                || override_property(p, "mappings").is_some();
            let non_numeric = ty == "stat"
                && p["options"]["reduceOptions"]["fields"]
                    .as_str()
                    .is_some_and(|f| !f.is_empty());
            if !has_mappings && !non_numeric && !UNITS.contains(&unit.as_str()) {
                add(
                    "panel-units-rule",
                    panel,
                    None,
                    format!("has no or invalid units defined: '{unit}'"),
                );
            }
        }
        for (i, t) in targets.iter().enumerate() {
            lint_expr(board, t["expr"].as_str().unwrap_or(""), &mut |rule, m| {
                add(rule, panel, Some(i), m)
            });
        }
    }
    for a in board.annotations() {
        let name = format!("annotation {}", a["name"].as_str().unwrap_or(""));
        if !is_datasource_ref(&a["datasource"]) {
            add(
                "panel-datasource-rule",
                Some(&name),
                None,
                format!(
                    "does not use a templated datasource, uses {}",
                    a["datasource"]
                ),
            );
        }
        lint_expr(board, a["expr"].as_str().unwrap_or(""), &mut |rule, m| {
            add(rule, Some(&name), None, m)
        });
    }
    out
}

/// target-promql, target-rate-interval and target-counter-agg on one
/// expression.
fn lint_expr(board: &Board, expr: &str, add: &mut dyn FnMut(&'static str, String)) {
    let parsed = match parse(board, expr) {
        Ok(p) => p,
        Err(e) => return add("target-promql-rule", e),
    };
    let rate_interval =
        promql_parser::util::parse_duration(RATE_INTERVAL).expect("sample duration");
    walk(&parsed, &mut Vec::new(), &mut |node, parents| {
        let parent_call = match parents.last() {
            Some(Expr::Call(c)) => Some(c.func.name),
            _ => None,
        };
        match node {
            Expr::MatrixSelector(ms) => {
                if matches!(parent_call, Some("rate" | "irate")) && ms.range != rate_interval {
                    add(
                        "target-rate-interval-rule",
                        format!("invalid PromQL query '{expr}': should use $__rate_interval"),
                    );
                }
                let name = ms.vs.name.as_deref().unwrap_or("");
                if name.ends_with("_total")
                    && !matches!(parent_call, Some("rate" | "irate" | "increase"))
                {
                    add(
                        "target-counter-agg-rule",
                        format!(
                            "counter metric '{name}' is not aggregated with rate, irate, or increase"
                        ),
                    );
                }
            }
            Expr::VectorSelector(vs) => {
                let name = vs.name.as_deref().unwrap_or("");
                if name.ends_with("_total") {
                    add(
                        "target-counter-agg-rule",
                        format!(
                            "counter metric '{name}' is not aggregated with rate, irate, or increase"
                        ),
                    );
                }
            }
            _ => {}
        }
    });
}

/// template-label-promql: `label_values`, `label_names`, `metrics` or
/// `query_result`, with a valid selector or expression.
fn check_variable_query(board: &Board, query: &str) -> Result<(), String> {
    let (function, _) = query.split_once('(').ok_or("invalid 'query'")?;
    match function.trim() {
        "label_values" => {
            let (selector, label) = label_values(query).ok_or("invalid 'query'")?;
            if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid label name '{label}'"));
            }
            match selector {
                Some(s) => parse(board, s).map(|_| ()),
                None => Ok(()),
            }
        }
        "query_result" => {
            let inner = query
                .trim()
                .strip_prefix("query_result(")
                .and_then(|q| q.strip_suffix(')'))
                .ok_or("invalid 'query'")?;
            parse(board, inner).map(|_| ())
        }
        "label_names" | "metrics" => Ok(()),
        other => Err(format!("invalid 'function': {other}")),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn override_property<'a>(p: &'a Value, id: &str) -> Option<&'a Value> {
    p["fieldConfig"]["overrides"]
        .as_array()?
        .iter()
        .flat_map(|o| o["properties"].as_array().into_iter().flatten())
        .find(|prop| prop["id"] == id)
        .map(|prop| &prop["value"])
}

/// The unit an override sets, else the default unit (the linter's order).
fn configured_unit(p: &Value) -> String {
    override_property(p, "unit")
        .and_then(Value::as_str)
        .or(p["fieldConfig"]["defaults"]["unit"].as_str())
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------- tests

#[test]
fn dashboards_pass_the_dashboard_linter_rules_with_the_exclusions_of_the_lint_file() {
    let findings: Vec<Finding> = dashboards::load_all().iter().flat_map(lint).collect();
    let problems = apply(&load_lint_file(), &findings);
    assert!(
        problems.is_empty(),
        "dashboard lint:\n{}",
        problems.join("\n")
    );
}

/// What is left of `findings` once the lint file is applied, and what is
/// wrong with the lint file itself: an unknown rule, an exclusion without
/// a reason, an exclusion that matches nothing any more.
fn apply(config: &LintFile, findings: &[Finding]) -> Vec<String> {
    let mut problems = Vec::new();
    for (rule, entries) in config.exclusions.iter().chain(&config.warnings) {
        if !RULES.contains(&rule.as_str()) {
            problems.push(format!(
                "dashboards/.lint names unknown rule '{rule}' (known: {RULES:?})"
            ));
        }
        let given = |r: &Option<String>| r.as_deref().is_some_and(|r| !r.trim().is_empty());
        let reasons = entries.as_ref().is_some_and(|e| {
            given(&e.reason)
                || (!e.entries.is_empty() && e.entries.iter().all(|x| given(&x.reason)))
        });
        if !reasons {
            problems.push(format!(
                "dashboards/.lint: the exclusion of '{rule}' gives no reason"
            ));
        }
    }
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for f in findings {
        if let Some(rule) = excluded_by(&config.exclusions, f) {
            used.insert(rule);
        } else if let Some(rule) = excluded_by(&config.warnings, f) {
            used.insert(rule);
            eprintln!("warning: {f}");
        } else {
            problems.push(f.to_string());
        }
    }
    for rule in config.exclusions.keys().chain(config.warnings.keys()) {
        if !used.contains(rule.as_str()) {
            problems.push(format!("dashboards/.lint excludes '{rule}', which no dashboard breaks any more: remove the exclusion"));
        }
    }
    problems
}

#[test]
fn the_lint_file_excludes_with_a_reason_and_only_what_still_breaks_a_rule() {
    let finding = |panel: &str| Finding {
        rule: "panel-units-rule",
        dashboard: "Overview".into(),
        panel: Some(panel.into()),
        target: None,
        message: "has no or invalid units defined: ''".into(),
    };
    let config = |yaml: &str| -> LintFile { serde_saphyr::from_str(yaml).expect("lint file") };
    let excluded = config(
        "exclusions:\n  panel-units-rule:\n    entries:\n      - dashboard: Overview\n        panel: Build\n        reason: a version string has no unit\n",
    );
    assert!(apply(&excluded, &[finding("Build")]).is_empty());
    // Another panel is not covered by the entry.
    let left = apply(&excluded, &[finding("Lag")]);
    assert!(left.iter().any(|p| p.contains("panel 'Lag'")), "{left:?}");
    let no_reason =
        config("exclusions:\n  panel-units-rule:\n    entries:\n      - panel: Build\n");
    assert!(apply(&no_reason, &[finding("Build")])[0].contains("gives no reason"));
    let stale = apply(&excluded, &[]);
    assert!(
        stale[0].contains("no dashboard breaks any more"),
        "{stale:?}"
    );
    let unknown = config("exclusions:\n  panel-unit-rule:\n    reason: typo\n");
    assert!(apply(&unknown, &[])[0].contains("unknown rule 'panel-unit-rule'"));
}

/// The rules must catch what they are about: a dashboard broken in each
/// of the twelve ways yields each rule's finding.
#[test]
fn each_lint_rule_reports_a_dashboard_that_breaks_it() {
    let broken = serde_json::json!({
        "title": "Broken",
        "templating": { "list": [
            { "type": "datasource", "name": "ds", "label": "DS", "query": "prometheus" },
            { "type": "query", "name": "job", "label": "Job", "datasource": { "uid": "prom" }, "query": "label_values(up, job)", "multi": false, "allValue": ".*", "refresh": 1 },
            { "type": "query", "name": "svc", "label": "Svc", "datasource": { "uid": "$datasource" }, "query": "values(up{, svc)", "refresh": 2 }
        ]},
        "panels": [
            { "type": "timeseries", "title": "Requests", "datasource": { "uid": "Prometheus" }, "targets": [
                { "expr": "rate(continuity_probes_total[5m])" },
                { "expr": "sum(continuity_probes_total)" },
                { "expr": "sum(rate(x[1m]) by" },
                { "expr": "up{job=~\"$nope\"}" }
            ]},
            { "type": "stat", "title": "", "datasource": { "uid": "$datasource" }, "fieldConfig": { "defaults": { "unit": "furlongs" } } }
        ]
    });
    let findings = lint(&Board {
        file: "broken.json".into(),
        json: broken,
    });
    let hit: BTreeSet<&str> = findings.iter().map(|f| f.rule).collect();
    assert_eq!(
        hit,
        RULES.iter().copied().collect(),
        "findings: {findings:#?}"
    );
    let undefined = findings
        .iter()
        .find(|f| f.message.contains("undefined variables"));
    assert!(
        undefined.is_some_and(|f| f.target == Some(3)),
        "{findings:#?}"
    );
}

/// Families that a demo scrape cannot show, with the reason; each must
/// still be declared in src/telemetry/mod.rs.
const NOT_IN_THE_DEMO: [(&str, &str, &str); 1] = [(
    "continuity_notifications_total",
    "continuity_notifications",
    "the demo has no receivers, and a labelled family appears with its first notification attempt",
)];

#[test]
fn every_dashboard_expression_parses_and_names_only_metrics_the_demo_exports() {
    let demo = Demo::start();
    // Every family is declared from the first scrape on; probes fill them.
    let scrape = wait_until(
        "the demo's first probes",
        std::time::Duration::from_secs(30),
        || get(demo.addr, "/metrics").filter(|m| m.contains("continuity_probe_success{")),
    );
    let mut exported = dashboards::exported_names(&scrape);
    let telemetry =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/telemetry/mod.rs"))
            .expect("src/telemetry/mod.rs");
    for (name, declared, why) in NOT_IN_THE_DEMO {
        assert!(
            !exported.contains(name),
            "{name} is in the demo's scrape now: drop it from NOT_IN_THE_DEMO"
        );
        assert!(
            telemetry.contains(&format!("\"{declared}\"")),
            "{declared} ({why}) is not declared in src/telemetry/mod.rs"
        );
        exported.insert(name.to_string());
    }
    let mut problems = Vec::new();
    let mut count = 0;
    for board in dashboards::load_all() {
        let mut exprs: Vec<(String, String)> = board
            .queries()
            .into_iter()
            .map(|q| (format!("panel '{}' target {}", q.panel, q.idx), q.expr))
            .collect();
        for v in board.variables() {
            if let Some((Some(selector), _)) = variable_query(v).and_then(label_values) {
                exprs.push((
                    format!("variable '{}'", v["name"].as_str().unwrap_or("")),
                    selector.to_string(),
                ));
            }
        }
        for (place, expr) in exprs {
            count += 1;
            match parse(&board, &expr) {
                Err(e) => problems.push(format!("{} {place}: {e}", board.file)),
                Ok(parsed) => {
                    let names = dashboards::metric_names(&parsed);
                    if names.is_empty() {
                        problems.push(format!(
                            "{} {place}: selects no metric by name: {expr}",
                            board.file
                        ));
                    }
                    // `metrics.detail: compact` drops the per-check
                    // latency buckets; the dashboards must work without.
                    if names
                        .iter()
                        .any(|n| n == "continuity_probe_latency_seconds_bucket")
                    {
                        problems.push(format!("{} {place}: uses the per-check latency buckets, which compact metrics leave out", board.file));
                    }
                    for n in names.iter().filter(|n| !exported.contains(*n)) {
                        problems.push(format!(
                            "{} {place}: '{n}' is not exported by continuity",
                            board.file
                        ));
                    }
                }
            }
        }
    }
    assert!(count > 60, "only {count} expressions found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dashboards_are_what_the_generator_writes() {
    let out = Command::new("node")
        .arg(dashboards::dir().join("generate.mjs"))
        .arg("--check")
        .output()
        .expect("node is installed (scripts/test installs nodejs)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dashboards_have_stable_unique_uids_and_the_provisioning_conventions() {
    let mut uids = BTreeSet::new();
    for board in dashboards::load_all() {
        let uid = board.json["uid"].as_str().unwrap_or("");
        assert!(
            uid.starts_with("continuity-") && uid.len() <= 40,
            "{}: uid '{uid}'",
            board.file
        );
        assert!(
            uids.insert(uid.to_string()),
            "{}: uid '{uid}' used twice",
            board.file
        );
        assert!(
            board.json["id"].is_null(),
            "{}: a provisioned dashboard has no id",
            board.file
        );
        let text = board.json.to_string();
        assert!(
            !text.contains("DS_PROMETHEUS"),
            "{}: uses ${{DS_PROMETHEUS}}, which only works on import",
            board.file
        );
        assert!(
            !text.contains("__inputs"),
            "{}: has import inputs",
            board.file
        );
        for name in ["datasource", "location", "category", "supplier", "service"] {
            assert!(
                board.variable(name).is_some(),
                "{}: no '{name}' variable",
                board.file
            );
        }
    }
}

#[test]
fn dashboards_match_the_grafana_schema() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grafana");
    assert!(
        dir.join("node_modules/@grafana/schema").exists(),
        "@grafana/schema is not installed: run `npm ci` in tests/grafana (scripts/test does)"
    );
    let out = Command::new("node")
        .arg(dir.join("validate.mjs"))
        .arg(dashboards::dir())
        .output()
        .expect("node is installed (scripts/test installs nodejs)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(report.contains("6 dashboards valid"), "{report}");
}

#[test]
fn grafana_provisioning_points_at_prometheus_and_the_dashboards() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/provisioning");
    let read = |p: &str| -> Value {
        let text = std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let ds = read("datasources/continuity.yaml");
    assert_eq!(ds["apiVersion"], 1);
    let prometheus = &ds["datasources"][0];
    assert_eq!(prometheus["type"], "prometheus");
    assert_eq!(
        prometheus["isDefault"], true,
        "the dashboards' datasource variable starts at the default"
    );
    let dash = read("dashboards/continuity.yaml");
    let provider = &dash["providers"][0];
    assert_eq!(provider["type"], "file");
    assert!(
        provider["options"]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with('/')),
        "{provider}"
    );
}
