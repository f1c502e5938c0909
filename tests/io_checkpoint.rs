//! Checkpoints and tensor files: bit-exact round trips, a plain safetensors layout any reader
//! (PyTorch's `safetensors.torch.load_file`) understands, and an error — never a panic, never a
//! half-loaded model — for every way a file can be wrong.

mod support;

use minisora::io::checkpoint::{
    load_checkpoint, load_tensors, read_metadata, save_checkpoint, save_tensors, CHECKPOINT_FORMAT,
    TENSORS_FORMAT,
};
use minisora::nn::{Conv2d, Linear};
use minisora::param::{join, Param, Parameters};
use minisora::tensor::rng;
use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use support::TempDir;

/// A small model: `fc.weight (4, 3)`, `fc.bias (4)`, `conv.weight (c, 2, 3, 3)`, `conv.bias (c)`.
struct Tiny {
    fc: Linear,
    conv: Conv2d,
}

impl Tiny {
    fn new(conv_out: usize, seed: u64) -> Self {
        let mut r = rng(seed);
        Tiny {
            fc: Linear::new(3, 4, true, &mut r),
            conv: Conv2d::new(2, conv_out, 3, 1, 1, true, &mut r),
        }
    }
}

impl Parameters for Tiny {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.fc.visit(&join(prefix, "fc"), f);
        self.conv.visit(&join(prefix, "conv"), f);
    }
}

/// Only the `fc` half of [`Tiny`].
struct FcOnly {
    fc: Linear,
}

impl Parameters for FcOnly {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.fc.visit(&join(prefix, "fc"), f);
    }
}

/// Every parameter's name, shape and exact bits.
fn snapshot(m: &mut impl Parameters) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let mut out = Vec::new();
    m.visit("", &mut |name, p| {
        let bits = p.value.iter().map(|v| v.to_bits()).collect();
        out.push((name.to_string(), p.shape().to_vec(), bits));
    });
    out
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The error message of a load that must fail, after checking the model did not change.
fn load_err(path: &Path, m: &mut impl Parameters) -> String {
    let before = snapshot(m);
    let err = load_checkpoint(path, m)
        .expect_err("load should fail")
        .to_string();
    assert_eq!(snapshot(m), before, "a failed load changed the model");
    err
}

