//! The status page as citizens see it: the current state of every public
//! service grouped by category (from the status board), active incidents,
//! announced maintenance, each service's 90-day bar (from the daily
//! figures) and the incidents of the last 30 days (from the store),
//! rendered by the askama template `templates/status_page/page.html`.
//!
//! What the configuration keeps internal never reaches the template:
//! hidden services and fields are left out here, and error texts and
//! change references only go in when `status_page.show` names them.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use jiff::Timestamp;

use super::ServiceView;
use super::bar;
use super::cache::{ANNOUNCE_DAYS, Daily, Records};
use super::texts::{self, Texts, fill};
use crate::config::Config;
use crate::config::status_page::{InternalDetail, PublicField, StatusPageConfig};
use crate::report::locale::{self, Lang};
use crate::report::sla::adhoc_spec;
use crate::sla::{ServiceState, TimeRange, maintenance};

/// Rows of incident history shown; the feed and the API have the rest.
const HISTORY_ROWS: usize = 200;
/// Services named in a maintenance row before "and N more".
const NAMED_SERVICES: usize = 8;

#[derive(Template)]
#[template(path = "status_page/page.html")]
pub struct Page<'a> {
    lang: &'static str,
    other_lang: &'static str,
    t: &'static Texts,
    title: &'a str,
    logo_url: Option<&'a str>,
    intro: Option<&'a str>,
    refresh_seconds: u64,
    refresh_text: String,
    generated: String,
    generated_iso: String,
    timezone: &'a str,
    banner: String,
    banner_class: &'static str,
    active: Vec<Active<'a>>,
    maintenance: Vec<Maintenance>,
    show_references: bool,
    legend: Vec<(&'static str, &'static str)>,
    categories: Vec<Category<'a>>,
    history: Vec<History<'a>>,
    history_more: Option<String>,
    show_causes: bool,
}

struct Active<'a> {
    name: &'a str,
    since: String,
    since_iso: String,
    lasting: String,
    cause: Option<String>,
}

struct Maintenance {
    start: String,
    start_iso: String,
    end: String,
    end_iso: String,
    services: String,
    description: String,
    reference: String,
    current: bool,
}

struct Category<'a> {
    name: &'a str,
    rows: Vec<Row<'a>>,
}

struct Row<'a> {
    name: &'a str,
    supplier: Option<&'a str>,
    labels: Vec<(&'a str, &'a str)>,
    state_text: &'static str,
    state_sign: &'static str,
    state_class: &'static str,
    since: Option<String>,
    checks: Vec<(&'a str, &'static str, &'static str)>,
    bar: &'a str,
    bar_summary: &'a str,
}

struct History<'a> {
    name: &'a str,
    start: String,
    start_iso: String,
    end: Option<String>,
    duration: String,
    cause: String,
}

/// Everything the page is made from.
pub struct Sources<'a> {
    pub config: &'a Config,
    pub board: &'a [ServiceView],
    pub daily: &'a Daily,
    pub records: &'a Records,
    pub lang: Lang,
    pub now: Timestamp,
}

/// Render the page.
pub fn render(src: &Sources<'_>) -> Result<String, askama::Error> {
    let page = build(src);
    let mut out = String::with_capacity(8 * 1024 + page.categories.len() * 8 * 1024);
    page.render_into(&mut out)?;
    Ok(out)
}

