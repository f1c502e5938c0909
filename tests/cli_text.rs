//! The text-to-video commands run as a user runs them: `generate` from a prompt and from a
//! file (GIF and captioned strips), `train-text` — and every bad prompt exits non-zero with a
//! message naming the problem and the fix, before anything is written; a checkpoint of
//! another vocabulary is refused.

mod support;

use minisora::models::video::{train_video, video_options};
use minisora::models::Recipe;
use minisora::tensor::rng;
use minisora::text::encoder::TextEncoderConfig;
use minisora::text::tokenizer::{vocab_fingerprint, vocab_size, MAX_LEN};
use minisora::train::{Source, TrainData, TrainOptions};
use minisora::vae::train::train_vae_on;
use minisora::video::checkpoint::check_vocabulary;
use minisora::video::colour_digits::ColourDigits;
use minisora::video::config::{CaptionConfig, VOCAB_KEY};
use minisora::video::encode::encode_captioned;
use minisora::video::held_out::Split;
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use std::collections::BTreeMap;
use std::path::Path;
use support::cli::{fails, ok};
use support::{tiny_vae, TempDir};

/// A tiny text-conditioned video DiT trained for two steps, through the library's own
/// pipeline: a tiny VAE on colour-digit frames, their captioned latent clips, the trainer.
/// Returns the checkpoint and the VAE.
fn tiny_text_model(dir: &Path) -> (String, String) {
    let gen = ColourDigits {
        frames: 2,
        ..ColourDigits::default()
    };
    let set = gen.generate(16, 0, Split::Train).unwrap();
    let held = gen.generate(2, 1, Split::Train).unwrap().frames().images;
    let vae = train_vae_on(
        &tiny_vae(dir.join("vae")),
        "colour-digits-frames",
        set.frames(),
        held,
    )
    .unwrap()
    .checkpoint;
    let latents = dir.join("latents.safetensors");
    encode_captioned(&vae, &set, &latents, "colour-digits").unwrap();
    let opts = TrainOptions {
        data: Source::Latents(latents),
        vae: vae.clone(),
        steps: 2,
        batch: 4,
        sample_steps: 2,
        out: dir.join("video"),
        ..video_options(Recipe::Cpu)
    };
    let data = TrainData::load(&opts).unwrap();
    let mut config =
        VideoDiTConfig::named("video-mini/2", Layout::Alternating, 2, 1, 8, 4, 1).unwrap();
    config.dit.hidden_size = 16;
    config.dit.num_heads = 2;
    config.dit.depth = 2;
    config.text = Some(CaptionConfig {
        encoder: TextEncoderConfig {
            vocab: vocab_size(),
            max_len: MAX_LEN,
            width: 8,
            depth: 1,
            heads: 2,
        },
        pooled: true,
        train_encoder: false,
    });
    let mut model = VideoDiT::new(config, &mut rng(0)).unwrap();
    let ckpt = train_video(&mut model, &data, &opts).unwrap().checkpoint;
    let s = |p: &Path| p.to_str().unwrap().to_string();
    (s(&ckpt), s(&vae))
}

#[test]
fn generate_writes_a_gif_and_captioned_strips_and_refuses_bad_prompts() {
    let tmp = TempDir::new("cli-text");
    let d = tmp.0.as_path();
    let (ckpt, vae) = tiny_text_model(d);
    let common = ["--ckpt", &ckpt, "--vae", &vae, "--steps", "2", "--n", "2"];
    let with = |extra: &[&'static str]| {
        let mut a: Vec<&str> = vec!["generate"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&common);
        a
    };

    // one prompt: the GIF and its strip
    let mut args = with(&["a red 3 moving left and a blue 7 moving up"]);
    args.extend(["--out", "one/clip.gif"]);
    let out = ok(d, &args);
    assert!(d.join("one/clip.gif").is_file() && d.join("one/clip.png").is_file());
    assert!(out.lines().last().unwrap().starts_with("{\"prompts\":1,"));

    // a file of prompts: a row per prompt, a strip per prompt
    std::fs::write(
        d.join("prompts.txt"),
        "a red 3 moving left\n\na green 5 moving down quickly\n",
    )
    .unwrap();
    let mut args = with(&["--prompts", "prompts.txt", "--frames", "4"]);
    args.extend(["--out", "many/grid.gif"]);
    ok(d, &args);
    for f in ["grid.gif", "grid-1.png", "grid-2.png"] {
        assert!(d.join("many").join(f).is_file(), "{f} missing");
    }

    // bad prompts: a clear error, nothing written
    let bad = |prompt: &'static str, needles: &[&str]| {
        let mut args = with(&[prompt]);
        args.extend(["--out", "bad/clip.gif"]);
        fails(d, &args, needles);
        assert!(!d.join("bad").exists(), "{prompt:?} left files behind");
    };
    bad("", &["has no words"]);
    bad("a red 3 moving lfet", &["lfet", "did you mean \"left\""]);
    bad("a purple 3 moving left", &["purple", "red, green"]);
    bad("a red 12 moving left", &["12", "0"]);
    let long: &'static str = "a red 3 moving left and a blue 7 moving up and a green 1 going \
        down slowly while the red digit 2 goes up quickly as the blue 5 moving right";
    bad(long, &["words", "24"]);
    bad(
        "a red 3 moving left and a blue 7 moving up and a green 1 moving down",
        &["two"],
    );
    bad("a red 3 moving left and a red 7 moving up", &["red"]);
    // a prompts file with a bad third line names the line
    std::fs::write(
        d.join("bad.txt"),
        "a red 3 moving left\na blue 7 moving up\na red 3 moving sideways\n",
    )
    .unwrap();
    let mut args = with(&["--prompts", "bad.txt"]);
    args.extend(["--out", "bad/clip.gif"]);
    fails(d, &args, &["bad.txt line 3", "sideways"]);
    assert!(!d.join("bad").exists());
    // a class-conditioned checkpoint is not a text model
    fails(
        d,
        &[
            "generate",
            "a red 3 moving left",
            "--ckpt",
            "missing.safetensors",
        ],
        &["missing.safetensors"],
    );
}

#[test]
fn a_checkpoint_of_another_vocabulary_is_refused() {
    let path = Path::new("model.safetensors");
    let mut meta = BTreeMap::from([(VOCAB_KEY.to_string(), vocab_fingerprint())]);
    assert!(check_vocabulary(path, &meta).is_ok());
    meta.insert(VOCAB_KEY.into(), "<pad> a the red left".into());
    let e = check_vocabulary(path, &meta).unwrap_err().to_string();
    assert!(
        e.contains("another vocabulary") && e.contains("5 words"),
        "{e}"
    );
    // a class-conditioned model has no vocabulary to disagree with
    assert!(check_vocabulary(path, &BTreeMap::new()).is_ok());
}

#[test]
fn train_text_writes_the_encoder_and_reports_retrieval() {
    let tmp = TempDir::new("cli-train-text");
    let d = tmp.0.as_path();
    let out = ok(
        d,
        &[
            "train-text",
            "--clips",
            "64",
            "--eval-clips",
            "16",
            "--steps",
            "3",
            "--batch",
            "16",
            "--frames",
            "2",
            "--out",
            "text/text_encoder.safetensors",
        ],
    );
    assert!(d.join("text/text_encoder.safetensors").is_file());
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("{\"retrieval_top1\":"), "{last}");
}