/// Writes a raw safetensors file: `(name, dtype, shape, bytes)` tensors with `meta`.
fn write_raw(
    path: &Path,
    tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)],
    meta: Option<&[(&str, &str)]>,
) {
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta: Option<HashMap<String, String>> = meta.map(|m| {
        m.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    std::fs::write(path, safetensors::serialize(views, meta).unwrap()).unwrap();
}

/// `model`'s parameters as raw f32 tensors, with `name`'s dtype replaced by F16.
fn raw_with_f16(m: &mut impl Parameters, name: &str) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let mut out = Vec::new();
    m.visit("", &mut |n, p| {
        let (dtype, bytes) = if n == name {
            (Dtype::F16, vec![0u8; 2 * p.len()])
        } else {
            (
                Dtype::F32,
                p.value.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        };
        out.push((n.to_string(), dtype, p.shape().to_vec(), bytes));
    });
    out
}

#[test]
fn checkpoint_round_trips_bit_exactly_with_metadata() {
    let t = TempDir::new("roundtrip");
    let path = t.0.join("sub/model.safetensors");
    let mut a = Tiny::new(5, 1);
    // awkward values must survive too
    let odd = [
        f32::NAN,
        -0.0,
        f32::INFINITY,
        f32::MIN_POSITIVE / 4.0,
        -1e-38,
    ];
    for (v, o) in a.fc.weight.value.iter_mut().zip(odd) {
        *v = o;
    }
    let m = meta(&[
        ("vae.z_channels", "4"),
        ("step", "1200"),
        ("note", "ünïcode, \"quotes\""),
    ]);
    save_checkpoint(&path, &mut a, &m).unwrap();
    let mut b = Tiny::new(5, 2);
    assert_ne!(snapshot(&mut a), snapshot(&mut b));
    assert_eq!(read_metadata(&path).unwrap(), m);
    assert_eq!(load_checkpoint(&path, &mut b).unwrap(), m);
    assert_eq!(snapshot(&mut a), snapshot(&mut b));
    // saving over an existing file replaces it and leaves no temporary file behind
    save_checkpoint(&path, &mut b, &BTreeMap::new()).unwrap();
    assert_eq!(read_metadata(&path).unwrap(), BTreeMap::new());
    let files: Vec<_> = std::fs::read_dir(t.0.join("sub")).unwrap().collect();
    assert_eq!(files.len(), 1);
}

#[test]
fn checkpoint_is_a_plain_safetensors_file() {
    // What PyTorch's safetensors.torch.load_file sees: state_dict names, F32, the same shapes,
    // little-endian row-major bytes, and the metadata as the header's __metadata__.
    let t = TempDir::new("raw");
    let path = t.0.join("model.safetensors");
    let mut a = Tiny::new(3, 7);
    save_checkpoint(&path, &mut a, &meta(&[("step", "5")])).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    assert!(header.starts_with('{'), "{header}");
    assert!(header.contains("\"__metadata__\""), "{header}");
    assert!(
        header.contains(&format!("\"format\":\"{CHECKPOINT_FORMAT}\"")),
        "{header}"
    );
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort_unstable();
    assert_eq!(names, ["conv.bias", "conv.weight", "fc.bias", "fc.weight"]);
    a.visit("", &mut |name, p| {
        let v = file.tensor(name).unwrap();
        assert_eq!(v.dtype(), Dtype::F32);
        assert_eq!(v.shape(), p.shape());
        let want: Vec<u8> = p.value.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(v.data(), want.as_slice(), "{name}");
    });
}

#[test]
fn missing_file_is_named() {
    let t = TempDir::new("missing");
    let path = t.0.join("nope.safetensors");
    let err = load_err(&path, &mut Tiny::new(3, 0));
    assert!(
        err.contains("no such file") && err.contains("nope.safetensors"),
        "{err}"
    );
    let err = read_metadata(&path).unwrap_err().to_string();
    assert!(err.contains("nope.safetensors"), "{err}");
    let err = load_tensors(&path).unwrap_err().to_string();
    assert!(err.contains("nope.safetensors"), "{err}");
}

#[test]
fn not_a_safetensors_file_is_an_error() {
    let t = TempDir::new("garbage");
    let path = t.0.join("notes.txt");
    std::fs::write(&path, "these are my notes, not a checkpoint at all").unwrap();
    let err = load_err(&path, &mut Tiny::new(3, 0));
    assert!(
        err.contains("not a valid safetensors file") && err.contains("notes.txt"),
        "{err}"
    );
    assert!(load_tensors(&path).is_err());
}

#[test]
fn truncated_or_corrupt_file_is_an_error_and_leaves_the_model_unchanged() {
    let t = TempDir::new("truncated");
    let path = t.0.join("model.safetensors");
    save_checkpoint(&path, &mut Tiny::new(3, 1), &meta(&[("step", "9")])).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut m = Tiny::new(3, 2);
    let cut = t.0.join("cut.safetensors");
    for keep in [
        0,
        3,
        8,
        20,
        bytes.len() / 2,
        bytes.len() - 4,
        bytes.len() - 1,
    ] {
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let err = load_err(&cut, &mut m);
        assert!(err.contains("truncated"), "cut to {keep} bytes: {err}");
        assert!(read_metadata(&cut).is_err(), "cut to {keep} bytes");
    }
    // a damaged header (its opening brace overwritten) and trailing junk
    let mut bad = bytes.clone();
    bad[8] = b'x';
    std::fs::write(&cut, &bad).unwrap();
    let err = load_err(&cut, &mut m);
    assert!(err.contains("corrupt"), "{err}");
    let mut long = bytes.clone();
    long.extend_from_slice(&[0; 4]);
    std::fs::write(&cut, &long).unwrap();
    load_err(&cut, &mut m);
}

#[test]
fn wrong_dtype_is_named() {
    let t = TempDir::new("dtype");
    let path = t.0.join("half.safetensors");
    let raw = raw_with_f16(&mut Tiny::new(3, 1), "conv.weight");
    let tensors: Vec<_> = raw
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), *d, s.clone(), b.clone()))
        .collect();
    write_raw(&path, &tensors, Some(&[("format", CHECKPOINT_FORMAT)]));
    let err = load_err(&path, &mut Tiny::new(3, 2));
    assert!(
        err.contains("`conv.weight`") && err.contains("F16") && err.contains("F32"),
        "{err}"
    );
    let err = load_tensors(&path).unwrap_err().to_string();
    assert!(
        err.contains("`conv.weight`") && err.contains("F16"),
        "{err}"
    );
}

