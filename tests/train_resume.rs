//! Resuming is bit-identical: a tiny model trained N steps in one go, and the same run
//! stopped at N/2 and resumed from its training checkpoint, end with bit-equal weights, EMA
//! weights, AdamW moments and losses. The comparison can fail: another seed gives other
//! tensors, resuming with a changed option is refused, and periodic sampling (which must not
//! touch the training randomness) is on in one run and off in the other.

mod support;

use minisora::data::DataSource;
use minisora::io::checkpoint::{load_tensors, Tensors};
use minisora::models::unet::train_unet;
use minisora::train::state::{read_train_state, seed_for};
use minisora::train::{Source, TrainOptions};
use minisora::unet::UNetConfig;
use std::path::{Path, PathBuf};
use support::TempDir;

const STEPS: u64 = 6;

fn unet() -> UNetConfig {
    UNetConfig {
        model_channels: 8,
        groups: 2,
        num_heads: 2,
        num_res_blocks: 1,
        ..UNetConfig::default()
    }
}

/// 8×8 digits in pixel space, cosine decay and clipping on (so the schedule and the clip are
/// part of what must resume exactly), a checkpoint every STEPS/2 steps.
fn opts(out: PathBuf, seed: u64) -> TrainOptions {
    TrainOptions {
        data: Source::Pixels(DataSource::Digits),
        n_images: 40,
        pixel_size: 8,
        steps: STEPS,
        batch: 8,
        lr: 2e-3,
        warmup_steps: 2,
        lr_decay: true,
        grad_clip: Some(1.0),
        ema_decay: 0.999,
        sample_steps: 4,
        samples_per_class: 1,
        save_every: STEPS / 2,
        seed,
        out,
        ..TrainOptions::default()
    }
}

fn tensors(path: &Path) -> Tensors {
    load_tensors(path).unwrap().0
}

/// Names of the tensors that differ in any bit (or exist in only one).
fn differing(a: &Tensors, b: &Tensors) -> Vec<String> {
    let mut names: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
    names.dedup();
    names
        .into_iter()
        .filter(|n| match (a.get(n), b.get(n)) {
            (Some(x), Some(y)) => {
                x.shape() != y.shape() || x.iter().zip(y).any(|(p, q)| p.to_bits() != q.to_bits())
            }
            _ => true,
        })
        .collect()
}

#[test]
fn resuming_half_way_is_bit_identical_to_an_uninterrupted_run() {
    let tmp = TempDir::new("resume");
    let dir = tmp.0.clone();
    // Run 1: all STEPS at once, with periodic samples.
    let one = TrainOptions {
        sample_every: 2,
        ..opts(dir.join("one"), 3)
    };
    let r1 = train_unet(&unet(), &one).unwrap();
    assert!(dir.join("one/samples_2.png").is_file());
    assert!(dir.join("one/samples_4.png").is_file());
    let half = dir.join(format!("one/train_{}.safetensors", STEPS / 2));
    let end = format!("train_{STEPS}.safetensors");

    // The checkpoint holds everything, by name.
    let (state, meta) = read_train_state(&half).unwrap();
    assert_eq!(meta["train.step"], (STEPS / 2).to_string());
    assert_eq!(meta["train.adamw_t"], (STEPS / 2).to_string());
    assert_eq!(meta["train.seed"], "3");
    assert_eq!(meta["model"], "unet");
    for name in [
        "out.2.weight",
        "ema.out.2.weight",
        "adamw.out.2.weight.exp_avg",
        "adamw.out.2.weight.exp_avg_sq",
        "train.losses",
    ] {
        assert!(state.contains_key(name), "no `{name}` in the checkpoint");
    }

    // Run 2: resumed from the half-way checkpoint, without periodic samples.
    let two = TrainOptions {
        resume: Some(half.clone()),
        ..opts(dir.join("two"), 3)
    };
    let r2 = train_unet(&unet(), &two).unwrap();
    let (a, b) = (
        tensors(&dir.join("one").join(&end)),
        tensors(&dir.join("two").join(&end)),
    );
    assert!(a.len() > 20);
    let diff = differing(&a, &b);
    assert!(
        diff.is_empty(),
        "{} of {} tensors differ after resuming, e.g. {:?}",
        diff.len(),
        a.len(),
        &diff[..diff.len().min(5)]
    );
    assert_eq!(r1.losses.len(), r2.losses.len());
    // The resumed run reports the steps it took, not the run's total.
    assert_eq!((r1.trained_steps, r2.trained_steps), (STEPS, STEPS / 2));
    // The final (EMA) checkpoints agree too.
    assert!(differing(&tensors(&r1.checkpoint), &tensors(&r2.checkpoint)).is_empty());
    // And training did move the weights after the checkpoint.
    let moved = differing(&tensors(&half), &a);
    assert!(moved.iter().any(|n| n.starts_with("ema.")), "{moved:?}");
    assert!(moved.iter().any(|n| n.starts_with("adamw.")), "{moved:?}");

    // Another seed gives other tensors everywhere: the comparison above is not vacuous.
    let other = train_unet(&unet(), &opts(dir.join("other"), 4)).unwrap();
    let c = tensors(&dir.join("other").join(&end));
    assert!(differing(&a, &c).len() > a.len() / 2);
    assert_ne!(other.losses, r1.losses);

    // Resuming with a changed seed (or lr) is refused, naming the option.
    for (changed, key) in [
        (opts(dir.join("bad"), 9), "train.opt.seed"),
        (
            TrainOptions {
                lr: 1e-3,
                ..opts(dir.join("bad"), 3)
            },
            "train.opt.lr",
        ),
    ] {
        let run = TrainOptions {
            resume: Some(half.clone()),
            ..changed
        };
        let err = train_unet(&unet(), &run).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains("--resume"), "{err}");
    }
    // A wider model does not fit the checkpoint either.
    let wide = UNetConfig {
        model_channels: 16,
        ..unet()
    };
    let err = train_unet(&wide, &two).unwrap_err().to_string();
    assert!(err.contains("unet.model_channels"), "{err}");
    // Nor does a run that is already done, or a missing file.
    let done = TrainOptions {
        resume: Some(dir.join("one").join(&end)),
        ..opts(dir.join("bad"), 3)
    };
    let err = train_unet(&unet(), &done).unwrap_err().to_string();
    assert!(err.contains("already at step 6"), "{err}");
    let missing = TrainOptions {
        resume: Some(dir.join("nope.safetensors")),
        ..opts(dir.join("bad"), 3)
    };
    let err = train_unet(&unet(), &missing).unwrap_err().to_string();
    assert!(err.contains("no training checkpoint"), "{err}");
}

