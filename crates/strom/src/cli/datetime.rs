//! `--to-datetime` and `--by-duration` values, read as kafka-consumer-groups
//! reads them: `YYYY-MM-DDTHH:mm:SS[.sss]` with an optional zone (`Z`,
//! `+HH:MM`, `-HHMM`, `+HH`; without one the time is UTC), and ISO-8601
//! durations `PnDTnHnMn.nS`; and the way the CLI prints times and ages.

/// Milliseconds since the epoch of an ISO-8601 date-time, or a message
/// saying what is wrong with it.
pub fn parse_datetime(text: &str) -> Result<i64, String> {
    let bad =
        |why: &str| format!("invalid date-time '{text}' ({why}): expected YYYY-MM-DDTHH:mm:SS.sss");
    let (date, rest) = text.split_once('T').ok_or_else(|| bad("no 'T'"))?;
    let date: Vec<&str> = date.split('-').collect();
    let [year, month, day] = date[..] else {
        return Err(bad("the date is not YYYY-MM-DD"));
    };
    let year = number(year, 4, 4).ok_or_else(|| bad("bad year"))?;
    let month = number(month, 2, 2)
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(|| bad("bad month"))?;
    let day = number(day, 2, 2)
        .filter(|d| *d >= 1 && *d <= days_in_month(year, month))
        .ok_or_else(|| bad("bad day"))?;

    // The zone starts at the first 'Z', '+' or '-' after the time.
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let (hms, millis) = match time.split_once('.') {
        Some((hms, ms)) => (
            hms,
            number(ms, 3, 3).ok_or_else(|| bad("milliseconds are not 3 digits"))?,
        ),
        None => (time, 0),
    };
    let hms: Vec<&str> = hms.split(':').collect();
    let [hour, minute, second] = hms[..] else {
        return Err(bad("the time is not HH:mm:SS"));
    };
    let hour = number(hour, 2, 2)
        .filter(|h| *h < 24)
        .ok_or_else(|| bad("bad hour"))?;
    let minute = number(minute, 2, 2)
        .filter(|m| *m < 60)
        .ok_or_else(|| bad("bad minute"))?;
    let second = number(second, 2, 2)
        .filter(|s| *s < 60)
        .ok_or_else(|| bad("bad second"))?;
    let offset_minutes = zone_offset(zone).ok_or_else(|| bad("bad zone"))?;

    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

/// Milliseconds in an ISO-8601 duration such as `P1DT2H`, `PT30M`, `PT1.5S`.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration '{text}': expected PnDTnHnMnS, e.g. PT1H30M");
    let upper = text.to_ascii_uppercase();
    let rest = upper.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = match rest.split_once('T') {
        Some((days, time)) if !time.is_empty() => (days, time),
        Some(_) => return Err(bad()),
        None => (rest, ""),
    };
    if days.is_empty() && time.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut add = |amount: i64, unit_ms: i64| -> Result<(), String> {
        total = amount
            .checked_mul(unit_ms)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(bad)?;
        Ok(())
    };
    if !days.is_empty() {
        let n = days
            .strip_suffix('D')
            .and_then(|d| number(d, 1, 12))
            .ok_or_else(bad)?;
        add(n, 86_400_000)?;
    }
    // Time units must come in the order H, M, S, each at most once.
    let mut field = String::new();
    let mut next_unit = 0;
    for c in time.chars() {
        let unit = match c {
            'H' => 1,
            'M' => 2,
            'S' => 3,
            _ => {
                field.push(c);
                continue;
            }
        };
        if unit <= next_unit || field.is_empty() {
            return Err(bad());
        }
        next_unit = unit;
        match unit {
            1 => add(number(&field, 1, 12).ok_or_else(bad)?, 3_600_000)?,
            2 => add(number(&field, 1, 12).ok_or_else(bad)?, 60_000)?,
            _ => {
                let (secs, frac) = field.split_once('.').unwrap_or((&field, ""));
                add(number(secs, 1, 12).ok_or_else(bad)?, 1_000)?;
                if !frac.is_empty() {
                    // Digits below a millisecond are dropped.
                    let ms = format!("{frac:0<3}");
                    add(number(&ms[..3], 3, 3).ok_or_else(bad)?, 1)?;
                    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                }
            }
        }
        field.clear();
    }
    if !field.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// A decimal number of `min..=max` ASCII digits.
fn number(text: &str, min: usize, max: usize) -> Option<i64> {
    let ok = (min..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.parse().ok()).flatten()
}

/// Minutes east of UTC: "" and "Z" are 0; else ±HH, ±HHMM or ±HH:MM.
fn zone_offset(zone: &str) -> Option<i64> {
    if zone.is_empty() || zone == "Z" {
        return Some(0);
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = zone[1..].replacen(':', "", 1);
    let (hours, minutes) = match digits.len() {
        2 => (number(&digits, 2, 2)?, 0),
        4 => (number(&digits[..2], 2, 2)?, number(&digits[2..], 2, 2)?),
        _ => return None,
    };
    (hours <= 18 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// well-known algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March is 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day) of a day count.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March is 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:mm:SS.sssZ` (UTC), the
/// form `--to-datetime` reads.
pub fn format_datetime_ms(ms: i64) -> String {
    let (days, day_ms) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (day_ms / 3_600_000, day_ms / 60_000 % 60);
    let (second, millis) = (day_ms / 1_000 % 60, day_ms % 1_000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// A duration for people: `850ms`, `12.3s`, `4m05s`, `2h07m`, `3d04h`.
/// Negative durations (clocks apart) print as `0ms`.
pub fn format_age_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{}.{}s", ms / 1_000, ms % 1_000 / 100),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, ms / 1_000 % 60),
        3_600_000..=86_399_999 => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
        _ => format!("{}d{:02}h", ms / 86_400_000, ms / 3_600_000 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_times_read_back() {
        assert_eq!(format_datetime_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_datetime_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_datetime_ms(1_709_210_096_789),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(
            format_datetime_ms(951_868_800_000),
            "2000-03-01T00:00:00.000Z"
        );
        for ms in [
            0,
            1,
            86_399_999,
            1_709_210_096_789,
            4_102_444_800_000,
            -62_000_000_000,
        ] {
            assert_eq!(parse_datetime(&format_datetime_ms(ms)), Ok(ms));
        }
    }

    #[test]
    fn ages_pick_two_units() {
        assert_eq!(format_age_ms(-5), "0ms");
        assert_eq!(format_age_ms(850), "850ms");
        assert_eq!(format_age_ms(12_345), "12.3s");
        assert_eq!(format_age_ms(60_000), "1m00s");
        assert_eq!(format_age_ms(245_900), "4m05s");
        assert_eq!(format_age_ms(7_620_000), "2h07m");
        assert_eq!(format_age_ms(273_600_000), "3d04h");
    }

    #[test]
    fn utc_date_times() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000"), Ok(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:01.500Z"), Ok(1_500));
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.789"),
            Ok(1_709_210_096_789)
        );
        assert_eq!(parse_datetime("2000-03-01T00:00:00"), Ok(951_868_800_000));
        assert_eq!(parse_datetime("1969-12-31T23:59:59.999Z"), Ok(-1));
    }

    #[test]
    fn zones_shift_to_utc() {
        let utc = parse_datetime("2024-06-01T10:00:00.000Z").unwrap();
        assert_eq!(parse_datetime("2024-06-01T12:00:00.000+02:00"), Ok(utc));
        assert_eq!(parse_datetime("2024-06-01T12:00:00.000+0200"), Ok(utc));
        assert_eq!(parse_datetime("2024-06-01T12:00:00+02"), Ok(utc));
        assert_eq!(parse_datetime("2024-06-01T04:30:00.000-05:30"), Ok(utc));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("PT1H30M"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("P1D"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("P2DT3H4M5S"), Ok(183_845_000));
        assert_eq!(parse_duration_ms("PT1.5S"), Ok(1_500));
        assert_eq!(parse_duration_ms("pt0.0019s"), Ok(1));
        for bad in [
            "", "P", "PT", "1H", "PT1M1H", "PT1H1H", "PTH", "PT1", "P1H", "PT1.S5",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_duration_ms("PT1X").unwrap_err(),
            "invalid duration 'PT1X': expected PnDTnHnMnS, e.g. PT1H30M"
        );
    }

    #[test]
    fn malformed_date_times_are_refused() {
        for bad in [
            "2024-06-01",
            "2024-06-01 10:00:00",
            "2024-6-01T10:00:00",
            "2023-02-29T10:00:00",
            "2024-13-01T10:00:00",
            "2024-06-01T24:00:00",
            "2024-06-01T10:00",
            "2024-06-01T10:00:00.5",
            "2024-06-01T10:00:00+2",
            "2024-06-01T10:00:00X",
            "",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_datetime("2024-06-01T10:00").unwrap_err(),
            "invalid date-time '2024-06-01T10:00' (the time is not HH:mm:SS): \
             expected YYYY-MM-DDTHH:mm:SS.sss"
        );
    }
}
