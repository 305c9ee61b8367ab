//! `compare`: two services side by side under the same load, in alternating order (ABBA), and
//! the ratio of their medians. The other service may be any implementation of the same invite
//! API (Together's, say) that shares the token secret and holds the same seeded data.

use std::collections::BTreeMap;

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

/// One side's throughputs and p50s of one scenario and concurrency, a run each.
type Samples = (Vec<f64>, Vec<f64>);

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        f64::midpoint(values[middle - 1], values[middle])
    } else {
        values[middle]
    }
}

/// Runs every scenario at every concurrency on both sides, `rounds` times, alternating which
/// side goes first (A B, then B A, ...) so that the machine's drift falls on both alike; prints
/// each run as it ends, then the medians and the ratios A / B. Returns every report.
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
    let mut table: BTreeMap<(String, usize), BTreeMap<String, Samples>> = BTreeMap::new();
    for report in &reports {
        let cell = table
            .entry((report.scenario.clone(), report.concurrency))
            .or_default()
            .entry(report.label.clone())
            .or_default();
        cell.0.push(report.throughput);
        cell.1.push(report.p50_ms);
    }
    println!(
        "\nmedians of {} rounds; ratio = {} / {} (throughput: higher is better for {})",
        plan.rounds, a.label, b.label, a.label
    );
    println!(
        "{:<24} {:>5} {:>12} {:>12} {:>7} {:>10} {:>10}",
        "scenario",
        "conc",
        format!("{} req/s", a.label),
        format!("{} req/s", b.label),
        "ratio",
        format!("{} p50", a.label),
        format!("{} p50", b.label)
    );
    for ((scenario, concurrency), sides) in &mut table {
        let mut figures =
            |label: &str| sides.get_mut(label).map(|(rps, p50)| (median(rps), median(p50)));
        let (Some((a_rps, a_p50)), Some((b_rps, b_p50))) = (figures(&a.label), figures(&b.label))
        else {
            continue;
        };
        println!(
            "{scenario:<24} {concurrency:>5} {a_rps:>12.1} {b_rps:>12.1} {:>7.2} {a_p50:>8.2}ms {b_p50:>8.2}ms",
            a_rps / b_rps
        );
    }
    Ok(reports)
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