fn build<'a>(src: &Sources<'a>) -> Page<'a> {
    let Sources {
        config,
        board,
        daily,
        records,
        lang,
        now,
    } = *src;
    let page = &config.status_page;
    let t = texts::texts(lang);
    let tz = &page.timezone;
    let when = |at: Timestamp| locale::datetime(tz.to_datetime(at), lang);
    let iso = |at: Timestamp| at.to_string();
    let names: HashMap<&str, &str> = config
        .services
        .iter()
        .filter(|s| page.is_public(&s.id))
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();

    // The board can trail a reload by a moment; it is read as it is, and
    // services the configuration no longer has (or hides) are skipped.
    let public: Vec<&ServiceView> = board
        .iter()
        .filter(|s| names.contains_key(s.service.id.as_str()))
        .collect();
    let count = |state: ServiceState| public.iter().filter(|s| s.state == state).count();
    let (down, degraded) = (count(ServiceState::Down), count(ServiceState::Degraded));
    let total = public.len();
    let (banner, banner_class) = if down > 0 {
        (fill(t.some_down, &[&down, &total]), "major")
    } else if degraded > 0 {
        (fill(t.some_degraded, &[&degraded, &total]), "minor")
    } else if count(ServiceState::Up) == total {
        (t.all_up.to_string(), "ok")
    } else {
        let text = [
            (ServiceState::Maintenance, t.some_maintenance),
            (ServiceState::Unknown, t.some_unknown),
        ]
        .iter()
        .filter(|(state, _)| count(*state) > 0)
        .map(|(state, template)| fill(template, &[&count(*state), &total]))
        .collect::<Vec<_>>()
        .join(" ");
        (text, "minor")
    };

    let show_causes = page.reveals(InternalDetail::Errors) || page.shows(PublicField::Checks);
    let cause_of = |cause: &serde_json::Value| cause_text(page, cause);

    let open: HashMap<&str, &crate::store::IncidentRecord> = records
        .incidents
        .iter()
        .filter(|i| i.ended_at.is_none())
        .map(|i| (i.service.as_str(), i))
        .collect();
    let active = public
        .iter()
        .filter(|s| s.state == ServiceState::Down)
        .map(|s| {
            let stored = open.get(s.service.id.as_str());
            let since = s
                .incident_since
                .or(stored.map(|i| i.started_at))
                .unwrap_or(now);
            Active {
                name: &s.service.name,
                since: when(since),
                since_iso: iso(since),
                lasting: locale::duration(seconds_between(since, now), lang),
                cause: stored
                    .filter(|_| show_causes)
                    .map(|i| cause_of(&i.cause))
                    .filter(|c| !c.is_empty()),
            }
        })
        .collect();

    let mut categories: Vec<Category<'a>> = Vec::new();
    let mut category_index: HashMap<&str, usize> = HashMap::new();
    for s in &public {
        let svc = &*s.service;
        let (state_text, state_sign, state_class) = texts::service_state(s.state, lang);
        let (bar, bar_summary) = match daily.bar(&svc.id, lang) {
            Some(b) => (b.svg.as_str(), b.summary.as_str()),
            None => ("", t.no_figures),
        };
        let row = Row {
            name: &svc.name,
            // `unknown` is what the configuration fills in when none is
            // given: nothing to tell a citizen.
            supplier: (page.shows(PublicField::Suppliers) && svc.supplier != "unknown")
                .then_some(svc.supplier.as_str()),
            labels: if page.shows(PublicField::Labels) {
                svc.labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect()
            } else {
                Vec::new()
            },
            state_text,
            state_sign,
            state_class,
            since: s
                .incident_since
                .filter(|_| s.state == ServiceState::Down)
                .map(when),
            checks: if page.shows(PublicField::Checks) {
                s.checks
                    .iter()
                    .map(|(check, state)| {
                        let (text, class) = texts::check_state(*state, lang);
                        (check.id.as_str(), text, class)
                    })
                    .collect()
            } else {
                Vec::new()
            },
            bar,
            bar_summary,
        };
        let i = *category_index
            .entry(svc.category.as_str())
            .or_insert_with(|| {
                categories.push(Category {
                    name: &svc.category,
                    rows: Vec::new(),
                });
                categories.len() - 1
            });
        categories[i].rows.push(row);
    }

    // Only the rows shown are formatted: in a month with many incidents
    // the rest would cost more than the whole page.
    let public_incidents: Vec<(&'a str, &crate::store::IncidentRecord)> = records
        .incidents
        .iter()
        .rev()
        .filter_map(|i| Some((*names.get(i.service.as_str())?, i)))
        .collect();
    let history: Vec<History<'a>> = public_incidents
        .iter()
        .take(HISTORY_ROWS)
        .map(|&(name, i)| History {
            name,
            start: when(i.started_at),
            start_iso: iso(i.started_at),
            end: i.ended_at.map(when),
            duration: locale::duration(
                seconds_between(i.started_at, i.ended_at.unwrap_or(now)),
                lang,
            ),
            cause: if show_causes {
                cause_of(&i.cause)
            } else {
                String::new()
            },
        })
        .collect();
    let history_more = (public_incidents.len() > HISTORY_ROWS)
        .then(|| fill(t.history_more, &[&(public_incidents.len() - HISTORY_ROWS)]));

    let refresh = page.refresh.as_secs_f64();
    Page {
        lang: lang.tag(),
        other_lang: match lang {
            Lang::Nl => "en",
            Lang::En => "nl",
        },
        t,
        title: page.title.as_deref().unwrap_or(t.default_title),
        logo_url: page.logo_url.as_deref(),
        intro: page.intro.as_deref(),
        refresh_seconds: page.refresh.as_secs(),
        refresh_text: locale::duration(refresh, lang),
        generated: when(now),
        generated_iso: iso(now),
        timezone: tz.iana_name().unwrap_or("UTC"),
        banner,
        banner_class,
        active,
        maintenance: announced(config, records, lang, now),
        show_references: page.reveals(InternalDetail::References),
        legend: bar::legend(t),
        categories,
        history,
        history_more,
        show_causes,
    }
}

