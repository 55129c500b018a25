//! The Dutch public holidays, built in so that business-hours calendars
//! need no yearly list: fixed dates, Easter-based dates (Easter by the
//! anonymous Gregorian algorithm), and the two days contracts differ on.

use jiff::civil::{Date, Weekday};

/// A Dutch public holiday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holiday {
    NewYearsDay,
    /// Only with `good_friday: true`.
    GoodFriday,
    EasterSunday,
    EasterMonday,
    KingsDay,
    /// Only with `liberation_day: true`.
    LiberationDay,
    AscensionDay,
    WhitSunday,
    WhitMonday,
    ChristmasDay,
    BoxingDay,
}

impl Holiday {
    /// The Dutch name, as it appears in reports.
    pub fn name(self) -> &'static str {
        match self {
            Holiday::NewYearsDay => "Nieuwjaarsdag",
            Holiday::GoodFriday => "Goede Vrijdag",
            Holiday::EasterSunday => "Eerste Paasdag",
            Holiday::EasterMonday => "Tweede Paasdag",
            Holiday::KingsDay => "Koningsdag",
            Holiday::LiberationDay => "Bevrijdingsdag",
            Holiday::AscensionDay => "Hemelvaartsdag",
            Holiday::WhitSunday => "Eerste Pinksterdag",
            Holiday::WhitMonday => "Tweede Pinksterdag",
            Holiday::ChristmasDay => "Eerste Kerstdag",
            Holiday::BoxingDay => "Tweede Kerstdag",
        }
    }
}

/// The days on which contracts differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HolidayOptions {
    pub good_friday: bool,
    /// 5 May every year (by law a paid day off only in lustrum years;
    /// contracts that count it usually count it every year).
    pub liberation_day: bool,
}

/// Easter Sunday of a Gregorian year (anonymous Gregorian algorithm,
/// a.k.a. Meeus/Jones/Butcher). `None` outside jiff's date range.
pub fn easter_sunday(year: i16) -> Option<Date> {
    let y = i32::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()
}

fn offset(date: Date, days: i32) -> Option<Date> {
    date.checked_add(jiff::Span::new().days(days)).ok()
}

/// King's Day: 27 April, or Saturday 26 April when the 27th is a Sunday.
pub fn kings_day(year: i16) -> Option<Date> {
    let d = Date::new(year, 4, 27).ok()?;
    if d.weekday() == Weekday::Sunday {
        Date::new(year, 4, 26).ok()
    } else {
        Some(d)
    }
}

/// Every Dutch public holiday of `year` that `options` count, by date.
pub fn dutch_holidays(year: i16, options: HolidayOptions) -> Vec<(Date, Holiday)> {
    let mut out = Vec::with_capacity(11);
    let mut push = |d: Option<Date>, h: Holiday| {
        if let Some(d) = d {
            out.push((d, h));
        }
    };
    push(Date::new(year, 1, 1).ok(), Holiday::NewYearsDay);
    if let Some(easter) = easter_sunday(year) {
        if options.good_friday {
            push(offset(easter, -2), Holiday::GoodFriday);
        }
        push(Some(easter), Holiday::EasterSunday);
        push(offset(easter, 1), Holiday::EasterMonday);
        push(offset(easter, 39), Holiday::AscensionDay);
        push(offset(easter, 49), Holiday::WhitSunday);
        push(offset(easter, 50), Holiday::WhitMonday);
    }
    push(kings_day(year), Holiday::KingsDay);
    if options.liberation_day {
        push(Date::new(year, 5, 5).ok(), Holiday::LiberationDay);
    }
    push(Date::new(year, 12, 25).ok(), Holiday::ChristmasDay);
    push(Date::new(year, 12, 26).ok(), Holiday::BoxingDay);
    out.sort();
    out
}

