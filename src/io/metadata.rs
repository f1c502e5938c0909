//! Model configs stored as checkpoint metadata: safetensors keeps a flat map of strings, so
//! every config writes its fields as text (`vae.channel_mult` → `1,2,2`) and reads them back
//! through [`MetaReader`], which names the key and the fix when one is missing or garbled.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// A list of sizes as metadata text: `[1, 2, 2]` → `1,2,2` (empty → empty).
pub fn list_text(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A config's metadata map from its key list and the values in the same order.
pub fn key_values<const N: usize>(
    keys: &[&str; N],
    values: [String; N],
) -> BTreeMap<String, String> {
    keys.iter().map(|k| k.to_string()).zip(values).collect()
}

/// Typed reads from a metadata map, with errors that name the model, the key and the fix.
pub struct MetaReader<'a> {
    map: &'a BTreeMap<String, String>,
    /// The model's name in messages, e.g. "VAE".
    model: &'a str,
    /// What to do when a key is missing, e.g. "load a checkpoint saved by the VAE trainer".
    fix_missing: &'a str,
}

impl<'a> MetaReader<'a> {
    pub fn new(map: &'a BTreeMap<String, String>, model: &'a str, fix_missing: &'a str) -> Self {
        MetaReader {
            map,
            model,
            fix_missing,
        }
    }

    fn bad(&self, key: &str, value: &str, want: &str) -> Error {
        Error::new(
            format!("{} metadata: {key} = {value:?} is not {want}", self.model),
            "the checkpoint's metadata is damaged; save the model again",
        )
    }

    /// The value of `key`, trimmed.
    pub fn text(&self, key: &str) -> Result<&'a str> {
        self.map.get(key).map(|s| s.trim()).ok_or_else(|| {
            Error::new(
                format!("{} metadata: the key {key} is missing", self.model),
                self.fix_missing,
            )
        })
    }

    /// A non-negative integer.
    pub fn usize(&self, key: &str) -> Result<usize> {
        let v = self.text(key)?;
        v.parse()
            .map_err(|_| self.bad(key, v, "a non-negative integer"))
    }

    /// `true` or `false`.
    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.text(key)? {
            "true" => Ok(true),
            "false" => Ok(false),
            v => Err(self.bad(key, v, "true or false")),
        }
    }

    /// A comma-separated list of integers, as [`list_text`] writes it (empty text → empty).
    pub fn list(&self, key: &str) -> Result<Vec<usize>> {
        let v = self.text(key)?;
        if v.is_empty() {
            return Ok(Vec::new());
        }
        v.split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| self.bad(key, v, "a comma-separated list of integers"))
    }

    /// An integer, or `none`.
    pub fn optional_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.text(key)? {
            "none" => Ok(None),
            v => v
                .parse()
                .map(Some)
                .map_err(|_| self.bad(key, v, "a non-negative integer or none")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_type_and_names_bad_keys() {
        let map: BTreeMap<String, String> = [
            ("a", " 3 "),
            ("b", "true"),
            ("c", "1,2, 4"),
            ("d", ""),
            ("e", "none"),
            ("f", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let m = MetaReader::new(&map, "Test", "save it again");
        assert_eq!(m.usize("a").unwrap(), 3);
        assert!(m.bool("b").unwrap());
        assert_eq!(m.list("c").unwrap(), vec![1, 2, 4]);
        assert_eq!(list_text(&[1, 2, 4]), "1,2,4");
        assert!(m.list("d").unwrap().is_empty());
        assert_eq!(m.optional_usize("e").unwrap(), None);
        assert_eq!(m.optional_usize("a").unwrap(), Some(3));
        let e = m.usize("f").unwrap_err().to_string();
        assert!(e.contains("Test metadata: f = \"x\""), "{e}");
        let e = m.bool("zz").unwrap_err().to_string();
        assert!(
            e.contains("zz is missing") && e.contains("save it again"),
            "{e}"
        );
    }
}
