//! The `status_page:` section: the public page at `/` for citizens and the
//! contact centre, its feed and badges. What it may show is decided here,
//! once, when the configuration loads: fields a municipality keeps
//! internal (`hide`), internal details it chooses to publish (`show`), and
//! services left off the page altogether (`hide_services`).
//!
//! ```yaml
//! status_page:
//!   title: Storingen en onderhoud
//!   logo_url: https://www.gemeente.example/logo.svg
//!   intro: Hier ziet u welke diensten van de gemeente werken.
//!   hide: [labels, suppliers, checks]
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde::Deserialize;

use super::schedule::DEFAULT_TIMEZONE;
use super::{Dur, KnownNames, Spanned, Validator, closest};
use crate::report::locale::Lang;

/// A field of a service the page shows unless hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PublicField {
    /// The service's labels (`team: burgerzaken`).
    Labels,
    /// Which supplier runs the service.
    Suppliers,
    /// The service's checks and their states.
    Checks,
}

impl PublicField {
    pub const ALL: [PublicField; 3] = [
        PublicField::Labels,
        PublicField::Suppliers,
        PublicField::Checks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PublicField::Labels => "labels",
            PublicField::Suppliers => "suppliers",
            PublicField::Checks => "checks",
        }
    }
}

/// An internal detail the page leaves out unless asked to show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InternalDetail {
    /// The failing checks' reasons and error texts of incidents (which may
    /// hold URLs, IP addresses and server messages).
    Errors,
    /// The change tickets of maintenance windows (`CHG-2026-0142`).
    References,
}

impl InternalDetail {
    pub const ALL: [InternalDetail; 2] = [InternalDetail::Errors, InternalDetail::References];

    pub fn as_str(self) -> &'static str {
        match self {
            InternalDetail::Errors => "errors",
            InternalDetail::References => "references",
        }
    }
}

/// The status page as configured and validated.
#[derive(Debug, Clone)]
pub struct StatusPageConfig {
    /// `false` answers 404 on `/`, `/status`, `/feed.atom` and `/badge/…`.
    pub enabled: bool,
    /// Replaces the default heading ("Status van onze dienstverlening").
    pub title: Option<String>,
    pub logo_url: Option<String>,
    /// A paragraph under the heading.
    pub intro: Option<String>,
    pub hide: BTreeSet<PublicField>,
    pub show: BTreeSet<InternalDetail>,
    /// Service ids left off the page, the feed and the badges.
    pub hide_services: BTreeSet<String>,
    /// The language without `?lang=`.
    pub language: Lang,
    /// How often the page reloads itself, and how old today's figures may be.
    pub refresh: Duration,
    /// Times on the page are shown in this zone.
    pub timezone: TimeZone,
}

impl Default for StatusPageConfig {
    fn default() -> StatusPageConfig {
        StatusPageConfig {
            enabled: true,
            title: None,
            logo_url: None,
            intro: None,
            hide: BTreeSet::new(),
            show: BTreeSet::new(),
            hide_services: BTreeSet::new(),
            language: Lang::Nl,
            refresh: DEFAULT_REFRESH,
            timezone: TimeZone::get(DEFAULT_TIMEZONE).unwrap_or(TimeZone::UTC),
        }
    }
}

impl StatusPageConfig {
    pub fn shows(&self, field: PublicField) -> bool {
        !self.hide.contains(&field)
    }

    pub fn reveals(&self, detail: InternalDetail) -> bool {
        self.show.contains(&detail)
    }

    pub fn is_public(&self, service_id: &str) -> bool {
        !self.hide_services.contains(service_id)
    }
}

const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
/// Faster than this, a page left open by a hundred people in the contact
/// centre would keep the monitor busy rendering.
const MIN_REFRESH: Duration = Duration::from_secs(10);

/// `status_page:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatusPage {
    enabled: Option<bool>,
    title: Option<String>,
    logo_url: Option<Spanned<String>>,
    intro: Option<String>,
    #[serde(default)]
    hide: Vec<Spanned<String>>,
    #[serde(default)]
    show: Vec<Spanned<String>>,
    #[serde(default)]
    hide_services: Vec<Spanned<String>>,
    language: Option<Spanned<String>>,
    refresh: Option<Spanned<Dur>>,
    timezone: Option<Spanned<String>>,
}

