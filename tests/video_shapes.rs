//! Native sizes and durations: the video DiT on frames of any size in whole patches (the 2-D
//! sin-cos table computed for the actual grid), the moving digits on non-square canvases, the
//! buckets a run trains on, and the errors of a bad size or an empty bucket.

mod support;

use minisora::dit::pos_embed::{pos_embed_2d, pos_embed_grid};
use minisora::metrics::video::track::{main_motion, track};
use minisora::sample::parse_size;
use minisora::tensor::{init, rng};
use minisora::train::{Buckets, TrainData};
use minisora::video::config::check_size;
use minisora::video::moving_digits::{unlabel, MovingDigits, MOTIONS};
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use ndarray::{s, Ix5};
use support::{randomise_zeros, rel_err};

/// `sin`/`cos` of `x` at frequency `k` of `kk`, the formula written out again.
fn feature(x: f64, k: usize, kk: usize, cos: bool) -> f32 {
    let omega = 1.0 / 10000f64.powf(k as f64 / kk as f64);
    (if cos {
        (x * omega).cos()
    } else {
        (x * omega).sin()
    }) as f32
}

#[test]
fn a_non_square_grid_table_is_the_formula() {
    let (d, h, w) = (16, 3, 5);
    let e = pos_embed_grid(d, h, w);
    assert_eq!(e.dim(), (h * w, d));
    let kk = d / 4; // frequencies per half
    for i in 0..h {
        for j in 0..w {
            let row = e.row(i * w + j);
            for k in 0..kk {
                // first half: the column j; second half: the row i
                assert_eq!(row[k], feature(j as f64, k, kk, false));
                assert_eq!(row[kk + k], feature(j as f64, k, kk, true));
                assert_eq!(row[2 * kk + k], feature(i as f64, k, kk, false));
                assert_eq!(row[3 * kk + k], feature(i as f64, k, kk, true));
            }
        }
    }
    // a square grid is the image DiT's table, bit for bit
    assert_eq!(pos_embed_grid(d, 4, 4), pos_embed_2d(d, 4));
    // the transposed grid is another table: rows and columns are not interchangeable
    assert_ne!(pos_embed_grid(d, 5, 3), e);
}

fn model(layout: Layout) -> VideoDiT {
    let config = VideoDiTConfig::named("video-mini/2", layout, 4, 2, 8, 4, 5).unwrap();
    let mut m = VideoDiT::new(config, &mut rng(1)).unwrap();
    randomise_zeros(&mut m, &mut rng(2));
    m
}

#[test]
fn the_output_follows_the_input_shape() {
    for layout in Layout::ALL {
        let m = model(layout);
        let e_y = m.y_embedder.forward_infer(Some(&[1, 2]), 2);
        for (f, h, w) in [(4, 8, 8), (6, 12, 8), (2, 8, 12), (8, 4, 16), (2, 2, 2)] {
            let x = init::normal(&[2, 4, f, h, w], 1.0, &mut rng(3))
                .into_dimensionality::<Ix5>()
                .unwrap();
            let out = m.forward_infer_embedded(x.view(), &[100, 900], &e_y);
            assert_eq!(out.dim(), (2, 8, f, h, w), "{}", layout.name());
            assert!(out.iter().all(|v| v.is_finite()));
        }
    }
}

#[test]
fn a_wider_frame_is_not_the_trained_frame_plus_columns() {
    // the tokens of a wider frame attend to the new columns: the first 8 columns change
    let m = model(Layout::Alternating);
    let e_y = m.y_embedder.forward_infer(Some(&[1]), 1);
    let x = init::normal(&[1, 4, 4, 8, 12], 1.0, &mut rng(4))
        .into_dimensionality::<Ix5>()
        .unwrap();
    let wide = m.forward_infer_embedded(x.view(), &[300], &e_y);
    let narrow = m.forward_infer_embedded(x.slice(s![.., .., .., .., ..8]), &[300], &e_y);
    let cut = wide.slice(s![.., .., .., .., ..8]).to_owned();
    assert!(rel_err(&narrow, &cut) > 1e-4);
}

#[test]
fn a_size_not_in_whole_patches_is_a_clear_error() {
    assert!(check_size(8, 12, 2).is_ok());
    for (h, w) in [(7, 8), (8, 9), (0, 8), (8, 0)] {
        let e = check_size(h, w, 2).unwrap_err().to_string();
        assert!(e.contains("multiples of 2"), "{e}");
    }
    assert_eq!(parse_size("48x32").unwrap(), (32, 48));
    assert_eq!(parse_size("32×48").unwrap(), (48, 32));
    for bad in ["48", "48x", "x32", "0x32", "axb", ""] {
        let e = parse_size(bad).unwrap_err().to_string();
        assert!(e.contains("WIDTHxHEIGHT"), "{bad}: {e}");
    }
}

#[test]
fn moving_digits_on_a_wide_canvas_move_the_way_their_label_says() {
    let gen = MovingDigits {
        frames: 9,
        width: Some(48),
        ..MovingDigits::default()
    };
    let set = gen.generate(40, 7).unwrap();
    assert_eq!(set.clips.dim(), (40, 1, 9, 32, 48));
    for (clip, &l) in set.clips.outer_iter().zip(&set.labels) {
        let (m, _) = main_motion(&track(clip)).expect("a digit");
        assert_eq!(m, unlabel(l).1);
    }
    assert_eq!(MOTIONS.len(), 4);
    // the square canvas is drawn as before: the same bits as without `width`
    let square = MovingDigits {
        width: Some(32),
        ..MovingDigits::default()
    };
    assert_eq!(
        square.generate(8, 3).unwrap().clips,
        MovingDigits::default().generate(8, 3).unwrap().clips
    );
    let tall = MovingDigits {
        width: Some(16),
        ..MovingDigits::default()
    };
    assert!(
        tall.generate(1, 0).is_err(),
        "a 16-wide canvas has no room for the sprite"
    );
}

