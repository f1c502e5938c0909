//! The experiments' figures: panels side by side in one PNG, each either lines with markers
//! (optionally on log axes, optionally with a label at every point and a horizontal reference
//! such as the Fréchet floor) or bars over named categories. Drawn with plotters through
//! [`crate::io::plot::render`].

use crate::error::Result;
use crate::io::plot::{plot_err, render, PALETTE};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One series of a [`Lines`] panel.
#[derive(Clone, Debug, Default)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// A text beside each point (empty: none).
    pub point_labels: Vec<String>,
    /// Draw a circle at each point (for few points; off for loss curves).
    pub markers: bool,
}

/// A panel of lines.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Line>,
    /// A named horizontal line (e.g. the real-vs-real Fréchet floor).
    pub reference: Option<(String, f64)>,
    /// Where the legend goes (drawn only with two or more lines, or a reference).
    pub legend: Corner,
}

/// A corner of a panel, for its legend.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Corner {
    #[default]
    UpperRight,
    LowerRight,
    LowerLeft,
}

impl Corner {
    fn position(self) -> SeriesLabelPosition {
        match self {
            Corner::UpperRight => SeriesLabelPosition::UpperRight,
            Corner::LowerRight => SeriesLabelPosition::LowerRight,
            Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        }
    }
}

/// A panel of bars, one per category.
#[derive(Clone, Debug, Default)]
pub struct Bars {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub values: Vec<f64>,
    pub reference: Option<(String, f64)>,
}

/// Either kind of panel.
pub enum Panel {
    Lines(Lines),
    Bars(Bars),
}

const PANEL: (u32, u32) = (620, 440);

/// The panels in one row, written as a PNG at `path`.
pub fn draw(path: &Path, panels: &[Panel]) -> Result<()> {
    let n = panels.len().max(1) as u32;
    render(path, (PANEL.0 * n, PANEL.1), |root| {
        let areas = root.split_evenly((1, n as usize));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            match panel {
                Panel::Lines(l) => lines(area, l)?,
                Panel::Bars(b) => bars(area, b)?,
            }
        }
        Ok(())
    })
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// `(lo, hi)` of the finite values (positive ones on a log axis), padded.
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        (lo, hi) = (lo.min(v), hi.max(v));
    }
    if lo > hi {
        return if log { (0.1, 1.0) } else { (0.0, 1.0) };
    }
    if log {
        let (lo, hi) = if hi / lo < 1.01 {
            (lo / 1.5, hi * 1.5)
        } else {
            (lo, hi)
        };
        (lo / 1.25, hi * 1.25)
    } else {
        let pad = ((hi - lo) * 0.08).max(1e-9 + hi.abs() * 0.02);
        (lo - pad, hi + pad)
    }
}

fn lines(area: &Area<'_>, p: &Lines) -> Result<()> {
    let xs = p.series.iter().flat_map(|s| s.points.iter().map(|q| q.0));
    let ys = p.series.iter().flat_map(|s| s.points.iter().map(|q| q.1));
    let (x0, x1) = range(xs, p.log_x);
    let (y0, y1) = range(ys.chain(p.reference.iter().map(|r| r.1)), p.log_y);
    let ok = |&(x, y): &(f64, f64)| {
        x.is_finite() && y.is_finite() && (!p.log_x || x > 0.0) && (!p.log_y || y > 0.0)
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&p.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(62);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(p.x_label.as_str())
                .y_desc(p.y_label.as_str())
                .x_label_formatter(&|v| compact(*v))
                .y_label_formatter(&|v| compact(*v))
                .light_line_style(WHITE)
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(plot_err)?;
            if let Some((name, y)) = &p.reference {
                let grey = RGBColor(120, 120, 120);
                chart
                    .draw_series(LineSeries::new([(x0, *y), (x1, *y)], grey.stroke_width(1)))
                    .map_err(plot_err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
            }
            for (i, s) in p.series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(ok).collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(plot_err)?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                if s.markers {
                    chart
                        .draw_series(pts.iter().map(|&q| Circle::new(q, 4, color.filled())))
                        .map_err(plot_err)?;
                }
                let labelled = s.points.iter().zip(&s.point_labels).filter(|(q, _)| ok(q));
                chart
                    .draw_series(labelled.map(|(&q, text)| {
                        let font = ("sans-serif", 12).into_font().color(&color);
                        EmptyElement::at(q) + Text::new(text.clone(), (5, -16), font)
                    }))
                    .map_err(plot_err)?;
            }
            if p.series.len() > 1 || p.reference.is_some() {
                chart
                    .configure_series_labels()
                    .label_font(("sans-serif", 12))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(p.legend.position())
                    .draw()
                    .map_err(plot_err)?;
            }
        }};
    }
    match (p.log_x, p.log_y) {
        (false, false) => body!(builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?),
        (true, false) => body!(builder
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(plot_err)?),
        (false, true) => body!(builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(plot_err)?),
        (true, true) => body!(builder
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(plot_err)?),
    }
    Ok(())
}

fn bars(area: &Area<'_>, p: &Bars) -> Result<()> {
    let n = p.categories.len().max(1) as i32;
    let top = p
        .values
        .iter()
        .chain(p.reference.iter().map(|r| &r.1))
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    // `(0..n − 1).into_segmented()` has n segments, one per bar: CenterOf(i) is bar i.
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(62)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)
        .map_err(plot_err)?;
    let names = p.categories.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_desc(p.y_label.as_str())
        .x_labels(names.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| compact(*v))
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(plot_err)?;
    let above =
        TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (i, &v) in p.values.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let (a, b) = (
            SegmentValue::Exact(i as i32),
            SegmentValue::Exact(i as i32 + 1),
        );
        let v = if v.is_finite() { v } else { 0.0 };
        chart
            .draw_series([Rectangle::new([(a, 0.0), (b, v)], color.mix(0.8).filled())])
            .map_err(plot_err)?;
        chart
            .draw_series([EmptyElement::at((SegmentValue::CenterOf(i as i32), v))
                + Text::new(format!("{v:.1}"), (0, -3), above.clone())])
            .map_err(plot_err)?;
    }
    if let Some((name, y)) = &p.reference {
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(LineSeries::new(
                [(SegmentValue::Exact(0), *y), (SegmentValue::Last, *y)],
                grey.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(plot_err)?;
    }
    Ok(())
}

/// A tick label without trailing zeros: `0.001`, `2.5`, `300`.
fn compact(v: f64) -> String {
    let a = v.abs();
    let s = if a == 0.0 || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.5}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A moving average of a loss curve (decay `beta`, bias-corrected as Adam's moments), as
/// `(step, value)` points, every `stride`-th kept.
pub fn smoothed(losses: &[f32], beta: f64, stride: usize) -> Vec<(f64, f64)> {
    let mut avg = 0.0f64;
    let mut out = Vec::new();
    for (i, &l) in losses.iter().enumerate() {
        avg = beta * avg + (1.0 - beta) * l as f64;
        if i % stride.max(1) == 0 || i + 1 == losses.len() {
            out.push(((i + 1) as f64, avg / (1.0 - beta.powi(i as i32 + 1))));
        }
    }
    out
}

/// Each run's training loss as one line, smoothed (moving average 0.98), every `stride` steps.
pub fn loss_lines(runs: &[super::runs::Run], stride: usize) -> Vec<Line> {
    runs.iter()
        .map(|r| Line {
            name: r.spec.label.clone(),
            points: smoothed(&r.report.losses, 0.98, stride),
            ..Line::default()
        })
        .collect()
}
