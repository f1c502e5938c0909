//! The video commands run as a user runs them: a tiny VAE, `encode-video`, `train --model
//! video-…`, `inflate`, `sample-video` (GIF, PNG strip, another clip length) — and every bad
//! input exits non-zero with a message naming the problem and the fix, never a panic.

mod support;

use minisora::vae::train::train_vae;
use support::cli::{fails, ok, run};
use support::{tiny_vae, TempDir};

#[test]
fn the_video_commands_round_trip_and_reject_bad_input() {
    let tmp = TempDir::new("cli-video");
    let d = tmp.0.as_path();
    let vae = train_vae(&tiny_vae(d.join("vae"))).unwrap().checkpoint;
    let vae = vae.to_str().unwrap();

    // clips → latent clips (N, z, F, h, w)
    ok(
        d,
        &[
            "encode-video",
            "--vae",
            vae,
            "--n",
            "40",
            "--frames",
            "2",
            "--out",
            "clips.safetensors",
        ],
    );
    let common = [
        "--data",
        "latents:clips.safetensors",
        "--vae",
        vae,
        "--steps",
        "2",
        "--batch",
        "4",
        "--sample-steps",
        "2",
    ];
    let train = |layout: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--model",
            "video-mini/2",
            "--layout",
            layout,
            "--out",
            out,
        ];
        args.extend_from_slice(&common);
        args.extend_from_slice(extra);
        run(d, &args)
    };
    let (trained, out, err) = train("factorized", "run", &[]);
    assert!(trained, "train: {err}");
    assert!(out.contains("\"model\":\"video\""), "{out}");
    assert!(d.join("run/samples.gif").is_file() && d.join("run/video.safetensors").is_file());

    // an image DiT on the frames, inflated, trained further from the inflated weights
    ok(
        d,
        &[
            "encode",
            "--checkpoint",
            vae,
            "--data",
            "digits",
            "--n",
            "20",
            "--out",
            "images.safetensors",
        ],
    );
    let image_args = [
        "train",
        "--model",
        "dit-mini/2",
        "--data",
        "latents:images.safetensors",
        "--vae",
        vae,
        "--steps",
        "2",
        "--batch",
        "4",
        "--sample-steps",
        "2",
        "--out",
        "image",
    ];
    ok(d, &image_args);
    ok(
        d,
        &[
            "inflate",
            "--ckpt",
            "image/dit.safetensors",
            "--frames",
            "2",
            "--motions",
            "4",
            "--out",
            "inflated.safetensors",
        ],
    );
    let (from_inflated, _, err) = train("alternating", "run2", &["--init", "inflated.safetensors"]);
    assert!(from_inflated, "train --init: {err}");

    // sample-video: one (digit, motion), another length, a GIF and a PNG strip
    let ckpt = "run/video.safetensors";
    let sample = [
        "sample-video",
        "--ckpt",
        ckpt,
        "--vae",
        vae,
        "--steps",
        "2",
        "--n",
        "2",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        sample
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect()
    };
    ok(
        d,
        &with(&[
            "--digit", "3", "--motion", "left", "--frames", "4", "--out", "c.gif",
        ]),
    );
    assert!(d.join("c.gif").is_file() && d.join("c.png").is_file());

    // bad input: each names the problem and the fix
    fails(
        d,
        &with(&["--frames", "0"]),
        &["0 frames", "between 1 and 32"],
    );
    fails(
        d,
        &with(&["--frames", "40"]),
        &["40 frames", "between 1 and 32"],
    );
    fails(
        d,
        &with(&["--digit", "3", "--motion", "sideways"]),
        &["sideways", "left"],
    );
    fails(
        d,
        &with(&["--digit", "3"]),
        &["--digit and --motion go together"],
    );
    fails(
        d,
        &with(&["--class", "3", "--digit", "3"]),
        &["either --class"],
    );
    fails(
        d,
        &[
            "sample-video",
            "--ckpt",
            "image/dit.safetensors",
            "--vae",
            vae,
            "--frames",
            "4",
        ],
        &["image model"],
    );
    fails(
        d,
        &[
            "evaluate-video",
            "--ckpt",
            "image/dit.safetensors",
            "--vae",
            vae,
        ],
        &["image model", "video checkpoint"],
    );
    fails(
        d,
        &["inflate", "--ckpt", ckpt, "--out", "x.safetensors"],
        &["video DiT, not an image DiT"],
    );
    fails(
        d,
        &[
            "inflate",
            "--ckpt",
            "image/dit.safetensors",
            "--layout",
            "full",
            "--out",
            "x.safetensors",
        ],
        &["full layout cannot be inflated"],
    );
    fails(
        d,
        &[
            "inflate",
            "--ckpt",
            "image/dit.safetensors",
            "--layout",
            "sideways",
            "--out",
            "x.safetensors",
        ],
        &["unknown attention layout"],
    );
    assert!(
        !d.join("x.safetensors").exists(),
        "a failed inflate left a file"
    );
    let (bad, _, err) = train("diagonal", "bad", &[]);
    assert!(!bad && err.contains("unknown attention layout"), "{err}");
    let (bad, _, err) = train("alternating", "bad", &["--init", "run/video.safetensors"]);
    assert!(!bad && err.contains("is not the one asked for"), "{err}");
    fails(
        d,
        &[
            "train",
            "--model",
            "video-mini/2",
            "--data",
            "latents:images.safetensors",
            "--vae",
            vae,
            "--steps",
            "1",
        ],
        &["does not hold clips"],
    );
    fails(
        d,
        &[
            "train",
            "--model",
            "dit-mini/2",
            "--data",
            "latents:clips.safetensors",
            "--vae",
            vae,
            "--steps",
            "1",
        ],
        &["does not hold images"],
    );
    fails(
        d,
        &[
            "encode-video",
            "--vae",
            vae,
            "--frames",
            "0",
            "--out",
            "y.safetensors",
        ],
        &["0 frames"],
    );
    assert!(!d.join("y.safetensors").exists());
}
