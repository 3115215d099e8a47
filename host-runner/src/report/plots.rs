//! SVG plots of the report's figures (plotters, SVG backend): kernbench time
//! against overcommit, pgbench TPS against clients, latency percentiles.
//!
//! plotters is built without a font backend: the SVG backend writes each
//! label as a `<text>` element that the viewer renders with its own fonts,
//! so no system font is needed; layout uses plotters' built-in estimate of
//! text widths. Censored points are drawn as triangles at their bound (up:
//! time at least this, down: TPS at most this) with the bound written
//! beside them, never as a mean with error bars.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::AsRangedCoord;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::analysis::{Arm, LatencyRow, LockComparison, Report};
use super::format::{bounded, g6};
use super::tables::short_group;
use super::ReportError;
use crate::results::{LockMode, Metric, Workload};

/// The plots' file names.
pub const KERNBENCH_SVG: &str = "kernbench.svg";
pub const PGBENCH_SVG: &str = "pgbench.svg";
pub const LATENCY_KERNBENCH_SVG: &str = "latency-kernbench.svg";
pub const LATENCY_PGBENCH_SVG: &str = "latency-pgbench.svg";

const SIZE: (u32, u32) = (800, 500);
const FONT: &str = "sans-serif";
/// base left of the tick, pv right of it (the later designs further out, tas
/// on it), so their error bars do not overlap.
const OFFSET: f64 = 0.06;

fn arm_color(lock: LockMode) -> RGBColor {
    match lock {
        LockMode::Base => RGBColor(200, 40, 40),
        LockMode::Pv => RGBColor(30, 90, 200),
        LockMode::Qspin => RGBColor(40, 150, 60),
        LockMode::Pvqspin => RGBColor(140, 60, 170),
        LockMode::Tas => RGBColor(220, 140, 20),
    }
}

fn offset(lock: LockMode) -> f64 {
    match lock {
        LockMode::Base => -OFFSET,
        LockMode::Pv => OFFSET,
        LockMode::Qspin => -2.0 * OFFSET,
        LockMode::Pvqspin => 2.0 * OFFSET,
        LockMode::Tas => 0.0,
    }
}

/// Draws one plot as SVG text.
type Draw<'a> = Box<dyn Fn() -> Result<String, String> + 'a>;

