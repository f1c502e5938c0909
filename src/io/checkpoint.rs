//! Checkpoints and tensor files in the [safetensors](https://github.com/huggingface/safetensors)
//! format: an 8-byte little-endian header length, a JSON header (each tensor's name, dtype,
//! shape and byte range, plus a string-to-string `__metadata__` map), then the raw bytes.
//!
//! A checkpoint holds every parameter of a model under the names of [`Parameters::visit`]
//! (PyTorch `state_dict` names), as little-endian row-major `f32`, so
//! `safetensors.torch.load_file` reads it as it is. Its metadata carries a `format` key
//! ([`CHECKPOINT_FORMAT`]) and whatever the caller stores (the model's config, the step, …), so a
//! program can read the config with [`read_metadata`], build the model, then [`load_checkpoint`].
//!
//! Files are written with [`write_atomic`] (never half a file under the real name). Loading
//! checks the whole file — header, dtypes, every name and shape — before it touches the model,
//! so a failed load leaves the model exactly as it was.

use crate::error::{write_atomic, Error, Result};
use crate::param::Parameters;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The metadata key naming what kind of file this is.
pub const FORMAT_KEY: &str = "format";
/// `format` of a model checkpoint written by [`save_checkpoint`].
pub const CHECKPOINT_FORMAT: &str = "minisora-checkpoint-v1";
/// `format` of a tensor file written by [`save_tensors`].
pub const TENSORS_FORMAT: &str = "minisora-tensors-v1";

/// Named f32 tensors, as [`load_tensors`] returns them.
pub type Tensors = BTreeMap<String, ArrayD<f32>>;

/// A tensor ready to write: name, shape, little-endian f32 bytes.
type Encoded = (String, Vec<usize>, Vec<u8>);

/// How many names an error lists before it says "and N more".
const NAMES_SHOWN: usize = 5;

/// Every parameter of `model` (names from [`Parameters::visit`], f32, row-major) plus string
/// metadata. The `format` key is added here and may not be in `metadata`.
pub fn save_checkpoint(
    path: &Path,
    model: &mut impl Parameters,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    save_checkpoint_with(path, model, &[], metadata)
}

/// [`save_checkpoint`] plus `extra` named tensors that are not parameters (a model's fixed
/// buffers, such as DiT's `pos_embed`), stored beside them. The names must all differ.
pub fn save_checkpoint_with(
    path: &Path,
    model: &mut impl Parameters,
    extra: &[(&str, ArrayViewD<f32>)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut tensors: Vec<Encoded> = Vec::new();
    model.visit("", &mut |name, p| {
        tensors.push((
            name.to_string(),
            p.shape().to_vec(),
            le_bytes(p.value.iter()),
        ));
    });
    for (name, t) in extra {
        tensors.push((name.to_string(), t.shape().to_vec(), le_bytes(t.iter())));
    }
    write_file(path, tensors, metadata, CHECKPOINT_FORMAT)
}

/// Reads the metadata only (so a caller can build the model from its stored config first).
/// The `format` key is checked and left out of the result.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = read_file(path)?;
    let (_, meta) = parse(path, &bytes)?;
    checkpoint_metadata(path, meta)
}

/// Fills every parameter of `model` from the file; returns the metadata (without `format`).
/// Everything is checked first: on any error the model is left unchanged. Gradients are not
/// touched.
pub fn load_checkpoint(
    path: &Path,
    model: &mut impl Parameters,
) -> Result<BTreeMap<String, String>> {
    load_checkpoint_with(path, model, &[]).map(|(_, meta)| meta)
}