/// A window of maintenance that public services will see.
pub struct Announced {
    pub reference: String,
    pub description: Option<String>,
    pub range: TimeRange,
    /// Public services it covers, by name, in configuration order.
    pub services: Vec<String>,
    /// It covers every service.
    pub all: bool,
    /// When it was put on record (API windows); configured ones have none.
    pub created_at: Option<Timestamp>,
}

/// Configured and ad-hoc maintenance that is running or starts within
/// 14 days, in start order, each with the public services it covers.
pub fn announcements(config: &Config, records: &Records, now: Timestamp) -> Vec<Announced> {
    let page = &config.status_page;
    let ahead = TimeRange::new(
        now,
        now + jiff::SignedDuration::from_hours(24 * ANNOUNCE_DAYS),
    );
    let adhoc: Vec<_> = records
        .maintenances
        .iter()
        .map(|m| (adhoc_spec(m), Some(m.created_at)))
        .collect();
    let mut out: Vec<Announced> = config
        .maintenances
        .iter()
        .map(|s| (s, None))
        .chain(adhoc.iter().map(|(s, c)| (s, *c)))
        .flat_map(|(spec, created_at)| {
            let services: Vec<String> = config
                .services
                .iter()
                .filter(|s| page.is_public(&s.id))
                .filter(|s| maintenance::applies_to(spec, &s.id, &s.category, &s.supplier))
                .map(|s| s.name.clone())
                .collect();
            let all = matches!(
                spec.scope,
                Some(crate::config::schedule::MaintenanceScope::All)
            );
            maintenance::windows(spec, ahead)
                .into_iter()
                .filter(|w| w.range.end > now)
                .map(move |w| Announced {
                    reference: w.reference,
                    description: w.description,
                    range: w.range,
                    services: services.clone(),
                    all,
                    created_at,
                })
        })
        .filter(|a| !a.services.is_empty())
        .collect();
    out.sort_by_key(|a| a.range);
    out
}

/// The services of an announcement as a phrase: "alle diensten", or the
/// first names and "en 3 andere".
pub fn services_phrase(a: &Announced, t: &Texts) -> String {
    if a.all {
        return t.all_services.to_string();
    }
    let mut text = a
        .services
        .iter()
        .take(NAMED_SERVICES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if a.services.len() > NAMED_SERVICES {
        text.push(' ');
        text.push_str(&fill(t.and_more, &[&(a.services.len() - NAMED_SERVICES)]));
    }
    text
}

fn announced(config: &Config, records: &Records, lang: Lang, now: Timestamp) -> Vec<Maintenance> {
    let t = texts::texts(lang);
    let tz = &config.status_page.timezone;
    let when = |at: Timestamp| locale::datetime(tz.to_datetime(at), lang);
    announcements(config, records, now)
        .iter()
        .map(|a| Maintenance {
            start: when(a.range.start),
            start_iso: a.range.start.to_string(),
            end: when(a.range.end),
            end_iso: a.range.end.to_string(),
            services: services_phrase(a, t),
            description: a
                .description
                .clone()
                .unwrap_or_else(|| t.maintenance_default.to_string()),
            reference: a.reference.clone(),
            current: a.range.contains(now),
        })
        .collect()
}

/// What an incident's cause may say in public: the failing checks, with
/// their reasons and error texts only when `show: [errors]`.
pub fn cause_text(page: &StatusPageConfig, cause: &serde_json::Value) -> String {
    if page.reveals(InternalDetail::Errors) {
        return crate::report::sla::cause_summary(cause);
    }
    if !page.shows(PublicField::Checks) {
        return String::new();
    }
    let checks: BTreeMap<String, ()> = cause
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("check")?.as_str())
        .map(|c| (c.to_string(), ()))
        .collect();
    checks.into_keys().collect::<Vec<_>>().join(", ")
}

pub fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()).max(0) as f64 / 1000.0
}
