//! Renders the built-in datasets: 10×10 grids of digits and shapes to `out/data/`, with counts
//! and generation speed. The last stdout line is one JSON object with the measured rates.
//!
//! `cargo run --release --example data`

use minisora::data::{digits, shapes};
use minisora::io::image::{save_grid, GridLayout};
use std::path::Path;
use std::time::Instant;

fn main() -> minisora::error::Result<()> {
    let n = 10_000;
    let t = Instant::now();
    let d = digits::generate(n, 0);
    let digits_s = t.elapsed().as_secs_f64();
    println!(
        "digits: {} images {:?}, classes {:?}, {:.3} s",
        d.len(),
        d.images.shape(),
        d.class_counts(),
        digits_s
    );
    let layout = GridLayout::new(10).pad(2).upscale(3);
    save_grid(
        Path::new("out/data/digits.png"),
        d.take(100).images.view(),
        layout,
    )?;

    let t = Instant::now();
    let s = shapes::generate(n, 0);
    let shapes_s = t.elapsed().as_secs_f64();
    println!(
        "shapes: {} images {:?}, classes {:?} {:?}, {:.3} s",
        s.len(),
        s.images.shape(),
        s.class_names,
        s.class_counts(),
        shapes_s
    );
    save_grid(
        Path::new("out/data/shapes.png"),
        s.take(100).images.view(),
        layout,
    )?;
    println!("wrote out/data/digits.png and out/data/shapes.png");
    println!(
        "{{\"digits_per_s\": {:.0}, \"shapes_per_s\": {:.0}, \"threads\": {}}}",
        n as f64 / digits_s,
        n as f64 / shapes_s,
        rayon::current_num_threads()
    );
    Ok(())
}
