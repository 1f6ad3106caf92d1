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

/// `growth.svg`: requests per second (top) and p99 latency (bottom) against the stored
/// reservations.
pub fn growth(path: &Path, title: &str, points: &[GrowthPoint]) -> Result<()> {
    let stored_max = points.iter().map(|p| p.stored).max().unwrap_or(0) as f64;
    let x_max = (stored_max * 1.05).max(1.0);
    let rps: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.stored as f64, p.step.per_second))
        .collect();
    let p99: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.stored as f64, p.step.latency.p99_ms))
        .collect();

    let root = SVGBackend::new(path, (SIZE.0, SIZE.1 + 200)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(failed)?;
    let (upper, lower) = root.split_vertically((SIZE.1 + 200) / 2 - 20);
    for (area, values, label, color) in [
        (&upper, &rps, "requests per second", BLUE),
        (&lower, &p99, "p99 latency (ms)", RED),
    ] {
        let y_max = values.iter().map(|v| v.1).fold(0.0_f64, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max.max(1.0))
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc("stored reservations")
            .y_desc(label)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .draw()
            .map_err(failed)?;
        chart
            .draw_series(
                LineSeries::new(values.iter().copied(), color.stroke_width(2)).point_size(4),
            )
            .map_err(failed)?;
    }
    root.present().map_err(failed)
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