/// Validate `status_page:` (absent: the defaults) against the services.
pub(super) fn compile(
    raw: Option<Spanned<RawStatusPage>>,
    known: &KnownNames<'_>,
    v: &mut Validator,
) -> StatusPageConfig {
    let mut out = StatusPageConfig::default();
    let Some(Spanned { value: raw, .. }) = raw else {
        return out;
    };
    out.enabled = raw.enabled.unwrap_or(true);
    out.title = raw.title.filter(|t| !t.trim().is_empty());
    out.intro = raw.intro.filter(|t| !t.trim().is_empty());
    if let Some(logo) = raw.logo_url {
        if logo_ok(&logo.value) {
            out.logo_url = Some(logo.value);
        } else {
            v.error(
                logo.referenced,
                format!(
                    "status_page.logo_url '{}' is not an http(s) URL or a path on this server",
                    logo.value
                ),
                Some(
                    "write it like https://www.gemeente.example/logo.svg or /static/logo.png"
                        .into(),
                ),
            );
        }
    }
    out.hide = words(&raw.hide, "hide", &PublicField::ALL, PublicField::as_str, v);
    out.show = words(
        &raw.show,
        "show",
        &InternalDetail::ALL,
        InternalDetail::as_str,
        v,
    );
    for id in raw.hide_services {
        if !known.services.contains(id.value.as_str()) {
            let hint = match closest(&id.value, known.services.iter().copied()) {
                Some(c) => format!("did you mean '{c}'?"),
                None => "list service ids from services:".into(),
            };
            v.error(
                id.referenced,
                format!("status_page.hide_services: unknown service '{}'", id.value),
                Some(hint),
            );
        }
        out.hide_services.insert(id.value);
    }
    if let Some(lang) = raw.language {
        match lang.value.parse::<Lang>() {
            Ok(l) => out.language = l,
            Err(e) => v.error(lang.referenced, format!("status_page.language: {e}"), None),
        }
    }
    if let Some(r) = raw.refresh {
        if r.value.0 < MIN_REFRESH {
            v.error(
                r.referenced,
                format!(
                    "status_page.refresh {} is shorter than {}",
                    r.value,
                    Dur(MIN_REFRESH)
                ),
                Some("the page reloads itself this often; 60s is the default".into()),
            );
        } else {
            out.refresh = r.value.0;
        }
    }
    if let Some(tz) = raw.timezone {
        match TimeZone::get(&tz.value) {
            Ok(z) => out.timezone = z,
            Err(_) => v.error(
                tz.referenced,
                format!(
                    "status_page.timezone '{}' is not a known time zone",
                    tz.value
                ),
                Some(format!("write an IANA name, e.g. {DEFAULT_TIMEZONE}")),
            ),
        }
    }
    out
}

/// Each written word as one of `known`, with an error (and the closest
/// word) for the others.
fn words<T: Copy + Ord>(
    written: &[Spanned<String>],
    field: &str,
    known: &[T],
    name: fn(T) -> &'static str,
    v: &mut Validator,
) -> BTreeSet<T> {
    let mut out = BTreeSet::new();
    for w in written {
        match known.iter().find(|k| name(**k) == w.value.trim()) {
            Some(k) => {
                out.insert(*k);
            }
            None => {
                let names = known.iter().map(|k| name(*k));
                let hint = match closest(&w.value, names.clone()) {
                    Some(c) => format!("did you mean '{c}'?"),
                    None => format!("use {}", names.collect::<Vec<_>>().join(", ")),
                };
                v.error(
                    w.referenced,
                    format!("status_page.{field}: unknown entry '{}'", w.value),
                    Some(hint),
                );
            }
        }
    }
    out
}

fn logo_ok(s: &str) -> bool {
    if s.starts_with('/') && !s.starts_with("//") {
        return s.parse::<http::Uri>().is_ok();
    }
    s.parse::<http::Uri>()
        .ok()
        .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(section: &str) -> Result<Config, String> {
        let yaml = format!(
            "{section}\nservices:\n  - id: portal\n    checks:\n      - id: home\n        tcp: {{target: 127.0.0.1:9}}\n"
        );
        Config::from_str("t.yaml", &yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn the_page_is_public_in_dutch_without_a_section() {
        let c = load("").unwrap();
        assert!(c.status_page.enabled);
        assert_eq!(c.status_page.language, crate::report::locale::Lang::Nl);
        assert!(c.status_page.hide.is_empty() && c.status_page.show.is_empty());
    }

    #[test]
    fn hide_and_show_take_the_words_of_the_documentation() {
        let c = load(
            "status_page:\n  enabled: false\n  hide: [labels, suppliers, checks]\n  show: [errors]\n  hide_services: [portal]\n  language: en\n  refresh: 2m\n",
        )
        .unwrap();
        let p = &c.status_page;
        assert!(!p.enabled);
        assert_eq!(p.hide.len(), 3);
        assert!(p.reveals(super::InternalDetail::Errors));
        assert!(!p.reveals(super::InternalDetail::References));
        assert!(!p.is_public("portal"));
        assert_eq!(p.refresh.as_secs(), 120);
    }

    #[test]
    fn a_misspelt_entry_is_reported_at_its_place_with_the_word_meant() {
        let e = load("status_page:\n  hide: [labels, supliers]\n").unwrap_err();
        assert!(
            e.contains("t.yaml:2:18") && e.contains("'supliers'") && e.contains("'suppliers'"),
            "{e}"
        );
        let e = load("status_page:\n  hide_services: [portl]\n").unwrap_err();
        assert!(e.contains("did you mean 'portal'"), "{e}");
    }

    #[test]
    fn a_bad_logo_language_refresh_or_zone_is_rejected_with_a_hint() {
        for (section, says) in [
            ("logo_url: javascript:alert(1)", "logo_url"),
            ("language: de", "use nl"),
            ("refresh: 1s", "shorter than"),
            ("timezone: Mars/Olympus", "time zone"),
            ("colour: red", "unknown field"),
        ] {
            let e = load(&format!("status_page:\n  {section}\n")).unwrap_err();
            assert!(e.contains(says), "{section}: {e}");
        }
        assert!(load("status_page:\n  logo_url: /static/logo.svg\n").is_ok());
    }
}
