//! `chart.svg`: two panels, each allocator's median time and median peak
//! RSS relative to the baseline's, per case, on log axes fitted to the data,
//! with each allocator's fastest and slowest run as whiskers, noisy rows
//! marked, and a caption naming the machine, commit and date.
//!
//! Written by hand rather than with a plotting crate: the chart is a few
//! dozen rectangles, lines and labels, each placed by one formula below; a
//! crate would still need every bar, whisker and mark placed by hand on a
//! segmented log axis, and would add a dependency tree to the benchmark.

use std::fmt::Write as _;

use super::meta::Meta;
use super::report::{baseline_name, baseline_row, Row, NOISE_LIMIT};

/// Left margin (axis title and tick labels).
const LEFT: f64 = 76.0;
/// Right margin.
const RIGHT: f64 = 20.0;
/// Width of one bar.
const BAR: f64 = 13.0;
/// Space between two cases.
const GAP: f64 = 26.0;
/// Top of the first panel (title and legend above it).
const FIRST_TOP: f64 = 96.0;
/// Height of the time panel.
const TIME_HEIGHT: f64 = 250.0;
/// Height of the RSS panel.
const RSS_HEIGHT: f64 = 200.0;
/// Below a panel: the case labels.
const LABELS: f64 = 34.0;
/// Between the labels of one panel and the next panel (its title).
const PANEL_GAP: f64 = 30.0;
/// Under the last panel's labels: the caption.
const CAPTION: f64 = 50.0;
/// The narrowest chart: room for the title and the caption.
const MIN_WIDTH: f64 = 920.0;
/// Ticks closer than this, in pixels, are thinned out.
const MIN_TICK_SPACING: f64 = 20.0;
/// Fill colours of the allocators' bars, in order of first appearance.
const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
];
/// The ratios the axes label first, where they fit: powers of two.
const MAJOR_TICKS: [f64; 15] = [
    1.0 / 128.0,
    1.0 / 64.0,
    1.0 / 32.0,
    1.0 / 16.0,
    0.125,
    0.25,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    32.0,
    64.0,
    128.0,
];
/// The ratios the axes label between those, where there is room.
const MINOR_TICKS: [f64; 14] = [
    0.6, 0.7, 0.8, 0.9, 1.1, 1.25, 1.5, 1.75, 3.0, 5.0, 6.0, 10.0, 20.0, 50.0,
];

/// Escapes text for SVG content and attribute values.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A ratio as an axis label: `0.25×`, `1×`, `1.5×`, `20×`.
fn ratio_label(r: f64) -> String {
    let text = format!("{r:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}×")
}

/// One value of a panel: a bar from 1× to `median` with a whisker from
/// `low` to `high`, all ratios to the baseline's median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Index of the case (workload and thread count).
    pub case: usize,
    /// Index of the allocator.
    pub allocator: usize,
    /// The median's ratio.
    pub median: f64,
    /// The smallest run's ratio.
    pub low: f64,
    /// The largest run's ratio.
    pub high: f64,
    /// Whether the row is flagged noisy.
    pub noisy: bool,
}

/// A log axis fitted to a panel's values: `lo..hi` in log2 units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    lo: f64,
    hi: f64,
}

impl Axis {
    /// The smallest range that holds every value and 1×, padded by 8% each
    /// side, and at least 0.8×–1.25× wide so that small differences do not
    /// fill the panel.
    pub fn fit(values: impl Iterator<Item = f64>) -> Axis {
        let (mut lo, mut hi) = (0f64, 0f64);
        for v in values.filter(|v| v.is_finite() && *v > 0.0) {
            lo = lo.min(v.log2());
            hi = hi.max(v.log2());
        }
        let pad = (hi - lo) * 0.08;
        let (lo, hi) = (lo - pad, hi + pad);
        Axis {
            lo: lo.min(0.8f64.log2()),
            hi: hi.max(1.25f64.log2()),
        }
    }

    /// Whether ratio `r` is within the axis.
    pub fn contains(&self, r: f64) -> bool {
        (self.lo..=self.hi).contains(&r.log2())
    }

