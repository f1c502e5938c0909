//! Experiment 4, the classifier-free guidance sweep (Ho & Salimans 2022; DiT's Table 4 and
//! its samples use scales 1.5 and 4): one DiT-tiny/2 sampled with DDIM at scales 1 to 8,
//! each scored on class accuracy (fidelity) and Fréchet distance (which also sees diversity).
//! Every scale starts from the same noise.

use super::plot::{draw, Corner, Line, Lines, Panel};
use super::report::{percent, Json, Table};
use super::runs::{reference_dit, score_ddim, Score};
use super::setup::Setup;
use super::{Context, Outcome};
use crate::error::Result;
use crate::io::progress::{progress, say};
use crate::models::load_model;

/// The guidance scales of the sweep.
pub const SCALES: [f32; 7] = [1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0];

pub fn run(ctx: &Context, setup: &Setup) -> Result<Outcome> {
    let (ckpt, provenance) = reference_dit(ctx, setup)?;
    println!(
        "\n{}: sampling {provenance} at guidance {SCALES:?}",
        ctx.name
    );
    let loaded = load_model(&ckpt)?;
    let bar = progress(SCALES.len() as u64, "guidance");
    let mut scores: Vec<Score> = Vec::new();
    for &s in &SCALES {
        bar.set_message(format!("scale {s}"));
        let score = score_ddim(ctx, setup, &loaded, s)?;
        say(&bar, format!("guidance {s}: {}", score.eval));
        scores.push(score);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let floor = scores[0].eval.frechet_floor;

    let mut table = Table::new(&["guidance", "accuracy", "Fréchet", "sampling s"]);
    for (s, sc) in SCALES.iter().zip(&scores) {
        table.push(vec![
            s.to_string(),
            percent(sc.eval.accuracy),
            format!("{:.1}", sc.eval.frechet),
            format!("{:.1}", sc.sample_seconds),
        ]);
    }
    let pts = |f: &dyn Fn(&Score) -> f64| -> Vec<(f64, f64)> {
        SCALES
            .iter()
            .zip(&scores)
            .map(|(&s, sc)| (s as f64, f(sc)))
            .collect()
    };
    let line = |name: &str, points| Line {
        name: name.into(),
        points,
        markers: true,
        ..Line::default()
    };
    draw(
        &ctx.dir.join("guidance.png"),
        &[
            Panel::Lines(Lines {
                title: "class accuracy".into(),
                x_label: "guidance scale".into(),
                y_label: "accuracy, %".into(),
                series: vec![line("accuracy", pts(&|s| 100.0 * s.eval.accuracy))],
                ..Lines::default()
            }),
            Panel::Lines(Lines {
                title: "Fréchet distance".into(),
                x_label: "guidance scale".into(),
                y_label: "Fréchet distance (log)".into(),
                log_y: true,
                series: vec![line("Fréchet", pts(&|s| s.eval.frechet))],
                reference: Some((format!("real vs real {floor:.1}"), floor)),
                legend: Corner::LowerRight,
                ..Lines::default()
            }),
            Panel::Lines(Lines {
                title: "the trade-off (labels: scale)".into(),
                x_label: "Fréchet distance (log)".into(),
                y_label: "accuracy, %".into(),
                log_x: true,
                series: vec![Line {
                    point_labels: SCALES.iter().map(|s| format!(" {s}")).collect(),
                    ..line(
                        "guidance 1 → 8",
                        scores
                            .iter()
                            .map(|s| (s.eval.frechet, 100.0 * s.eval.accuracy))
                            .collect(),
                    )
                }],
                ..Lines::default()
            }),
        ],
    )?;
    let best = SCALES
        .iter()
        .zip(&scores)
        .min_by(|a, b| a.1.eval.frechet.total_cmp(&b.1.eval.frechet))
        .expect("seven scales");
    let body = format!(
        "Model: {provenance}.\n\n{}\nDDIM {} steps, {} samples per scale, the same starting noise \
         at every scale; the real-vs-real floor is {floor:.1}.\n",
        table.to_markdown(),
        ctx.sample_steps,
        scores[0].eval.n
    );
    let rows = SCALES
        .iter()
        .zip(&scores)
        .map(|(&s, sc)| {
            Json::obj([
                ("guidance", Json::Num(s as f64)),
                ("accuracy", Json::num(sc.eval.accuracy, 6)),
                ("frechet", Json::num(sc.eval.frechet, 6)),
                ("frechet_floor", Json::num(sc.eval.frechet_floor, 6)),
                ("sample_seconds", Json::num(sc.sample_seconds, 2)),
            ])
        })
        .collect();
    Ok(Outcome {
        title: "Classifier-free guidance: accuracy and Fréchet distance against scale".into(),
        body,
        full: Json::obj([
            ("model", Json::str(provenance.as_str())),
            ("scales", Json::Arr(rows)),
        ]),
        headline: vec![
            ("model".into(), Json::str(provenance.as_str())),
            ("best_frechet_scale".into(), Json::Num(*best.0 as f64)),
            ("frechet_floor".into(), Json::num(floor, 3)),
            (
                "accuracy".into(),
                Json::Arr(
                    scores
                        .iter()
                        .map(|s| Json::num(s.eval.accuracy, 4))
                        .collect(),
                ),
            ),
            (
                "frechet".into(),
                Json::Arr(
                    scores
                        .iter()
                        .map(|s| Json::num(s.eval.frechet, 2))
                        .collect(),
                ),
            ),
        ],
    })
}
