//! What an experiment writes: a markdown table (`<name>.md`, pasted into the book), the same
//! results as JSON (`<name>.json`, for scripts) and one JSON line of headline figures, the
//! last line it prints, the JSON by [`Json`] (`io::json`).

pub use crate::io::json::Json;

use crate::error::{write_atomic, Result};
use std::path::{Path, PathBuf};

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
    fn table_is_markdown() {
        let mut t = Table::new(&["model", "loss"]);
        t.push(vec!["DiT".into(), "0.1".into()]);
        assert_eq!(
            t.to_markdown(),
            "| model | loss |\n|---|---:|\n| DiT | 0.1 |\n"
        );
    }
}
