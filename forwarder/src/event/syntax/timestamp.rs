//! RFC 3339 timestamps (`time`).

/// Whether `s` is an RFC 3339 `date-time`, e.g. `2022-01-27T16:17:06.458868Z`.
///
/// Dates are checked against the days of each month, leap years included; `T` and `Z` may be
/// lower-case. A leap second (`:60`) is accepted only where the instant in UTC reads 23:59:60:
/// the offset is subtracted from the local time of day, so `18:59:60-05:00` is one and
/// `12:00:60Z` is not. Whether a leap second was in fact inserted on that day is not checked.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        number(b, 0, 4),
        number(b, 5, 2),
        number(b, 8, 2),
        number(b, 11, 2),
        number(b, 14, 2),
        number(b, 17, 2),
    ) else {
        return false;
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            match (number(b, i + 1, 2), number(b, i + 4, 2)) {
                (Some(hours), Some(minutes)) if hours <= 23 && minutes <= 59 => {
                    let offset = i64::from(hours * 60 + minutes);
                    if sign == b'-' { -offset } else { offset }
                }
                _ => return false,
            }
        }
        _ => return false,
    };
    second < 60 || is_last_minute_in_utc(hour, minute, offset_minutes)
}

/// Whether a local time of day `hour:minute` at an offset east of UTC is 23:59 in UTC.
fn is_last_minute_in_utc(hour: u32, minute: u32, offset_minutes: i64) -> bool {
    const DAY: i64 = 24 * 60;
    (i64::from(hour * 60 + minute) - offset_minutes).rem_euclid(DAY) == DAY - 1
}

/// The decimal number in `b[start..start + len]`, if all of it is digits.
fn number(b: &[u8], start: usize, len: usize) -> Option<u32> {
    let digits = b.get(start..start + len)?;
    digits.iter().try_fold(0, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u32::from(digit - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::testing::check_syntax as check;

    #[test]
    fn leap_seconds_only_at_23_59_60_utc() {
        for (time, accepted) in [
            ("2016-12-31T23:59:60Z", true),
            ("2016-12-31t23:59:60.5z", true),
            ("2016-12-31T18:59:60-05:00", true),
            ("2017-01-01T00:59:60+01:00", true),
            ("2016-12-31T23:29:60-00:30", true),
            ("2016-12-31T23:29:60+00:30", false),
            ("2016-12-31T23:59:60+01:00", false),
            ("2018-04-05T12:00:60Z", false),
            ("2018-04-05T23:58:60Z", false),
        ] {
            assert_eq!(is_rfc3339(time), accepted, "{time}");
        }
    }

    #[test]
    fn rfc3339() {
        check(
            is_rfc3339,
            &[
                "2022-01-27T16:17:06.458868Z",
                "2022-01-27T16:17:06Z",
                "2022-01-27t16:17:06z",
                "2022-01-27T16:17:06+05:30",
                "2022-01-27T16:17:06-00:00",
                "2022-01-27T16:17:06.1+23:59",
                "1985-04-12T23:20:50.52Z",
                "1996-12-19T16:39:57-08:00",
                "1990-12-31T23:59:60Z",
                "1990-12-31T15:59:60-08:00",
                "2024-02-29T00:00:00Z",
                "2000-02-29T00:00:00Z",
                "0000-01-01T00:00:00Z",
                "9999-12-31T23:59:59.999999999999Z",
                "2022-01-31T00:00:00Z",
                "2022-04-30T00:00:00Z",
            ],
            &[
                "",
                "2022-13-01T00:00:00Z",
                "2022-00-01T00:00:00Z",
                "2022-01-00T00:00:00Z",
                "2022-01-32T00:00:00Z",
                "2022-04-31T00:00:00Z",
                "2023-02-29T00:00:00Z",
                "1900-02-29T00:00:00Z",
                "2022-01-27T24:00:00Z",
                "2022-01-27T23:60:00Z",
                "2022-01-27T23:59:61Z",
                "2022-01-27 16:17:06Z",
                "2022-01-27T16:17:06",
                "2022-01-27T16:17:06.Z",
                "2022-01-27T16:17:06.5",
                "2022-01-27T16:17:06+0530",
                "2022-01-27T16:17:06+05",
                "2022-01-27T16:17:06+24:00",
                "2022-01-27T16:17:06+05:60",
                "2022-01-27T16:17:06ZZ",
                "2022-01-27T16:17:06Z ",
                " 2022-01-27T16:17:06Z",
                "2022-1-27T16:17:06Z",
                "22-01-27T16:17:06Z",
                "2022/01/27T16:17:06Z",
                "2022-01-27T16-17-06Z",
                "2022-01-27",
                "2022-01-27T16:17Z",
                "+2022-01-27T16:17:06Z",
                "2022-01-27T16:17:06,5Z",
                "2022-01-27T16:17:06.٣Z",
                "２022-01-27T16:17:06Z",
            ],
        );
    }
}