fn bucket(n: usize, f: usize, h: usize, w: usize, seed: u64) -> TrainData {
    let x = init::normal(&[n, 4, f, h, w], 1.0, &mut rng(seed));
    TrainData::new(x, (0..n).map(|i| i % 5).collect(), vec![])
}

#[test]
fn buckets_draw_whole_batches_in_proportion_to_their_size() {
    let data = Buckets::new(vec![
        bucket(10, 2, 8, 8, 1),
        bucket(20, 4, 8, 12, 2),
        bucket(70, 8, 12, 8, 3),
    ])
    .unwrap();
    assert_eq!(data.len(), 100);
    let mut batchers = data.batchers(4, 9).unwrap();
    let mut r = rng(5);
    let mut counts = [0usize; 3];
    for _ in 0..3000 {
        let (k, idx, x) = data.next_batch(&mut batchers, &mut r);
        counts[k] += 1;
        let mut want = vec![4];
        want.extend_from_slice(data.buckets[k].sample_shape());
        assert_eq!(x.shape(), &want[..]);
        assert!(idx.iter().all(|&i| i < data.buckets[k].len()));
    }
    for (c, p) in counts.iter().zip([0.1, 0.2, 0.7]) {
        let share = *c as f64 / 3000.0;
        assert!((share - p).abs() < 0.03, "{counts:?}");
    }
    // the same seeds give the same batches
    let again = |seed| {
        let mut b = data.batchers(4, 9).unwrap();
        let mut r = rng(seed);
        (0..20)
            .map(|_| data.next_batch(&mut b, &mut r))
            .collect::<Vec<_>>()
    };
    assert_eq!(again(5), again(5));
}

#[test]
fn buckets_name_their_problems() {
    let e = Buckets::new(vec![]).unwrap_err().to_string();
    assert!(e.contains("no buckets"), "{e}");
    let e = Buckets::new(vec![bucket(4, 2, 8, 8, 1), bucket(0, 4, 8, 12, 2)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("bucket 1") && e.contains("no clips"), "{e}");
    let mut other = bucket(4, 2, 8, 8, 1);
    other.mean = init::normal(&[4, 3, 2, 8, 8], 1.0, &mut rng(1));
    let e = Buckets::new(vec![bucket(4, 2, 8, 8, 1), other])
        .unwrap_err()
        .to_string();
    assert!(e.contains("bucket 1"), "{e}");
    let data = Buckets::new(vec![bucket(8, 2, 8, 8, 1), bucket(3, 4, 8, 12, 2)]).unwrap();
    let e = data.batchers(4, 0).unwrap_err().to_string();
    assert!(e.contains("bucket 1") && e.contains("3 clips"), "{e}");
}

#[test]
fn the_scoring_window_follows_the_ink_and_stays_on_the_canvas() {
    use minisora::metrics::video::window::{window, WINDOW};
    use ndarray::Array2;
    // a 4×4 blob at rows 10..14, columns 40..44 of a 32×48 frame
    let mut frame = Array2::from_elem((32, 48), -1.0f32);
    frame.slice_mut(s![10..14, 40..44]).fill(1.0);
    let win = window(frame.view());
    assert_eq!(win.dim(), (WINDOW, WINDOW));
    // the window is clamped to columns 16..48: the blob sits at columns 24..28 of it
    assert_eq!(
        win.slice(s![10..14, 24..28])
            .iter()
            .filter(|&&v| v == 1.0)
            .count(),
        16
    );
    assert_eq!(win.iter().filter(|&&v| v == 1.0).count(), 16);
    // a frame smaller than the window is padded with background
    let mut small = Array2::from_elem((16, 16), -1.0f32);
    small[[3, 5]] = 1.0;
    let win = window(small.view());
    assert_eq!(win[[3, 5]], 1.0);
    assert_eq!(win.iter().filter(|&&v| v == 1.0).count(), 1);
}

#[test]
fn sampling_at_another_size_checks_it_against_the_vae_and_the_patch() {
    use minisora::diffusion::Diffusion;
    use minisora::models::Loaded;
    use minisora::sample::set_size;
    use minisora::train::LatentNorm;
    let m = model(Layout::Alternating);
    let path = std::path::Path::new("video.safetensors");
    let mut loaded = Loaded {
        metadata: m.config.to_metadata(),
        model: Box::new(m),
        family: "video",
        diffusion: Diffusion::dit(),
        shape: vec![4, 4, 8, 8],
        num_classes: 5,
        null_label: Some(5),
        latent: true,
        norm: LatentNorm::global(1.0, 4),
    };
    // the VAE's factor 4 × the patch 2: sides in multiples of 8 pixels
    let e = set_size(&mut loaded, (32, 44), 4, path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("multiple of 8") && e.contains("40x32"), "{e}");
    set_size(&mut loaded, (32, 48), 4, path).unwrap();
    assert_eq!(loaded.shape, vec![4, 4, 8, 12]);
}
