//! The Grafana dashboards of `dashboards/` as the tests read them: their
//! panels, every PromQL expression they send (panel targets, annotations,
//! variable queries), Grafana's variable syntax, and a walk over parsed
//! PromQL. The lint (tests/dashboards.rs) and the live test against
//! Prometheus (tests/dashboards_live.rs) share it.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use promql_parser::parser::Expr;
use regex::{Captures, Regex};
use serde_json::Value;

/// One dashboard file.
pub struct Board {
    /// File name, e.g. `overview.json`.
    pub file: String,
    pub json: Value,
}

/// A PromQL expression a dashboard sends to Prometheus.
#[derive(Debug, Clone)]
pub struct Query {
    /// The panel's title, or `annotation NAME`.
    pub panel: String,
    /// Index of the target in the panel.
    pub idx: usize,
    pub expr: String,
    /// An instant query (`/api/v1/query`) rather than a range query.
    pub instant: bool,
    /// The variable the panel is repeated for.
    pub repeat: Option<String>,
}

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every `dashboards/*.json`, by file name.
pub fn load_all() -> Vec<Board> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("dashboards/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards in {}", dir().display());
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("read dashboard");
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            Board {
                file: p.file_name().unwrap().to_string_lossy().into_owned(),
                json,
            }
        })
        .collect()
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

impl Board {
    pub fn title(&self) -> &str {
        self.json["title"].as_str().unwrap_or("")
    }

    pub fn variables(&self) -> &[Value] {
        array(&self.json["templating"]["list"])
    }

    pub fn variable(&self, name: &str) -> Option<&Value> {
        self.variables().iter().find(|v| v["name"] == name)
    }

    /// Every panel, the panels inside rows included.
    pub fn panels(&self) -> Vec<&Value> {
        let mut out = Vec::new();
        for p in array(&self.json["panels"]) {
            out.push(p);
            out.extend(array(&p["panels"]));
        }
        out
    }

    /// Annotation queries other than Grafana's built-in one.
    pub fn annotations(&self) -> Vec<&Value> {
        array(&self.json["annotations"]["list"])
            .iter()
            .filter(|a| a["builtIn"] != 1)
            .collect()
    }

    /// Every PromQL expression of the panels and annotations.
    pub fn queries(&self) -> Vec<Query> {
        let mut out = Vec::new();
        for p in self.panels() {
            for (idx, t) in array(&p["targets"]).iter().enumerate() {
                out.push(Query {
                    panel: p["title"].as_str().unwrap_or("").to_string(),
                    idx,
                    expr: t["expr"].as_str().unwrap_or("").to_string(),
                    instant: t["instant"] == true && t["range"] != true,
                    repeat: p["repeat"].as_str().map(str::to_string),
                });
            }
        }
        for a in self.annotations() {
            out.push(Query {
                panel: format!("annotation {}", a["name"].as_str().unwrap_or("")),
                idx: 0,
                expr: a["expr"].as_str().unwrap_or("").to_string(),
                instant: false,
                repeat: None,
            });
        }
        out
    }
}

/// The query of a variable, in either of the forms Grafana saves.
pub fn variable_query(v: &Value) -> Option<&str> {
    v["query"].as_str().or_else(|| v["query"]["query"].as_str())
}

/// `label_values(SELECTOR, LABEL)` (or `label_values(LABEL)`) split into
/// its selector and label.
pub fn label_values(query: &str) -> Option<(Option<&str>, &str)> {
    let args = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    match args.rsplit_once(',') {
        Some((selector, label)) => Some((Some(selector.trim()), label.trim())),
        None => Some((None, args.trim())),
    }
}

static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{([A-Za-z0-9_.]+)(?::([^}]+))?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_.]+)(?::([^\]]+))?\]\]")
        .expect("variable pattern")
});

/// Replace Grafana's variables in `text` (`$name`, `${name}`,
/// `${name:format}`, `[[name]]`) with `value(name, format)`.
pub fn expand(text: &str, value: &dyn Fn(&str, Option<&str>) -> String) -> String {
    VARIABLE
        .replace_all(text, |c: &Captures| {
            let name = c.get(1).or(c.get(3)).or(c.get(4)).expect("a name").as_str();
            let format = c.get(2).or(c.get(5)).map(|m| m.as_str());
            value(name, format)
        })
        .into_owned()
}

/// Every variable name `text` refers to.
pub fn referenced_variables(text: &str) -> Vec<String> {
    VARIABLE
        .captures_iter(text)
        .map(|c| {
            c.get(1)
                .or(c.get(3))
                .or(c.get(4))
                .expect("a name")
                .as_str()
                .to_string()
        })
        .collect()
}

/// Visit every node of `expr` with its ancestors, outermost first.
pub fn walk<'a>(
    expr: &'a Expr,
    parents: &mut Vec<&'a Expr>,
    f: &mut dyn FnMut(&'a Expr, &[&'a Expr]),
) {
    f(expr, parents);
    parents.push(expr);
    match expr {
        Expr::Aggregate(a) => {
            walk(&a.expr, parents, f);
            if let Some(p) = &a.param {
                walk(p, parents, f);
            }
        }
        Expr::Unary(u) => walk(&u.expr, parents, f),
        Expr::Binary(b) => {
            walk(&b.lhs, parents, f);
            walk(&b.rhs, parents, f);
        }
        Expr::Paren(p) => walk(&p.expr, parents, f),
        Expr::Subquery(s) => walk(&s.expr, parents, f),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, parents, f);
            }
        }
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => {}
    }
    parents.pop();
}

/// The metric names an expression selects (by name or `__name__="…"`).
pub fn metric_names(expr: &Expr) -> Vec<String> {
    let mut names = Vec::new();
    walk(expr, &mut Vec::new(), &mut |node, _| {
        let vs = match node {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return,
        };
        if let Some(n) = &vs.name {
            names.push(n.clone());
        }
        for m in &vs.matchers.matchers {
            if m.name == "__name__" {
                names.push(m.value.clone());
            }
        }
    });
    names
}

/// The names of the metric families in a scrape: sample names, and for
/// families without samples yet (no check of that kind has run), the
/// names their `# TYPE` line declares (with a histogram's `_bucket`,
/// `_sum` and `_count`).
pub fn exported_names(scrape: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "histogram" => {
                    for s in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{s}"));
                    }
                }
                "counter" if !name.ends_with("_total") => {
                    names.insert(format!("{name}_total"));
                }
                _ => {
                    names.insert(name.to_string());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}