/// [`load_checkpoint`] for a file that also holds the tensors named in `extra` (saved by
/// [`save_checkpoint_with`]): they must be present, and are returned rather than loaded.
pub fn load_checkpoint_with(
    path: &Path,
    model: &mut impl Parameters,
    extra: &[&str],
) -> Result<(Tensors, BTreeMap<String, String>)> {
    let bytes = read_file(path)?;
    let (file, meta) = parse(path, &bytes)?;
    let meta = checkpoint_metadata(path, meta)?;
    let wanted = model.param_shapes(); // [(name, shape)] in visiting order
    let missing: Vec<&str> = wanted
        .iter()
        .map(|(name, _)| name.as_str())
        .chain(extra.iter().copied())
        .filter(|name| file.tensor(name).is_err())
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(
            format!(
                "{} lacks {} of the model's parameters: {}",
                path.display(),
                missing.len(),
                list(&missing)
            ),
            "the checkpoint is from another model or config: build the model from the \
             checkpoint's own metadata (read_metadata) or pick the matching checkpoint",
        ));
    }
    let known: HashSet<&str> = wanted
        .iter()
        .map(|(name, _)| name.as_str())
        .chain(extra.iter().copied())
        .collect();
    let mut unknown: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|n| !known.contains(n))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(Error::new(
            format!(
                "{} has {} tensors the model does not have: {}",
                path.display(),
                unknown.len(),
                list(&unknown)
            ),
            "the checkpoint is from another model or config: build the model from the \
             checkpoint's own metadata (read_metadata) or pick the matching checkpoint",
        ));
    }
    let mut values = Vec::with_capacity(wanted.len());
    for (name, shape) in &wanted {
        let view = file.tensor(name).expect("presence checked above");
        if view.shape() != shape.as_slice() {
            return Err(Error::new(
                format!(
                    "parameter `{name}` has shape {:?} in {} but {shape:?} in the model",
                    view.shape(),
                    path.display()
                ),
                "the checkpoint is from another config: build the model from the checkpoint's \
                 own metadata (read_metadata) or pick the matching checkpoint",
            ));
        }
        values.push(to_array(path, name, &view)?);
    }
    let mut extras = Tensors::new();
    for name in extra {
        let view = file.tensor(name).expect("presence checked above");
        extras.insert(name.to_string(), to_array(path, name, &view)?);
    }
    // Everything is valid: now, and only now, overwrite the parameters.
    let mut values = values.into_iter();
    model.visit("", &mut |_, p| {
        p.value = values.next().expect("one value per visited parameter");
    });
    Ok((extras, meta))
}

/// Arbitrary named f32 tensors (e.g. a dataset's latents and labels as f32) + metadata.
pub fn save_tensors(
    path: &Path,
    tensors: &[(&str, ArrayViewD<f32>)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let tensors = tensors
        .iter()
        .map(|(name, t)| (name.to_string(), t.shape().to_vec(), le_bytes(t.iter())))
        .collect();
    write_file(path, tensors, metadata, TENSORS_FORMAT)
}

/// Every tensor of a safetensors file (which must all be f32) and its metadata. Any file
/// works, ours or another program's; a `format` key is left out of the returned metadata.
pub fn load_tensors(path: &Path) -> Result<(Tensors, BTreeMap<String, String>)> {
    let bytes = read_file(path)?;
    let (file, mut meta) = parse(path, &bytes)?;
    meta.remove(FORMAT_KEY);
    let mut tensors = BTreeMap::new();
    for (name, view) in file.iter() {
        tensors.insert(name.to_string(), to_array(path, name, &view)?);
    }
    Ok((tensors, meta))
}

/// Serialises `(name, shape, bytes)` f32 tensors with `metadata` + `format`, atomically.
fn write_file(
    path: &Path,
    tensors: Vec<Encoded>,
    metadata: &BTreeMap<String, String>,
    format: &str,
) -> Result<()> {
    if metadata.contains_key(FORMAT_KEY) {
        return Err(Error::new(
            format!(
                "the metadata for {} has a `{FORMAT_KEY}` key",
                path.display()
            ),
            format!("`{FORMAT_KEY}` is reserved (it is set to \"{format}\"): rename that key"),
        ));
    }
    let mut seen = HashSet::new();
    if let Some((dup, _, _)) = tensors.iter().find(|(name, _, _)| !seen.insert(name)) {
        return Err(Error::new(
            format!("two tensors are named `{dup}` for {}", path.display()),
            "give every tensor a distinct name",
        ));
    }
    let mut meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    meta.insert(FORMAT_KEY.to_string(), format.to_string());
    let views = tensors
        .iter()
        .map(|(name, shape, data)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data).expect("4 bytes per f32");
            (name.as_str(), view)
        })
        .collect::<Vec<_>>();
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| {
        Error::new(
            format!("could not encode {}: {e}", path.display()),
            "keep the metadata under 100 MB",
        )
    })?;
    write_atomic(path, &bytes)
}

