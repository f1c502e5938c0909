//! Experiment 5, samplers: the same DiT-tiny/2 sampled by DDPM (ancestral, with the learned
//! variance) and by deterministic DDIM (Song et al. 2021) over 10, 25, 50 and 250 steps
//! respaced from the 1000 it was trained with, at the demo's guidance; class accuracy and
//! Fréchet distance against the measured sampling time. DDIM's claim: far fewer steps for the
//! same quality; DDPM needs many steps, its noise only averaging out over a long chain.

use super::plot::{draw, Line, Lines, Panel};
use super::report::{percent, Json, Table};
use super::runs::{reference_dit, sampler_calls, score_sampler, Score};
use super::setup::Setup;
use super::{Context, Outcome};
use crate::diffusion::SamplerKind;
use crate::error::Result;
use crate::io::progress::{progress, say};
use crate::models::load_model;

/// Sampling steps of the sweep.
pub const STEPS: [usize; 4] = [10, 25, 50, 250];

/// The sweep's steps: [`STEPS`], scaled by `sample_steps / 50` when the scores' DDIM steps
/// are overridden (tests: 2 gives 1, 1, 2 and 10).
pub fn sweep(ctx: &Context) -> Vec<usize> {
    STEPS
        .iter()
        .map(|&s| (s * ctx.sample_steps / 50).max(1))
        .collect()
}
/// The samplers, by name.
pub const SAMPLERS: [(&str, SamplerKind); 2] = [
    ("DDPM", SamplerKind::Ddpm),
    ("DDIM", SamplerKind::Ddim { eta: 0.0 }),
];

pub fn run(ctx: &Context, setup: &Setup) -> Result<Outcome> {
    let (ckpt, provenance) = reference_dit(ctx, setup)?;
    let steps_list = sweep(ctx);
    println!(
        "\n{}: sampling {provenance} with DDPM and DDIM at {steps_list:?} steps, guidance {}",
        ctx.name, ctx.guidance
    );
    let loaded = load_model(&ckpt)?;
    let calls: u64 = steps_list
        .iter()
        .map(|&s| sampler_calls(ctx, setup, s))
        .sum();
    let bar = progress(calls * SAMPLERS.len() as u64, "samplers");
    let mut results: Vec<(&str, usize, Score)> = Vec::new();
    for (name, kind) in SAMPLERS {
        for &steps in &steps_list {
            bar.set_message(format!("{name} {steps}"));
            let score = score_sampler(ctx, setup, &loaded, kind, steps, ctx.guidance, &bar)?;
            say(
                &bar,
                format!(
                    "{name} {steps} steps: {} in {:.1} s",
                    score.eval, score.sample_seconds
                ),
            );
            results.push((name, steps, score));
        }
    }
    bar.finish_and_clear();
    let floor = results[0].2.eval.frechet_floor;
    let n = results[0].2.eval.n;

    let mut table = Table::new(&[
        "sampler",
        "steps",
        "accuracy",
        "Fréchet",
        "seconds",
        "samples/s",
    ]);
    for (name, steps, s) in &results {
        table.push(vec![
            name.to_string(),
            steps.to_string(),
            percent(s.eval.accuracy),
            format!("{:.1}", s.eval.frechet),
            format!("{:.1}", s.sample_seconds),
            format!("{:.1}", n as f64 / s.sample_seconds),
        ]);
    }
    let series = |f: &dyn Fn(&Score) -> f64| -> Vec<Line> {
        SAMPLERS
            .iter()
            .map(|(name, _)| {
                let rs: Vec<_> = results.iter().filter(|r| r.0 == *name).collect();
                Line {
                    name: name.to_string(),
                    points: rs.iter().map(|r| (r.2.sample_seconds, f(&r.2))).collect(),
                    point_labels: rs.iter().map(|r| format!(" {}", r.1)).collect(),
                    markers: true,
                }
            })
            .collect()
    };
    draw(
        &ctx.dir.join("samplers.png"),
        &[
            Panel::Lines(Lines {
                title: format!(
                    "Fréchet distance (labels: steps), guidance {}",
                    ctx.guidance
                ),
                x_label: format!("sampling seconds for {n} samples (log)"),
                y_label: "Fréchet distance (log)".into(),
                log_x: true,
                log_y: true,
                series: series(&|s| s.eval.frechet),
                reference: Some((format!("real vs real {floor:.1}"), floor)),
                ..Lines::default()
            }),
            Panel::Lines(Lines {
                title: "class accuracy (labels: steps)".into(),
                x_label: format!("sampling seconds for {n} samples (log)"),
                y_label: "accuracy, %".into(),
                log_x: true,
                series: series(&|s| 100.0 * s.eval.accuracy),
                ..Lines::default()
            }),
        ],
    )?;
    let body = format!(
        "Model: {provenance}.\n\n{}\n{n} samples per row (the same starting noise for every row), \
         guidance {}; seconds: the sampling alone (model and sampler, not the VAE decoding or the \
         classifier), on the machine's two cores. The real-vs-real floor is {floor:.1}.\n",
        table.to_markdown(),
        ctx.guidance
    );
    let rows = results
        .iter()
        .map(|(name, steps, s)| {
            Json::obj([
                ("sampler", Json::str(*name)),
                ("steps", Json::Num(*steps as f64)),
                ("accuracy", Json::num(s.eval.accuracy, 6)),
                ("frechet", Json::num(s.eval.frechet, 6)),
                ("frechet_floor", Json::num(s.eval.frechet_floor, 6)),
                ("seconds", Json::num(s.sample_seconds, 2)),
                (
                    "samples_per_second",
                    Json::num(n as f64 / s.sample_seconds, 1),
                ),
            ])
        })
        .collect();
    let key = |r: &(&str, usize, Score)| format!("{}{}", r.0.to_lowercase(), r.1);
    Ok(Outcome {
        title: "Samplers: DDPM and DDIM, quality against time".into(),
        body,
        full: Json::obj([
            ("model", Json::str(provenance.as_str())),
            ("runs", Json::Arr(rows)),
        ]),
        headline: vec![
            ("model".into(), Json::str(provenance.as_str())),
            ("frechet_floor".into(), Json::num(floor, 3)),
            (
                "frechet".into(),
                Json::obj(
                    results
                        .iter()
                        .map(|r| (key(r), Json::num(r.2.eval.frechet, 2))),
                ),
            ),
            (
                "accuracy".into(),
                Json::obj(
                    results
                        .iter()
                        .map(|r| (key(r), Json::num(r.2.eval.accuracy, 4))),
                ),
            ),
            (
                "seconds".into(),
                Json::obj(
                    results
                        .iter()
                        .map(|r| (key(r), Json::num(r.2.sample_seconds, 2))),
                ),
            ),
        ],
    })
}
