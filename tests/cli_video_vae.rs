//! The video VAE as a user runs it: `train-video-vae` on a tiny image VAE, `encode-video`
//! through it (`1 + 4k` frames into `1 + k` latent frames), a video DiT trained on those
//! latents and decoded through the video VAE, images as one-frame clips trained beside them —
//! and the bad inputs: a clip length the causal VAE cannot take, a training window of the
//! wrong length. Each exits non-zero with a message naming the problem and the fix, never a
//! panic.

mod support;

use minisora::io::checkpoint::load_tensors;
use minisora::vae::train::train_vae;
use support::cli::{fails, ok};
use support::{tiny_vae, TempDir};

#[test]
fn the_video_vae_trains_encodes_decodes_and_rejects_bad_input() {
    let tmp = TempDir::new("cli-video-vae");
    let d = tmp.0.as_path();
    let vae = train_vae(&tiny_vae(d.join("vae"))).unwrap().checkpoint;
    let vae = vae.to_str().unwrap();
    let train_args = |frames: &'static str, window: &'static str| {
        vec![
            "train-video-vae",
            "--vae",
            vae,
            "--frames",
            frames,
            "--clips",
            "6",
            "--held-out",
            "2",
            "--steps",
            "2",
            "--batch",
            "2",
            "--window",
            window,
            "--width",
            "8",
            "--out",
            "vv",
        ]
    };
    let out = ok(d, &train_args("9", "5"));
    let last = out.lines().last().unwrap();
    for key in [
        "\"psnr_video_vae_db\"",
        "\"flicker_video_vae\"",
        "\"token_ratio\":3",
    ] {
        assert!(last.contains(key), "{key} not in {last}");
    }
    for file in [
        "recon.gif",
        "psnr.png",
        "flicker.png",
        "loss.png",
        "video_vae.safetensors",
    ] {
        assert!(d.join("vv").join(file).is_file(), "no {file}");
    }
    let video_vae = "vv/video_vae.safetensors";

    // 9 frames → 3 latent frames
    ok(
        d,
        &[
            "encode-video",
            "--vae",
            video_vae,
            "--frames",
            "9",
            "--n",
            "8",
            "--out",
            "lat.safetensors",
        ],
    );
    let (tensors, _) = load_tensors(&d.join("lat.safetensors")).unwrap();
    assert_eq!(tensors["mean"].shape(), &[8, 4, 3, 8, 8]);

    // a video DiT on them, its samples decoded in time by the video VAE: 9-frame GIF frames
    let out = ok(
        d,
        &[
            "train",
            "--model",
            "video-mini/2",
            "--layout",
            "full",
            "--data",
            "latents:lat.safetensors",
            "--vae",
            video_vae,
            "--steps",
            "2",
            "--batch",
            "4",
            "--sample-steps",
            "2",
            "--out",
            "run",
        ],
    );
    assert!(out.contains("\"model\":\"video\""), "{out}");
    assert!(d.join("run/samples.gif").is_file());

    // images are one-frame clips: one latent frame each, trained beside the clips as a bucket
    ok(
        d,
        &[
            "encode-video",
            "--vae",
            video_vae,
            "--frames",
            "1",
            "--n",
            "8",
            "--out",
            "img.safetensors",
        ],
    );
    let (tensors, _) = load_tensors(&d.join("img.safetensors")).unwrap();
    assert_eq!(tensors["mean"].shape(), &[8, 4, 1, 8, 8]);
    let out = ok(
        d,
        &[
            "train",
            "--model",
            "video-mini/2",
            "--layout",
            "full",
            "--data",
            "latents:lat.safetensors",
            "--buckets",
            "img.safetensors",
            "--vae",
            video_vae,
            "--steps",
            "2",
            "--batch",
            "4",
            "--out",
            "joint",
        ],
    );
    assert!(
        out.lines().last().unwrap().contains("\"buckets\":2"),
        "{out}"
    );

    fails(
        d,
        &train_args("16", "5"),
        &["16 frames", "1 + 4k", "crop the clip to 13"],
    );
    fails(d, &train_args("9", "6"), &["6 frames", "1 + 4k"]);
    fails(
        d,
        &[
            "encode-video",
            "--vae",
            video_vae,
            "--frames",
            "8",
            "--n",
            "4",
            "--out",
            "bad.safetensors",
        ],
        &["8 frames", "1 + 4k", "pad it to 9"],
    );
    assert!(
        !d.join("bad.safetensors").exists(),
        "a file was left behind"
    );
}