/// The whole file, or an error naming the path.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::new(
                format!("no such file: {}", path.display()),
                "check the path (list the folder to see which files exist)",
            )
        } else {
            Error::io(path, e, "check that the path is a readable file")
        }
    })
}

/// Parses and validates the header and byte ranges; returns the file and its metadata.
fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<(SafeTensors<'a>, BTreeMap<String, String>)> {
    let bad = |e: safetensors::SafeTensorError| {
        Error::new(
            format!(
                "{} is not a valid safetensors file ({e}): it is truncated, corrupt, or another \
                 kind of file",
                path.display()
            ),
            "point at a .safetensors file, or save it again (an interrupted copy leaves a \
             truncated file)",
        )
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let meta = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok((SafeTensors::deserialize(bytes).map_err(bad)?, meta))
}

/// Checks that the `format` is [`CHECKPOINT_FORMAT`] and removes it.
fn checkpoint_metadata(
    path: &Path,
    mut meta: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    match meta.remove(FORMAT_KEY) {
        Some(f) if f == CHECKPOINT_FORMAT => Ok(meta),
        Some(f) => Err(Error::new(
            format!(
                "{} has format \"{f}\", not a minisora checkpoint (\"{CHECKPOINT_FORMAT}\")",
                path.display()
            ),
            if f == TENSORS_FORMAT {
                "this is a tensor file: read it with load_tensors, or give a checkpoint"
            } else {
                "give a checkpoint saved by minisora (save_checkpoint)"
            },
        )),
        None => Err(Error::new(
            format!(
                "{} has no `{FORMAT_KEY}` metadata: it is not a minisora checkpoint",
                path.display()
            ),
            "give a checkpoint saved by minisora (save_checkpoint); a file from another \
             program can be read with load_tensors",
        )),
    }
}

/// An f32 tensor from the file as a row-major array, or an error naming its dtype.
fn to_array(path: &Path, name: &str, view: &TensorView) -> Result<ArrayD<f32>> {
    if view.dtype() != Dtype::F32 {
        return Err(Error::new(
            format!(
                "tensor `{name}` in {} is {:?}, but minisora reads only F32",
                path.display(),
                view.dtype()
            ),
            "convert the tensors to float32 before saving (in PyTorch: \
             {k: v.float() for k, v in state_dict.items()})",
        ));
    }
    // $x = \mathrm{f32}(b_0 + 2^8 b_1 + 2^{16} b_2 + 2^{24} b_3)$, little-endian
    let data = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(ArrayD::from_shape_vec(IxDyn(view.shape()), data).expect("length validated by parse"))
}

/// The values in the given (row-major) order as little-endian bytes.
fn le_bytes<'a>(values: impl Iterator<Item = &'a f32>) -> Vec<u8> {
    values.flat_map(|v| v.to_le_bytes()).collect()
}

/// `a, b, c` or `a, b, c, d, e and 3 more`, each name in backticks.
fn list(names: &[&str]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(NAMES_SHOWN)
        .map(|n| format!("`{n}`"))
        .collect();
    match names.len().saturating_sub(NAMES_SHOWN) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}
