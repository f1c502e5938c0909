//! `minisora train --recipe`: the CPU recipe is the default, the paper's stays reachable with
//! its published constants, every recipe flag overrides either, and a bad recipe or latent
//! normalisation is an error naming the choices.

use clap::Parser;
use minisora::cli::train::TrainArgs;
use minisora::models::dit::dit_options;
use minisora::models::Recipe;
use minisora::train::{NormKind, TrainOptions};

#[derive(Parser)]
struct Train {
    #[command(flatten)]
    args: TrainArgs,
}

/// The options `minisora train <flags>` resolves to.
fn options(flags: &str) -> minisora::error::Result<TrainOptions> {
    let line = format!("train --data latents:x.safetensors {flags}");
    let t = Train::try_parse_from(line.split_whitespace()).expect("flags parse");
    t.args.options().map(|(o, _)| o)
}

#[test]
fn dit_defaults_to_the_cpu_recipe() {
    let o = options("--model dit-tiny/2").unwrap();
    let cpu = dit_options(Recipe::Cpu);
    assert_eq!(
        (o.lr, o.warmup_steps, o.lr_decay, o.grad_clip),
        (cpu.lr, cpu.warmup_steps, cpu.lr_decay, cpu.grad_clip)
    );
    assert_eq!(
        (o.steps, o.batch, o.guidance),
        (cpu.steps, cpu.batch, cpu.guidance)
    );
    assert!(o.lr_decay && o.warmup_steps > 0 && o.grad_clip.is_some());
}

#[test]
fn the_paper_recipe_is_dits_train_py() {
    let o = options("--model DiT-S/2 --recipe paper").unwrap();
    assert_eq!(o.lr, 1e-4);
    assert_eq!(o.weight_decay, 0.0);
    assert_eq!(o.warmup_steps, 0);
    assert!(!o.lr_decay);
    assert_eq!(o.grad_clip, None);
    assert_eq!(o.ema_decay, 0.9999);
    assert_eq!(o.label_dropout, 0.1);
    // The U-Net's paper recipe is improved-diffusion's constant 1e-4 as well.
    let u = options("--model unet --recipe paper").unwrap();
    assert_eq!(
        (u.lr, u.warmup_steps, u.lr_decay, u.grad_clip),
        (1e-4, 0, false, None)
    );
}

#[test]
fn flags_override_either_recipe() {
    let o =
        options("--model dit-tiny/2 --recipe paper --lr 3e-3 --warmup 100 --grad-clip 1").unwrap();
    assert_eq!(
        (o.lr, o.warmup_steps, o.grad_clip, o.lr_decay),
        (3e-3, 100, Some(1.0), false)
    );
    let o =
        options("--model dit-tiny/2 --constant-lr --grad-clip 0 --latent-norm channel").unwrap();
    assert!(!o.lr_decay);
    assert_eq!(o.grad_clip, None);
    assert_eq!(o.latent_norm, NormKind::PerChannel);
    assert_eq!(
        options("--model dit-tiny/2").unwrap().latent_norm,
        NormKind::Global
    );
}

#[test]
fn a_bad_recipe_or_normalisation_names_the_choices() {
    let err = options("--model dit-tiny/2 --recipe gpu")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"gpu\"") && err.contains("--recipe cpu"),
        "{err}"
    );
    let err = options("--model dit-tiny/2 --latent-norm per-channel")
        .unwrap_err()
        .to_string();
    assert!(err.contains("--latent-norm global"), "{err}");
}