#[test]
fn missing_parameter_is_named_and_blamed_on_the_config() {
    let t = TempDir::new("lacks");
    let path = t.0.join("fc.safetensors");
    let mut small = FcOnly {
        fc: Linear::new(3, 4, true, &mut rng(0)),
    };
    save_checkpoint(&path, &mut small, &BTreeMap::new()).unwrap();
    let err = load_err(&path, &mut Tiny::new(3, 2));
    assert!(
        err.contains("lacks 2") && err.contains("`conv.weight`") && err.contains("`conv.bias`"),
        "{err}"
    );
    assert!(err.contains("another model or config"), "{err}");
}

#[test]
fn extra_tensors_are_named() {
    let t = TempDir::new("extra");
    let path = t.0.join("tiny.safetensors");
    save_checkpoint(&path, &mut Tiny::new(3, 1), &BTreeMap::new()).unwrap();
    let mut small = FcOnly {
        fc: Linear::new(3, 4, true, &mut rng(0)),
    };
    let err = load_err(&path, &mut small);
    assert!(err.contains("2 tensors the model does not have"), "{err}");
    assert!(
        err.contains("`conv.bias`") && err.contains("`conv.weight`"),
        "{err}"
    );
    // many extras: a few are named, the rest counted
    let many: Vec<Param> = (0..9).map(|_| Param::zeros(&[2])).collect();
    struct Many(Vec<Param>);
    impl Parameters for Many {
        fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
            self.0.visit(&join(prefix, "extra"), f);
        }
    }
    save_checkpoint(&path, &mut Many(many), &BTreeMap::new()).unwrap();
    let err = load_err(&path, &mut Many(Vec::new()));
    assert!(
        err.contains("9 tensors") && err.contains("`extra.0`") && err.contains("and 4 more"),
        "{err}"
    );
}

#[test]
fn shape_mismatch_names_the_parameter_and_both_shapes() {
    let t = TempDir::new("shape");
    let path = t.0.join("tiny5.safetensors");
    save_checkpoint(&path, &mut Tiny::new(5, 1), &BTreeMap::new()).unwrap();
    let err = load_err(&path, &mut Tiny::new(3, 2));
    assert!(err.contains("`conv.weight`"), "{err}");
    assert!(
        err.contains("[5, 2, 3, 3]") && err.contains("[3, 2, 3, 3]"),
        "{err}"
    );
}

