//! The reports of a `compare` run: the markdown table (stdout and
//! `report.md`) and `report.json`. The chart is [`super::chart`].

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::allocators;
use super::meta::Meta;

/// KiB per MiB, for the table's RSS column.
const KIB_PER_MIB: f64 = 1024.0;

/// A case is flagged as noisy when a run lies further than this fraction
/// of the median from the median (±20%).
pub const NOISE_LIMIT: f64 = 0.20;

/// One run of one allocator on one case.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The workload's own time, in seconds.
    pub elapsed_s: f64,
    /// The child's peak resident set size, in KiB.
    pub peak_rss_kib: u64,
}

/// One workload × thread count × allocator result.
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
    /// Smallest peak RSS of a run, in KiB.
    pub rss_min_kib: u64,
    /// Largest peak RSS of a run, in KiB.
    pub rss_max_kib: u64,
    /// Every run, in the order they ran.
    pub samples: Vec<Sample>,
}

impl Row {
    /// `true` if both rows are of the same workload and thread count.
    pub fn same_case(&self, other: &Row) -> bool {
        self.workload == other.workload && self.threads == other.threads
    }

    /// The largest distance of a run's time from the median, as a fraction
    /// of the median.
    pub fn spread(&self) -> f64 {
        if self.median_s > 0.0 {
            (self.median_s - self.min_s).max(self.max_s - self.median_s) / self.median_s
        } else {
            0.0
        }
    }

    /// `true` if a run lies outside ±[`NOISE_LIMIT`] of the median.
    pub fn noisy(&self) -> bool {
        self.spread() > NOISE_LIMIT
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

/// The baseline's row of `row`'s case.
pub fn baseline_row<'a>(rows: &'a [Row], row: &Row, baseline: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|b| b.allocator == baseline && b.same_case(row))
}

/// `row`'s time and RSS ratios to the baseline's row of the same case.
pub fn ratios(rows: &[Row], row: &Row, baseline: &str) -> Option<(f64, f64)> {
    let base = baseline_row(rows, row, baseline)?;
    Some((
        row.median_s / base.median_s,
        row.peak_rss_kib as f64 / base.peak_rss_kib as f64,
    ))
}

/// The markdown table: one line per row, with ratios to the baseline
/// (above 1: slower or bigger than the baseline) and noisy rows flagged.
pub fn markdown(rows: &[Row]) -> String {
    let baseline = baseline_name(rows).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | threads | allocator | median (s) | min–max (s) | spread | peak RSS (MiB) | time / {baseline} | RSS / {baseline} |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let (time, rss) = match ratios(rows, row, &baseline) {
            Some((t, r)) => (format!("{t:.2}"), format!("{r:.2}")),
            None => ("n/a".into(), "n/a".into()),
        };
        let spread = format!("±{:.0}%", row.spread() * 100.0);
        let spread = if row.noisy() {
            format!("**{spread} noisy**")
        } else {
            spread
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.3} | {:.3}–{:.3} | {spread} | {:.1} | {} | {} |",
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

/// The sentence under the table: how to read it.
pub fn legend(rows: &[Row], meta: &Meta) -> String {
    let baseline = baseline_name(rows).unwrap_or_default();
    format!(
        "{} runs per workload x allocator{}; times are the workload alone (process start-up \
         excluded), peak RSS is the median of the runs' ru_maxrss; ratios above 1 mean slower \
         or bigger than {baseline}. Spread: the largest distance of a run from the median; \
         **noisy** marks a spread beyond ±{:.0}%, where the median is less certain.",
        meta.runs,
        if meta.quick {
            " (--quick: a tenth of the work)"
        } else {
            ""
        },
        NOISE_LIMIT * 100.0
    )
}

/// `report.md`: the metadata, the chart, the table, how to read it and
/// the problems met.
pub fn report_markdown(rows: &[Row], meta: &Meta, chart_file: &str, problems: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# homing-bench compare, {}\n", meta.date);
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| commit | `{}` |", meta.commit);
    let _ = writeln!(out, "| machine | {} |", meta.machine());
    if let Some(load) = meta.load() {
        let _ = writeln!(out, "| load average (1, 5, 15 min) | {load} |");
    }
    let _ = writeln!(out, "| toolchain | {} |", meta.rustc);
    let _ = writeln!(out, "| system allocator | {} |", meta.libc);
    let features = if meta.homing_features.is_empty() {
        "none".to_string()
    } else {
        meta.homing_features.join(", ")
    };
    let _ = writeln!(out, "| homing | {} (features: {features}) |", meta.homing);
    let peers: Vec<String> = meta.peers.iter().map(|(n, v)| format!("{n} {v}")).collect();
    let _ = writeln!(out, "| peers | {} |", peers.join(", "));
    let _ = writeln!(
        out,
        "| runs | {} per workload x allocator{} |",
        meta.runs,
        if meta.quick { ", --quick" } else { "" }
    );
    let _ = writeln!(
        out,
        "\n![time and peak RSS relative to the baseline]({chart_file})\n"
    );
    out.push_str(&markdown(rows));
    let _ = writeln!(out, "\n{}", legend(rows, meta));
    if !problems.is_empty() {
        let _ = writeln!(out, "\n## Problems\n");
        for p in problems {
            let _ = writeln!(out, "- {p}");
        }
    }
    out
}

/// One row of `report.json`: the row with its ratios and noise flag.
#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(flatten)]
    row: &'a Row,
    time_ratio: Option<f64>,
    rss_ratio: Option<f64>,
    spread: f64,
    noisy: bool,
}

