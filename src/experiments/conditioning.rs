//! Experiment 2, the conditioning ablation (Peebles & Xie 2023, section 3.2 and Figure 5):
//! DiT-tiny/2 with each of the four ways of feeding the timestep and class to the blocks —
//! in-context tokens, cross-attention, adaLN and adaLN-Zero — trained for the same steps and
//! scored unguided. The paper: adaLN-Zero has the lowest FID at every point of training and
//! is also the cheapest in Gflops after in-context; adaLN without the zero start trails it.

use super::plot::{draw, loss_lines, Bars, Lines, Panel};
use super::report::Json;
use super::runs::{run_fields, runs_table, train_all, Model, RunSpec};
use super::setup::Setup;
use super::{Context, Outcome};
use crate::demo::{DEMO_DIT, DEMO_LR};
use crate::dit::{Conditioning, DiTConfig};
use crate::error::Result;
use crate::models::Recipe;

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
                recipe: Recipe::Cpu,
            })
        })
        .collect()
}

pub fn run(ctx: &Context, setup: &Setup) -> Result<Outcome> {
    let specs = specs()?;
    let runs = train_all(ctx, setup, &specs, &format!("{DEMO_DIT}, "))?;
    let floor = runs[0].score.eval.frechet_floor;

    let table = runs_table("conditioning", &runs);
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
                series: loss_lines(&runs, stride),
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
        .map(|r| Json::obj(run_fields("conditioning", r)))
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