/// Writes every plot the report has data for into `dir` (created if
/// missing), each atomically; returns their paths.
pub fn write_all(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut jobs: Vec<(&str, Draw<'_>)> = Vec::new();
    if !report.kernbench.is_empty() {
        jobs.push((KERNBENCH_SVG, Box::new(|| kernbench(report))));
    }
    if !report.pgbench.is_empty() {
        jobs.push((PGBENCH_SVG, Box::new(|| pgbench(report))));
    }
    for (workload, name) in [
        (Workload::Kernbench, LATENCY_KERNBENCH_SVG),
        (Workload::Pgbench, LATENCY_PGBENCH_SVG),
    ] {
        let rows: Vec<&LatencyRow> = report
            .latency
            .iter()
            .filter(|r| r.group.workload == workload)
            .collect();
        if !rows.is_empty() {
            jobs.push((name, Box::new(move || latency(&rows, workload))));
        }
    }
    let mut written = Vec::new();
    for (name, draw) in jobs {
        let path = dir.join(name);
        let svg = draw().map_err(|reason| ReportError::Plot {
            path: path.clone(),
            reason,
        })?;
        write_file(&path, svg.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `bytes` to `path` atomically (the shared helper), failing with the
/// report's error.
pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    crate::collect::write_atomic(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A chart over two axes on an SVG backend.
type Chart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;
/// A chart with linear f64 axes.
type LinearChart<'a, 'b> = Chart<'a, 'b, RangedCoordf64, RangedCoordf64>;
/// A latency chart: linear x (the percentiles), log y.
type LogChart<'a, 'b> = Chart<'a, 'b, RangedCoordf64, LogCoord<f64>>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A point of an arm: its mean and sd, or the bound of a censored arm.
struct Point {
    x: f64,
    y: f64,
    sd: Option<f64>,
    /// The bound's text when the arm has censored runs.
    bound: Option<String>,
}

fn point(arm: &Arm, metric: Metric, x: f64) -> Option<Point> {
    let s = arm.stats?;
    Some(if s.censored > 0 {
        Point {
            x,
            y: match metric {
                Metric::ElapsedS => s.mean.lo,
                Metric::Tps => s.mean.hi,
            },
            sd: None,
            bound: Some(bounded(s.mean, metric, 4)),
        }
    } else {
        Point {
            x,
            y: s.mean.lo,
            sd: s.stddev,
            bound: None,
        }
    })
}

/// Draws one lock mode's series: a line through its points, error bars of
/// mean ± sd, dots without sd, triangles and text at bounds.
fn draw_arm(
    chart: &mut LinearChart<'_, '_>,
    points: &[Point],
    label: &str,
    color: RGBColor,
    metric: Metric,
) -> Result<(), String> {
    let line = points.iter().map(|p| (p.x, p.y));
    chart
        .draw_series(LineSeries::new(line, color.stroke_width(2)))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    let exact = || points.iter().filter(|p| p.bound.is_none());
    chart
        .draw_series(exact().filter_map(|p| {
            let sd = p.sd?;
            Some(ErrorBar::new_vertical(
                p.x,
                p.y - sd,
                p.y,
                p.y + sd,
                color.filled(),
                10,
            ))
        }))
        .map_err(err)?;
    chart
        .draw_series(
            exact()
                .filter(|p| p.sd.is_none())
                .map(|p| Circle::new((p.x, p.y), 4, color.filled())),
        )
        .map_err(err)?;
    let bounds: Vec<&Point> = points.iter().filter(|p| p.bound.is_some()).collect();
    match metric {
        // Pointing up: at least this.
        Metric::ElapsedS => chart
            .draw_series(
                bounds
                    .iter()
                    .map(|p| TriangleMarker::new((p.x, p.y), 7, color.filled())),
            )
            .map(|_| ()),
        // Pointing down: at most this.
        Metric::Tps => chart
            .draw_series(bounds.iter().map(|p| {
                EmptyElement::at((p.x, p.y)) + Polygon::new(vec![(-6, -4), (6, -4), (0, 6)], color.filled())
            }))
            .map(|_| ()),
    }
    .map_err(err)?;
    chart
        .draw_series(bounds.iter().map(|p| {
            EmptyElement::at((p.x, p.y))
                + Text::new(
                    p.bound.clone().unwrap_or_default(),
                    (10, -6),
                    (FONT, 13).into_font().color(&color),
                )
        }))
        .map_err(err)?;
    Ok(())
}

/// The top of a y axis that shows every point, its error bar and its label.
fn y_top<'p>(points: impl IntoIterator<Item = &'p Point>) -> f64 {
    let top = points
        .into_iter()
        .map(|p| p.y + p.sd.unwrap_or(0.0))
        .fold(0.0_f64, f64::max);
    if top > 0.0 {
        top * 1.2
    } else {
        1.0
    }
}

/// Draws one plot on a white canvas of the plots' size and returns its SVG
/// text; `draw` builds the chart (see [`chart`]) and ends with its [`legend`].
fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A chart over `x` and `y` with the plots' caption, margin and label areas.
fn chart<'a, 'b, X: AsRangedCoord, Y: AsRangedCoord>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    x: X,
    y: Y,
) -> Result<Chart<'a, 'b, X::CoordDescType, Y::CoordDescType>, String> {
    ChartBuilder::on(root)
        .caption(caption, (FONT, 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(x, y)
        .map_err(err)
}

/// The series labels, in a box at the upper left.
fn legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    font_size: i32,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, font_size))
        .draw()
        .map_err(err)
}

/// The label of an x axis of evenly spaced categories: the name of the
/// category at an integer `x`, none between them or beyond the last.
fn category_label(x: f64, names: &[impl ToString]) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
        names[i as usize].to_string()
    } else {
        String::new()
    }
}

