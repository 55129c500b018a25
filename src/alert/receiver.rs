//! A receiver: the alerts it wants (severity and label matchers), how it
//! groups their notifications, and the one channel it sends them through.
//! [`ReceiverSpec`] is the block as written under `alerting.receivers`;
//! [`ReceiverSpec::compile`] checks it and builds the [`Receiver`] the
//! dispatcher runs with, so nothing unvalidated reaches run time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::config::{Severity, did_you_mean};
use super::notify::{self, Channel, ChannelSpec, CompileContext};
use crate::config::{Dur, KnownNames, Location, Spanned, Validator, closest};

macro_rules! receiver_spec {
    ($($block:ident: $variant:ident($spec:ty => $compiled:ty),)*) => {
        /// One destination for notifications, with the alerts it wants, as
        /// written. Exactly one channel block is set; the blocks are the
        /// list in `notify::with_channels`.
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ReceiverSpec {
            pub name: Spanned<String>,
            /// Only alerts at least this severe (page > ticket > none).
            #[serde(default = "default_min_severity")]
            pub min_severity: Severity,
            /// Label matchers, all of which must hold: `value` (equal), `=~regex`,
            /// `!=value` or `!~regex` (regexes match the whole value).
            #[serde(default)]
            pub matchers: BTreeMap<String, String>,
            #[serde(default = "default_true")]
            pub send_resolved: bool,
            /// Labels whose values make a group; `[...]` groups per alert.
            pub group_by: Option<Spanned<Vec<String>>>,
            /// How long the first notification of a group waits for others.
            pub group_wait: Option<Spanned<Dur>>,
            /// How long after a group's message its next one may follow.
            pub group_interval: Option<Spanned<Dur>>,
            $(pub $block: Option<$spec>,)*
        }

        impl ReceiverSpec {
            /// The channel blocks that are set, in the order of the list.
            fn channel_blocks(&self) -> Vec<&dyn ChannelSpec> {
                let mut blocks: Vec<&dyn ChannelSpec> = Vec::new();
                $(if let Some(b) = &self.$block {
                    blocks.push(b);
                })*
                blocks
            }
        }
    };
}
notify::with_channels!(receiver_spec);

fn default_min_severity() -> Severity {
    Severity::Ticket
}
fn default_true() -> bool {
    true
}

/// Alertmanager's defaults: a supplier-wide outage becomes one message per
/// supplier and category, sent 30 s after its first alert (time for the
/// rest of the outage to be seen: checks run every 10-60 s), and a group
/// hears of later changes at most every 5 minutes.
pub const DEFAULT_GROUP_BY: [&str; 2] = ["supplier", "category"];
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);

/// What a receiver groups notifications by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// The values of these labels (none: one group for every alert).
    Labels(Vec<String>),
    /// `group_by: [...]`: every alert is its own group.
    Alert,
}

/// How a receiver batches notifications into messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub by: GroupBy,
    pub wait: Duration,
    pub interval: Duration,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            by: GroupBy::Labels(DEFAULT_GROUP_BY.iter().map(|l| l.to_string()).collect()),
            wait: DEFAULT_GROUP_WAIT,
            interval: DEFAULT_GROUP_INTERVAL,
        }
    }
}

impl Grouping {
    /// The labels that name the group of an alert with `labels`.
    pub fn group_labels(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        match &self.by {
            GroupBy::Alert => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .map(|n| (n.clone(), labels.get(n).cloned().unwrap_or_default()))
                .collect(),
        }
    }

    /// The group key: its labels as `{a="x",b="y"}`, as Alertmanager
    /// writes it.
    pub fn key(&self, labels: &BTreeMap<String, String>) -> String {
        let parts: Vec<String> = self
            .group_labels(labels)
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{{{}}}", parts.join(","))
    }
}

/// A validated receiver, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    pub name: String,
    pub min_severity: Severity,
    pub matchers: Vec<LabelMatcher>,
    pub send_resolved: bool,
    pub grouping: Grouping,
    pub channel: Channel,
}