#[test]
fn missing_or_other_format_is_refused() {
    let t = TempDir::new("format");
    let mut src = Tiny::new(3, 1);
    let raw = raw_with_f16(&mut src, "none");
    let tensors: Vec<_> = raw
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), *d, s.clone(), b.clone()))
        .collect();
    // no metadata at all (a file from another program)
    let path = t.0.join("plain.safetensors");
    write_raw(&path, &tensors, None);
    let err = load_err(&path, &mut Tiny::new(3, 2));
    assert!(
        err.contains("no `format`") && err.contains("not a minisora checkpoint"),
        "{err}"
    );
    assert!(read_metadata(&path).is_err());
    // …but load_tensors reads it
    let (loaded, _) = load_tensors(&path).unwrap();
    assert_eq!(loaded["fc.weight"], src.fc.weight.value);
    // another program's format
    let path = t.0.join("pt.safetensors");
    write_raw(&path, &tensors, Some(&[("format", "pt")]));
    let err = load_err(&path, &mut Tiny::new(3, 2));
    assert!(err.contains("format \"pt\""), "{err}");
    // a tensor file is not a checkpoint
    let path = t.0.join("tensors.safetensors");
    let views: Vec<_> = raw.iter().map(|(n, ..)| n.as_str()).collect();
    let mut arrays = Vec::new();
    src.visit("", &mut |_, p| arrays.push(p.value.clone()));
    let named: Vec<_> = views
        .iter()
        .zip(&arrays)
        .map(|(n, a)| (*n, a.view()))
        .collect();
    save_tensors(&path, &named, &BTreeMap::new()).unwrap();
    let err = load_err(&path, &mut Tiny::new(3, 2));
    assert!(
        err.contains(TENSORS_FORMAT) && err.contains("load_tensors"),
        "{err}"
    );
}

#[test]
fn format_key_is_reserved_on_save() {
    let t = TempDir::new("reserved");
    let path = t.0.join("m.safetensors");
    let m = meta(&[("format", "mine")]);
    let err = save_checkpoint(&path, &mut Tiny::new(3, 1), &m)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`format`") && err.contains("reserved"),
        "{err}"
    );
    let err = save_tensors(&path, &[], &m).unwrap_err().to_string();
    assert!(err.contains("reserved"), "{err}");
    assert!(!path.exists());
}

#[test]
fn tensors_round_trip() {
    let t = TempDir::new("tensors");
    let path = t.0.join("latents.safetensors");
    let latents = ArrayD::from_shape_fn(IxDyn(&[3, 4, 2, 2]), |i| {
        (i[0] * 100 + i[1] * 10 + i[2] * 2 + i[3]) as f32 - 0.5
    });
    let labels = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.0, 2.0, 1.0]).unwrap();
    let matrix = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| (i[0] * 3 + i[1]) as f32);
    let transposed = matrix.t(); // a strided view is written in its own row-major order
    let scalar = ArrayD::from_elem(IxDyn(&[]), f32::NAN);
    let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 4]));
    let m = meta(&[("dataset", "digits"), ("scale", "0.18215")]);
    save_tensors(
        &path,
        &[
            ("latents", latents.view()),
            ("labels", labels.view()),
            ("t", transposed.view()),
            ("scalar", scalar.view()),
            ("empty", empty.view()),
        ],
        &m,
    )
    .unwrap();
    let (back, back_meta) = load_tensors(&path).unwrap();
    assert_eq!(back_meta, m);
    assert_eq!(back.len(), 5);
    assert_eq!(back["latents"], latents);
    assert_eq!(back["labels"], labels);
    assert_eq!(back["t"], transposed);
    assert_eq!(
        back["t"].as_slice().unwrap(),
        &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert_eq!(back["scalar"].shape(), &[] as &[usize]);
    assert!(back["scalar"].first().unwrap().is_nan());
    assert_eq!(back["empty"].shape(), &[0, 4]);
    // a checkpoint is also readable as plain tensors
    let ck = t.0.join("ck.safetensors");
    let mut tiny = Tiny::new(3, 4);
    save_checkpoint(&ck, &mut tiny, &meta(&[("step", "1")])).unwrap();
    let (w, m2) = load_tensors(&ck).unwrap();
    assert_eq!(w["conv.weight"], tiny.conv.weight.value);
    assert_eq!(m2, meta(&[("step", "1")]));
}

#[test]
fn duplicate_tensor_names_are_refused() {
    let t = TempDir::new("dup");
    let path = t.0.join("dup.safetensors");
    let a = ArrayD::<f32>::zeros(IxDyn(&[2]));
    let err = save_tensors(&path, &[("x", a.view()), ("x", a.view())], &BTreeMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("two tensors are named `x`"), "{err}");
    assert!(!path.exists());
}
