//! What an experiment writes: a markdown table (`<name>.md`, pasted into the book), the same
//! results as JSON (`<name>.json`, for scripts) and one JSON line of headline figures, the
//! last line it prints. JSON is written by hand — a few objects of numbers and strings do not
//! need a serialisation crate.

use crate::error::{write_atomic, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    /// Keys in insertion order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// A number rounded to `digits` significant decimals after the point (keeps files short).
    pub fn num(x: f64, digits: usize) -> Json {
        if x.is_finite() {
            let s = format!("{x:.digits$}");
            Json::Num(s.parse().unwrap_or(x))
        } else {
            Json::Null
        }
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(x) => Some(*x),
            _ => None,
        }
    }

    /// Compact JSON text on one line.
    pub fn to_line(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn write(&self, s: &mut String) {
        match self {
            Json::Null => s.push_str("null"),
            Json::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            Json::Num(x) if x.is_finite() => {
                let _ = write!(s, "{x}");
            }
            Json::Num(_) => s.push_str("null"),
            Json::Str(t) => {
                s.push('"');
                for c in t.chars() {
                    match c {
                        '"' => s.push_str("\\\""),
                        '\\' => s.push_str("\\\\"),
                        '\n' => s.push_str("\\n"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(s, "\\u{:04x}", c as u32);
                        }
                        c => s.push(c),
                    }
                }
                s.push('"');
            }
            Json::Arr(items) => {
                s.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    v.write(s);
                }
                s.push(']');
            }
            Json::Obj(pairs) => {
                s.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    Json::Str(k.clone()).write(s);
                    s.push(':');
                    v.write(s);
                }
                s.push('}');
            }
        }
    }
}

/// A markdown table: a header row and rows of cells.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        assert_eq!(
            row.len(),
            self.header.len(),
            "a table row of the wrong width"
        );
        self.rows.push(row);
    }

    /// GitHub-flavoured markdown, numbers right-aligned (every column but the first).
    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut s = line(&self.header);
        let rule: Vec<String> = (0..self.header.len())
            .map(|i| if i == 0 { "---".into() } else { "---:".into() })
            .collect();
        s.push_str(&format!("|{}|\n", rule.join("|")));
        for r in &self.rows {
            s.push_str(&line(r));
        }
        s
    }
}

/// A percentage with one decimal: `97.8 %`.
pub fn percent(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// Everything one experiment produced, ready to write.
pub struct Written {
    pub png: PathBuf,
    pub md: PathBuf,
    pub json: PathBuf,
}

/// Writes `<dir>/<name>.md` (a `# title`, then `body`) and `<dir>/<name>.json` (`full`); the
/// plot `<dir>/<name>.png` is drawn by the experiment itself.
pub fn write_outputs(
    dir: &Path,
    name: &str,
    title: &str,
    body: &str,
    full: &Json,
) -> Result<Written> {
    let md = dir.join(format!("{name}.md"));
    let json = dir.join(format!("{name}.json"));
    write_atomic(&md, format!("# {title}\n\n{body}").as_bytes())?;
    write_atomic(&json, format!("{}\n", full.to_line()).as_bytes())?;
    Ok(Written {
        png: dir.join(format!("{name}.png")),
        md,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_nests() {
        let j = Json::obj([
            ("a", Json::num(1.23456, 3)),
            ("b", Json::str("x\"y\\z\n")),
            (
                "c",
                Json::Arr(vec![Json::Bool(true), Json::Null, Json::Num(f64::NAN)]),
            ),
        ]);
        assert_eq!(
            j.to_line(),
            r#"{"a":1.235,"b":"x\"y\\z\n","c":[true,null,null]}"#
        );
        assert_eq!(j.get("a").and_then(Json::as_f64), Some(1.235));
    }

    #[test]
    fn table_is_markdown() {
        let mut t = Table::new(&["model", "loss"]);
        t.push(vec!["DiT".into(), "0.1".into()]);
        assert_eq!(
            t.to_markdown(),
            "| model | loss |\n|---|---:|\n| DiT | 0.1 |\n"
        );
    }
}