/// `report.json`.
#[derive(Serialize)]
struct JsonReport<'a> {
    meta: &'a Meta,
    baseline: String,
    noise_limit: f64,
    rows: Vec<JsonRow<'a>>,
    problems: &'a [String],
}

/// `report.json`: `{meta, baseline, noise_limit, rows, problems}`, each row
/// with its per-run samples, ratios and noise flag.
pub fn json(rows: &[Row], meta: &Meta, problems: &[String]) -> String {
    serde_json::to_string_pretty(&json_report(rows, meta, problems)).expect("rows are plain data")
}

/// [`json`] with the fields of `extra` (a struct) after the others: the C
/// mode's report.
pub fn json_with<T: Serialize>(
    rows: &[Row],
    meta: &Meta,
    problems: &[String],
    extra: &T,
) -> String {
    #[derive(Serialize)]
    struct With<'a, T> {
        #[serde(flatten)]
        report: JsonReport<'a>,
        #[serde(flatten)]
        extra: &'a T,
    }
    let with = With {
        report: json_report(rows, meta, problems),
        extra,
    };
    serde_json::to_string_pretty(&with).expect("rows are plain data")
}

fn json_report<'a>(rows: &'a [Row], meta: &'a Meta, problems: &'a [String]) -> JsonReport<'a> {
    let baseline = baseline_name(rows).unwrap_or_default();
    JsonReport {
        meta,
        baseline: baseline.clone(),
        noise_limit: NOISE_LIMIT,
        rows: rows
            .iter()
            .map(|row| {
                let r = ratios(rows, row, &baseline);
                JsonRow {
                    row,
                    time_ratio: r.map(|r| r.0),
                    rss_ratio: r.map(|r| r.1),
                    spread: row.spread(),
                    noisy: row.noisy(),
                }
            })
            .collect(),
        problems,
    }
}

/// What `report.json` holds that the reports are made from (the ratios and
/// flags in it are recomputed).
#[derive(Debug, Deserialize)]
pub struct Saved {
    /// The run's metadata.
    pub meta: Meta,
    /// The rows, with their samples.
    pub rows: Vec<Row>,
    /// The problems the run met.
    #[serde(default)]
    pub problems: Vec<String>,
}

