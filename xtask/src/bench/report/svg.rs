//! `report.svg`: events/s by workload, hand-written SVG.

use std::fmt::Write as _;

use super::Results;
use super::figures::{Stat, figures, row, workload_label};
use super::units::thousands;
use crate::bench::results::Method;

/// Events/s by workload: one panel per workload (their scales differ a thousandfold), a bar per
/// method with its min–max, and a legend.
pub(super) fn svg(results: &Results<'_>) -> String {
    const COLORS: [&str; 5] = ["#6b7280", "#2563eb", "#0891b2", "#f59e0b", "#dc2626"];
    let (panel_w, panel_h, top, left, gap) = (300.0, 260.0, 70.0, 60.0, 70.0);
    let panels = results.workloads.len().max(1) as f64;
    let width = left + panels * (panel_w + gap);
    let height = top + panel_h + 60.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">Events per second by workload (median, min–max)</text>"#
    );
    let mut x = left;
    for (i, method) in Method::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<rect x="{x:.0}" y="32" width="10" height="10" fill="{}"/><text x="{:.0}" y="41">{}</text>"#,
            COLORS[i],
            x + 14.0,
            escape(method.label())
        );
        // About 6 pixels a character at this size.
        x += 14.0 + method.label().chars().count() as f64 * 6.0 + 18.0;
    }
    for (p, workload) in results.workloads.iter().enumerate() {
        let x0 = left + p as f64 * (panel_w + gap);
        let rows: Vec<(usize, Stat)> = Method::ALL
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, figures(row(workload, *m)?).rate?)))
            .collect();
        let top_value = nice(rows.iter().map(|(_, s)| s.max).fold(0.0, f64::max));
        let y = |v: f64| top + panel_h - v / top_value * panel_h;
        let count = ticks(top_value);
        for tick in 0..=count {
            let v = top_value * tick as f64 / count as f64;
            let _ = writeln!(
                out,
                r##"<line x1="{x0}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{}" y="{:.1}" text-anchor="end" fill="#374151">{}</text>"##,
                x0 + panel_w,
                x0 - 4.0,
                y(v) + 4.0,
                thousands(v),
                y = y(v)
            );
        }
        let slot = panel_w / Method::ALL.len() as f64;
        for (i, stat) in &rows {
            let bx = x0 + *i as f64 * slot + slot * 0.15;
            let bw = slot * 0.7;
            let _ = writeln!(
                out,
                r#"<rect x="{bx:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{}"><title>{}: {:.1} events/s</title></rect>"#,
                y(stat.median),
                top + panel_h - y(stat.median),
                COLORS[*i],
                escape(Method::ALL[*i].label()),
                stat.median
            );
            let cx = bx + bw / 2.0;
            let _ = writeln!(
                out,
                r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#111827"/><text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"##,
                y(stat.min),
                y(stat.max),
                y(stat.max) - 4.0,
                thousands(stat.median)
            );
        }
        let (right, base, middle) = (x0 + panel_w, top + panel_h, x0 + panel_w / 2.0);
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" x2="{right}" y1="{base}" y2="{base}" stroke="#111827"/><text x="{middle}" y="{}" text-anchor="middle" font-size="12">{}: {}</text>"##,
            base + 20.0,
            escape(&workload_label(workload)),
            escape(workload.plan.size.describe())
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A round upper bound for an axis.
pub(super) fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max * 1.05)
        .unwrap_or(10.0 * magnitude)
}

/// How many intervals divide an axis up to `top` (from [`nice`]) into round steps.
pub(super) fn ticks(top: f64) -> usize {
    let magnitude = 10f64.powf(top.log10().floor());
    let steps = [5.0, 2.5, 2.0, 1.0, 0.5, 0.25, 0.2, 0.1].map(|m| m * magnitude);
    steps
        .iter()
        .map(|step| top / step)
        .find(|n| (n - n.round()).abs() < 1e-9 && (3.0..=6.0).contains(n))
        .map_or(4, |n| n.round() as usize)
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes() {
        assert_eq!(nice(2300.0), 2500.0);
        assert_eq!(nice(2797.0), 3000.0);
        for (top, expected) in [
            (150.0, 3),
            (3000.0, 3),
            (5000.0, 5),
            (2500.0, 5),
            (100.0, 4),
            (400.0, 4),
            (6.0, 3),
        ] {
            assert_eq!(ticks(top), expected, "{top}");
        }
    }
}
