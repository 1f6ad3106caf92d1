//! SVG plots: the latency distribution per connection count, and throughput against the
//! number of stored reservations.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::results::{GrowthPoint, Step};
use crate::stats;

const SIZE: (u32, u32) = (900, 560);

/// The label of a point on the "nines" axis: 0 → `p0`, 2 → `p99`, 3 → `p99.9`.
pub fn percentile_label(nines: f64) -> String {
    let percentile = (stats::percentile_of_nines(nines) * 1000.0).round() / 1000.0;
    format!("p{percentile}")
}

fn failed(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a plot: {error}")
}

/// `latency-<scenario>.svg`: latency (ms, log scale) against the percentile (spread by
/// nines), one line per connection count.
pub fn latency(path: &Path, title: &str, steps: &[Step]) -> Result<()> {
    let series: Vec<(String, Vec<(f64, f64)>)> = steps
        .iter()
        .filter(|s| !s.curve.is_empty())
        .map(|s| {
            let points = s
                .curve
                .iter()
                .map(|&(p, ms)| (stats::nines(p), ms.max(0.001)))
                .collect();
            (format!("{} connection(s)", s.connections), points)
        })
        .collect();
    let top = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .fold(2.0_f64, f64::max)
        .ceil();
    let (low, high) = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold((f64::MAX, 0.0_f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (low, high) = if high > 0.0 {
        (low * 0.8, high * 1.25)
    } else {
        (0.1, 10.0)
    };

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..top, (low..high).log_scale())
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_labels(top as usize + 1)
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| crate::report::ms(*y))
        .draw()
        .map_err(failed)?;
    for (i, (name, points)) in series.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(failed)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(failed)?;
    root.present().map_err(failed)
}

/// `growth.svg` against the stored reservations: requests per second (with `--against-fresh`,
/// the fresh systems' median beside it), p99 latency and, with `--against-fresh`, the ratio of
/// grown to fresh with the goal's 0.9 drawn dashed — the figure that stays readable when the
/// machine's speed moves during the run.
pub fn growth(path: &Path, title: &str, points: &[GrowthPoint]) -> Result<()> {
    let stored_max = points.iter().map(|p| p.stored).max().unwrap_or(0) as f64;
    let x_max = (stored_max * 1.05).max(1.0);
    let series = |value: &dyn Fn(&GrowthPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| value(p).map(|v| (p.stored as f64, v)))
            .collect()
    };
    let rps = series(&|p| Some(p.step.per_second));
    let fresh = series(&|p| stats::median(&p.fresh_per_second_runs));
    let p99 = series(&|p| Some(p.step.latency.p99_ms));
    let ratio = series(&|p| p.ratio_to_fresh);

    let mut panels: Vec<Panel> = vec![
        Panel {
            label: "requests per second",
            lines: vec![("grown store", rps, BLUE)],
            goal: None,
        },
        Panel {
            label: "p99 latency (ms)",
            lines: vec![("grown store", p99, RED)],
            goal: None,
        },
    ];
    if !fresh.is_empty() {
        panels[0].lines.push(("fresh store (median)", fresh, BLACK));
    }
    if !ratio.is_empty() {
        panels.push(Panel {
            label: "grown / fresh (median of pairs)",
            lines: vec![("ratio", ratio, RGBColor(0, 130, 0))],
            goal: Some(0.9),
        });
    }

    let panel_height = (SIZE.1 + 200) / 2;
    let height = panel_height * u32::try_from(panels.len()).unwrap_or(2) + 40;
    let root = SVGBackend::new(path, (SIZE.0, height)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(failed)?;
    let areas = root.split_evenly((panels.len(), 1));
    for (area, panel) in areas.iter().zip(&panels) {
        let top = panel
            .lines
            .iter()
            .flat_map(|(_, values, _)| values.iter().map(|v| v.1))
            .chain(panel.goal)
            .fold(0.0_f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..top.max(1.0))
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc("stored reservations")
            .y_desc(panel.label)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .draw()
            .map_err(failed)?;
        for (name, values, color) in &panel.lines {
            let color = *color;
            chart
                .draw_series(
                    LineSeries::new(values.iter().copied(), color.stroke_width(2)).point_size(4),
                )
                .map_err(failed)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        if let Some(goal) = panel.goal {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, goal), (x_max, goal)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(failed)?
                .label(format!("goal {goal}"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(failed)?;
    }
    root.present().map_err(failed)
}

/// One line of a panel: its legend, its points and its colour.
type Line = (&'static str, Vec<(f64, f64)>, RGBColor);

/// One panel of the growth plot: its lines and, for the ratio, the goal.
struct Panel {
    label: &'static str,
    lines: Vec<Line>,
    goal: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_labelled_by_their_nines() {
        assert_eq!(percentile_label(0.0), "p0");
        assert_eq!(percentile_label(1.0), "p90");
        assert_eq!(percentile_label(2.0), "p99");
        assert_eq!(percentile_label(3.0), "p99.9");
    }
}