/// The holiday falling on `date`, if any.
pub fn dutch_holiday(date: Date, options: HolidayOptions) -> Option<Holiday> {
    dutch_holidays(date.year(), options)
        .into_iter()
        .find(|(d, _)| *d == date)
        .map(|(_, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn easter_matches_the_published_dates_2024_to_2030() {
        let expected = [
            (2024, date(2024, 3, 31)),
            (2025, date(2025, 4, 20)),
            (2026, date(2026, 4, 5)),
            (2027, date(2027, 3, 28)),
            (2028, date(2028, 4, 16)),
            (2029, date(2029, 4, 1)),
            (2030, date(2030, 4, 21)),
        ];
        for (year, want) in expected {
            assert_eq!(easter_sunday(year), Some(want), "Easter {year}");
        }
    }

    #[test]
    fn easter_is_right_at_the_extremes_of_its_range() {
        // Earliest possible (22 March) and latest possible (25 April).
        assert_eq!(easter_sunday(2285), Some(date(2285, 3, 22)));
        assert_eq!(easter_sunday(2038), Some(date(2038, 4, 25)));
    }

    /// Hand-written from the official calendars, not from the algorithm.
    #[test]
    fn dutch_holidays_2024_to_2030_with_both_options() {
        let all = HolidayOptions {
            good_friday: true,
            liberation_day: true,
        };
        #[rustfmt::skip]
        let table: [(i16, [Date; 11]); 7] = [
            (2024, [date(2024,1,1), date(2024,3,29), date(2024,3,31), date(2024,4,1), date(2024,4,27), date(2024,5,5), date(2024,5,9), date(2024,5,19), date(2024,5,20), date(2024,12,25), date(2024,12,26)]),
            (2025, [date(2025,1,1), date(2025,4,18), date(2025,4,20), date(2025,4,21), date(2025,4,26), date(2025,5,5), date(2025,5,29), date(2025,6,8), date(2025,6,9), date(2025,12,25), date(2025,12,26)]),
            (2026, [date(2026,1,1), date(2026,4,3), date(2026,4,5), date(2026,4,6), date(2026,4,27), date(2026,5,5), date(2026,5,14), date(2026,5,24), date(2026,5,25), date(2026,12,25), date(2026,12,26)]),
            (2027, [date(2027,1,1), date(2027,3,26), date(2027,3,28), date(2027,3,29), date(2027,4,27), date(2027,5,5), date(2027,5,6), date(2027,5,16), date(2027,5,17), date(2027,12,25), date(2027,12,26)]),
            (2028, [date(2028,1,1), date(2028,4,14), date(2028,4,16), date(2028,4,17), date(2028,4,27), date(2028,5,5), date(2028,5,25), date(2028,6,4), date(2028,6,5), date(2028,12,25), date(2028,12,26)]),
            (2029, [date(2029,1,1), date(2029,3,30), date(2029,4,1), date(2029,4,2), date(2029,4,27), date(2029,5,5), date(2029,5,10), date(2029,5,20), date(2029,5,21), date(2029,12,25), date(2029,12,26)]),
            (2030, [date(2030,1,1), date(2030,4,19), date(2030,4,21), date(2030,4,22), date(2030,4,27), date(2030,5,5), date(2030,5,30), date(2030,6,9), date(2030,6,10), date(2030,12,25), date(2030,12,26)]),
        ];
        for (year, dates) in table {
            let got: Vec<Date> = dutch_holidays(year, all)
                .into_iter()
                .map(|(d, _)| d)
                .collect();
            assert_eq!(got, dates.to_vec(), "holidays {year}");
        }
    }

    #[test]
    fn kings_day_moves_to_saturday_when_the_27th_is_a_sunday() {
        assert_eq!(kings_day(2025), Some(date(2025, 4, 26)));
        assert_eq!(kings_day(2027), Some(date(2027, 4, 27)));
        assert_eq!(
            dutch_holiday(date(2025, 4, 26), HolidayOptions::default()),
            Some(Holiday::KingsDay)
        );
        assert_eq!(
            dutch_holiday(date(2025, 4, 27), HolidayOptions::default()),
            None
        );
    }

    #[test]
    fn good_friday_and_liberation_day_only_count_when_asked() {
        let none = HolidayOptions::default();
        assert_eq!(dutch_holiday(date(2026, 4, 3), none), None);
        assert_eq!(dutch_holiday(date(2026, 5, 5), none), None);
        assert_eq!(dutch_holidays(2026, none).len(), 9);
        let gf = HolidayOptions {
            good_friday: true,
            liberation_day: false,
        };
        assert_eq!(
            dutch_holiday(date(2026, 4, 3), gf),
            Some(Holiday::GoodFriday)
        );
        let lib = HolidayOptions {
            good_friday: false,
            liberation_day: true,
        };
        assert_eq!(
            dutch_holiday(date(2026, 5, 5), lib),
            Some(Holiday::LiberationDay)
        );
    }
}
