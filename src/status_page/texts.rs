//! Every fixed text of the status page, its feed and its badges, in Dutch
//! (the default, for citizens of Groningen) and English. Kept in one place
//! so that a translation is checked side by side and the templates hold
//! no language.

use crate::report::locale::Lang;
use crate::sla::{CheckState, ServiceState};

/// The texts of one language.
#[derive(Debug)]
pub struct Texts {
    pub default_title: &'static str,
    pub updated: &'static str,
    pub refreshes: &'static str,
    pub other_language: &'static str,
    pub feed: &'static str,
    pub active_heading: &'static str,
    pub no_active: &'static str,
    pub since: &'static str,
    pub lasting: &'static str,
    pub maintenance_heading: &'static str,
    pub no_maintenance: &'static str,
    pub maintenance_default: &'static str,
    pub when: &'static str,
    pub services: &'static str,
    pub description: &'static str,
    pub reference: &'static str,
    pub status: &'static str,
    pub ongoing: &'static str,
    pub planned: &'static str,
    pub all_services: &'static str,
    pub and_more: &'static str,
    pub services_heading: &'static str,
    pub service: &'static str,
    pub supplier: &'static str,
    pub last_days: &'static str,
    pub checks: &'static str,
    pub history_heading: &'static str,
    pub no_history: &'static str,
    pub start: &'static str,
    pub end: &'static str,
    pub duration: &'static str,
    pub cause: &'static str,
    pub not_yet: &'static str,
    pub history_more: &'static str,
    pub legend: &'static str,
    pub available: &'static str,
    pub down_for: &'static str,
    pub maintenance_for: &'static str,
    pub unmeasured_for: &'static str,
    pub today_so_far: &'static str,
    pub in_days: &'static str,
    pub days_with_outage: &'static str,
    pub day_with_outage: &'static str,
    pub no_figures: &'static str,
    pub bar_label: &'static str,
    pub day_ok: &'static str,
    pub day_minor: &'static str,
    pub day_major: &'static str,
    pub day_maintenance: &'static str,
    pub day_no_data: &'static str,
    pub day_closed: &'static str,
    pub all_up: &'static str,
    pub some_down: &'static str,
    pub some_degraded: &'static str,
    pub some_unknown: &'static str,
    pub some_maintenance: &'static str,
    pub outage_title: &'static str,
    pub resolved_title: &'static str,
    pub maintenance_title: &'static str,
    pub feed_subtitle: &'static str,
    pub unknown_service: &'static str,
    pub footer: &'static str,
}

pub const NL: Texts = Texts {
    default_title: "Status van onze dienstverlening",
    updated: "Bijgewerkt",
    refreshes: "deze pagina ververst zichzelf elke",
    other_language: "English",
    feed: "Meldingen als Atom-feed",
    active_heading: "Actuele storingen",
    no_active: "Er zijn op dit moment geen storingen.",
    since: "sinds",
    lasting: "duurt nu",
    maintenance_heading: "Gepland onderhoud",
    no_maintenance: "Er is geen onderhoud gepland voor de komende 14 dagen.",
    maintenance_default: "Gepland onderhoud",
    when: "Wanneer",
    services: "Diensten",
    description: "Omschrijving",
    reference: "Wijziging",
    status: "Status",
    ongoing: "Nu bezig",
    planned: "Gepland",
    all_services: "alle diensten",
    and_more: "en {} andere",
    services_heading: "Diensten",
    service: "Dienst",
    supplier: "Leverancier",
    last_days: "Afgelopen 90 dagen",
    checks: "Controles",
    history_heading: "Storingen in de afgelopen 30 dagen",
    no_history: "Geen storingen in de afgelopen 30 dagen.",
    start: "Begin",
    end: "Einde",
    duration: "Duur",
    cause: "Oorzaak",
    not_yet: "nog niet verholpen",
    history_more: "En {} eerdere storingen; de Atom-feed en de API noemen ze allemaal.",
    legend: "Legenda",
    available: "beschikbaar",
    down_for: "storing",
    maintenance_for: "onderhoud",
    unmeasured_for: "zonder meetgegevens",
    today_so_far: "vandaag tot nu",
    in_days: "in 90 dagen",
    days_with_outage: "dagen met storing",
    day_with_outage: "dag met storing",
    no_figures: "nog geen meetgegevens",
    bar_label: "Beschikbaarheid per dag in de afgelopen 90 dagen",
    day_ok: "geen storing",
    day_minor: "storing, binnen de norm",
    day_major: "storing, onder de norm",
    day_maintenance: "hele dag onderhoud",
    day_no_data: "geen meetgegevens",
    day_closed: "gesloten (geen openingstijden)",
    all_up: "Alle diensten werken.",
    some_down: "Storing bij {} van de {} diensten.",
    some_degraded: "Beperkte werking bij {} van de {} diensten.",
    some_unknown: "Status onbekend bij {} van de {} diensten.",
    some_maintenance: "Onderhoud bij {} van de {} diensten.",
    outage_title: "Storing",
    resolved_title: "Storing verholpen",
    maintenance_title: "Gepland onderhoud",
    feed_subtitle: "Storingen en gepland onderhoud",
    unknown_service: "onbekende dienst",
    footer: "Tijden in",
};

