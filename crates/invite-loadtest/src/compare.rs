//! `compare`: two services side by side under the same load, in alternating order (ABBA), and
//! the ratio of their medians. The other service may be any implementation of the same invite
//! API (Together's, say) that shares the token secret and holds the same seeded data.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::bail;

use crate::scenario::{self, Load, Report, Scenario, Target};

/// One side of a comparison.
pub(crate) struct Side {
    /// What the figures are printed under.
    pub(crate) label: String,
    /// Where it is served.
    pub(crate) target: Target,
}

/// What to run on both sides.
pub(crate) struct Plan {
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) concurrency: Vec<usize>,
    pub(crate) rounds: usize,
    pub(crate) load: Load,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.is_empty() {
        f64::NAN
    } else if values.len().is_multiple_of(2) {
        f64::midpoint(values[middle - 1], values[middle])
    } else {
        values[middle]
    }
}

/// Runs every scenario at every concurrency on both sides, `rounds` times, alternating which
/// side goes first (A B, then B A, ...) so that the machine's drift falls on both alike; prints
/// each run as it ends. Returns every report.
pub(crate) async fn compare(a: &Side, b: &Side, plan: &Plan) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for round in 0..plan.rounds {
        let order = if round % 2 == 0 { [a, b] } else { [b, a] };
        for side in order {
            for &scenario in &plan.scenarios {
                for &concurrency in &plan.concurrency {
                    let load = Load { concurrency, ..plan.load };
                    let runs = scenario::run(&side.target, scenario, &side.label, load).await?;
                    scenario::print_table(&runs);
                    reports.extend(runs);
                }
            }
        }
    }
    Ok(reports)
}

/// Answers outside 2xx (transport failures included).
fn non_2xx(report: &Report) -> u64 {
    report.statuses.iter().filter(|(status, _)| !(200..300).contains(*status)).map(|(_, n)| n).sum()
}

/// One side's runs of one scenario and concurrency, summed up.
struct Cell {
    throughput: f64,
    p50_ms: f64,
    cpu: Option<(f64, f64)>,
    non_2xx: Vec<u64>,
    valid: bool,
}

impl Cell {
    fn of(runs: &[&Report]) -> Self {
        let pick =
            |f: fn(&Report) -> f64| median(&mut runs.iter().map(|r| f(r)).collect::<Vec<_>>());
        let cpu: Vec<_> = runs.iter().filter_map(|r| r.cpu).collect();
        Self {
            throughput: pick(|r| r.throughput),
            p50_ms: pick(|r| r.p50_ms),
            cpu: (!cpu.is_empty()).then(|| {
                (
                    median(&mut cpu.iter().map(|c| c.service_ms).collect::<Vec<_>>()),
                    median(&mut cpu.iter().map(|c| c.postgres_ms).collect::<Vec<_>>()),
                )
            }),
            non_2xx: runs.iter().map(|r| non_2xx(r)).collect(),
            valid: runs.iter().all(|r| r.valid),
        }
    }

    fn cpu_text(&self) -> String {
        self.cpu.map_or_else(
            || "-".to_owned(),
            |(service, postgres)| format!("{service:.3} + {postgres:.3}"),
        )
    }

    fn non_2xx_text(&self) -> String {
        self.non_2xx.iter().map(u64::to_string).collect::<Vec<_>>().join(" / ")
    }
}

/// The table of medians, in Markdown: per scenario and concurrency, each side's median
/// throughput (answers of the scenario's success statuses a second) and p50, the ratio A / B,
/// each side's processor time per request (the service + its PostgreSQL backends) and every
/// run's count of answers outside 2xx. A cell with an invalid run shows no ratio.
pub(crate) fn summary(a: &Side, b: &Side, plan: &Plan, reports: &[Report]) -> String {
    let mut cells: BTreeMap<(String, usize), BTreeMap<&str, Vec<&Report>>> = BTreeMap::new();
    for report in reports {
        cells
            .entry((report.scenario.clone(), report.concurrency))
            .or_default()
            .entry(report.label.as_str())
            .or_default()
            .push(report);
    }
    let (al, bl) = (&a.label, &b.label);
    let mut out = format!(
        "Medians of {} rounds (ABBA), {:.0?} a run; ratio = {al} / {bl} (higher is better for \
         {al}); CPU in ms per request, the service + its PostgreSQL backends; non-2xx: every \
         run's count, in the order run.\n\n\
         | scenario | conc | {al} req/s | {bl} req/s | ratio | {al} p50 ms | {bl} p50 ms | \
         {al} CPU | {bl} CPU | {al} non-2xx | {bl} non-2xx |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
        plan.rounds, plan.load.duration
    );
    for ((scenario, concurrency), sides) in &cells {
        let (Some(a_runs), Some(b_runs)) = (sides.get(al.as_str()), sides.get(bl.as_str())) else {
            continue;
        };
        let (a_cell, b_cell) = (Cell::of(a_runs), Cell::of(b_runs));
        let ratio = if a_cell.valid && b_cell.valid {
            format!("{:.2}", a_cell.throughput / b_cell.throughput)
        } else {
            "INVALID".to_owned()
        };
        let _ = writeln!(
            out,
            "| {scenario} | {concurrency} | {:.0} | {:.0} | {ratio} | {:.2} | {:.2} | {} | {} | {} | {} |",
            a_cell.throughput,
            b_cell.throughput,
            a_cell.p50_ms,
            b_cell.p50_ms,
            a_cell.cpu_text(),
            b_cell.cpu_text(),
            a_cell.non_2xx_text(),
            b_cell.non_2xx_text(),
        );
    }
    out
}

/// Fails when a run had more than 1% answers other than its scenario's success statuses,
/// naming each such run with its statuses: its throughput does not measure the scenario.
pub(crate) fn check_valid(reports: &[Report]) -> anyhow::Result<()> {
    let invalid: Vec<String> = reports
        .iter()
        .filter(|r| !r.valid)
        .map(|r| format!("{} {} c={}: {}", r.label, r.scenario, r.concurrency, r.statuses_text()))
        .collect();
    if invalid.is_empty() {
        return Ok(());
    }
    bail!(
        "{} run(s) invalid (more than {}% of answers other than the scenario's success):\n{}",
        invalid.len(),
        scenario::MOST_OTHER_ANSWERS * 100.0,
        invalid.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert!((median(&mut [3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(&mut [4.0, 1.0, 3.0, 2.0]) - 2.5).abs() < f64::EPSILON);
    }
}
