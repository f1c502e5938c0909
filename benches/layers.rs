//! Criterion benchmarks of the kernels and layers a training step spends its time in:
//! the sgemm ceiling (1024³), Linear, Conv2d, Conv3d and attention forward+backward at training
//! shapes (Conv3d at 0.94× the Conv2d case's multiply-adds; compare them by FLOP/s).
//! `examples/bench_layers.rs` prints the same figures as GFLOP/s and fractions of the ceiling.
//!
//! Run: `cargo bench --bench layers`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use minisora::nn::attention::Attention;
use minisora::nn::conv2d::Conv2d;
use minisora::nn::conv3d::{Conv3d, Padding3d};
use minisora::nn::linear::Linear;
use minisora::tensor::{gemm, init, rng};
use ndarray::{Array2, Array3, Array4, Array5, Ix2, Ix3, Ix4, Ix5};
use std::hint::black_box;
use std::time::Duration;

fn matrix(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    init::normal(&[rows, cols], 1.0, &mut rng(seed))
        .into_dimensionality::<Ix2>()
        .unwrap()
}

fn sgemm(c: &mut Criterion) {
    let n = 1024;
    let (a, b) = (matrix(n, n, 0), matrix(n, n, 1));
    let mut out = Array2::<f32>::zeros((n, n));
    let mut g = c.benchmark_group("sgemm");
    // Throughput in "elements" = FLOPs, so criterion reports FLOP/s.
    g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    g.bench_function("1024x1024x1024", |bench| {
        bench.iter(|| gemm(1.0, a.view(), b.view(), 0.0, out.view_mut()))
    });
    g.finish();
}

fn linear(c: &mut Criterion) {
    let (n, d_in, d_out) = (4096, 384, 1536);
    let mut layer = Linear::new(d_in, d_out, true, &mut rng(2));
    let (x, dy) = (matrix(n, d_in, 3), matrix(n, d_out, 4));
    let mut g = c.benchmark_group("linear");
    g.throughput(Throughput::Elements(2 * 3 * (n * d_in * d_out) as u64));
    g.bench_function("4096x384_to_1536_fwd_bwd", |bench| {
        bench.iter(|| {
            let (y, cache) = layer.forward(&x);
            black_box(y);
            black_box(layer.backward(&cache, &dy))
        })
    });
    g.finish();
}

fn conv2d(c: &mut Criterion) {
    let (b, ch, hw, o, k) = (32, 64, 32, 64, 3);
    let mut layer = Conv2d::new(ch, o, k, 1, 1, true, &mut rng(8));
    let image = |channels, seed| {
        init::normal(&[b, channels, hw, hw], 1.0, &mut rng(seed))
            .into_dimensionality::<Ix4>()
            .unwrap()
    };
    let (x, dy): (Array4<f32>, Array4<f32>) = (image(ch, 9), image(o, 10));
    let mut g = c.benchmark_group("conv2d");
    g.throughput(Throughput::Elements(
        2 * 3 * (b * hw * hw * o * ch * k * k) as u64,
    ));
    g.bench_function("3x3_64to64_32x32_b32_fwd_bwd", |bench| {
        bench.iter(|| {
            let (y, cache) = layer.forward(&x);
            black_box(y);
            black_box(layer.backward(&cache, &dy))
        })
    });
    g.finish();
}

fn conv3d(c: &mut Criterion) {
    let (b, ch, f, hw, o, k) = (4, 64, 10, 16, 64, 3);
    let pad = Padding3d::causal(1, 1);
    let mut layer = Conv3d::new(ch, o, [k; 3], [1; 3], pad, true, &mut rng(11));
    let clip = |channels, seed| {
        init::normal(&[b, channels, f, hw, hw], 1.0, &mut rng(seed))
            .into_dimensionality::<Ix5>()
            .unwrap()
    };
    let (x, dy): (Array5<f32>, Array5<f32>) = (clip(ch, 12), clip(o, 13));
    let mut g = c.benchmark_group("conv3d");
    g.throughput(Throughput::Elements(
        2 * 3 * (b * f * hw * hw * o * ch * k * k * k) as u64,
    ));
    g.bench_function("3x3x3_causal_64to64_10x16x16_b4_fwd_bwd", |bench| {
        bench.iter(|| {
            let (y, cache) = layer.forward(&x);
            black_box(y);
            black_box(layer.backward(&cache, &dy))
        })
    });
    g.finish();
}

fn attention(c: &mut Criterion) {
    let (b, t, ch, heads) = (16, 256, 384, 6);
    let mut layer = Attention::new(ch, heads, &mut rng(5));
    let tokens = |seed| {
        init::normal(&[b, t, ch], 1.0, &mut rng(seed))
            .into_dimensionality::<Ix3>()
            .unwrap()
    };
    let (x, dy): (Array3<f32>, Array3<f32>) = (tokens(6), tokens(7));
    let n = b * t;
    let fwd_macs = n * ch * 3 * ch + 2 * b * heads * t * t * (ch / heads) + n * ch * ch;
    let mut g = c.benchmark_group("attention");
    g.throughput(Throughput::Elements(2 * 3 * fwd_macs as u64));
    g.bench_function("b16_t256_c384_h6_fwd_bwd", |bench| {
        bench.iter(|| {
            let (y, cache) = layer.forward(&x);
            black_box(y);
            black_box(layer.backward(&cache, &dy))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // A few seconds per benchmark, so `cargo bench` finishes in minutes on two cores.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = sgemm, linear, conv2d, conv3d, attention
}
criterion_main!(benches);