pub const EN: Texts = Texts {
    default_title: "Status of our services",
    updated: "Updated",
    refreshes: "this page refreshes itself every",
    other_language: "Nederlands",
    feed: "Notices as an Atom feed",
    active_heading: "Current outages",
    no_active: "There are no outages at the moment.",
    since: "since",
    lasting: "lasting",
    maintenance_heading: "Planned maintenance",
    no_maintenance: "No maintenance is planned for the next 14 days.",
    maintenance_default: "Planned maintenance",
    when: "When",
    services: "Services",
    description: "Description",
    reference: "Change",
    status: "Status",
    ongoing: "In progress",
    planned: "Planned",
    all_services: "all services",
    and_more: "and {} more",
    services_heading: "Services",
    service: "Service",
    supplier: "Supplier",
    last_days: "Last 90 days",
    checks: "Checks",
    history_heading: "Outages in the last 30 days",
    no_history: "No outages in the last 30 days.",
    start: "Start",
    end: "End",
    duration: "Duration",
    cause: "Cause",
    not_yet: "not resolved yet",
    history_more: "And {} earlier outages; the Atom feed and the API list them all.",
    legend: "Legend",
    available: "available",
    down_for: "outage",
    maintenance_for: "maintenance",
    unmeasured_for: "not measured",
    today_so_far: "today so far",
    in_days: "over 90 days",
    days_with_outage: "days with an outage",
    day_with_outage: "day with an outage",
    no_figures: "no measurements yet",
    bar_label: "Availability per day over the last 90 days",
    day_ok: "no outage",
    day_minor: "outage, within the objective",
    day_major: "outage, below the objective",
    day_maintenance: "maintenance all day",
    day_no_data: "no measurements",
    day_closed: "closed (no service hours)",
    all_up: "All services are operational.",
    some_down: "Outage at {} of {} services.",
    some_degraded: "Degraded service at {} of {} services.",
    some_unknown: "Status unknown for {} of {} services.",
    some_maintenance: "Maintenance at {} of {} services.",
    outage_title: "Outage",
    resolved_title: "Outage resolved",
    maintenance_title: "Planned maintenance",
    feed_subtitle: "Outages and planned maintenance",
    unknown_service: "unknown service",
    footer: "Times in",
};

pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Nl => &NL,
        Lang::En => &EN,
    }
}

/// `{}` in `template` replaced by each of `values` in turn.
pub fn fill(template: &str, values: &[&dyn std::fmt::Display]) -> String {
    let mut out = String::with_capacity(template.len() + 8);
    let mut values = values.iter();
    let mut rest = template;
    while let Some(i) = rest.find("{}") {
        out.push_str(&rest[..i]);
        if let Some(v) = values.next() {
            out.push_str(&v.to_string());
        }
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

/// How a service's state reads, with a sign that does not depend on
/// colour, and the CSS class that colours it.
pub fn service_state(
    state: ServiceState,
    lang: Lang,
) -> (&'static str, &'static str, &'static str) {
    let (nl, en, sign, class) = match state {
        ServiceState::Up => ("Werkt", "Operational", "✓", "up"),
        ServiceState::Degraded => ("Werkt beperkt", "Degraded", "!", "degraded"),
        ServiceState::Down => ("Storing", "Outage", "✕", "down"),
        ServiceState::Unknown => ("Onbekend", "Unknown", "?", "unknown"),
        ServiceState::Maintenance => ("Onderhoud", "Maintenance", "⚙", "maintenance"),
    };
    (lang.pick(nl, en), sign, class)
}

pub fn check_state(state: CheckState, lang: Lang) -> (&'static str, &'static str) {
    match state {
        CheckState::Up => (lang.pick("werkt", "working"), "up"),
        CheckState::Down => (lang.pick("storing", "failing"), "down"),
        CheckState::Unknown => (lang.pick("onbekend", "unknown"), "unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_in_order() {
        assert_eq!(
            fill(NL.some_down, &[&2, &40]),
            "Storing bij 2 van de 40 diensten."
        );
        assert_eq!(fill(EN.and_more, &[&3]), "and 3 more");
    }
}
