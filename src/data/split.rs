//! Held-out splits that are seeded, random and stratified by class, like scikit-learn's
//! `train_test_split(…, stratify=y)`: each class is held out in proportion to its size, and
//! which of its images are held out is a seeded shuffle.
//!
//! Cutting a dataset at a position instead (its last `n` images) is only random when the
//! images come in random order. A folder is read in sorted order, one class after another, so
//! its last 500 images are whole classes that the model never trains on. Every split of
//! labelled data goes through [`stratified_split`].
//!
//! Counts per class follow the largest remainder: class $c$ with $n_c$ of the $N$ images holds
//! out $\lfloor k n_c / N \rfloor$ or one more, so the totals are exact, and every class keeps
//! at least one image on each side. Returned indices come in an interleaved order (the $j$-th of
//! $t_c$ images of class $c$ at position $\approx (j + ½) / t_c$), so any prefix of either
//! half is close to stratified too, e.g. the first images shown in a figure.

use super::dataset::ImageDataset;
use crate::error::{Error, Result};
use crate::tensor::rng;
use ndarray_rand::rand::seq::SliceRandom;

/// Indices into a dataset: the images to train on and the ones held out.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub held_out: Vec<usize>,
}

/// The indices of each class, by label (`labels` values index the outer vector).
fn members(labels: &[usize]) -> Vec<Vec<usize>> {
    let k = labels.iter().map(|&l| l + 1).max().unwrap_or(0);
    let mut m = vec![Vec::new(); k];
    for (i, &l) in labels.iter().enumerate() {
        m[l].push(i);
    }
    m
}

/// How many of each class to take so the total is `k`: the largest-remainder rounding of
/// $k n_c / N$, kept within `lo[c]..=hi[c]`. Needs $\sum lo \le k \le \sum hi$.
fn allocate(counts: &[usize], k: usize, lo: &[usize], hi: &[usize]) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    // the quota's excess over t, times N, as an exact integer: k·n_c − t·N
    let excess = |c: usize, t: usize| (k * counts[c]) as i128 - (t * total) as i128;
    let mut t: Vec<usize> = (0..counts.len())
        .map(|c| (k * counts[c] / total.max(1)).clamp(lo[c], hi[c]))
        .collect();
    let mut sum: usize = t.iter().sum();
    while sum < k {
        let c = (0..t.len())
            .filter(|&c| t[c] < hi[c])
            .max_by_key(|&c| (excess(c, t[c]), std::cmp::Reverse(c)))
            .expect("k ≤ Σ hi");
        t[c] += 1;
        sum += 1;
    }
    while sum > k {
        let c = (0..t.len())
            .filter(|&c| t[c] > lo[c])
            .min_by_key(|&c| (excess(c, t[c]), c))
            .expect("k ≥ Σ lo");
        t[c] -= 1;
        sum -= 1;
    }
    t
}

/// Picks `take[c]` of each class's members after a seeded shuffle; returns (picked, rest),
/// each interleaved across classes (see the module docs).
fn pick(groups: &[Vec<usize>], take: &[usize], seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut r = rng(seed);
    let (mut picked, mut rest) = (Vec::new(), Vec::new());
    for (c, group) in groups.iter().enumerate() {
        let mut g = group.clone();
        g.shuffle(&mut r);
        let (a, b) = g.split_at(take[c]);
        let key = |j: usize, n: usize| (j as f64 + 0.5) / n as f64;
        picked.extend(a.iter().enumerate().map(|(j, &i)| (key(j, a.len()), c, i)));
        rest.extend(b.iter().enumerate().map(|(j, &i)| (key(j, b.len()), c, i)));
    }
    let order = |mut v: Vec<(f64, usize, usize)>| {
        v.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        v.into_iter().map(|(_, _, i)| i).collect()
    };
    (order(picked), order(rest))
}