#[test]
fn step_seeds_are_distinct() {
    let mut seen = std::collections::HashSet::new();
    for seed in 0..50 {
        for step in 0..200 {
            assert!(seen.insert(seed_for(seed, step)));
        }
    }
}

#[test]
fn a_tiny_dit_resumes_bit_identically_and_its_checkpoints_hold_pos_embed() {
    use minisora::dit::{load_dit, DiTConfig};
    use minisora::models::dit::train_dit;
    let tmp = TempDir::new("resume-dit");
    let dir = tmp.0.clone();
    // 2 blocks of width 32 over 2×2 patches of 8×8 digits (16 tokens), learned variance.
    let config = DiTConfig {
        input_size: 8,
        patch_size: 2,
        in_channels: 1,
        hidden_size: 32,
        depth: 2,
        num_heads: 2,
        mlp_ratio: 4.0,
        class_dropout_prob: 0.1,
        num_classes: 10,
        learn_sigma: true,
        conditioning: Default::default(),
    };
    let r1 = train_dit(&config, &opts(dir.join("one"), 3)).unwrap();
    let half = dir.join(format!("one/train_{}.safetensors", STEPS / 2));
    let two = TrainOptions {
        resume: Some(half.clone()),
        ..opts(dir.join("two"), 3)
    };
    let r2 = train_dit(&config, &two).unwrap();
    let end = format!("train_{STEPS}.safetensors");
    let (a, b) = (
        tensors(&dir.join("one").join(&end)),
        tensors(&dir.join("two").join(&end)),
    );
    for name in [
        "pos_embed",
        "blocks.1.adaLN_modulation.1.weight",
        "ema.blocks.1.adaLN_modulation.1.weight",
        "adamw.final_layer.linear.weight.exp_avg_sq",
    ] {
        assert!(
            a.contains_key(name),
            "no `{name}` in the training checkpoint"
        );
    }
    let diff = differing(&a, &b);
    assert!(
        diff.is_empty(),
        "{} tensors differ: {:?}",
        diff.len(),
        &diff[..diff.len().min(5)]
    );
    let moved = differing(&tensors(&half), &a);
    assert!(
        moved.iter().any(|n| n.starts_with("ema.blocks")),
        "{moved:?}"
    );
    assert!(differing(&tensors(&r1.checkpoint), &tensors(&r2.checkpoint)).is_empty());
    // The final checkpoint is a DiT checkpoint (with pos_embed) that load_dit rebuilds.
    let dit = load_dit(&r1.checkpoint).unwrap();
    assert_eq!(dit.config, config);
    assert!(tensors(&r1.checkpoint).contains_key("pos_embed"));
}
