//! Experiment 3, the U-Net against DiT at matched compute: ADM's U-Net, its width chosen so
//! that its forward Gflops are the closest to DiT-tiny/2's, and DiT-tiny/2, on the same
//! latents, steps and batch, each at the learning rate measured best for it (the U-Net's
//! trainer default 1e-3, the demo's 3e-3 for DiT) with the CPU recipe's warm-up, decay and
//! clipping; and DiT-tiny/2 once more with its paper's recipe (1e-4, constant, no clipping). Both predict ε only with the same fixed
//! variance, so their losses are the same ε-MSE and comparable (the demo's DiT also learns
//! the variance, which adds the variational-bound term to its loss).

use super::plot::{draw, loss_lines, Bars, Lines, Panel};
use super::report::{percent, Json, Table};
use super::runs::{run_fields, train_all, Model, RunSpec};
use super::setup::Setup;
use super::{Context, Outcome};
use crate::demo::{DEMO_DIT, DEMO_LR};
use crate::dit::{dit_flops, DiTConfig};
use crate::error::Result;
use crate::models::dit::dit_options;
use crate::models::unet::{default_config, default_options};
use crate::models::Recipe;
use crate::tensor::rng;
use crate::unet::{UNet, UNetConfig};

/// DiT-tiny/2 without the learned variance (ε only, as the U-Net).
pub fn dit_config() -> Result<DiTConfig> {
    Ok(DiTConfig {
        learn_sigma: false,
        ..DiTConfig::named(DEMO_DIT, 8, 4, 10)?
    })
}

/// The U-Net on 8×8×4 latents with 10 classes whose `model_channels` (even, 16 to 64) gives
/// the forward flops closest to `target`. Its GroupNorms keep the U-Net chapter's 8 groups
/// when they divide the width, else 6 or 4 (a width of 30 needs 6).
pub fn matched_unet(target: u64) -> Result<(UNetConfig, u64)> {
    let mut best: Option<(UNetConfig, u64)> = None;
    for mc in (16..=64).step_by(2) {
        let Some(groups) = [8, 6, 4].into_iter().find(|g| mc % g == 0) else {
            continue;
        };
        let config = UNetConfig {
            in_channels: 4,
            out_channels: 4,
            model_channels: mc,
            groups,
            num_classes: Some(10),
            ..default_config()
        };
        let flops = UNet::new(config.clone(), &mut rng(0))?.flops(8, 8);
        let off = |f: u64| (f as f64 / target as f64).ln().abs();
        if best.as_ref().is_none_or(|(_, b)| off(flops) < off(*b)) {
            best = Some((config, flops));
        }
    }
    Ok(best.expect("candidates"))
}