    /// The y pixel of ratio `r` in a panel from `top`, `height` high.
    fn y(&self, r: f64, top: f64, height: f64) -> f64 {
        let l = r.log2().clamp(self.lo, self.hi);
        top + (self.hi - l) / (self.hi - self.lo) * height
    }

    /// The ticks to label: the powers of two inside the axis, then each
    /// of the in-between ratios (0.8×, 1.5×, 3×, ...) that is at least 20
    /// pixels from every tick taken so far.
    pub fn ticks(&self, height: f64) -> Vec<f64> {
        let pixels = |a: f64, b: f64| (a.log2() - b.log2()).abs() / (self.hi - self.lo) * height;
        let mut ticks: Vec<f64> = Vec::new();
        for &t in MAJOR_TICKS.iter().chain(&MINOR_TICKS) {
            if self.contains(t) && ticks.iter().all(|&k| pixels(t, k) >= MIN_TICK_SPACING) {
                ticks.push(t);
            }
        }
        ticks.sort_by(f64::total_cmp);
        ticks
    }
}

/// The time bars and the RSS bars of `rows`, with the cases and allocators
/// they index.
#[allow(clippy::type_complexity)]
pub fn bars(rows: &[Row]) -> (Vec<(String, usize)>, Vec<String>, Vec<Bar>, Vec<Bar>) {
    let baseline = baseline_name(rows).unwrap_or_default();
    let mut cases: Vec<(String, usize)> = Vec::new();
    let mut allocators: Vec<String> = Vec::new();
    for r in rows {
        if !cases
            .iter()
            .any(|(w, t)| *w == r.workload && *t == r.threads)
        {
            cases.push((r.workload.clone(), r.threads));
        }
        if !allocators.contains(&r.allocator) {
            allocators.push(r.allocator.clone());
        }
    }
    let (mut time, mut rss) = (Vec::new(), Vec::new());
    for r in rows {
        let Some(base) = baseline_row(rows, r, &baseline) else {
            continue;
        };
        let case = cases
            .iter()
            .position(|(w, t)| *w == r.workload && *t == r.threads)
            .expect("collected above");
        let allocator = allocators
            .iter()
            .position(|a| *a == r.allocator)
            .expect("collected above");
        time.push(Bar {
            case,
            allocator,
            median: r.median_s / base.median_s,
            low: r.min_s / base.median_s,
            high: r.max_s / base.median_s,
            noisy: r.noisy(),
        });
        let base_rss = base.peak_rss_kib as f64;
        rss.push(Bar {
            case,
            allocator,
            median: r.peak_rss_kib as f64 / base_rss,
            low: r.rss_min_kib as f64 / base_rss,
            high: r.rss_max_kib as f64 / base_rss,
            noisy: false,
        });
    }
    (cases, allocators, time, rss)
}

/// Horizontal layout: where case `case`'s group and its bars start.
struct Columns {
    /// Width of one case's group.
    group: f64,
    /// From a group's left edge to its first bar (the bars are centred).
    inset: f64,
}

impl Columns {
    fn group_x(&self, case: usize) -> f64 {
        LEFT + case as f64 * self.group
    }

    fn bar_x(&self, case: usize, allocator: usize) -> f64 {
        self.group_x(case) + self.inset + allocator as f64 * BAR
    }
}

