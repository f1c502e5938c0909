//! Experiment 1, scaling (Peebles & Xie 2023, Figures 2, 6 and 8): DiT-mini, -tiny and
//! -small, each with patch 2, 4 and 8, trained for the same steps on the latents (digits unless `--data`) and
//! scored unguided. The paper's two claims: sample quality improves with forward Gflops
//! however they are spent, and at a fixed parameter count a smaller patch (more tokens, more
//! Gflops) gives better samples.

use super::plot::{draw, Corner, Line, Lines, Panel};
use super::report::Json;
use super::runs::{run_fields, runs_table, train_all, Model, Run, RunSpec};
use super::setup::Setup;
use super::{Context, Outcome};
use crate::demo::DEMO_LR;
use crate::dit::DiTConfig;
use crate::error::Result;
use crate::models::Recipe;

/// The model sizes, smallest first.
pub const SIZES: [&str; 3] = ["mini", "tiny", "small"];
/// The patch sizes, largest (cheapest) first.
pub const PATCHES: [usize; 3] = [8, 4, 2];

/// The nine configs, `DiT-mini/8` … `DiT-small/2`.
pub fn specs() -> Result<Vec<RunSpec>> {
    let mut specs = Vec::new();
    for size in SIZES {
        for p in PATCHES {
            let label = format!("DiT-{size}/{p}");
            specs.push(RunSpec {
                model: Model::DiT(DiTConfig::named(&label, 8, 4, 10)?),
                label,
                lr: DEMO_LR,
                recipe: Recipe::Cpu,
            });
        }
    }
    Ok(specs)
}

/// Spearman's rank correlation of two equally long lists (no ties expected).
pub fn rank_correlation(a: &[f64], b: &[f64]) -> f64 {
    let ranks = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        for (rank, &i) in idx.iter().enumerate() {
            r[i] = rank as f64;
        }
        r
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let mean = (n - 1.0) / 2.0;
    let cov: f64 = ra
        .iter()
        .zip(&rb)
        .map(|(x, y)| (x - mean) * (y - mean))
        .sum();
    let var: f64 = ra.iter().map(|x| (x - mean).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}

pub fn run(ctx: &Context, setup: &Setup) -> Result<Outcome> {
    let specs = specs()?;
    let runs = train_all(ctx, setup, &specs, "")?;
    let floor = runs[0].score.eval.frechet_floor;

    let table = runs_table("config", &runs);

    // One line per size, from patch 8 to patch 2: the same parameters, more tokens.
    let per_size = |value: &dyn Fn(&Run) -> f64| -> Vec<Line> {
        SIZES
            .iter()
            .enumerate()
            .map(|(s, size)| {
                let rs = &runs[s * PATCHES.len()..(s + 1) * PATCHES.len()];
                Line {
                    name: format!("DiT-{size}"),
                    points: rs.iter().map(|r| (r.report.gflops, value(r))).collect(),
                    point_labels: PATCHES.iter().map(|p| format!(" /{p}")).collect(),
                    markers: true,
                }
            })
            .collect()
    };
    draw(
        &ctx.dir.join("scaling.png"),
        &[
            Panel::Lines(Lines {
                title: format!("Fréchet distance (guidance 1, {} steps)", ctx.steps),
                x_label: "forward Gflops (log)".into(),
                y_label: "Fréchet distance (log)".into(),
                log_x: true,
                log_y: true,
                series: per_size(&|r| r.score.eval.frechet),
                reference: Some((format!("real vs real {floor:.1}"), floor)),
                legend: Corner::LowerLeft,
            }),
            Panel::Lines(Lines {
                title: "final training loss (last 10 % of steps)".into(),
                x_label: "forward Gflops (log)".into(),
                y_label: "loss".into(),
                log_x: true,
                log_y: false,
                series: per_size(&|r| r.final_loss),
                reference: None,
                legend: Corner::UpperRight,
            }),
        ],
    )?;

    let gflops: Vec<f64> = runs.iter().map(|r| r.report.gflops).collect();
    let frechet: Vec<f64> = runs.iter().map(|r| r.score.eval.frechet).collect();
    let loss: Vec<f64> = runs.iter().map(|r| r.final_loss).collect();
    let rho_frechet = rank_correlation(&gflops, &frechet);
    let rho_loss = rank_correlation(&gflops, &loss);
    // Sizes whose Fréchet distance falls at every halving of the patch.
    let patch_order = (0..SIZES.len())
        .filter(|&s| {
            let f = &frechet[s * PATCHES.len()..(s + 1) * PATCHES.len()];
            f.windows(2).all(|w| w[1] < w[0])
        })
        .count();
    let best = runs
        .iter()
        .min_by(|a, b| a.score.eval.frechet.total_cmp(&b.score.eval.frechet))
        .expect("nine runs");

    let body = format!(
        "{}\nFinal loss: the mean of the last 10 % of the steps (DiT's hybrid loss, ε-MSE plus the \
         variational-bound term of the learned variance). Accuracy and Fréchet distance: {} \
         samples, unguided, against real images of {}; the real-vs-real floor is {floor:.1}. \
         Spearman rank correlation with Gflops: Fréchet {rho_frechet:.2}, final loss \
         {rho_loss:.2} (−1: always better with more compute). Sizes where every smaller patch \
         lowered the Fréchet distance: {patch_order} of {}.\n",
        table.to_markdown(),
        runs[0].score.eval.n,
        ctx.data.name(),
        SIZES.len()
    );
    let rows = runs
        .iter()
        .map(|r| {
            let mut fields = run_fields("config", r);
            fields.push(("train_seconds", Json::num(r.report.train_seconds, 1)));
            fields.push(("losses_tail_fraction", Json::num(0.1, 2)));
            Json::obj(fields)
        })
        .collect();
    Ok(Outcome {
        title: "Scaling: Fréchet distance and loss against Gflops".into(),
        body,
        full: Json::Arr(rows),
        headline: vec![
            ("best".into(), Json::str(best.spec.label.as_str())),
            ("best_frechet".into(), Json::num(best.score.eval.frechet, 3)),
            ("frechet_floor".into(), Json::num(floor, 3)),
            ("spearman_gflops_frechet".into(), Json::num(rho_frechet, 3)),
            ("spearman_gflops_loss".into(), Json::num(rho_loss, 3)),
            (
                "sizes_where_smaller_patch_helps".into(),
                Json::Num(patch_order as f64),
            ),
            (
                "frechet".into(),
                Json::obj(
                    runs.iter()
                        .map(|r| (r.spec.label.clone(), Json::num(r.score.eval.frechet, 2))),
                ),
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_correlation_is_spearman() {
        assert_eq!(rank_correlation(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), 1.0);
        assert_eq!(rank_correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        assert_eq!(
            rank_correlation(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]),
            0.8
        );
    }
}
