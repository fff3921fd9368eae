//! Figures as the reports write them: mebibytes, gibibytes, thousands separators and table cells.

use super::figures::Stat;

pub(super) fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

pub(super) fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Numbers joined by `separator`, as a sweep's concurrencies or `--rtt`'s list are written.
pub(super) fn joined<T: ToString>(items: &[T], separator: &str) -> String {
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}

pub(super) fn thousands(value: f64) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if value >= 100.0 {
        let digits = format!("{:.0}", value);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// `median (min–max)`, or the median alone when the repetitions agree or there is one.
pub(super) fn cell(stat: Option<Stat>, show: impl Fn(f64) -> String) -> String {
    match stat {
        None => "–".to_owned(),
        Some(s) => {
            let (median, min, max) = (show(s.median), show(s.min), show(s.max));
            if min == max {
                median
            } else {
                format!("{median} ({min}–{max})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let check = |value: f64, expected: &str| assert_eq!(thousands(value), expected);
        check(1234567.4, "1,234,567");
        check(999.6, "1,000");
        check(123.0, "123");
        check(45.67, "45.7");
        check(1.234, "1.23");
        check(0.0, "0");
    }
}