fn class_name(names: &[String], c: usize) -> String {
    names
        .get(c)
        .map_or(format!("class {c}"), |n| format!("class {n:?}"))
}

// ANCHOR: stratified_split
/// Holds out `held_out` of the images whose classes are `labels`, stratified by class and
/// chosen by a shuffle seeded with `seed`. Every class appears on both sides, so a class with
/// one image, or fewer held-out images than classes, is an error rather than a lopsided split.
pub fn stratified_split(labels: &[usize], held_out: usize, seed: u64) -> Result<Split> {
    split_named(labels, &[], held_out, seed)
}
// ANCHOR_END: stratified_split

/// [`stratified_split`] with class names for the errors.
fn split_named(labels: &[usize], names: &[String], held_out: usize, seed: u64) -> Result<Split> {
    let groups = members(labels);
    let counts: Vec<usize> = groups.iter().map(Vec::len).collect();
    if let Some(c) = counts.iter().position(|&n| n == 1) {
        return Err(Error::new(
            format!(
                "{} has one image, which cannot be both trained on and held out",
                class_name(names, c)
            ),
            "add images to that class (at least two), or remove it",
        ));
    }
    let n = labels.len();
    let classes = counts.iter().filter(|&&n| n > 0).count();
    if held_out < classes {
        return Err(Error::new(
            format!(
                "holding out {held_out} images cannot hold out one of each of {classes} classes"
            ),
            format!("hold out at least {classes} images"),
        ));
    }
    if held_out + classes > n {
        return Err(Error::new(
            format!(
                "{n} images are too few to hold out {held_out} and still train on each of {classes} classes"
            ),
            format!(
                "add images, or hold out at most {} (fewer held-out images)",
                n.saturating_sub(classes)
            ),
        ));
    }
    let lo: Vec<usize> = counts.iter().map(|&n| n.min(1)).collect();
    let hi: Vec<usize> = counts.iter().map(|&n| n.saturating_sub(1)).collect();
    let take = allocate(&counts, held_out, &lo, &hi);
    let (held_out, train) = pick(&groups, &take, seed);
    Ok(Split { train, held_out })
}

/// `n` of the images whose classes are `labels` (all of them if `n` is at least their
/// number), stratified by class and chosen by a shuffle seeded with `seed`.
pub fn stratified_subset(labels: &[usize], n: usize, seed: u64) -> Vec<usize> {
    if n >= labels.len() {
        return (0..labels.len()).collect();
    }
    let groups = members(labels);
    let counts: Vec<usize> = groups.iter().map(Vec::len).collect();
    let take = allocate(&counts, n, &vec![0; counts.len()], &counts);
    pick(&groups, &take, seed).0
}

/// `ds` split into (train, held out) by [`stratified_split`]; errors name the class.
pub fn split_dataset(
    ds: &ImageDataset,
    held_out: usize,
    seed: u64,
) -> Result<(ImageDataset, ImageDataset)> {
    let s = split_named(&ds.labels, &ds.class_names, held_out, seed)?;
    Ok((ds.subset(&s.train), ds.subset(&s.held_out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_hits_the_total() {
        let counts = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180];
        let t = allocate(&counts, 360, &[1; 10], &counts.map(|n| n - 1));
        assert_eq!(t.iter().sum::<usize>(), 360);
        for (c, &n) in counts.iter().enumerate() {
            let q = 360.0 * n as f64 / 1797.0;
            assert!((t[c] as f64 - q).abs() < 1.0, "class {c}: {} vs {q}", t[c]);
        }
    }

    #[test]
    fn interleaved_prefixes_are_stratified() {
        let labels: Vec<usize> = (0..60).map(|i| i / 20).collect(); // sorted, 3 × 20
        let s = stratified_split(&labels, 15, 1).unwrap();
        let first: Vec<usize> = s.held_out[..3].iter().map(|&i| labels[i]).collect();
        assert_eq!(first, [0, 1, 2]);
    }
}