impl Receiver {
    /// Whether this receiver wants an alert with these labels.
    pub fn wants(&self, severity: Severity, labels: &BTreeMap<String, String>) -> bool {
        severity >= self.min_severity && self.matchers.iter().all(|m| m.matches(labels))
    }
}

impl ReceiverSpec {
    /// Check the receiver written at `at` and build it; every problem is
    /// reported to `v`, and `None` comes back when there was one.
    pub fn compile(
        &self,
        v: &mut Validator,
        at: Location,
        known: &KnownNames,
        base: &Path,
    ) -> Option<Receiver> {
        let issues = v.issues.len();
        let name = self.name.value.clone();
        let blocks = self.channel_blocks();
        if blocks.len() != 1 {
            v.error(
                at,
                format!("receiver '{name}' has {} channel blocks", blocks.len()),
                Some(format!(
                    "give each receiver exactly one of {}",
                    notify::CHANNEL_BLOCKS.join(", ")
                )),
            );
        }

        let mut matchers = Vec::new();
        for (label, written) in &self.matchers {
            if !ALERT_LABELS.contains(&label.as_str()) {
                let hint = match closest(label, ALERT_LABELS) {
                    Some(best) => format!("did you mean '{best}'?"),
                    None => format!("alerts carry {}", ALERT_LABELS.join(", ")),
                };
                v.error(
                    at,
                    format!("receiver '{name}': matcher on unknown label '{label}'"),
                    Some(hint),
                );
                continue;
            }
            match LabelMatcher::parse(label, written) {
                Ok(m) => {
                    if m.op == MatchOp::Equal {
                        check_known_value(v, at, &name, &m, known);
                    }
                    matchers.push(m);
                }
                Err(e) => v.error(
                    at,
                    format!("receiver '{name}': {e}"),
                    Some(
                        "regexes use Rust regex syntax and match the whole value, e.g. =~portal-.*"
                            .into(),
                    ),
                ),
            }
        }

        let grouping = self.grouping(v, at, &name);
        let mut cx = CompileContext {
            v,
            receiver: &name,
            at,
            base,
        };
        let channel = blocks.first().and_then(|b| b.compile(&mut cx));
        if v.issues.len() > issues || blocks.len() != 1 {
            return None;
        }
        Some(Receiver {
            name,
            min_severity: self.min_severity,
            matchers,
            send_resolved: self.send_resolved,
            grouping,
            channel: channel?,
        })
    }

    fn grouping(&self, v: &mut Validator, at: Location, name: &str) -> Grouping {
        let mut g = Grouping::default();
        if let Some(by) = &self.group_by {
            let place = if by.referenced == Location::UNKNOWN {
                at
            } else {
                by.referenced
            };
            if by.value.iter().any(|l| l == "...") {
                if by.value.len() > 1 {
                    v.error(
                        place,
                        format!("receiver '{name}': group_by '...' cannot be combined with labels"),
                        Some("write group_by: ['...'] to group per alert, or list labels".into()),
                    );
                }
                g.by = GroupBy::Alert;
            } else {
                let mut seen = BTreeSet::new();
                for label in &by.value {
                    if !ALERT_LABELS.contains(&label.as_str()) {
                        let hint = match closest(label, ALERT_LABELS) {
                            Some(best) => format!("did you mean '{best}'?"),
                            None => format!("alerts carry {}", ALERT_LABELS.join(", ")),
                        };
                        v.error(
                            place,
                            format!("receiver '{name}': group_by on unknown label '{label}'"),
                            Some(hint),
                        );
                    } else if !seen.insert(label.as_str()) {
                        v.error(
                            place,
                            format!("receiver '{name}': group_by lists '{label}' twice"),
                            None,
                        );
                    }
                }
                g.by = GroupBy::Labels(by.value.clone());
            }
        }
        if let Some(w) = &self.group_wait {
            g.wait = w.value.0;
        }
        if let Some(i) = &self.group_interval {
            g.interval = i.value.0;
        }
        g
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One compiled label matcher. A label the alert does not have matches as
/// the empty string, as in Alertmanager.
#[derive(Clone)]
pub struct LabelMatcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<regex::Regex>,
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

impl fmt::Debug for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{op}{:?}", self.label, self.value)
    }
}

