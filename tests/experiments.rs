//! The DiT experiments (`examples/dit_experiments.rs`, `minisora::experiments`) end to end in
//! a tiny setting — a VAE of 2 steps on 200 digits, models of 3 steps of batch 8, 2 samples per
//! class over 2 DDIM steps — each in its own temporary folder: every one writes its plot, its
//! table with one row per run and its JSON, and returns its headline; the same seed gives the
//! same model and numbers; a bad name is refused with the list of names. On `--data
//! uci-digits` one runs with its own VAE, latents, classifier and real images under
//! `<out>/uci-digits/`; a bad `--data` is refused with the names.

mod support;

use clap::Parser;
use minisora::cli::demo::ExperimentArgs;
use minisora::data::DataSource;
use minisora::experiments::report::Json;
use minisora::experiments::{data_slug, results_root, run, ExperimentOptions};
use minisora::io::checkpoint::{load_tensors, read_metadata};
use minisora::metrics::classifier_path;
use minisora::vae::encode::load_latents;
use std::path::Path;
use support::TempDir;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ExperimentArgs,
}

/// The command line of a tiny run of `name` inside `dir`, with `extra` flags.
fn tiny(name: &str, dir: &Path, extra: &[&str]) -> ExperimentOptions {
    let d = |sub: &str| dir.join(sub).display().to_string();
    let (out, demo, cache) = (d("out"), d("no-demo"), d("classifier"));
    let mut argv = vec![
        "dit_experiments",
        name,
        "--out",
        &out,
        "--demo-dir",
        &demo,
        "--classifier-cache",
        &cache,
        "--steps",
        "3",
        "--batch",
        "8",
        "--per-class",
        "2",
        "--sample-steps",
        "2",
        "--vae-steps",
        "2",
        "--tiny-setup",
        "200",
    ];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().args.into()
}

/// Runs `name` tiny in a fresh folder and checks its three files and its table's rows.
fn runs_and_writes(name: &str, rows: usize) -> (TempDir, Json) {
    let tmp = TempDir::new(&format!("exp-{name}"));
    let heads = run(&tiny(name, &tmp.0, &[])).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(heads.len(), 1);
    let head = heads[0].clone();
    assert_eq!(head.get("experiment"), Some(&Json::str(name)));
    assert_eq!(head.get("data"), Some(&Json::str("digits")));
    assert!(head.get("wall_seconds").and_then(Json::as_f64).unwrap() > 0.0);
    let dir = tmp.0.join("out").join(name);
    let png = std::fs::read(dir.join(format!("{name}.png"))).unwrap();
    assert_eq!(&png[1..4], b"PNG", "{name}.png is not a PNG");
    let md = std::fs::read_to_string(dir.join(format!("{name}.md"))).unwrap();
    let table_rows = md.lines().filter(|l| l.starts_with("| ")).count() - 1; // minus the header
    assert_eq!(table_rows, rows, "{name}.md:\n{md}");
    assert!(
        md.contains("--steps 3"),
        "the command is stated with its overrides:\n{md}"
    );
    let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    assert!(
        json.starts_with("{\"command\":") && json.contains("\"results\":"),
        "{json}"
    );
    assert!(
        json.contains(&head.to_line()),
        "the JSON file holds the headline"
    );
    (tmp, head)
}

#[test]
fn scaling_trains_nine_configs() {
    let (_tmp, head) = runs_and_writes("scaling", 9);
    assert!(head.get("spearman_gflops_frechet").is_some());
}

#[test]
fn conditioning_trains_the_four_mechanisms() {
    let (_tmp, head) = runs_and_writes("conditioning", 4);
    let Some(Json::Obj(frechet)) = head.get("frechet") else {
        panic!("{}", head.to_line())
    };
    let names: Vec<&str> = frechet.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["in-context", "cross-attention", "adaln", "adaln-zero"]
    );
}

#[test]
fn unet_vs_dit_matches_the_gflops() {
    let (_tmp, head) = runs_and_writes("unet-vs-dit", 3);
    let ratio = head.get("gflops_ratio").and_then(Json::as_f64).unwrap();
    assert!((ratio - 1.0).abs() < 0.15, "U-Net/DiT Gflops {ratio}");
}

#[test]
fn samplers_sweep_both_samplers() {
    runs_and_writes("samplers", 8);
}

/// The per-scale results of a guidance run's JSON without the measured times.
fn results_without_times(dir: &Path, name: &str) -> String {
    let json =
        std::fs::read_to_string(dir.join("out").join(name).join(format!("{name}.json"))).unwrap();
    let results = &json[json.find("\"scales\":").unwrap()..];
    results
        .split("\"sample_seconds\":")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                &part[part.find([',', '}']).unwrap()..]
            }
        })
        .collect()
}

