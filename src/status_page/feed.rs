//! `/feed.atom`: the incidents of the last 30 days and the maintenance
//! announced for the next 14, as an Atom 1.0 feed, so that the contact
//! centre and citizens can follow them in any feed reader.
//!
//! Ids are `urn:uuid:` names derived from what an entry is about (the
//! service and start of an incident, the change and start of a window),
//! so an entry keeps its id across restarts and an ended incident updates
//! the entry that announced it. Texts from the configuration are escaped
//! by the template and stripped of the characters XML 1.0 forbids.

use std::borrow::Cow;

use askama::Template;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use super::cache::{ANNOUNCE_DAYS, Records};
use super::page::{announcements, cause_text, seconds_between, services_phrase};
use super::texts;
use crate::config::Config;
use crate::config::status_page::InternalDetail;
use crate::report::locale::{self, Lang};

/// Entries in the feed, newest first: a reader polls it, and in a month
/// with thousands of incidents the older ones are on the page's history
/// and in `/api/v1/incidents`.
const FEED_ENTRIES: usize = 200;

#[derive(Template)]
#[template(path = "status_page/feed.xml")]
struct Feed<'a> {
    lang: &'static str,
    id: String,
    title: Cow<'a, str>,
    subtitle: &'static str,
    updated: Timestamp,
    page_url: String,
    self_url: String,
    entries: Vec<Entry>,
}

struct Entry {
    id: String,
    title: String,
    updated: Timestamp,
    published: Timestamp,
    kind: &'static str,
    content: String,
}

/// Render the feed.
pub fn render(
    config: &Config,
    records: &Records,
    lang: Lang,
    now: Timestamp,
) -> Result<String, askama::Error> {
    let page = &config.status_page;
    let t = texts::texts(lang);
    let tz = &page.timezone;
    let when = |at: Timestamp| locale::datetime(tz.to_datetime(at), lang);
    let mut entries: Vec<Entry> = Vec::new();
    let services = config.services_by_id();
    // Only the entries the feed will hold are formatted: a month can hold
    // thousands of incidents.
    let mut incidents: Vec<_> = records
        .incidents
        .iter()
        .filter_map(|i| {
            let service = services
                .get(i.service.as_str())
                .filter(|s| page.is_public(&s.id))?;
            Some((*service, i))
        })
        .collect();
    incidents.sort_by_key(|(_, i)| std::cmp::Reverse(i.ended_at.unwrap_or(i.started_at)));
    incidents.truncate(FEED_ENTRIES);
    for (service, i) in incidents {
        let name = xml_safe(&service.name);
        let mut content = format!(
            "{}: {} {} {}.",
            name,
            t.outage_title.to_lowercase(),
            t.since,
            when(i.started_at)
        );
        if let Some(end) = i.ended_at {
            content.push_str(&format!(
                " {} {} ({} {}).",
                t.resolved_title,
                when(end),
                t.duration.to_lowercase(),
                locale::duration(seconds_between(i.started_at, end), lang)
            ));
        }
        let cause = cause_text(page, &i.cause);
        if !cause.is_empty() {
            content.push_str(&format!(" {}: {}.", t.cause, xml_safe(&cause)));
        }
        let ms = i.started_at.as_millisecond().to_string();
        entries.push(Entry {
            id: uuid_urn(&["incident", &service.id, &ms]),
            title: format!(
                "{}: {name}",
                if i.ended_at.is_some() {
                    t.resolved_title
                } else {
                    t.outage_title
                }
            ),
            updated: i.ended_at.unwrap_or(i.started_at),
            published: i.started_at,
            kind: "incident",
            content,
        });
    }
    for a in announcements(config, records, now) {
        // A configured window is announced once it is 14 days away: that
        // is when the page starts to show it.
        let announced = a
            .created_at
            .unwrap_or_else(|| a.range.start - SignedDuration::from_hours(24 * ANNOUNCE_DAYS));
        let mut content = format!(
            "{} – {}: {}.",
            when(a.range.start),
            when(a.range.end),
            xml_safe(a.description.as_deref().unwrap_or(t.maintenance_default))
        );
        if page.reveals(InternalDetail::References) {
            content.push_str(&format!(" {}: {}.", t.reference, xml_safe(&a.reference)));
        }
        let ms = a.range.start.as_millisecond().to_string();
        entries.push(Entry {
            id: uuid_urn(&["maintenance", &a.reference, &ms]),
            title: format!(
                "{}: {}",
                t.maintenance_title,
                xml_safe(&services_phrase(&a, t))
            ),
            updated: announced.min(now),
            published: announced.min(now),
            kind: "maintenance",
            content,
        });
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.updated));
    entries.truncate(FEED_ENTRIES);
    let base = config.server.external_url.clone().unwrap_or_default();
    Feed {
        lang: lang.tag(),
        id: uuid_urn(&["feed", &config.location]),
        title: xml_safe(page.title.as_deref().unwrap_or(t.default_title)),
        subtitle: t.feed_subtitle,
        updated: entries.first().map_or(now, |e| e.updated),
        page_url: format!("{base}/?lang={}", lang.tag()),
        self_url: format!("{base}/feed.atom?lang={}", lang.tag()),
        entries,
    }
    .render()
}

/// A stable `urn:uuid:` (version 8, name-based on SHA-256) for `parts`.
fn uuid_urn(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// `s` without the characters XML 1.0 does not allow even as references
/// (controls other than tab and newlines, lone surrogates cannot occur in
/// a `str`, U+FFFE and U+FFFF), each replaced by U+FFFD.
pub fn xml_safe(s: &str) -> Cow<'_, str> {
    let bad = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
    if s.chars().any(bad) {
        Cow::Owned(
            s.chars()
                .map(|c| if bad(c) { '\u{fffd}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_uuid_urns() {
        let a = uuid_urn(&["incident", "portal", "1"]);
        assert_eq!(a, uuid_urn(&["incident", "portal", "1"]));
        assert_ne!(a, uuid_urn(&["incident", "portal", "2"]));
        assert_eq!(a.len(), "urn:uuid:".len() + 36);
        assert_eq!(&a[23..24], "8");
    }

    #[test]
    fn characters_xml_forbids_are_replaced() {
        assert_eq!(xml_safe("a\u{7}b\tc"), "a\u{fffd}b\tc");
        assert!(matches!(xml_safe("gewoon"), Cow::Borrowed(_)));
    }
}