/// Draws one panel: shading, grid, ticks, bars, whiskers, noise marks and
/// case labels.
#[allow(clippy::too_many_arguments)]
fn panel(
    s: &mut String,
    title: &str,
    top: f64,
    height: f64,
    width: f64,
    columns: &Columns,
    cases: &[(String, usize)],
    allocators: &[String],
    bars: &[Bar],
    baseline: &str,
    unit: &str,
) {
    let axis = Axis::fit(bars.iter().flat_map(|b| [b.median, b.low, b.high]));
    let right = width - RIGHT;
    // Every other case on a light background, to tell the groups apart.
    for i in (1..cases.len()).step_by(2) {
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{height:.1}" fill="#f3f3f3"/>"##,
            columns.group_x(i),
            columns.group
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"#,
        top - 8.0,
        xml(title)
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle" fill="#444">{} / {} (log)</text>"##,
        top + height / 2.0,
        xml(unit),
        xml(baseline)
    );
    for t in axis.ticks(height) {
        let y = axis.y(t, top, height);
        let (stroke, extra) = if t == 1.0 {
            ("#333", r#" stroke-width="1.5""#)
        } else {
            ("#ccc", r#" stroke-dasharray="3,3""#)
        };
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" x2="{right:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{stroke}"{extra}/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            ratio_label(t)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{height:.1}" fill="none" stroke="#999"/>"##,
        right - LEFT
    );
    let one = axis.y(1.0, top, height);
    for b in bars {
        let x = columns.bar_x(b.case, b.allocator);
        let y = axis.y(b.median, top, height);
        let (bar_top, bar_height) = if (y - one).abs() < 2.0 {
            (one - 1.0, 2.0) // the baseline itself: a dash on the 1× line
        } else {
            (y.min(one), (y - one).abs())
        };
        let (case, threads) = &cases[b.case];
        let name = &allocators[b.allocator];
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{bar_top:.1}" width="{:.1}" height="{bar_height:.1}" fill="{}"><title>{} {threads} threads, {}: {} {:.2}× (runs {:.2}×–{:.2}×)</title></rect>"#,
            x + 1.0,
            BAR - 2.0,
            PALETTE[b.allocator % PALETTE.len()],
            xml(case),
            xml(name),
            xml(unit),
            b.median,
            b.low,
            b.high
        );
        let cx = x + BAR / 2.0;
        let (y_low, y_high) = (axis.y(b.low, top, height), axis.y(b.high, top, height));
        let _ = writeln!(
            s,
            r##"<path d="M{cx:.1} {y_low:.1}V{y_high:.1}M{:.1} {y_low:.1}h6M{:.1} {y_high:.1}h6" stroke="#222" fill="none"/>"##,
            cx - 3.0,
            cx - 3.0
        );
        if b.noisy {
            let _ = writeln!(
                s,
                r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-weight="bold" fill="#c00">!</text>"##,
                y_high.min(y) - 3.0
            );
        }
    }
    for (i, (workload, threads)) in cases.iter().enumerate() {
        let x = columns.group_x(i) + columns.group / 2.0;
        let y = top + height + 15.0;
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{threads} thread{}</text>"##,
            xml(workload),
            y + 13.0,
            if *threads == 1 { "" } else { "s" }
        );
    }
}

/// The whole chart for `rows` of the run described by `meta`.
pub fn svg(rows: &[Row], meta: &Meta) -> String {
    let baseline = baseline_name(rows).unwrap_or_default();
    let (cases, allocators, time, rss) = bars(rows);
    // At least wide enough for the title and caption; groups widen to
    // fill that when there are few cases.
    let bars_width = allocators.len().max(1) as f64 * BAR;
    let natural = LEFT + RIGHT + cases.len().max(1) as f64 * (bars_width + GAP);
    let width = natural.max(MIN_WIDTH);
    let group = (width - LEFT - RIGHT) / cases.len().max(1) as f64;
    let columns = Columns {
        group,
        inset: (group - bars_width) / 2.0,
    };
    let rss_top = FIRST_TOP + TIME_HEIGHT + LABELS + PANEL_GAP;
    let height = rss_top + RSS_HEIGHT + LABELS + CAPTION;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="15" font-weight="bold">Each allocator relative to {}, per workload (below 1×: less time or memory than {})</text>"#,
        xml(&baseline),
        xml(&baseline)
    );
    let mut x = LEFT;
    for (i, name) in allocators.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="32" width="11" height="11" fill="{}"/><text x="{:.1}" y="42">{}</text>"#,
            PALETTE[i % PALETTE.len()],
            x + 15.0,
            xml(name)
        );
        x += 22.0 + 7.0 * name.len() as f64;
    }
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="58" fill="#444">bar: median; whisker: fastest to slowest run (÷ {}'s median); <tspan fill="#c00" font-weight="bold">!</tspan> a run beyond ±{:.0}% of the median</text>"##,
        xml(&baseline),
        NOISE_LIMIT * 100.0
    );
    panel(
        &mut s,
        "Time (lower is faster)",
        FIRST_TOP,
        TIME_HEIGHT,
        width,
        &columns,
        &cases,
        &allocators,
        &time,
        &baseline,
        "time",
    );
    panel(
        &mut s,
        "Peak RSS (lower is less memory)",
        rss_top,
        RSS_HEIGHT,
        width,
        &columns,
        &cases,
        &allocators,
        &rss,
        &baseline,
        "peak RSS",
    );
    let caption_y = rss_top + RSS_HEIGHT + LABELS + 20.0;
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="{caption_y:.1}" fill="#333">compare, {}, commit {}; {} runs per case{}; {}</text>"##,
        xml(&meta.date),
        xml(&meta.commit),
        meta.runs,
        if meta.quick { " (--quick)" } else { "" },
        xml(&meta.rustc)
    );
    let load = meta
        .load()
        .map_or(String::new(), |l| format!("; load average {l}"));
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" fill="#333">{}{}</text>"##,
        caption_y + 15.0,
        xml(&meta.machine()),
        xml(&load)
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::report::tests::{meta, row, sample};

    #[test]
    fn axis_fits_the_data_and_always_shows_one() {
        let a = Axis::fit([0.9, 1.05].into_iter());
        assert!(a.contains(0.8) && a.contains(1.25) && !a.contains(0.5));
        let a = Axis::fit([0.3, 6.0].into_iter());
        assert!(a.contains(0.3) && a.contains(6.0) && a.contains(1.0));
        assert!(!a.contains(0.1) && !a.contains(20.0));
        let ticks = a.ticks(250.0);
        assert!(ticks.contains(&1.0));
        assert!(ticks.windows(2).all(|w| w[0] < w[1]));
        assert!(ticks.iter().all(|&t| a.contains(t)));
        assert!(ticks.len() >= 4, "{ticks:?}");
    }

    #[test]
    fn ratio_labels_are_short() {
        assert_eq!(ratio_label(1.0), "1×");
        assert_eq!(ratio_label(0.25), "0.25×");
        assert_eq!(ratio_label(1.5), "1.5×");
        assert_eq!(ratio_label(20.0), "20×");
    }

    #[test]
    fn bars_cover_every_row_with_a_baseline() {
        let (cases, allocators, time, rss) = bars(&sample());
        assert_eq!(cases.len(), 2);
        assert_eq!(allocators, ["system", "mimalloc"]);
        // Two rows of xmalloc/2 and the system row of xmalloc/8.
        assert_eq!((time.len(), rss.len()), (3, 3));
        let mimalloc = time.iter().find(|b| b.allocator == 1).unwrap();
        assert_eq!(mimalloc.median, 0.5);
        assert!((mimalloc.low - 0.45).abs() < 1e-12 && (mimalloc.high - 0.55).abs() < 1e-12);
        assert_eq!(rss.iter().find(|b| b.allocator == 1).unwrap().median, 2.0);
    }

    #[test]
    fn svg_has_both_panels_whiskers_marks_and_caption() {
        let mut rows = sample();
        rows.push(row("local", 1, "system", 1.0, 100));
        rows.last_mut().unwrap().max_s = 1.5; // noisy
        let svg = svg(&rows, &meta());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("Time (lower is faster)") && svg.contains("Peak RSS"));
        // One bar and one whisker per row and panel.
        assert_eq!(svg.matches("<title>").count(), 2 * 4);
        assert_eq!(svg.matches("<path d=").count(), 2 * 4);
        assert!(svg.contains("mimalloc: time 0.50×"));
        assert!(svg.contains("mimalloc: peak RSS 2.00×"));
        assert_eq!(svg.matches(r##"fill="#c00">!</text>"##).count(), 1);
        assert!(svg.contains("commit abc123") && svg.contains("2026-12-01T21:40:05Z"));
        assert!(svg.contains("Test CPU, 2 CPUs"));
        assert!(svg.contains("load average start 0.5 0.4 0.3, end 1.5 1.0 0.5"));
    }
}
