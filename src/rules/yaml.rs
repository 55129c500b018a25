//! The rule file as YAML text: a plain rule file for Prometheus's
//! `rule_files`, or the same groups inside a Prometheus Operator
//! `PrometheusRule`. Written by hand rather than through a serializer so
//! that expressions stay readable block scalars; strings are written as
//! JSON strings, which are valid YAML double-quoted scalars.

use crate::alert::config::Severity;

pub struct Group {
    pub name: &'static str,
    pub rules: Vec<Rule>,
}

pub enum Rule {
    Record {
        name: String,
        expr: String,
    },
    Alert {
        name: &'static str,
        expr: String,
        for_: Option<&'static str>,
        severity: Severity,
        /// Further labels, for alerts of one name that differ in kind.
        labels: Vec<(&'static str, &'static str)>,
        summary: String,
        description: String,
    },
}

impl Rule {
    pub fn record(name: String, expr: String) -> Rule {
        Rule::Record { name, expr }
    }

    pub fn alert(
        name: &'static str,
        expr: String,
        for_: Option<&'static str>,
        severity: Severity,
        summary: String,
        description: String,
    ) -> Rule {
        Rule::Alert {
            name,
            expr,
            for_,
            severity,
            labels: Vec::new(),
            summary,
            description,
        }
    }

    /// The same rule with one more label.
    pub fn with_label(mut self, name: &'static str, value: &'static str) -> Rule {
        if let Rule::Alert { labels, .. } = &mut self {
            labels.push((name, value));
        }
        self
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// `groups:` and every group, each line indented by `indent` spaces.
fn groups(out: &mut String, groups: &[Group], indent: usize) {
    let pad = " ".repeat(indent);
    out.push_str(&format!("{pad}groups:\n"));
    for g in groups {
        out.push_str(&format!("{pad}  - name: {}\n{pad}    rules:\n", g.name));
        for r in &g.rules {
            rule(out, r, &format!("{pad}      "));
        }
    }
}

fn rule(out: &mut String, r: &Rule, pad: &str) {
    let expr_block = |out: &mut String, expr: &str| {
        out.push_str(&format!("{pad}  expr: |-\n"));
        for line in expr.lines() {
            out.push_str(&format!("{pad}    {line}\n"));
        }
    };
    match r {
        Rule::Record { name, expr } => {
            out.push_str(&format!("{pad}- record: {name}\n"));
            expr_block(out, expr);
        }
        Rule::Alert {
            name,
            expr,
            for_,
            severity,
            labels,
            summary,
            description,
        } => {
            out.push_str(&format!("{pad}- alert: {name}\n"));
            expr_block(out, expr);
            if let Some(f) = for_ {
                out.push_str(&format!("{pad}  for: {f}\n"));
            }
            out.push_str(&format!("{pad}  labels:\n{pad}    severity: {severity}\n"));
            for (k, v) in labels {
                out.push_str(&format!("{pad}    {k}: {v}\n"));
            }
            out.push_str(&format!(
                "{pad}  annotations:\n{pad}    summary: {}\n{pad}    description: {}\n",
                quoted(summary),
                quoted(description)
            ));
        }
    }
}

/// A file for Prometheus's `rule_files`.
pub fn rule_file(out: &mut String, g: &[Group]) {
    groups(out, g, 0);
}

/// A `PrometheusRule` resource for the Prometheus Operator, labelled so
/// that a `ruleSelector` on `app.kubernetes.io/name: continuity` picks it up.
pub fn prometheus_rule(out: &mut String, g: &[Group]) {
    out.push_str(
        "apiVersion: monitoring.coreos.com/v1\n\
         kind: PrometheusRule\n\
         metadata:\n  \
           name: continuity\n  \
           labels:\n    \
             app.kubernetes.io/name: continuity\n\
         spec:\n",
    );
    groups(out, g, 2);
}
