//! Criterion benchmarks of the video DiT: a training step of `video-mini/2` (the trainer's
//! own `train_step`: forward, hybrid loss, backward, AdamW and EMA) in each attention layout
//! on batches of 16 clips of 4 × 16 × 8 × 8, and one attention layer (width 64, 4 heads)
//! forward + backward over 8192 tokens in sequences of 256 on the clear core and on the tiled
//! one. Throughput is in clips (or tokens) per second. `examples/bench_video.rs` prints the
//! same figures with GFLOP/s, the fraction of the sgemm ceiling, peak memory and the scaling
//! sweep.
//!
//! Run: `cargo bench --bench video`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use minisora::diffusion::{sample_uniform, Condition};
use minisora::models::dit::dit_diffusion;
use minisora::nn::{Attention, Kernel};
use minisora::optim::{AdamW, AdamWConfig, Ema};
use minisora::tensor::{init, rng};
use minisora::train::{train_step, StepBatch, StepOptimizer};
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use ndarray::Ix3;
use std::hint::black_box;
use std::time::Duration;

const BATCH: usize = 16;
const FRAMES: usize = 16;

fn train(c: &mut Criterion) {
    minisora::tensor::heap::retain_freed_memory();
    let mut g = c.benchmark_group("video_train_step");
    g.throughput(Throughput::Elements(BATCH as u64));
    for layout in [Layout::Full, Layout::Alternating, Layout::Factorized] {
        let config = VideoDiTConfig::named("video-mini/2", layout, FRAMES, 1, 8, 4, 40).unwrap();
        let mut model = VideoDiT::new(config, &mut rng(0)).unwrap();
        let mut opt = AdamW::new(AdamWConfig {
            lr: 1e-4,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        });
        let mut ema = Ema::new(&mut model, 0.9999);
        let mut r = rng(1);
        let shape = [BATCH, 4, FRAMES, 8, 8];
        let x0 = init::normal(&shape, 1.0, &mut r);
        let noise = init::normal(&shape, 1.0, &mut r);
        let t = sample_uniform(BATCH, 1000, &mut r);
        let y: Vec<usize> = (0..BATCH).map(|i| i % 41).collect();
        let diffusion = dit_diffusion(true);
        let mut copy = None;
        let batch = StepBatch {
            x0: &x0,
            t: &t,
            noise: &noise,
            y: &Condition::labels(&y),
            given: None,
        };
        let name = format!("{}/{FRAMES}", layout.name());
        g.bench_function(&name, |bench| {
            bench.iter(|| {
                let mut optim = StepOptimizer {
                    opt: &mut opt,
                    ema: &mut ema,
                    grad_clip: None,
                    copy: &mut copy,
                };
                black_box(train_step(&mut model, &diffusion, &batch, &mut optim, &name).unwrap())
            })
        });
    }
    g.finish();
}

fn attention(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention_fwd_bwd_T256");
    g.throughput(Throughput::Elements(8192));
    let mut r = rng(2);
    let x = init::normal(&[32, 256, 64], 1.0, &mut r)
        .into_dimensionality::<Ix3>()
        .unwrap();
    for kernel in [Kernel::Clear, Kernel::Tiled] {
        let mut layer = Attention::new(64, 4, &mut r);
        layer.kernel = kernel;
        g.bench_function(format!("{kernel:?}"), |bench| {
            bench.iter(|| {
                let (y, cache) = layer.forward(&x);
                black_box(layer.backward(&cache, &y))
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = train, attention
}
criterion_main!(benches);
