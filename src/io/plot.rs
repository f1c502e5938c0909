//! Plots with `plotters`, saved as PNG: line plots (several series, legend, optional log
//! axis), scatter plots, and a strip of scatter panels (for trajectories).
//!
//! Everything is drawn into an RGB buffer (`BitMapBackend::with_buffer`), encoded to PNG in
//! memory with `image`, and written with [`write_atomic`]. Text uses DejaVu Sans, embedded in
//! the binary (`src/io/fonts/`, with its license) and registered with plotters once.

use crate::error::{write_atomic, Error, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();
const FONT_BYTES: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

/// Registers the embedded font as "sans-serif" (idempotent).
fn register_font() {
    FONT.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES)
            .map_err(|_| ())
            .expect("the embedded DejaVu Sans is a valid font");
    });
}

/// A fixed palette of distinguishable colours.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A plotters error as ours (drawing into a buffer fails only on a bug).
pub fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::new(
        format!("drawing a plot failed: {e}"),
        "report this as a bug",
    )
}

/// Draws with `draw` into a `w × h` white canvas (the embedded font registered as
/// "sans-serif") and saves it as PNG at `path`.
pub fn render(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    register_font();
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).expect("buffer has w·h·3 bytes");
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::new(format!("encoding PNG: {e}"), "report this as a bug"))?;
    write_atomic(path, &png)
}

/// One named line.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

fn bounds(series: &[Series], log_y: bool) -> (f64, f64, f64, f64) {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if !x.is_finite() || !y.is_finite() || (log_y && y <= 0.0) {
            continue;
        }
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return (0.0, 1.0, 0.1, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if log_y {
        (x0, x1, y0 * 0.8, y1 * 1.25)
    } else {
        let pad = ((y1 - y0) * 0.05).max(1e-9);
        (x0, x1, y0 - pad, y1 + pad)
    }
}

/// Line plot of several series with a legend; `log_y` puts the y axis on a log scale.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()> {
    let (x0, x1, y0, y1) = bounds(series, log_y);
    render(path, (640, 420), |root| {
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60);
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .label_style(("sans-serif", 13))
                    .draw()
                    .map_err(plot_err)?;
                for (i, s) in series.iter().enumerate() {
                    let color = PALETTE[i % PALETTE.len()];
                    let pts =
                        s.points.iter().copied().filter(|&(x, y)| {
                            x.is_finite() && y.is_finite() && (!log_y || y > 0.0)
                        });
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(plot_err)?
                        .label(s.name.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                }
                chart
                    .configure_series_labels()
                    .label_font(("sans-serif", 13))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(plot_err)?;
            }};
        }
        if log_y {
            body!(builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(plot_err)?);
        } else {
            body!(builder
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(plot_err)?);
        }
        Ok(())
    })
}

/// A training-loss figure: every step's loss and its moving average (decay 0.98, bias-corrected
/// as Adam's moments, since it starts at 0), on a linear axis.
pub fn loss_curve(path: &Path, title: &str, y_label: &str, losses: &[f32]) -> Result<()> {
    let mut avg = 0.0f64;
    let smooth = losses
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            avg = 0.98 * avg + 0.02 * l as f64;
            (i as f64, avg / (1.0 - 0.98f64.powi(i as i32 + 1)))
        })
        .collect();
    let raw = losses
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as f64, l as f64))
        .collect();
    line_plot(
        path,
        title,
        "step",
        y_label,
        &[
            Series {
                name: "per step".into(),
                points: raw,
            },
            Series {
                name: "moving average (0.98)".into(),
                points: smooth,
            },
        ],
        false,
    )
}

/// One scatter panel: a title and named point sets drawn in palette order.
pub struct Panel {
    pub title: String,
    pub sets: Vec<(String, Vec<(f32, f32)>)>,
}

/// Scatter panels side by side in `cols` columns, every panel on the square `[-lim, lim]²`.
pub fn scatter_panels(path: &Path, panels: &[Panel], cols: usize, lim: f64) -> Result<()> {
    let cols = cols.max(1).min(panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let size = 300u32;
    render(path, (size * cols as u32, size * rows as u32), |root| {
        let areas = root.split_evenly((rows, cols));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let mut chart: ChartContext<'_, _, Cartesian2d<RangedCoordf64, RangedCoordf64>> =
                ChartBuilder::on(area)
                    .caption(&panel.title, ("sans-serif", 16))
                    .margin(6)
                    .x_label_area_size(22)
                    .y_label_area_size(30)
                    .build_cartesian_2d(-lim..lim, -lim..lim)
                    .map_err(plot_err)?;
            chart
                .configure_mesh()
                .label_style(("sans-serif", 11))
                .x_labels(5)
                .y_labels(5)
                .draw()
                .map_err(plot_err)?;
            for (i, (name, pts)) in panel.sets.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                chart
                    .draw_series(
                        pts.iter()
                            .filter(|p| p.0.abs() as f64 <= lim && p.1.abs() as f64 <= lim)
                            .map(|&(x, y)| {
                                Circle::new((x as f64, y as f64), 1, color.mix(0.5).filled())
                            }),
                    )
                    .map_err(plot_err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
            }
            if panel.sets.len() > 1 {
                chart
                    .configure_series_labels()
                    .label_font(("sans-serif", 12))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    })
}
