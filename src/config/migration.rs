//! Suppliers and migrations as written: the optional `suppliers:` map (who
//! a supplier id stands for) and a service's `migration:` timeline (one
//! move or a list of them), validated into [`Supplier`] and [`Migration`].
//! A timeline that does not hold together (a `from` that is not the
//! previous `to`, windows out of order) is refused at its place, with the
//! value that would make it consistent. The phases and the attribution of
//! time that follow from a timeline live in `crate::migration`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer};

use super::schedule::{
    DEFAULT_TIMEZONE, MaintenanceEffect, MaintenanceScope, MaintenanceSpec, MaintenanceTime,
    parse_instant,
};
use super::{Dur, Location, Spanned, Validator};

/// `cutover_grace` when not written: how long after the window the
/// service may take to come up before `CutoverOverrun` fires.
pub const DEFAULT_CUTOVER_GRACE: Duration = Duration::from_secs(15 * 60);
/// `baseline` when not written: the time before the cutover that the
/// before/after comparison takes as "before".
pub const DEFAULT_BASELINE: Duration = Duration::from_secs(28 * 86400);
/// `parity_for` when not written: how long parity may fail during
/// hypercare before `NewSupplierRegression` fires.
pub const DEFAULT_PARITY_FOR: Duration = Duration::from_secs(15 * 60);
/// `hypercare` when not written: four weeks, the usual agreement.
pub const DEFAULT_HYPERCARE: Duration = Duration::from_secs(28 * 86400);

/// A supplier as written under `suppliers:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSupplier {
    #[serde(default)]
    pub name: Option<String>,
    /// The tender lot it won, e.g. `Hosting`.
    #[serde(default)]
    pub lot: Option<String>,
    /// Where its service desk is reached.
    #[serde(default)]
    pub contact: Option<String>,
}

/// A supplier: an id services name, and what people need to reach it.
/// A supplier named by a service but not listed has only its id.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Supplier {
    pub id: String,
    /// Display name; the id when not given.
    pub name: String,
    pub lot: Option<String>,
    pub contact: Option<String>,
}

pub fn suppliers(
    raw: BTreeMap<String, Spanned<RawSupplier>>,
    v: &mut Validator,
) -> BTreeMap<String, Supplier> {
    raw.into_iter()
        .map(|(id, s)| {
            if id.trim().is_empty() {
                v.error(
                    s.referenced,
                    "supplier id is empty",
                    Some("write an id such as northhost".into()),
                );
            }
            let s = s.value;
            let supplier = Supplier {
                name: s
                    .name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or(id.clone()),
                id: id.clone(),
                lot: s.lot,
                contact: s.contact,
            };
            (id, supplier)
        })
        .collect()
}

/// One move of a service from one supplier to another, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMigration {
    from: Spanned<String>,
    to: Spanned<String>,
    cutover: Spanned<RawCutover>,
    #[serde(default)]
    hypercare: Option<Spanned<Dur>>,
    #[serde(default)]
    cutover_counts: Option<bool>,
    #[serde(default)]
    cutover_grace: Option<Spanned<Dur>>,
    #[serde(default)]
    baseline: Option<Spanned<Dur>>,
    #[serde(default)]
    parity_for: Option<Spanned<Dur>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCutover {
    start: Spanned<String>,
    end: Spanned<String>,
    reference: Spanned<String>,
    /// For local date-times without an offset; Europe/Amsterdam.
    #[serde(default)]
    timezone: Option<Spanned<String>>,
}

/// `migration:` as written: one move, or a list for a service that moves
/// more than once.
#[derive(Debug, Default)]
pub struct RawMigrations(pub Vec<Spanned<RawMigration>>);

