//! The reports of a `compare` run: a markdown table, the JSON list of rows
//! and an SVG bar chart of the time ratios.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::allocators;

/// Bytes per KiB and KiB per MiB, for the table's RSS column.
const KIB_PER_MIB: f64 = 1024.0;

/// One workload × thread count × allocator result: the JSON element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Workload name.
    pub workload: String,
    /// Threads the workload was asked to use.
    pub threads: usize,
    /// Allocator name.
    pub allocator: String,
    /// Successful runs summarised.
    pub runs: usize,
    /// Median of the runs' workload times, in seconds.
    pub median_s: f64,
    /// Fastest run, in seconds.
    pub min_s: f64,
    /// Slowest run, in seconds.
    pub max_s: f64,
    /// Median of the runs' peak resident set sizes, in KiB.
    pub peak_rss_kib: u64,
}

impl Row {
    fn same_case(&self, other: &Row) -> bool {
        self.workload == other.workload && self.threads == other.threads
    }
}

/// The ratios' baseline for `rows`: homing if it has results, else the
/// system allocator, else the first allocator.
pub fn baseline_name(rows: &[Row]) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.allocator.as_str()) {
            names.push(&r.allocator);
        }
    }
    allocators::baseline(&names).map(str::to_string)
}

/// `row`'s time and RSS ratios to the baseline's row of the same case.
fn ratios(rows: &[Row], row: &Row, baseline: &str) -> Option<(f64, f64)> {
    let base = rows
        .iter()
        .find(|b| b.allocator == baseline && b.same_case(row))?;
    Some((
        row.median_s / base.median_s,
        row.peak_rss_kib as f64 / base.peak_rss_kib as f64,
    ))
}

/// The markdown table: one line per row, with ratios to the baseline
/// (above 1: slower or bigger than the baseline).
pub fn markdown(rows: &[Row]) -> String {
    let baseline = baseline_name(rows).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | threads | allocator | median (s) | min–max (s) | peak RSS (MiB) | time / {baseline} | RSS / {baseline} |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let (time, rss) = match ratios(rows, row, &baseline) {
            Some((t, r)) => (format!("{t:.2}"), format!("{r:.2}")),
            None => ("n/a".into(), "n/a".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.3} | {:.3}–{:.3} | {:.1} | {} | {} |",
            row.workload,
            row.threads,
            row.allocator,
            row.median_s,
            row.min_s,
            row.max_s,
            row.peak_rss_kib as f64 / KIB_PER_MIB,
            time,
            rss
        );
    }
    out
}

/// The rows as a pretty-printed JSON list.
pub fn json(rows: &[Row]) -> String {
    serde_json::to_string_pretty(rows).expect("rows are plain data")
}

/// Geometry of the SVG chart, in pixels.
mod chart {
    /// Left margin (axis labels).
    pub const LEFT: f64 = 56.0;
    /// Right margin.
    pub const RIGHT: f64 = 16.0;
    /// Top margin (title and legend).
    pub const TOP: f64 = 64.0;
    /// Bottom margin (case labels).
    pub const BOTTOM: f64 = 56.0;
    /// Height of the plot area.
    pub const PLOT_HEIGHT: f64 = 320.0;
    /// Width of one bar.
    pub const BAR: f64 = 14.0;
    /// Space between two cases.
    pub const GAP: f64 = 28.0;
    /// Smallest half-range of the log2 axis: the axis shows at least ½x–2x.
    pub const MIN_LOG2: f64 = 1.0;
    /// Largest half-range of the log2 axis: bars beyond 1/16x or 16x are cut.
    pub const MAX_LOG2: f64 = 4.0;
    /// Width of a legend entry.
    pub const LEGEND_STEP: f64 = 110.0;
    /// Fill colours of the allocators' bars, in order of first appearance.
    pub const PALETTE: [&str; 6] = [
        "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2",
    ];
}

