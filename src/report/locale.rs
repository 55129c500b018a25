//! How numbers, dates and durations read in the languages of our readers.
//!
//! Management and citizens read Dutch by default; on-call staff from a
//! supplier may read English. The Dutch forms follow what a Groningen
//! manager expects on paper: a decimal comma and a space before the percent
//! sign (`99,82 %`), thousands with a dot (`1.234`), weekday and month names
//! in lower case (`maandag 23 november 2026`), and the 24-hour clock.
//! English uses `99.82%`, `1,234` and `Monday 23 November 2026`.
//!
//! Every report and the status page format through here, so one figure
//! reads the same everywhere.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Weekday};
use serde::{Deserialize, Serialize};

/// A language a report or page is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Nl,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Nl, Lang::En];

    /// The BCP 47 tag, for `<html lang>` and `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    /// Picks the text for this language.
    pub fn pick<'a>(self, nl: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Nl => nl,
            Lang::En => en,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A language we do not write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language '{0}': use nl (Dutch) or en (English)")]
pub struct UnknownLang(pub String);

impl FromStr for Lang {
    type Err = UnknownLang;

    fn from_str(s: &str) -> Result<Lang, UnknownLang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nl" | "nl-nl" | "dutch" | "nederlands" => Ok(Lang::Nl),
            "en" | "en-gb" | "en-us" | "english" => Ok(Lang::En),
            _ => Err(UnknownLang(s.to_string())),
        }
    }
}

/// A number with `decimals` digits after the separator and grouped
/// thousands: `1.234,5` in Dutch, `1,234.5` in English. Not-a-number and
/// infinities read as `–`, so a missing figure never looks like a value.
pub fn number(value: f64, decimals: usize, lang: Lang) -> String {
    if !value.is_finite() {
        return "–".to_string();
    }
    let (group, point) = match lang {
        Lang::Nl => ('.', ','),
        Lang::En => (',', '.'),
    };
    let text = format!("{:.*}", decimals, value.abs());
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + int.len() / 3 + 1);
    // "-0,00" would suggest a loss where there is none.
    if value < 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        out.push('-');
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(group);
        }
        out.push(c);
    }
    if let Some(frac) = frac {
        out.push(point);
        out.push_str(frac);
    }
    out
}

/// A ratio (0.9982) as a percentage with two decimals: `99,82 %` in Dutch,
/// `99.82%` in English. A ratio just under 1 is never rounded up to 100:
/// 0.99999 reads `99,99 %`, because "100 %" would hide a real outage.
pub fn percent(ratio: f64, lang: Lang) -> String {
    percent_with(ratio, 2, lang)
}

/// [`percent`] with a chosen number of decimals.
pub fn percent_with(ratio: f64, decimals: usize, lang: Lang) -> String {
    if !ratio.is_finite() {
        return "–".to_string();
    }
    let scale = 10f64.powi(decimals as i32);
    let mut value = ratio * 100.0;
    if ratio < 1.0 {
        value = (value * scale).floor() / scale;
    }
    let n = number(value, decimals, lang);
    match lang {
        Lang::Nl => format!("{n} %"),
        Lang::En => format!("{n}%"),
    }
}

const WEEKDAYS_NL: [&str; 7] = [
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
];
const WEEKDAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS_NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The name of a weekday: `maandag`, `Monday`.
pub fn weekday(day: Weekday, lang: Lang) -> &'static str {
    let i = day.to_monday_zero_offset() as usize;
    match lang {
        Lang::Nl => WEEKDAYS_NL[i],
        Lang::En => WEEKDAYS_EN[i],
    }
}

/// The name of a month (1–12): `november`, `November`.
pub fn month_name(month: i8, lang: Lang) -> &'static str {
    let i = (month.clamp(1, 12) - 1) as usize;
    match lang {
        Lang::Nl => MONTHS_NL[i],
        Lang::En => MONTHS_EN[i],
    }
}

/// A month as chart axes and narrow columns write it: `mrt`, `Mar`.
pub fn month_abbr(month: i8, lang: Lang) -> &'static str {
    const NL: [&str; 12] = [
        "jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
    ];
    const EN: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let i = (month.clamp(1, 12) - 1) as usize;
    match lang {
        Lang::Nl => NL[i],
        Lang::En => EN[i],
    }
}