impl Saved {
    /// Reads the text of a `report.json`.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn row(
        workload: &str,
        threads: usize,
        allocator: &str,
        median_s: f64,
        rss: u64,
    ) -> Row {
        Row {
            workload: workload.into(),
            threads,
            allocator: allocator.into(),
            runs: 3,
            median_s,
            min_s: median_s * 0.9,
            max_s: median_s * 1.1,
            peak_rss_kib: rss,
            rss_min_kib: rss - rss / 8,
            rss_max_kib: rss + rss / 8,
            samples: vec![
                Sample {
                    elapsed_s: median_s * 0.9,
                    peak_rss_kib: rss,
                },
                Sample {
                    elapsed_s: median_s,
                    peak_rss_kib: rss,
                },
                Sample {
                    elapsed_s: median_s * 1.1,
                    peak_rss_kib: rss,
                },
            ],
        }
    }

    pub(crate) fn sample() -> Vec<Row> {
        vec![
            row("xmalloc", 2, "system", 2.0, 2048),
            row("xmalloc", 2, "mimalloc", 1.0, 4096),
            row("xmalloc", 8, "system", 3.0, 1024),
        ]
    }

    pub(crate) fn meta() -> Meta {
        Meta {
            date: "2026-12-01T21:40:05Z".into(),
            commit: "abc123".into(),
            rustc: "rustc 1.95.0".into(),
            cpu: "Test CPU".into(),
            cpus: 2,
            memory_mib: 24 * 1024,
            kernel: "6.1".into(),
            libc: "glibc 2.36".into(),
            homing: "homing 0.1.0".into(),
            homing_features: vec!["stats".into()],
            peers: vec![("mimalloc".into(), "0.1.52".into())],
            quick: false,
            runs: 3,
            load_start: "0.5 0.4 0.3".into(),
            load_end: "1.5 1.0 0.5".into(),
        }
    }

    #[test]
    fn json_has_metadata_samples_and_ratios() {
        let problems = vec!["one problem".to_string()];
        let value: serde_json::Value =
            serde_json::from_str(&json(&sample(), &meta(), &problems)).unwrap();
        assert_eq!(value["meta"]["commit"], "abc123");
        assert_eq!(value["meta"]["cpus"], 2);
        assert_eq!(value["meta"]["homing_features"][0], "stats");
        assert_eq!(value["meta"]["peers"][0][1], "0.1.52");
        assert_eq!(value["baseline"], "system");
        assert_eq!(value["problems"][0], "one problem");
        let rows = value["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1]["allocator"], "mimalloc");
        assert_eq!(rows[1]["time_ratio"], 0.5);
        assert_eq!(rows[1]["rss_ratio"], 2.0);
        assert_eq!(rows[1]["noisy"], false);
        assert_eq!(rows[1]["samples"].as_array().unwrap().len(), 3);
        assert_eq!(rows[1]["samples"][2]["peak_rss_kib"], 4096);
        // Flattened: the row's own fields sit beside the ratios.
        let back: Row = serde_json::from_value(rows[0].clone()).unwrap();
        assert_eq!(back, sample()[0]);
        // And the whole report reads back for --redraw.
        let saved = Saved::parse(&json(&sample(), &meta(), &problems)).unwrap();
        assert_eq!(
            (saved.rows, saved.meta, saved.problems),
            (sample(), meta(), problems)
        );
    }

    #[test]
    fn table_shows_ratios_spread_and_noise() {
        let mut rows = sample();
        rows[2].max_s = 3.0 * 1.25;
        let table = markdown(&rows);
        assert!(table.contains("time / system"), "{table}");
        // mimalloc: half the time, twice the RSS of the system allocator.
        assert!(
            table.contains(
                "| xmalloc | 2 | mimalloc | 1.000 | 0.900–1.100 | ±10% | 4.0 | 0.50 | 2.00 |"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "| xmalloc | 8 | system | 3.000 | 2.700–3.750 | **±25% noisy** | 1.0 | 1.00 | 1.00 |"
            ),
            "{table}"
        );
    }

    #[test]
    fn spread_is_the_larger_side() {
        let mut r = row("local", 1, "homing", 1.0, 10);
        assert!((r.spread() - 0.1).abs() < 1e-12);
        r.min_s = 0.79;
        assert!((r.spread() - 0.21).abs() < 1e-12);
        assert!(r.noisy());
        r.min_s = 0.81;
        assert!(!r.noisy());
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
            table.contains(
                "| xmalloc | 8 | system | 3.000 | 2.700–3.300 | ±10% | 1.0 | n/a | n/a |"
            ),
            "{table}"
        );
    }

    #[test]
    fn report_markdown_has_metadata_chart_and_problems() {
        let md = report_markdown(&sample(), &meta(), "chart.svg", &["bad run".into()]);
        assert!(md.starts_with("# homing-bench compare, 2026-12-01T21:40:05Z"));
        assert!(md.contains("| commit | `abc123` |"));
        assert!(md.contains("Test CPU, 2 CPUs, 24 GiB, Linux 6.1"));
        assert!(md.contains("homing 0.1.0 (features: stats)"));
        assert!(md.contains("| start 0.5 0.4 0.3, end 1.5 1.0 0.5 |"));
        assert!(md.contains("](chart.svg)"));
        assert!(md.contains("## Problems\n\n- bad run"));
    }
}
