//! How fast are the layers, as a fraction of what this machine's GEMM can do?
//!
//! Measures, in one run: the sgemm ceiling (1024³ through `minisora::tensor::gemm`), then
//! Linear, Conv2d, Conv3d and attention forward+backward at training shapes. Conv3d runs a
//! causal 3×3×3 64→64 conv on 4 clips of 10 frames of 16×16: 0.94× the multiply-adds of the
//! Conv2d case (27 taps do not divide its work evenly), so compare the two by GFLOP/s. Each figure is the
//! median of several timed rounds after a warm-up (the
//! benchmarks take turns within each round, so load from other processes hits all alike), in GFLOP/s with the usual convention
//! FLOPs = 2 × multiply-adds, where forward+backward counts 3 × the forward multiply-adds
//! (the backward pass does two products of the forward's size: `dx` and `dW`). The last line of
//! stdout is one JSON object with every figure.
//!
//! Run: `cargo run --release --example bench_layers` (`-- --rounds N` for N timed rounds).

use indicatif::{ProgressBar, ProgressStyle};
use minisora::nn::attention::Attention;
use minisora::nn::conv2d::Conv2d;
use minisora::nn::conv3d::{Conv3d, Padding3d};
use minisora::nn::linear::Linear;
use minisora::tensor::{gemm, init, rng};
use ndarray::{Array2, Array3, Array4, Array5, Ix2, Ix3, Ix4, Ix5};
use std::hint::black_box;
use std::time::Instant;

/// Timed repetitions per figure (after one warm-up run) unless `--rounds N`; the median is
/// reported.
const REPS: usize = 7;

/// One benchmark: a name, its multiply-adds per run, and the work itself.
struct Bench {
    key: &'static str,
    label: String,
    macs: f64,
    run: Box<dyn FnMut()>,
}

/// Runs every benchmark once as a warm-up, then `reps` rounds in which each runs once, and
/// returns each one's median time in seconds. Interleaving the rounds means a burst of load
/// from other processes slows the ceiling and the layers alike, so their ratio stays honest.
fn median_seconds(benches: &mut [Bench], reps: usize, bar: &ProgressBar) -> Vec<f64> {
    let mut times = vec![Vec::with_capacity(reps); benches.len()];
    for round in 0..=reps {
        for (b, t) in benches.iter_mut().zip(&mut times) {
            let what = if round == 0 { "warm-up" } else { "timing" };
            bar.set_message(format!("{what}: {}", b.label));
            let start = Instant::now();
            (b.run)();
            if round > 0 {
                t.push(start.elapsed().as_secs_f64());
            }
            bar.inc(1);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[reps / 2]
        })
        .collect()
}

fn sgemm_bench() -> Bench {
    let n = 1024;
    let mut r = rng(0);
    let a: Array2<f32> = init::normal(&[n, n], 1.0, &mut r)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let b = a.t().to_owned();
    let mut c = Array2::<f32>::zeros((n, n));
    Bench {
        key: "sgemm",
        label: format!("sgemm {n}×{n}×{n}"),
        macs: (n * n * n) as f64,
        run: Box::new(move || {
            gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
            black_box(&c);
        }),
    }
}

fn linear_bench() -> Bench {
    let (n, d_in, d_out) = (4096, 384, 1536);
    let mut r = rng(1);
    let mut layer = Linear::new(d_in, d_out, true, &mut r);
    let x: Array2<f32> = init::normal(&[n, d_in], 1.0, &mut r)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let dy: Array2<f32> = init::normal(&[n, d_out], 1.0, &mut r)
        .into_dimensionality::<Ix2>()
        .unwrap();
    Bench {
        key: "linear",
        label: format!("Linear ({n}×{d_in})·Wᵀ({d_in}×{d_out}) fwd+bwd"),
        macs: 3.0 * (n * d_in * d_out) as f64,
        run: Box::new(move || {
            let (y, cache) = layer.forward(&x);
            black_box(&y);
            black_box(layer.backward(&cache, &dy));
        }),
    }
}

fn conv_bench() -> Bench {
    let (b, c, hw, o, k) = (32, 64, 32, 64, 3);
    let mut r = rng(2);
    let mut layer = Conv2d::new(c, o, k, 1, 1, true, &mut r);
    let x: Array4<f32> = init::normal(&[b, c, hw, hw], 1.0, &mut r)
        .into_dimensionality::<Ix4>()
        .unwrap();
    let dy: Array4<f32> = init::normal(&[b, o, hw, hw], 1.0, &mut r)
        .into_dimensionality::<Ix4>()
        .unwrap();
    Bench {
        key: "conv2d",
        label: format!("Conv2d {k}×{k} {c}→{o} {hw}×{hw} B{b} fwd+bwd"),
        // every output pixel of every image: O·C·k·k multiply-adds ('same' padding: 32×32 out)
        macs: 3.0 * (b * hw * hw * o * c * k * k) as f64,
        run: Box::new(move || {
            let (y, cache) = layer.forward(&x);
            black_box(&y);
            black_box(layer.backward(&cache, &dy));
        }),
    }
}