/// A date in full: `maandag 23 november 2026`, `Monday 23 November 2026`.
pub fn date_long(date: Date, lang: Lang) -> String {
    format!(
        "{} {}",
        weekday(date.weekday(), lang),
        date_medium(date, lang)
    )
}

/// A date without its weekday: `23 november 2026`, `23 November 2026`.
pub fn date_medium(date: Date, lang: Lang) -> String {
    format!(
        "{} {} {}",
        date.day(),
        month_name(date.month(), lang),
        date.year()
    )
}

/// A short date for tables and chart axes: `23-11` in Dutch, `23/11` in
/// English.
pub fn date_short(date: Date, lang: Lang) -> String {
    match lang {
        Lang::Nl => format!("{}-{}", date.day(), date.month()),
        Lang::En => format!("{}/{}", date.day(), date.month()),
    }
}

/// A local date and time on the 24-hour clock: `23-11-2026 14:05` in
/// Dutch, `23/11/2026 14:05` in English.
pub fn datetime(dt: DateTime, lang: Lang) -> String {
    let sep = match lang {
        Lang::Nl => '-',
        Lang::En => '/',
    };
    format!(
        "{:02}{sep}{:02}{sep}{} {:02}:{:02}",
        dt.day(),
        dt.month(),
        dt.year(),
        dt.hour(),
        dt.minute()
    )
}

/// A duration as people say it, to the second under a minute and to the
/// minute above: `45 s`, `12 min`, `3 u 05 min` / `3 h 05 min`,
/// `2 d 4 u` / `2 d 4 h`.
pub fn duration(seconds: f64, lang: Lang) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "–".to_string();
    }
    let hour = lang.pick("u", "h");
    if seconds < 60.0 {
        return format!("{} s", seconds.round() as u64);
    }
    let minutes = (seconds / 60.0).round() as u64;
    if minutes < 60 {
        return format!("{minutes} min");
    }
    let (h, m) = (minutes / 60, minutes % 60);
    if h < 24 {
        return format!("{h} {hour} {m:02} min");
    }
    let (d, h) = (h / 24, h % 24);
    format!("{d} d {h} {hour}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn dutch_percentages_have_a_decimal_comma_and_a_space() {
        assert_eq!(percent(0.9982, Lang::Nl), "99,82 %");
        assert_eq!(percent(0.9982, Lang::En), "99.82%");
        assert_eq!(percent(1.0, Lang::Nl), "100,00 %");
    }

    #[test]
    fn a_ratio_just_short_of_one_never_reads_as_a_hundred_percent() {
        assert_eq!(percent(0.99999, Lang::Nl), "99,99 %");
        assert_eq!(percent(f64::NAN, Lang::En), "–");
    }

    #[test]
    fn thousands_are_grouped_the_local_way() {
        assert_eq!(number(1234567.891, 2, Lang::Nl), "1.234.567,89");
        assert_eq!(number(1234567.891, 2, Lang::En), "1,234,567.89");
        assert_eq!(number(999.0, 0, Lang::Nl), "999");
        assert_eq!(number(-1234.5, 1, Lang::Nl), "-1.234,5");
        assert_eq!(number(-0.001, 2, Lang::En), "0.00");
    }

    #[test]
    fn dates_read_in_full_in_dutch_and_english() {
        let d = date(2026, 11, 23);
        assert_eq!(date_long(d, Lang::Nl), "maandag 23 november 2026");
        assert_eq!(date_long(d, Lang::En), "Monday 23 November 2026");
        assert_eq!(date_short(d, Lang::Nl), "23-11");
        assert_eq!(
            datetime(d.at(9, 5, 0, 0), Lang::Nl),
            "23-11-2026 09:05".to_string()
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(45.2, Lang::Nl), "45 s");
        assert_eq!(duration(12.0 * 60.0, Lang::En), "12 min");
        assert_eq!(duration(3.0 * 3600.0 + 300.0, Lang::Nl), "3 u 05 min");
        assert_eq!(duration(3.0 * 3600.0 + 300.0, Lang::En), "3 h 05 min");
        assert_eq!(duration(52.0 * 3600.0, Lang::Nl), "2 d 4 u");
    }

    #[test]
    fn languages_parse_from_their_tags() {
        assert_eq!("nl".parse::<Lang>().unwrap(), Lang::Nl);
        assert_eq!("EN".parse::<Lang>().unwrap(), Lang::En);
        assert!("de".parse::<Lang>().unwrap_err().to_string().contains("nl"));
    }
}