#[test]
fn guidance_is_seeded_and_sweeps_seven_scales() {
    let (a, head) = runs_and_writes("guidance", 7);
    let Some(Json::Arr(acc)) = head.get("accuracy") else {
        panic!("{}", head.to_line())
    };
    assert_eq!(acc.len(), 7);
    // Same seed, another folder: the same reference model, bit for bit, and the same scores.
    let b = TempDir::new("exp-guidance-again");
    run(&tiny("guidance", &b.0, &[])).unwrap();
    // The tensors only: the metadata names the run's folder.
    let model = |t: &TempDir| {
        load_tensors(&t.0.join("out/reference/dit.safetensors"))
            .unwrap()
            .0
    };
    assert!(model(&a) == model(&b), "same seed, different models");
    assert_eq!(
        results_without_times(&a.0, "guidance"),
        results_without_times(&b.0, "guidance")
    );
    // Another seed: another model.
    let c = TempDir::new("exp-guidance-seed");
    run(&tiny("guidance", &c.0, &["--seed", "1"])).unwrap();
    assert!(model(&a) != model(&c), "the seed changed nothing");
}

#[test]
fn a_bad_experiment_name_is_refused_with_the_names() {
    let tmp = TempDir::new("exp-bad");
    let err = run(&tiny("scalng", &tmp.0, &[])).unwrap_err().to_string();
    assert!(err.contains("unknown experiment \"scalng\""), "{err}");
    for name in [
        "scaling",
        "conditioning",
        "unet-vs-dit",
        "guidance",
        "samplers",
        "all",
    ] {
        assert!(err.contains(name), "{err}");
    }
    assert!(
        !tmp.0.join("out").exists(),
        "nothing is written for a bad name"
    );
}

#[test]
fn uci_digits_makes_its_own_setup_and_folder() {
    let tmp = TempDir::new("exp-uci");
    let heads = run(&tiny("unet-vs-dit", &tmp.0, &["--data", "uci-digits"])).unwrap();
    let head = &heads[0];
    assert_eq!(
        head.get("data"),
        Some(&Json::str("uci-digits")),
        "{}",
        head.to_line()
    );
    // Everything of the data under <out>/uci-digits/; nothing where the digits' results go.
    let root = tmp.0.join("out").join("uci-digits");
    for f in ["png", "md", "json"] {
        let path = root.join("unet-vs-dit").join(format!("unet-vs-dit.{f}"));
        assert!(path.is_file(), "{} is missing", path.display());
    }
    for gone in ["unet-vs-dit", "setup"] {
        assert!(
            !tmp.0.join("out").join(gone).exists(),
            "out/{gone} was written"
        );
    }
    // Its own VAE, latents (the 200 of --tiny-setup) and classifier, all of uci-digits.
    let vae = read_metadata(&root.join("setup/vae/vae.safetensors")).unwrap();
    assert_eq!(vae.get("vae.data").map(String::as_str), Some("uci-digits"));
    let latents = load_latents(&root.join("setup/latents.safetensors")).unwrap();
    assert_eq!(latents.dataset.as_deref(), Some("uci-digits"));
    assert_eq!(latents.labels.len(), 200);
    let cache = tmp.0.join("classifier");
    assert!(classifier_path(&cache, &DataSource::UciDigits, 32).is_file());
    assert!(!classifier_path(&cache, &DataSource::Digits, 32).exists());
    let md = std::fs::read_to_string(root.join("unet-vs-dit/unet-vs-dit.md")).unwrap();
    for said in [
        "(on uci-digits)",
        "--data uci-digits",
        "200 images of uci-digits encoded",
    ] {
        assert!(md.contains(said), "{said:?} not in:\n{md}");
    }
    // The next run reuses them.
    run(&tiny("unet-vs-dit", &tmp.0, &["--data", "uci-digits"])).unwrap();
    let md = std::fs::read_to_string(root.join("unet-vs-dit/unet-vs-dit.md")).unwrap();
    for said in ["VAE reused", "latents reused", "classifier loaded"] {
        assert!(md.contains(said), "{said:?} not in:\n{md}");
    }
}

#[test]
fn a_bad_data_name_is_refused_with_the_names() {
    let tmp = TempDir::new("exp-bad-data");
    let err = run(&tiny("scaling", &tmp.0, &["--data", "uci-digit"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"uci-digit\""), "{err}");
    assert!(
        err.contains("uci-digits") && err.contains("mnist:DIR"),
        "{err}"
    );
    assert!(
        !tmp.0.join("out").exists(),
        "nothing is written for a bad name"
    );
}

#[test]
fn every_dataset_but_the_digits_has_its_own_folder() {
    let out = Path::new("out/experiments");
    assert_eq!(results_root(out, &DataSource::Digits), out);
    assert_eq!(
        results_root(out, &DataSource::UciDigits),
        out.join("uci-digits")
    );
    assert_eq!(
        data_slug(&DataSource::Mnist("/data/mnist".into())),
        "mnist-data-mnist"
    );
    assert_eq!(
        data_slug(&DataSource::Folder("./my photos/".into())),
        "my-photos"
    );
}
