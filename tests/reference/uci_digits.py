#!/usr/bin/env python3
"""Exports the UCI optical handwritten digits, as scikit-learn ships them, to the text fixture
`src/data/uci_digits.txt` that `src/data/uci_digits.rs` embeds with `include_str!`.

The data: 1,797 greyscale 8×8 images, each pixel the count of ink in a 4×4 block of a 32×32
bitmap (0–16), labelled 0–9 — E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten
Digits", UCI Machine Learning Repository, 1998, DOI 10.24432/C50P49, licensed CC BY 4.0. The
test half of UCI's own split (the 1,797 images scikit-learn ships as `load_digits`).

The format: lines starting with `#` are the header; then one line per image, in scikit-learn's
order: the label (one digit), a space, and 64 characters, the pixels row by row, each one
base-17 digit `0`–`9`, `a`–`g` (0–16). About 120 KB.

Run once (needs `pip install scikit-learn`; CI never runs it, the output is committed):

    python3 tests/reference/uci_digits.py
"""

from pathlib import Path

import sklearn
from sklearn.datasets import load_digits

DIGITS = "0123456789abcdefg"
OUT = Path(__file__).resolve().parents[2] / "src" / "data" / "uci_digits.txt"


def main():
    data = load_digits()
    images, labels = data.images.astype(int), data.target.astype(int)
    assert images.shape == (1797, 8, 8), images.shape
    assert images.min() == 0 and images.max() == 16
    lines = [
        "# UCI optical handwritten digits: 1797 greyscale 8x8 images, pixels 0-16, labels 0-9",
        '# Source: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits",',
        "#   UCI Machine Learning Repository, 1998, https://doi.org/10.24432/C50P49",
        "# License: CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
        f"# Exported from scikit-learn {sklearn.__version__} load_digits() by tests/reference/uci_digits.py",
        "# Format: one line per image: label, space, 64 pixels row by row, each 0-9a-g (0-16)",
    ]
    for img, label in zip(images, labels):
        lines.append(f"{label} " + "".join(DIGITS[v] for v in img.reshape(-1)))
    OUT.write_text("\n".join(lines) + "\n", encoding="ascii")
    print(f"wrote {OUT}: {len(labels)} images, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