impl LabelMatcher {
    /// Parse `value`, `=~regex`, `!=value` or `!~regex` for `label`.
    pub fn parse(label: &str, written: &str) -> Result<LabelMatcher, String> {
        let (op, value) = if let Some(r) = written.strip_prefix("=~") {
            (MatchOp::Regex, r)
        } else if let Some(r) = written.strip_prefix("!~") {
            (MatchOp::NotRegex, r)
        } else if let Some(r) = written.strip_prefix("!=") {
            (MatchOp::NotEqual, r)
        } else {
            (MatchOp::Equal, written)
        };
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    // The regex crate explains over several lines; its last
                    // line says what is wrong.
                    let text = e.to_string();
                    let why = text.lines().last().unwrap_or("").trim().to_string();
                    let why = why.strip_prefix("error: ").unwrap_or(&why).to_string();
                    format!("matcher {label}: '{value}' is not a valid regex: {why}")
                })?)
            }
            _ => None,
        };
        Ok(LabelMatcher {
            label: label.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.label).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(r)) => r.is_match(v),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(v),
            // parse() always compiles a regex for the regex operators.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// Labels alerts carry; matchers on other labels can never match.
pub const ALERT_LABELS: [&str; 8] = [
    "alertname",
    "service",
    "category",
    "supplier",
    "severity",
    "location",
    "check",
    "sla",
];

fn check_known_value(
    v: &mut Validator,
    at: Location,
    receiver: &str,
    m: &LabelMatcher,
    known: &KnownNames,
) {
    let set = match m.label.as_str() {
        "service" => &known.services,
        "category" => &known.categories,
        "supplier" => &known.suppliers,
        "severity" => {
            if Severity::parse(&m.value).is_none() {
                v.error(
                    at,
                    format!("receiver '{receiver}': severity '{}' does not exist", m.value),
                    Some("severities are page, ticket and none; min_severity is usually what you want".into()),
                );
            }
            return;
        }
        _ => return,
    };
    if !set.contains(m.value.as_str()) {
        v.error(
            at,
            format!(
                "receiver '{receiver}': no service has {} '{}', so the matcher never matches",
                m.label, m.value
            ),
            Some(did_you_mean(&m.value, set.iter().copied())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matchers_cover_equal_regex_and_negations() {
        let l = labels(&[("category", "telephony"), ("service", "portal-aanvraag")]);
        assert!(
            LabelMatcher::parse("category", "telephony")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelMatcher::parse("service", "=~portal-.*")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelMatcher::parse("service", "=~portal")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelMatcher::parse("service", "!~mail.*")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelMatcher::parse("category", "!=telephony")
                .unwrap()
                .matches(&l)
        );
        assert!(LabelMatcher::parse("check", "").unwrap().matches(&l));
    }

    #[test]
    fn default_groups_are_per_supplier_and_category_and_dots_group_per_alert() {
        let l = labels(&[
            ("supplier", "acme"),
            ("category", "portal"),
            ("service", "a"),
        ]);
        let g = Grouping::default();
        assert_eq!(g.key(&l), r#"{category="portal",supplier="acme"}"#);
        let per_alert = Grouping {
            by: GroupBy::Alert,
            ..Grouping::default()
        };
        assert_eq!(per_alert.group_labels(&l), l);
        let one = Grouping {
            by: GroupBy::Labels(Vec::new()),
            ..Grouping::default()
        };
        assert_eq!(one.key(&l), "{}");
    }
}