/// Escapes text for SVG content and attribute values.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG bar chart of each allocator's time ratio to the baseline, per
/// case, on a log2 axis centred on 1x (bars up: slower than the baseline,
/// down: faster).
pub fn svg(rows: &[Row]) -> String {
    use chart::*;

    let baseline = baseline_name(rows).unwrap_or_default();
    let mut cases: Vec<(&str, usize)> = Vec::new();
    let mut peers: Vec<&str> = Vec::new();
    for r in rows {
        if !cases.contains(&(r.workload.as_str(), r.threads)) {
            cases.push((&r.workload, r.threads));
        }
        if r.allocator != baseline && !peers.contains(&r.allocator.as_str()) {
            peers.push(&r.allocator);
        }
    }
    let bars: Vec<(usize, usize, f64)> = rows
        .iter()
        .filter(|r| r.allocator != baseline)
        .filter_map(|r| {
            let (time, _) = ratios(rows, r, &baseline)?;
            let case = cases
                .iter()
                .position(|&c| c == (r.workload.as_str(), r.threads))?;
            let peer = peers.iter().position(|&p| p == r.allocator)?;
            Some((case, peer, time))
        })
        .collect();
    let half_range = bars
        .iter()
        .map(|&(_, _, t)| t.log2().abs().ceil())
        .fold(MIN_LOG2, f64::max)
        .min(MAX_LOG2);
    let group_width = peers.len().max(1) as f64 * BAR + GAP;
    let width = LEFT + RIGHT + cases.len().max(1) as f64 * group_width;
    let height = TOP + PLOT_HEIGHT + BOTTOM;
    let mid = TOP + PLOT_HEIGHT / 2.0;
    let y_of = |ratio: f64| {
        let l = ratio.log2().clamp(-half_range, half_range);
        mid - l / half_range * (PLOT_HEIGHT / 2.0)
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="13" font-weight="bold">Median time relative to {} (log scale; above 1x: slower than {})</text>"#,
        xml(&baseline),
        xml(&baseline)
    );
    for (i, peer) in peers.iter().enumerate() {
        let x = LEFT + i as f64 * LEGEND_STEP;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="30" width="10" height="10" fill="{}"/><text x="{}" y="39">{}</text>"#,
            PALETTE[i % PALETTE.len()],
            x + 14.0,
            xml(peer)
        );
    }
    // Grid lines at powers of two.
    let steps = half_range as i32;
    for e in -steps..=steps {
        let ratio = 2f64.powi(e);
        let y = y_of(ratio);
        let (stroke, dash) = if e == 0 {
            ("#333", "")
        } else {
            ("#ccc", r#" stroke-dasharray="3,3""#)
        };
        let label = if e >= 0 {
            format!("{ratio}x")
        } else {
            format!("1/{}x", 2u32.pow(e.unsigned_abs()))
        };
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{stroke}"{dash}/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
            width - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for &(case, peer, time) in &bars {
        let x = LEFT + case as f64 * group_width + GAP / 2.0 + peer as f64 * BAR;
        let (y0, y1) = (mid, y_of(time));
        let (top, h) = (y0.min(y1), (y1 - y0).abs().max(1.0));
        let (workload, threads) = cases[case];
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{} {} threads, {}: {time:.2}x</title></rect>"#,
            BAR - 1.0,
            PALETTE[peer % PALETTE.len()],
            xml(workload),
            threads,
            xml(peers[peer]),
        );
    }
    for (i, (workload, threads)) in cases.iter().enumerate() {
        let x = LEFT + i as f64 * group_width + group_width / 2.0;
        let y = TOP + PLOT_HEIGHT + 18.0;
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text><text x="{x:.1}" y="{:.1}" text-anchor="middle">{threads} thr</text>"#,
            xml(workload),
            y + 14.0
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: &str, threads: usize, allocator: &str, median_s: f64, rss: u64) -> Row {
        Row {
            workload: workload.into(),
            threads,
            allocator: allocator.into(),
            runs: 5,
            median_s,
            min_s: median_s * 0.9,
            max_s: median_s * 1.1,
            peak_rss_kib: rss,
        }
    }

    fn sample() -> Vec<Row> {
        vec![
            row("xmalloc", 2, "system", 2.0, 2048),
            row("xmalloc", 2, "mimalloc", 1.0, 4096),
            row("xmalloc", 8, "system", 3.0, 1024),
        ]
    }

    #[test]
    fn json_has_the_documented_shape() {
        let value: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
        let list = value.as_array().expect("a list of rows");
        assert_eq!(list.len(), 3);
        let first = list[0].as_object().unwrap();
        let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "allocator",
                "max_s",
                "median_s",
                "min_s",
                "peak_rss_kib",
                "runs",
                "threads",
                "workload"
            ]
        );
        assert_eq!(first["workload"], "xmalloc");
        assert_eq!(first["threads"], 2);
        assert_eq!(first["peak_rss_kib"], 2048);
        let back: Vec<Row> = serde_json::from_value(value).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn table_shows_ratios_to_the_baseline() {
        let table = markdown(&sample());
        assert!(table.contains("time / system"), "{table}");
        // mimalloc: half the time, twice the RSS of the system allocator.
        assert!(
            table.contains("| xmalloc | 2 | mimalloc | 1.000 | 0.900–1.100 | 4.0 | 0.50 | 2.00 |"),
            "{table}"
        );
        assert!(
            table.contains("| xmalloc | 8 | system | 3.000 | 2.700–3.300 | 1.0 | 1.00 | 1.00 |"),
            "{table}"
        );
    }

    #[test]
    fn homing_is_the_baseline_when_present() {
        let mut rows = sample();
        rows.push(row("xmalloc", 2, "homing", 0.5, 1024));
        assert_eq!(baseline_name(&rows).as_deref(), Some("homing"));
        let table = markdown(&rows);
        assert!(table.contains("time / homing"));
        // No homing result for 8 threads: no ratio there.
        assert!(
            table.contains("| xmalloc | 8 | system | 3.000 | 2.700–3.300 | 1.0 | n/a | n/a |"),
            "{table}"
        );
    }

    #[test]
    fn svg_is_one_document_with_a_bar_per_peer_result() {
        let svg = svg(&sample());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<title>").count(), 1);
        assert!(svg.contains("mimalloc: 0.50x"));
    }
}