fn conv3d_bench() -> Bench {
    let (b, c, f, hw, o, k) = (4, 64, 10, 16, 64, 3);
    let mut r = rng(4);
    let pad = Padding3d::causal(1, 1);
    let mut layer = Conv3d::new(c, o, [k; 3], [1; 3], pad, true, &mut r);
    let x: Array5<f32> = init::normal(&[b, c, f, hw, hw], 1.0, &mut r)
        .into_dimensionality::<Ix5>()
        .unwrap();
    let dy: Array5<f32> = init::normal(&[b, o, f, hw, hw], 1.0, &mut r)
        .into_dimensionality::<Ix5>()
        .unwrap();
    Bench {
        key: "conv3d",
        label: format!("Conv3d {k}×{k}×{k} causal {c}→{o} {f}×{hw}×{hw} B{b} fwd+bwd"),
        // every output voxel of every clip: O·C·k³ multiply-adds (causal in time, 'same' in
        // space: 10×16×16 out)
        macs: 3.0 * (b * f * hw * hw * o * c * k * k * k) as f64,
        run: Box::new(move || {
            let (y, cache) = layer.forward(&x);
            black_box(&y);
            black_box(layer.backward(&cache, &dy));
        }),
    }
}

fn attention_bench() -> Bench {
    let (b, t, c, heads) = (16, 256, 384, 6);
    let d = c / heads;
    let mut r = rng(3);
    let mut layer = Attention::new(c, heads, &mut r);
    let x: Array3<f32> = init::normal(&[b, t, c], 1.0, &mut r)
        .into_dimensionality::<Ix3>()
        .unwrap();
    let dy: Array3<f32> = init::normal(&[b, t, c], 1.0, &mut r)
        .into_dimensionality::<Ix3>()
        .unwrap();
    let n = b * t;
    // qkv (N·C·3C) + QKᵀ and PV (2·B·h·T·T·d) + proj (N·C·C); softmax is not counted.
    let fwd_macs = n * c * 3 * c + 2 * b * heads * t * t * d + n * c * c;
    Bench {
        key: "attention",
        label: format!("Attention B{b} T{t} C{c} h{heads} fwd+bwd"),
        macs: 3.0 * fwd_macs as f64,
        run: Box::new(move || {
            let (y, cache) = layer.forward(&x);
            black_box(&y);
            black_box(layer.backward(&cache, &dy));
        }),
    }
}

/// `--rounds N` from the command line, or [`REPS`].
fn rounds() -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--rounds") {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n >= 1)
            .unwrap_or_else(|| {
                eprintln!("--rounds takes a whole number of at least 1");
                std::process::exit(2)
            }),
        None => REPS,
    }
}

fn main() {
    let reps = rounds();
    let mut benches = vec![
        sgemm_bench(),
        linear_bench(),
        conv_bench(),
        conv3d_bench(),
        attention_bench(),
    ];
    let bar = ProgressBar::new((benches.len() * (reps + 1)) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .unwrap()
            .progress_chars("=> "),
    );
    let secs = median_seconds(&mut benches, reps, &bar);
    bar.finish_and_clear();
    let results: Vec<_> = benches
        .iter()
        .zip(secs)
        .map(|(b, s)| (b.key, b.label.clone(), s, 2.0 * b.macs / s / 1e9))
        .collect();

    let ceiling = results[0].3;
    println!(
        "threads: {}   (median of {reps} interleaved rounds after a warm-up; GFLOP/s = 2·MACs/s, fwd+bwd = 3× fwd MACs)",
        rayon::current_num_threads()
    );
    println!("{:<48} {:>10} {:>9} {:>9}", "", "ms", "GFLOP/s", "ceiling");
    let mut json = vec![format!("\"threads\":{}", rayon::current_num_threads())];
    for (key, label, secs, gflops) in &results {
        let frac = gflops / ceiling;
        println!(
            "{label:<48} {:>10.2} {gflops:>9.1} {:>8.0}%",
            secs * 1e3,
            frac * 100.0
        );
        json.push(format!("\"{key}_ms\":{:.3}", secs * 1e3));
        json.push(format!("\"{key}_gflops\":{gflops:.2}"));
        if *key != "sgemm" {
            json.push(format!("\"{key}_frac\":{frac:.3}"));
        }
    }
    println!("{{{}}}", json.join(","));
}