pub fn run(ctx: &Context, setup: &Setup) -> Result<Outcome> {
    let dit = dit_config()?;
    let (unet, unet_flops) = matched_unet(dit_flops(&dit))?;
    let ratio = unet_flops as f64 / dit_flops(&dit) as f64;
    let specs = [
        RunSpec {
            label: format!(
                "U-Net (width {}, {} groups)",
                unet.model_channels, unet.groups
            ),
            model: Model::UNet(unet.clone()),
            lr: default_options().lr,
            recipe: Recipe::Cpu,
        },
        RunSpec {
            label: format!("{DEMO_DIT} (ε only)"),
            model: Model::DiT(dit.clone()),
            lr: DEMO_LR,
            recipe: Recipe::Cpu,
        },
        RunSpec {
            label: format!("{DEMO_DIT} (ε only), paper recipe"),
            model: Model::DiT(dit),
            lr: dit_options(Recipe::Paper).lr,
            recipe: Recipe::Paper,
        },
    ];
    let runs = train_all(ctx, setup, &specs, "")?;
    let floor = runs[0].score.eval.frechet_floor;
    let mut table = Table::new(&[
        "model",
        "lr",
        "params",
        "Gflops",
        "final loss (ε-MSE)",
        "accuracy",
        "Fréchet",
        "train img/s",
        "sampling s",
    ]);
    for r in &runs {
        table.push(vec![
            r.spec.label.clone(),
            format!("{:e}", r.spec.lr),
            r.report.params.to_string(),
            format!("{:.4}", r.report.gflops),
            format!("{:.4}", r.final_loss),
            percent(r.score.eval.accuracy),
            format!("{:.1}", r.score.eval.frechet),
            format!("{:.0}", r.report.images_per_second),
            format!("{:.1}", r.score.sample_seconds),
        ]);
    }
    let stride = (ctx.steps as usize / 200).max(1);
    let names: Vec<String> = runs.iter().map(|r| r.spec.label.clone()).collect();
    draw(
        &ctx.dir.join("unet-vs-dit.png"),
        &[
            Panel::Lines(Lines {
                title: "training loss, ε-MSE (moving average 0.98)".into(),
                x_label: "step".into(),
                y_label: "loss (log)".into(),
                log_y: true,
                series: loss_lines(&runs, stride),
                ..Lines::default()
            }),
            Panel::Bars(Bars {
                title: format!("Fréchet distance after {} steps", ctx.steps),
                y_label: "Fréchet distance (guidance 1)".into(),
                categories: names.clone(),
                values: runs.iter().map(|r| r.score.eval.frechet).collect(),
                reference: Some((format!("real vs real {floor:.1}"), floor)),
            }),
            Panel::Bars(Bars {
                title: "class accuracy (guidance 1)".into(),
                y_label: "accuracy, %".into(),
                categories: names,
                values: runs.iter().map(|r| 100.0 * r.score.eval.accuracy).collect(),
                reference: None,
            }),
        ],
    )?;
    let body = format!(
        "{}\nThe U-Net is the U-Net chapter's (two levels, attention at 4×4) at the width whose \
         forward Gflops are closest to DiT's: {ratio:.2}× DiT-tiny/2's. Final loss: the mean of the last 10 % of the steps, the same \
         ε-MSE for both (DiT here predicts ε only, without the learned variance). The first two \
         train with the CPU recipe (warm-up, cosine decay to a tenth, clipping at 1), the last \
         with DiT's paper recipe (a constant 1e-4, no warm-up, no clipping). Accuracy and \
         Fréchet distance: {} unguided samples; the real-vs-real floor is {floor:.1}. Sampling s: \
         the DDIM-{} sampling of those samples.\n",
        table.to_markdown(),
        runs[0].score.eval.n,
        ctx.sample_steps
    );
    let rows = runs
        .iter()
        .map(|r| {
            let mut fields = run_fields("model", r);
            fields.push(("lr", Json::Num(r.spec.lr as f64)));
            fields.push(("sample_seconds", Json::num(r.score.sample_seconds, 2)));
            Json::obj(fields)
        })
        .collect();
    let (u, d, p) = (&runs[0], &runs[1], &runs[2]);
    Ok(Outcome {
        title: "U-Net vs DiT at matched Gflops".into(),
        body,
        full: Json::Arr(rows),
        headline: vec![
            (
                "unet_model_channels".into(),
                Json::Num(unet.model_channels as f64),
            ),
            ("unet_groups".into(), Json::Num(unet.groups as f64)),
            ("gflops_ratio".into(), Json::num(ratio, 3)),
            ("unet_frechet".into(), Json::num(u.score.eval.frechet, 3)),
            ("dit_frechet".into(), Json::num(d.score.eval.frechet, 3)),
            ("unet_accuracy".into(), Json::num(u.score.eval.accuracy, 4)),
            ("dit_accuracy".into(), Json::num(d.score.eval.accuracy, 4)),
            ("unet_final_loss".into(), Json::num(u.final_loss, 5)),
            ("dit_final_loss".into(), Json::num(d.final_loss, 5)),
            (
                "dit_paper_frechet".into(),
                Json::num(p.score.eval.frechet, 3),
            ),
            (
                "dit_paper_accuracy".into(),
                Json::num(p.score.eval.accuracy, 4),
            ),
            ("frechet_floor".into(), Json::num(floor, 3)),
        ],
    })
}