/// One line of a kernbench or pgbench plot: a lock mode's points.
struct Series {
    label: String,
    lock: LockMode,
    /// Which overcommit level of the plot (0 for the first).
    level: usize,
    points: Vec<Point>,
}

/// Draws every series in its lock mode's colour; with several overcommit
/// levels (a series per lock mode each), further levels in darker shades.
fn draw_series(chart: &mut LinearChart<'_, '_>, series: &[Series], metric: Metric) -> Result<(), String> {
    for s in series {
        let base = arm_color(s.lock);
        let shade = 1.0 - 0.25 * s.level as f64;
        let color = RGBColor(
            (f64::from(base.0) * shade) as u8,
            (f64::from(base.1) * shade) as u8,
            (f64::from(base.2) * shade) as u8,
        );
        draw_arm(chart, &s.points, &s.label, color, metric)?;
    }
    Ok(())
}

fn kernbench(report: &Report) -> Result<String, String> {
    let series: Vec<Series> = report
        .locks
        .iter()
        .map(|&lock| {
            let points = report
                .kernbench
                .iter()
                .filter_map(|g| {
                    let x = f64::from(g.group.overcommit.factor()) + offset(lock);
                    point(g.arm(lock)?, g.metric, x)
                })
                .collect();
            Series {
                label: lock.to_string(),
                lock,
                level: 0,
                points,
            }
        })
        .collect();
    let top = y_top(series.iter().flat_map(|s| &s.points));
    svg(|root| {
        let caption = "kernbench-like: elapsed time vs overcommit";
        let mut chart = chart(root, caption, 0.5_f64..3.5_f64, 0.0_f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(3)
            .x_label_formatter(&|x| format!("{}x", x.round()))
            .x_desc("vCPU overcommit")
            .y_desc("elapsed time (s): mean +/- sd")
            .label_style((FONT, 14))
            .draw()
            .map_err(err)?;
        draw_series(&mut chart, &series, Metric::ElapsedS)?;
        legend(&mut chart, 14)
    })
}

fn pgbench(report: &Report) -> Result<String, String> {
    let (clients, series) = pgbench_series(report);
    let top = y_top(series.iter().flat_map(|s| &s.points));
    let n = clients.len().max(1) as f64;
    svg(|root| {
        let caption = "pgbench-like: TPS vs clients";
        let mut chart = chart(root, caption, -0.5_f64..n - 0.5, 0.0_f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(clients.len() * 2 + 1)
            .x_label_formatter(&|x| category_label(*x, &clients))
            .x_desc("clients")
            .y_desc("transactions per second: mean +/- sd")
            .label_style((FONT, 14))
            .draw()
            .map_err(err)?;
        draw_series(&mut chart, &series, Metric::Tps)?;
        legend(&mut chart, 14)
    })
}

/// pgbench's client counts (evenly spaced on the x axis: they usually
/// double) and its series: per overcommit level, one per lock mode (base
/// first), labelled by level when there are several.
fn pgbench_series(report: &Report) -> (Vec<u32>, Vec<Series>) {
    let mut clients: Vec<u32> = report.pgbench.iter().filter_map(|g| g.group.clients).collect();
    clients.sort_unstable();
    clients.dedup();
    let mut levels: Vec<_> = report.pgbench.iter().map(|g| g.group.overcommit).collect();
    levels.sort();
    levels.dedup();
    let index = |g: &LockComparison| {
        clients
            .iter()
            .position(|&c| Some(c) == g.group.clients)
            .unwrap_or(0) as f64
    };
    let mut series = Vec::new();
    for (i, &level) in levels.iter().enumerate() {
        for &lock in &report.locks {
            let points = report
                .pgbench
                .iter()
                .filter(|g| g.group.overcommit == level)
                .filter_map(|g| point(g.arm(lock)?, g.metric, index(g) + offset(lock)))
                .collect();
            let label = if levels.len() > 1 {
                format!("{lock} {level}")
            } else {
                lock.to_string()
            };
            series.push(Series {
                label,
                lock,
                level: i,
                points,
            });
        }
    }
    (clients, series)
}

/// The percentiles plotted, in order, with their axis labels.
const PERCENTILES: [&str; 6] = ["p50", "p90", "p99", "p99.9", "p99.99", "max"];

/// A row's values in the order of [`PERCENTILES`], at least 1 us (the
/// log axis cannot show less).
fn percentiles(r: &LatencyRow) -> [f64; 6] {
    [r.p50, r.p90, r.p99, r.p999, r.p9999, r.max as f64].map(|v| v.max(1.0))
}

fn latency(rows: &[&LatencyRow], workload: Workload) -> Result<String, String> {
    let all = || rows.iter().flat_map(|r| percentiles(r));
    let top = all().fold(1.0_f64, f64::max) * 2.0;
    // From the power of ten below the smallest value, not from 1 us.
    let bottom = 10f64
        .powf(all().fold(f64::INFINITY, f64::min).log10().floor())
        .max(1.0);
    svg(|root| {
        let caption = format!("{workload}-like: latency percentiles");
        let mut chart = chart(root, &caption, -0.3_f64..5.3_f64, (bottom..top).log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(12)
            .x_label_formatter(&|x| category_label(*x, &PERCENTILES))
            .y_label_formatter(&|y| g6(*y))
            .x_desc("percentile (median over runs; max over all runs)")
            .y_desc("latency (us), log scale")
            .label_style((FONT, 14))
            .draw()
            .map_err(err)?;
        // One colour per group.
        let mut groups: Vec<_> = rows.iter().map(|r| r.group).collect();
        groups.dedup();
        for row in rows {
            let i = groups.iter().position(|g| *g == row.group).unwrap_or(0);
            draw_latency_row(&mut chart, row, Palette99::pick(i).to_rgba())?;
        }
        legend(&mut chart, 13)
    })
}

/// Draws one row's percentiles: base solid with dots, pv dashed with
/// triangles.
fn draw_latency_row<'a, 'b: 'a>(
    chart: &mut LogChart<'a, 'b>,
    row: &LatencyRow,
    color: RGBAColor,
) -> Result<(), String> {
    let style = color.stroke_width(2);
    let points: Vec<(f64, f64)> = percentiles(row)
        .iter()
        .enumerate()
        .map(|(x, &y)| (x as f64, y))
        .collect();
    let label = format!("{} {}", short_group(&row.group), row.lock);
    let drawn = match row.lock {
        LockMode::Base | LockMode::Qspin | LockMode::Tas => chart
            .draw_series(LineSeries::new(points.clone(), style))
            .map_err(err)?,
        LockMode::Pv | LockMode::Pvqspin => chart
            .draw_series(DashedLineSeries::new(points.clone(), 8, 5, style))
            .map_err(err)?,
    };
    let line = move |(x, y)| EmptyElement::at((x, y)) + PathElement::new(vec![(0, 0), (20, 0)], style);
    match row.lock {
        LockMode::Base | LockMode::Qspin | LockMode::Tas => drawn
            .label(label)
            .legend(move |c| line(c) + Circle::new((10, 0), 3, color.filled())),
        LockMode::Pv | LockMode::Pvqspin => drawn
            .label(label)
            .legend(move |c| line(c) + TriangleMarker::new((10, 0), 5, color.filled())),
    };
    chart
        .draw_series(points.iter().map(|&p| match row.lock {
            LockMode::Base | LockMode::Qspin | LockMode::Tas => Circle::new(p, 3, color.filled()).into_dyn(),
            LockMode::Pv | LockMode::Pvqspin => TriangleMarker::new(p, 5, color.filled()).into_dyn(),
        }))
        .map_err(err)?;
    Ok(())
}
