//! `/badge/<service>.svg`: a small SVG badge of a service's current state
//! and its availability over the last 30 days, for intranet pages and
//! supplier dashboards. The state is written out in words, so the colour
//! is never the only signal.

use askama::Template;

use super::ServiceView;
use super::bar::last_days;
use super::feed::xml_safe;
use super::texts;
use crate::report::daily::ServiceDays;
use crate::report::locale::{self, Lang};
use crate::sla::ServiceState;

/// Days the badge's availability covers.
pub const BADGE_DAYS: usize = 30;
/// Longer names are cut (with an ellipsis): a badge sits in a line of text.
const LABEL_CHARS: usize = 32;

#[derive(Template)]
#[template(path = "status_page/badge.svg")]
struct Badge {
    label: String,
    value: String,
    colour: &'static str,
    width: usize,
    label_width: usize,
    value_width: usize,
    label_x: f64,
    value_x: f64,
}

/// The badge of one service.
pub fn render(
    status: &ServiceView,
    days: Option<&ServiceDays>,
    lang: Lang,
) -> Result<String, askama::Error> {
    let (state, _, _) = texts::service_state(status.state, lang);
    let mut value = state.to_lowercase();
    if let Some(a) = days.and_then(|d| last_days(d, BADGE_DAYS)) {
        value.push_str(" · ");
        value.push_str(&locale::percent(a, lang));
        value.push_str(lang.pick(" (30 d)", " (30d)"));
    }
    let colour = match status.state {
        ServiceState::Up => "#1b7f3b",
        ServiceState::Degraded => "#a86b12",
        ServiceState::Down => "#c0262d",
        ServiceState::Maintenance => "#2b5fb4",
        ServiceState::Unknown => "#6b7078",
    };
    badge(&status.service.name, value, colour)
}

/// The answer for a service the page does not show: same shape, grey.
pub fn unknown(lang: Lang) -> String {
    badge(
        "status",
        texts::texts(lang).unknown_service.to_string(),
        "#6b7078",
    )
    .unwrap_or_default()
}

fn badge(label: &str, value: String, colour: &'static str) -> Result<String, askama::Error> {
    let safe = xml_safe(label);
    let mut label: String = safe.chars().take(LABEL_CHARS).collect();
    if safe.chars().nth(LABEL_CHARS).is_some() {
        label.push('…');
    }
    // Verdana 11 px averages about 7 px a character; shields.io measures,
    // but a badge a few pixels too wide reads just as well.
    let width_of = |s: &str| s.chars().count() * 7 + 12;
    let (label_width, value_width) = (width_of(&label), width_of(&value));
    Badge {
        label_x: label_width as f64 / 2.0,
        value_x: label_width as f64 + value_width as f64 / 2.0,
        width: label_width + value_width,
        label_width,
        value_width,
        label,
        value,
        colour,
    }
    .render()
}
