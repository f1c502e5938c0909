//! Experiment 2, the conditioning ablation (Peebles & Xie 2023, section 3.2 and Figure 5):
//! DiT-tiny/2 with each of the four ways of feeding the timestep and class to the blocks —
//! in-context tokens, cross-attention, adaLN and adaLN-Zero — trained for the same steps and
//! scored unguided. The paper: adaLN-Zero has the lowest FID at every point of training and
//! is also the cheapest in Gflops after in-context; adaLN without the zero start trails it.

use super::plot::{draw, smoothed, Bars, Line, Lines, Panel};
use super::report::{percent, Json, Table};
use super::runs::{train_and_score, Model, Run, RunSpec};
use super::setup::Setup;
use super::{Context, Outcome};
use crate::demo::{DEMO_DIT, DEMO_LR};
use crate::dit::{Conditioning, DiTConfig};
use crate::error::Result;

/// The four runs, in the paper's order.
pub fn specs() -> Result<Vec<RunSpec>> {
    Conditioning::ALL
        .into_iter()
        .map(|c| {
            Ok(RunSpec {
                label: c.name().to_string(),
                model: Model::DiT(DiTConfig {
                    conditioning: c,
                    ..DiTConfig::named(DEMO_DIT, 8, 4, 10)?
                }),
                lr: DEMO_LR,
            })
        })
        .collect()
}

pub fn run(ctx: &Context, setup: &Setup) -> Result<Outcome> {
    let specs = specs()?;
    let mut runs: Vec<Run> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        println!("\n[{}/{}] {DEMO_DIT}, {}", i + 1, specs.len(), spec.label);
        runs.push(train_and_score(ctx, setup, spec)?);
    }
    let floor = runs[0].score.eval.frechet_floor;

    let mut table = Table::new(&[
        "conditioning",
        "params",
        "Gflops",
        "final loss",
        "accuracy",
        "Fréchet",
        "train img/s",
    ]);
    for r in &runs {
        table.push(vec![
            r.spec.label.clone(),
            r.report.params.to_string(),
            format!("{:.4}", r.report.gflops),
            format!("{:.4}", r.final_loss),
            percent(r.score.eval.accuracy),
            format!("{:.1}", r.score.eval.frechet),
            format!("{:.0}", r.report.images_per_second),
        ]);
    }
    let stride = (ctx.steps as usize / 200).max(1);
    draw(
        &ctx.dir.join("conditioning.png"),
        &[
            Panel::Lines(Lines {
                title: format!("{DEMO_DIT} training loss (moving average 0.98)"),
                x_label: "step".into(),
                y_label: "loss (log)".into(),
                log_x: false,
                log_y: true,
                series: runs
                    .iter()
                    .map(|r| Line {
                        name: r.spec.label.clone(),
                        points: smoothed(&r.report.losses, 0.98, stride),
                        ..Line::default()
                    })
                    .collect(),
                ..Lines::default()
            }),
            Panel::Bars(Bars {
                title: format!("Fréchet distance after {} steps (guidance 1)", ctx.steps),
                y_label: "Fréchet distance".into(),
                categories: runs.iter().map(|r| r.spec.label.clone()).collect(),
                values: runs.iter().map(|r| r.score.eval.frechet).collect(),
                reference: Some((format!("real vs real {floor:.1}"), floor)),
            }),
        ],
    )?;
    let best = runs
        .iter()
        .min_by(|a, b| a.score.eval.frechet.total_cmp(&b.score.eval.frechet))
        .expect("four runs");
    let body = format!(
        "{}\nFinal loss: the mean of the last 10 % of the steps (the hybrid loss). Accuracy and \
         Fréchet distance: {} unguided samples; the real-vs-real floor is {floor:.1}. Gflops as \
         `dit_flops` counts them for each mechanism.\n",
        table.to_markdown(),
        runs[0].score.eval.n
    );
    let rows = runs
        .iter()
        .map(|r| {
            Json::obj([
                ("conditioning", Json::str(r.spec.label.as_str())),
                ("params", Json::Num(r.report.params as f64)),
                ("gflops", Json::num(r.report.gflops, 6)),
                ("final_loss", Json::num(r.final_loss, 5)),
                ("accuracy", Json::num(r.score.eval.accuracy, 6)),
                ("frechet", Json::num(r.score.eval.frechet, 6)),
                ("frechet_floor", Json::num(r.score.eval.frechet_floor, 6)),
                (
                    "train_images_per_second",
                    Json::num(r.report.images_per_second, 1),
                ),
            ])
        })
        .collect();
    Ok(Outcome {
        title: format!("Conditioning: four ways into {DEMO_DIT}"),
        body,
        full: Json::Arr(rows),
        headline: vec![
            ("best".into(), Json::str(best.spec.label.as_str())),
            ("frechet_floor".into(), Json::num(floor, 3)),
            (
                "frechet".into(),
                Json::obj(
                    runs.iter()
                        .map(|r| (r.spec.label.clone(), Json::num(r.score.eval.frechet, 2))),
                ),
            ),
            (
                "final_loss".into(),
                Json::obj(
                    runs.iter()
                        .map(|r| (r.spec.label.clone(), Json::num(r.final_loss, 4))),
                ),
            ),
        ],
    })
}
