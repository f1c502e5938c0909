//! Conditioning on frames as a user runs it: `train --frame-mask`, then `sample-video`
//! with `--first-frame` (image → video), `--extend` (a clip `--raw` wrote, continued into
//! longer clips) and `--first-frame` with `--last-frame` (interpolation) — and every bad
//! input (a picture of the wrong size or channels, a file that is no GIF, a clip with nothing
//! left to generate, a bad mask) exits non-zero with a message, never a panic.

mod support;

use minisora::vae::train::train_vae;
use std::path::Path;
use support::cli::{fails, ok, run};
use support::{tiny_vae, TempDir};

/// A `side`×`side` picture: grayscale (a bright square on black), or RGB.
fn picture(path: &Path, side: u32, rgb: bool) {
    let bright = |x: u32, y: u32| (8..16).contains(&x) && (8..16).contains(&y);
    if rgb {
        image::RgbImage::from_fn(side, side, |x, y| {
            image::Rgb([255 * u8::from(bright(x, y)); 3])
        })
        .save(path)
        .unwrap();
    } else {
        image::GrayImage::from_fn(side, side, |x, y| {
            image::Luma([255 * u8::from(bright(x, y))])
        })
        .save(path)
        .unwrap();
    }
}

/// `sample-video` of class 5, two clips, three steps, and `extra`.
fn sample_args<'a>(ckpt: &'a str, vae: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "sample-video",
        "--ckpt",
        ckpt,
        "--vae",
        vae,
        "--class",
        "5",
        "--n",
        "2",
        "--steps",
        "3",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn frames_are_given_and_bad_input_is_refused() {
    let tmp = TempDir::new("cli-frames");
    let d = tmp.0.as_path();
    let vae = train_vae(&tiny_vae(d.join("vae"))).unwrap().checkpoint;
    let vae = vae.to_str().unwrap();
    ok(
        d,
        &[
            "encode-video",
            "--vae",
            vae,
            "--n",
            "40",
            "--frames",
            "4",
            "--out",
            "clips.safetensors",
        ],
    );
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--model",
            "video-mini/2",
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
            "--out",
            "run",
        ];
        args.extend_from_slice(extra);
        run(d, &args)
    };
    let (trained, _, err) = train(&["--frame-mask", "0.5:image_head,interpolate"]);
    assert!(trained, "train --frame-mask: {err}");
    let (_, _, err) = train(&["--frame-mask", "0.5:first"]);
    assert!(
        err.contains("frame-mask kind") && !err.contains("panicked"),
        "{err}"
    );
    // an image model takes no frame mask
    fails(
        d,
        &[
            "train",
            "--model",
            "dit-mini/2",
            "--data",
            "digits",
            "--pixels",
            "--n",
            "64",
            "--steps",
            "1",
            "--frame-mask",
            "0.5:image_head",
            "--out",
            "img",
        ],
        &["does not take frame masks"],
    );

    let ckpt = "run/video.safetensors";
    let sample = |extra: &[&'static str]| sample_args(ckpt, vae, extra);
    picture(&d.join("first.png"), 32, false);
    // image → video, and the clip at the model's size for --extend
    let out = ok(
        d,
        &sample(&["--first-frame", "first.png", "--raw", "--out", "i2v.gif"]),
    );
    assert!(out.contains("\"given\":[0]"), "{out}");
    for f in ["i2v.gif", "i2v.png", "i2v-raw.gif", "i2v-frame0.png"] {
        assert!(d.join(f).is_file(), "{f} missing");
    }
    // the first frame a sample wrote is a valid --first-frame; interpolation
    let out = ok(
        d,
        &sample(&[
            "--first-frame",
            "i2v-frame0.png",
            "--last-frame",
            "first.png",
            "--out",
            "mid.gif",
        ]),
    );
    assert!(out.contains("\"given\":[0,3]"), "{out}");
    // continue the 4-frame clip into 6 frames
    let out = ok(
        d,
        &sample(&[
            "--extend",
            "i2v-raw.gif",
            "--frames",
            "6",
            "--out",
            "ext.gif",
        ]),
    );
    assert!(out.contains("\"given\":[0,1,2,3]"), "{out}");

    // bad input: clear errors, no panic
    picture(&d.join("small.png"), 16, false);
    picture(&d.join("colour.png"), 32, true);
    std::fs::write(d.join("not.gif"), b"GIF89a but not really").unwrap();
    fails(
        d,
        &sample(&["--first-frame", "small.png"]),
        &["16×16", "32×32"],
    );
    fails(
        d,
        &sample(&["--first-frame", "colour.png"]),
        &["3 channels", "grayscale"],
    );
    fails(
        d,
        &sample(&["--first-frame", "missing.png"]),
        &["missing.png"],
    );
    fails(
        d,
        &sample(&["--extend", "not.gif"]),
        &["not a readable GIF"],
    );
    fails(
        d,
        &sample(&["--extend", "i2v-raw.gif"]),
        &["nothing left to generate", "--frames"],
    );
    fails(
        d,
        &sample(&["--extend", "i2v-raw.gif", "--first-frame", "first.png"]),
        &["--extend with --first-frame"],
    );
    fails(d, &sample(&["--raw"]), &["--raw without given frames"]);
}
