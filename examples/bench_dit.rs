//! How fast does a DiT train? Training-step throughput (forward + backward + AdamW step) of
//! DiT-tiny/2 and DiT-S/2 on a batch of 64 latents of 4 × 8 × 8 with a learned variance (the
//! main demo's shapes), in images per second, with the time split into forward, backward and
//! optimizer. Each figure is the median step of several after two warm-up steps. The last
//! line of stdout is one JSON object with every figure.
//!
//! Run: `cargo run --release --example bench_dit` (add a config name, e.g. `DiT-mini/2`, to
//! measure only that one).

use minisora::diffusion::TrainableDenoiser;
use minisora::dit::{DiT, DiTConfig};
use minisora::optim::{AdamW, AdamWConfig};
use minisora::param::Parameters;
use minisora::tensor::{init, rng};
use std::time::Instant;

const BATCH: usize = 64;

/// Median (forward, backward, optimizer) seconds of `steps` training steps of `name`.
fn bench(name: &str, steps: usize) -> (f64, f64, f64, f64) {
    let config = DiTConfig::named(name, 8, 4, 10).expect("a valid name");
    let mut model = DiT::new(config, &mut rng(0)).expect("valid config");
    let mut opt = AdamW::new(AdamWConfig {
        lr: 1e-4,
        weight_decay: 0.0,
        ..AdamWConfig::default()
    });
    let mut r = rng(1);
    let x = init::normal(&[BATCH, 4, 8, 8], 1.0, &mut r);
    let d_out = init::normal(&[BATCH, 8, 8, 8], 1e-3, &mut r);
    let t: Vec<usize> = (0..BATCH).map(|i| (i * 37) % 1000).collect();
    let y: Vec<usize> = (0..BATCH).map(|i| i % 11).collect();
    let mut times = Vec::new();
    for step in 0..steps + 2 {
        let s0 = Instant::now();
        model.zero_grad();
        let (_, cache) = model.forward_train(&x, &t, Some(&y));
        let s1 = Instant::now();
        model.backward_train(&cache, &d_out);
        drop(cache);
        let s2 = Instant::now();
        opt.step(&mut model);
        let s3 = Instant::now();
        if step >= 2 {
            times.push((
                (s1 - s0).as_secs_f64(),
                (s2 - s1).as_secs_f64(),
                (s3 - s2).as_secs_f64(),
                (s3 - s0).as_secs_f64(),
            ));
        }
    }
    times.sort_by(|a, b| a.3.total_cmp(&b.3));
    let flops = model.flops() as f64;
    let m = times[times.len() / 2];
    eprintln!(
        "{name}: {:.0} img/s  (forward {:.1} ms, backward {:.1} ms, AdamW {:.1} ms per step of \
         {BATCH}; {:.2} M params, {:.3} Gflops/sample)",
        BATCH as f64 / m.3,
        m.0 * 1e3,
        m.1 * 1e3,
        m.2 * 1e3,
        model.num_params() as f64 / 1e6,
        flops / 1e9,
    );
    m
}

fn main() {
    // As the trainer does: reuse each step's freed activations instead of fresh zeroed pages.
    minisora::tensor::heap::retain_freed_memory();
    let only: Option<String> = std::env::args().nth(1);
    let runs = [("DiT-tiny/2", 30), ("DiT-S/2", 7)];
    let mut fields = Vec::new();
    for (name, steps) in runs {
        if only
            .as_deref()
            .is_some_and(|o| !o.eq_ignore_ascii_case(name))
        {
            continue;
        }
        let (f, b, o, total) = bench(name, steps);
        fields.push(format!(
            "\"{name}\": {{\"img_per_s\": {:.1}, \"forward_ms\": {:.2}, \"backward_ms\": {:.2}, \
             \"adamw_ms\": {:.2}}}",
            BATCH as f64 / total,
            f * 1e3,
            b * 1e3,
            o * 1e3
        ));
    }
    if fields.is_empty() {
        if let Some(name) = only {
            bench(&name, 10);
        }
    }
    println!(
        "{{\"batch\": {BATCH}, \"latent\": [4, 8, 8], \"threads\": {}, {}}}",
        rayon::current_num_threads(),
        fields.join(", ")
    );
}