impl<'de> Deserialize<'de> for RawMigrations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawMigrations;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a migration { from, to, cutover, ... } or a list of them")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawMigrations, A::Error> {
                let one =
                    RawMigration::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                // The place of a lone migration is that of the field that
                // holds it; the caller knows it.
                Ok(RawMigrations(vec![Spanned::new(one, Location::UNKNOWN)]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawMigrations, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = seq.next_element::<Spanned<RawMigration>>()? {
                    out.push(m);
                }
                Ok(RawMigrations(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A cutover window and its change ticket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cutover {
    pub start: Timestamp,
    pub end: Timestamp,
    pub reference: String,
}

/// One move of a service, validated: the cutover window is inside the
/// timeline in order, and `from` is the supplier before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    pub from: String,
    pub to: String,
    pub cutover: Cutover,
    pub hypercare: Duration,
    /// The window counts in SLAs (alerts are still muted in it).
    pub cutover_counts: bool,
    pub cutover_grace: Duration,
    pub baseline: Duration,
    pub parity_for: Duration,
}

impl Migration {
    /// When hypercare ends: the window's end plus `hypercare`.
    pub fn hypercare_end(&self) -> Timestamp {
        self.cutover.end + signed(self.hypercare)
    }

    /// When the service must be up after the window.
    pub fn grace_end(&self) -> Timestamp {
        self.cutover.end + signed(self.cutover_grace)
    }

    /// Where the baseline starts: `baseline` before the window.
    pub fn baseline_start(&self) -> Timestamp {
        self.cutover
            .start
            .checked_sub(signed(self.baseline))
            .unwrap_or(Timestamp::MIN)
    }
}

/// The supplier a service with this timeline belongs to at `t`: the
/// first `from` before the first cutover's start, then each `to` from its
/// start on; `supplier` when there is no timeline.
pub fn supplier_at<'a>(supplier: &'a str, migrations: &'a [Migration], t: Timestamp) -> &'a str {
    match migrations.iter().rev().find(|m| m.cutover.start <= t) {
        Some(m) => &m.to,
        None => migrations.first().map_or(supplier, |m| &m.from),
    }
}

pub fn signed(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// Validate a service's timeline. `at` is where `migration:` is written
/// (the place of a lone migration). `supplier` is the service's
/// `supplier:` as written; the returned supplier is the one to keep (the
/// first `from` when none was written).
pub fn migrations(
    raw: Spanned<RawMigrations>,
    service: &str,
    supplier: Option<&str>,
    v: &mut Validator,
) -> (Vec<Migration>, Option<String>) {
    let field_at = raw.referenced;
    let mut out: Vec<Migration> = Vec::new();
    for item in raw.value.0 {
        if let Some(m) = migration(item.value, service, out.last(), v) {
            out.push(m);
        }
    }
    if out.is_empty() {
        if v.is_ok() {
            v.error(
                field_at,
                format!("service '{service}': migration is an empty list"),
                Some("remove 'migration:' or give at least one { from, to, cutover }".into()),
            );
        }
        return (out, supplier.map(str::to_string));
    }
    let first = out[0].from.clone();
    let last = out[out.len() - 1].to.clone();
    let supplier = match supplier {
        None => Some(first),
        Some(s) if s == first || s == last => Some(s.to_string()),
        Some(s) => {
            v.error(
                field_at,
                format!(
                    "service '{service}' has supplier '{s}', but its migration starts at '{first}' and ends at '{last}'"
                ),
                Some(format!(
                    "the supplier is who runs the service before its first cutover: write supplier: {first}"
                )),
            );
            Some(s.to_string())
        }
    };
    (out, supplier)
}

fn migration(
    raw: RawMigration,
    service: &str,
    previous: Option<&Migration>,
    v: &mut Validator,
) -> Option<Migration> {
    let mut ok = true;
    let from = raw.from.value.trim().to_string();
    let to = raw.to.value.trim().to_string();
    for (what, value) in [("from", &raw.from), ("to", &raw.to)] {
        if value.value.trim().is_empty() {
            v.error(
                value.referenced,
                format!("service '{service}': migration {what} is empty"),
                Some(format!("write the supplier id, e.g. {what}: northhost")),
            );
            ok = false;
        }
    }
    if ok && from == to {
        v.error(
            raw.to.referenced,
            format!("service '{service}': migration goes from '{from}' to itself"),
            Some("'to' is the new supplier; it differs from 'from'".into()),
        );
        ok = false;
    }
    if let Some(p) = previous
        && from != p.to
    {
        v.error(
            raw.from.referenced,
            format!(
                "service '{service}': this migration starts at '{from}', but the one before it moved the service to '{}'",
                p.to
            ),
            Some(format!("each from is the previous to: write from: {}", p.to)),
        );
        ok = false;
    }

    let c = raw.cutover.value;
    let tz_name = c.timezone.as_ref().map_or(DEFAULT_TIMEZONE, |t| &t.value);
    let tz = match TimeZone::get(tz_name) {
        Ok(tz) => tz,
        Err(_) => {
            let place = c
                .timezone
                .as_ref()
                .map_or(raw.cutover.referenced, |t| t.referenced);
            v.error(
                place,
                format!("unknown time zone '{tz_name}'"),
                Some(format!("use an IANA name, e.g. {DEFAULT_TIMEZONE}")),
            );
            return None;
        }
    };
    let instant = |s: &Spanned<String>, what: &str, v: &mut Validator| {
        let t = parse_instant(&s.value, &tz);
        if t.is_none() {
            v.error(
                s.referenced,
                format!(
                    "service '{service}': cutover {what} '{}' is not a date-time",
                    s.value
                ),
                Some(format!(
                    "write 2026-12-05T22:00:00+01:00, or 2026-12-05T22:00 in {tz_name}"
                )),
            );
        }
        t.map(sla_millisecond)
    };
    let start = instant(&c.start, "start", v);
    let end = instant(&c.end, "end", v);
    if c.reference.value.trim().is_empty() {
        v.error(
            c.reference.referenced,
            format!("service '{service}': cutover has an empty reference"),
            Some("give the change ticket, e.g. reference: CHG-1042".into()),
        );
        ok = false;
    }
    let (Some(start), Some(end)) = (start, end) else {
        return None;
    };
    if end <= start {
        v.error(
            c.end.referenced,
            format!("service '{service}': cutover ends at {end}, not after its start {start}"),
            Some("the window's end comes after its start".into()),
        );
        ok = false;
    }
    if let Some(p) = previous
        && start < p.cutover.end
    {
        v.error(
            c.start.referenced,
            format!(
                "service '{service}': cutover {} starts at {start}, before the previous cutover {} ends ({})",
                c.reference.value, p.cutover.reference, p.cutover.end
            ),
            Some(format!(
                "list migrations in time order, each window after the one before: start at {} or later",
                p.cutover.end
            )),
        );
        ok = false;
    }

    let duration = |d: &Option<Spanned<Dur>>,
                    what: &str,
                    default: Duration,
                    zero_ok: bool,
                    v: &mut Validator| match d {
        None => default,
        Some(d) if d.value.0.is_zero() && !zero_ok => {
            v.error(
                d.referenced,
                format!("service '{service}': {what} must be longer than zero"),
                Some(format!(
                    "write a positive duration, e.g. {what}: {}",
                    Dur(default)
                )),
            );
            default
        }
        Some(d) => d.value.0,
    };
    let hypercare = duration(&raw.hypercare, "hypercare", DEFAULT_HYPERCARE, false, v);
    let cutover_grace = duration(
        &raw.cutover_grace,
        "cutover_grace",
        DEFAULT_CUTOVER_GRACE,
        true,
        v,
    );
    let baseline = duration(&raw.baseline, "baseline", DEFAULT_BASELINE, false, v);
    let parity_for = duration(&raw.parity_for, "parity_for", DEFAULT_PARITY_FOR, true, v);
    ok.then(|| Migration {
        from,
        to,
        cutover: Cutover {
            start,
            end,
            reference: c.reference.value.trim().to_string(),
        },
        hypercare,
        cutover_counts: raw.cutover_counts.unwrap_or(false),
        cutover_grace,
        baseline,
        parity_for,
    })
}

/// SLA time is kept to the millisecond; a cutover written with finer
/// precision is cut there, so that attribution and accounting agree.
fn sla_millisecond(t: Timestamp) -> Timestamp {
    crate::sla::range::to_millisecond(t)
}

/// Each cutover window as a maintenance window of its service, so the
/// live engine, recomputation and reports all see it through the one
/// maintenance path: excluded from SLAs with its reference, or, with
/// `cutover_counts: true`, counted but with alerts muted.
pub fn cutover_maintenances<'a>(
    services: impl IntoIterator<Item = (&'a str, &'a [Migration])>,
) -> Vec<MaintenanceSpec> {
    let mut out = Vec::new();
    for (service, migrations) in services {
        for m in migrations {
            out.push(MaintenanceSpec {
                reference: m.cutover.reference.clone(),
                description: Some(format!("cutover of {service} from {} to {}", m.from, m.to)),
                effect: if m.cutover_counts {
                    MaintenanceEffect::Mute
                } else {
                    MaintenanceEffect::Exclude
                },
                service: Some(service.to_string()),
                category: None,
                supplier: None,
                all: false,
                start: Some(m.cutover.start.to_string()),
                end: Some(m.cutover.end.to_string()),
                recurring: None,
                timezone: "UTC".into(),
                scope: Some(MaintenanceScope::Service(service.to_string())),
                time: Some(MaintenanceTime::Once {
                    start: m.cutover.start,
                    end: m.cutover.end,
                }),
            });
        }
    }
    out
}
