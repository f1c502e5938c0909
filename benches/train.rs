//! Criterion benchmarks of a DiT training step — `minisora::diffusion::train_step`, the
//! trainer's own: forward, hybrid loss, backward, AdamW and EMA — for DiT-tiny/2 and DiT-S/2
//! on batches of 64 latents of 4 × 8 × 8 with a learned variance, and of 50-step DDIM with
//! guidance for 64 latents on DiT-tiny/2. Throughput is in images (latents) per second.
//! `examples/bench_train.rs` prints the same figures with GFLOP/s, the fraction of the sgemm
//! ceiling and peak memory.
//!
//! Run: `cargo bench --bench train`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use minisora::diffusion::{sample_uniform, Condition, Guided, SampleOptions, SamplerKind};
use minisora::dit::{DiT, DiTConfig};
use minisora::models::dit::dit_diffusion;
use minisora::optim::{AdamW, AdamWConfig, Ema};
use minisora::tensor::{init, rng};
use minisora::train::{train_step, StepBatch, StepOptimizer};
use std::hint::black_box;
use std::time::Duration;

const BATCH: usize = 64;

fn train(c: &mut Criterion) {
    minisora::tensor::heap::retain_freed_memory();
    let mut g = c.benchmark_group("train_step");
    g.throughput(Throughput::Elements(BATCH as u64));
    for name in ["DiT-tiny/2", "DiT-S/2"] {
        let config = DiTConfig::named(name, 8, 4, 10).unwrap();
        let mut model = DiT::new(config, &mut rng(0)).unwrap();
        let mut opt = AdamW::new(AdamWConfig {
            lr: 1e-4,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        });
        let mut ema = Ema::new(&mut model, 0.9999);
        let mut r = rng(1);
        let x0 = init::normal(&[BATCH, 4, 8, 8], 1.0, &mut r);
        let noise = init::normal(&[BATCH, 4, 8, 8], 1.0, &mut r);
        let t = sample_uniform(BATCH, 1000, &mut r);
        let y: Vec<usize> = (0..BATCH).map(|i| i % 11).collect();
        let diffusion = dit_diffusion(true);
        let mut copy = None;
        let batch = StepBatch {
            x0: &x0,
            t: &t,
            noise: &noise,
            y: &Condition::labels(&y),
            given: None,
        };
        g.bench_function(name, |bench| {
            bench.iter(|| {
                let mut optim = StepOptimizer {
                    opt: &mut opt,
                    ema: &mut ema,
                    grad_clip: None,
                    copy: &mut copy,
                };
                black_box(train_step(&mut model, &diffusion, &batch, &mut optim, name).unwrap())
            })
        });
    }
    g.finish();
}

fn sample(c: &mut Criterion) {
    let model = DiT::new(
        DiTConfig::named("DiT-tiny/2", 8, 4, 10).unwrap(),
        &mut rng(0),
    )
    .unwrap();
    let diffusion = dit_diffusion(true).respace_spec("ddim50").unwrap();
    let guided = Guided {
        model: &model,
        scale: 4.0,
        channels: 4,
    };
    let y: Vec<usize> = (0..BATCH).map(|i| i % 10).collect();
    let opts = SampleOptions {
        kind: SamplerKind::Ddim { eta: 0.0 },
        clip_x0: false,
    };
    let mut g = c.benchmark_group("sample_ddim50_guided");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("DiT-tiny/2", |bench| {
        bench.iter(|| {
            let shape = [BATCH, 4, 8, 8];
            black_box(diffusion.sample(
                &guided,
                &shape,
                None,
                &Condition::labels(&y),
                opts,
                &mut rng(2),
                &mut |_, _, _| {},
            ))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // Ten samples of each: a DiT-S/2 step takes most of a second on two cores.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
}

criterion_group! {
    name = benches;
    config = config();
    targets = train, sample
}
criterion_main!(benches);
