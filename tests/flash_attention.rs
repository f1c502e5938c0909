//! The tiled (FlashAttention-2) core against the clear one: the same output and the same
//! gradients over random shapes, masks and tile sizes (sequence lengths that are not multiples
//! of the tiles included), finite differences through attention layers running it, and the
//! same bits on one thread and two.

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::nn::attention::{sdpa_backward, sdpa_forward_masked};
use minisora::nn::{flash_backward, flash_forward, Attention, CrossAttention, Kernel, Tiles};
use minisora::tensor::{init, rng};
use ndarray::{s, Array2, Array3, ArrayD, Ix3};
use proptest::prelude::*;

fn to3(a: &ArrayD<f32>) -> Array3<f32> {
    a.clone().into_dimensionality::<Ix3>().unwrap()
}

fn normal3(shape: (usize, usize, usize), r: &mut minisora::tensor::Rng) -> Array3<f32> {
    to3(&init::normal(&[shape.0, shape.1, shape.2], 1.0, r))
}

/// `(B, S)`: sample `b` keeps a random non-empty subset of its keys.
fn random_mask(b: usize, s: usize, seed: u64) -> Array2<bool> {
    let mut m = Array2::from_shape_fn((b, s), |(i, j)| {
        (seed.wrapping_mul(31).wrapping_add((i * 7 + j * 13) as u64) >> 2) % 3 != 0
    });
    for i in 0..b {
        m[(i, (seed as usize + i) % s)] = true;
    }
    m
}

/// Largest |a − b| over the largest |b| (1 if that is smaller).
fn rel(a: &Array3<f32>, b: &Array3<f32>) -> f32 {
    let scale = b.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn tiled_equals_clear_forward_and_backward(
        b in 1usize..3, t in 1usize..70, s in 1usize..70, h in 1usize..4, d in 1usize..9,
        tq in 1usize..24, tk in 1usize..24, masked in any::<bool>(), seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let c = h * d;
        let q = normal3((b, t, c), &mut r) * 2.0; // scores of a few units: a peaked softmax
        let k = normal3((b, s, c), &mut r) * 2.0;
        let v = normal3((b, s, c), &mut r);
        let d_o = normal3((b, t, c), &mut r);
        let mask = masked.then(|| random_mask(b, s, seed));
        let mask_view = mask.as_ref().map(|m| m.view());
        let tiles = Tiles { q: tq, k: tk };

        let (o_clear, p) = sdpa_forward_masked(q.view(), k.view(), v.view(), h, mask_view);
        let (o, lse) = flash_forward(q.view(), k.view(), v.view(), h, mask_view, tiles);
        prop_assert!(rel(&o, &o_clear) <= 1e-5, "forward {}", rel(&o, &o_clear));

        let mut want = [Array3::zeros((b, t, c)), Array3::zeros((b, s, c)), Array3::zeros((b, s, c))];
        let [dq0, dk0, dv0] = &mut want;
        sdpa_backward(q.view(), k.view(), v.view(), &p, d_o.view(),
            dq0.view_mut(), dk0.view_mut(), dv0.view_mut());
        // start from garbage: the tiled backward must overwrite, as the clear one does
        let mut got = [Array3::from_elem((b, t, c), 7.0), Array3::from_elem((b, s, c), 7.0),
            Array3::from_elem((b, s, c), 7.0)];
        let [dq, dk, dv] = &mut got;
        flash_backward(q.view(), k.view(), v.view(), h, mask_view, tiles, o.view(), &lse,
            d_o.view(), dq.view_mut(), dk.view_mut(), dv.view_mut());
        for (name, (g, w)) in ["dq", "dk", "dv"].iter().zip(got.iter().zip(&want)) {
            prop_assert!(rel(g, w) <= 1e-4, "{name}: {}", rel(g, w));
        }
    }

    // Heads of one channel give query gradients at the checker's f32 floor (see
    // tests/attention_mask.rs), so d ≥ 2; tiles of 2 × 3 make every shape several blocks.
    #[test]
    fn tiled_self_attention_gradients_match_finite_differences(
        b in 1usize..3, t in 1usize..8, h in 1usize..3, d in 2usize..5,
        masked in any::<bool>(), seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut layer = Attention::new(h * d, h, &mut r);
        layer.kernel = Kernel::Tiled;
        let x = random_input(&[b, t, h * d], &mut r);
        let mask = masked.then(|| random_mask(b, t, seed));
        let report = check(
            &mut layer,
            &[x],
            |l, xs| l.forward_infer_masked(&to3(&xs[0]), mask.as_ref()).into_dyn(),
            |l, xs, dy| {
                let (_, cache) = l.forward_masked(&to3(&xs[0]), mask.as_ref());
                vec![l.backward(&cache, &to3(dy)).into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }

    #[test]
    fn tiled_cross_attention_gradients_match_finite_differences(
        b in 1usize..3, t in 1usize..7, h in 1usize..3, d in 2usize..5,
        s in 1usize..8, cc in 1usize..5, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut layer = CrossAttention::new(h * d, cc, h, &mut r);
        layer.kernel = Kernel::Tiled;
        let x = random_input(&[b, t, h * d], &mut r);
        let c = random_input(&[b, s, cc], &mut r);
        let mask = random_mask(b, s, seed);
        let report = check(
            &mut layer,
            &[x, c],
            |l, xs| l.forward_infer_masked(&to3(&xs[0]), &to3(&xs[1]), Some(&mask)).into_dyn(),
            |l, xs, dy| {
                let (_, cache) = l.forward_masked(&to3(&xs[0]), &to3(&xs[1]), Some(&mask));
                let (dx, dc) = l.backward(&cache, &to3(dy));
                vec![dx.into_dyn(), dc.into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }
}

#[test]
fn a_layer_gives_the_same_numbers_on_either_kernel() {
    let mut r = rng(5);
    let mut clear = Attention::new(32, 4, &mut r);
    clear.kernel = Kernel::Clear;
    let mut tiled = clear.clone();
    tiled.kernel = Kernel::Tiled;
    let x = normal3((2, 150, 32), &mut r); // 150 = two tiles of 64 and a partial one
    let dy = normal3((2, 150, 32), &mut r);
    let (y0, c0) = clear.forward(&x);
    let (y1, c1) = tiled.forward(&x);
    assert!(rel(&y1, &y0) <= 1e-5);
    assert!(rel(&tiled.forward_infer(&x), &y0) <= 1e-5);
    let dx0 = clear.backward(&c0, &dy);
    let dx1 = tiled.backward(&c1, &dy);
    assert!(rel(&dx1, &dx0) <= 1e-4, "dx {}", rel(&dx1, &dx0));
    for (a, b) in [
        (&tiled.qkv.weight, &clear.qkv.weight),
        (&tiled.proj.weight, &clear.proj.weight),
    ] {
        let (ga, gb) = (a.grad.clone(), b.grad.clone());
        let scale = gb.iter().fold(1.0f32, |m, x| m.max(x.abs()));
        let diff = ga
            .iter()
            .zip(&gb)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff / scale <= 1e-4, "weight gradient {}", diff / scale);
    }
}

#[test]
fn one_thread_and_two_give_the_same_bits() {
    let mut r = rng(9);
    let q = normal3((2, 97, 24), &mut r);
    let k = normal3((2, 97, 24), &mut r);
    let v = normal3((2, 97, 24), &mut r);
    let d_o = normal3((2, 97, 24), &mut r);
    let mask = random_mask(2, 97, 3);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let tiles = Tiles::default();
            let m = Some(mask.view());
            let (o, lse) = flash_forward(q.view(), k.view(), v.view(), 3, m, tiles);
            let mut g = [
                Array3::zeros((2, 97, 24)),
                Array3::zeros((2, 97, 24)),
                Array3::zeros((2, 97, 24)),
            ];
            let [dq, dk, dv] = &mut g;
            flash_backward(
                q.view(),
                k.view(),
                v.view(),
                3,
                m,
                tiles,
                o.view(),
                &lse,
                d_o.view(),
                dq.view_mut(),
                dk.view_mut(),
                dv.view_mut(),
            );
            (o, g)
        })
    };
    let (o1, g1) = run(1);
    let (o2, g2) = run(2);
    assert_eq!(o1, o2);
    assert_eq!(g1, g2);
}

#[test]
fn a_masked_key_changes_nothing_on_the_tiled_kernel() {
    let mut r = rng(4);
    let q = normal3((1, 40, 8), &mut r);
    let k = normal3((1, 70, 8), &mut r);
    let mut v = normal3((1, 70, 8), &mut r);
    let mask = Array2::from_shape_fn((1, 70), |(_, j)| j % 5 != 0);
    let tiles = Tiles { q: 16, k: 16 };
    let (o, _) = flash_forward(q.view(), k.view(), v.view(), 2, Some(mask.view()), tiles);
    for j in (0..70).step_by(5) {
        v.slice_mut(s![0, j, ..]).fill(1e6); // a masked key's value
    }
    let (o2, _) = flash_forward(q.view(), k.view(), v.view(), 2, Some(mask.view()), tiles);
    assert_eq!(o, o2);
}

#[test]
fn auto_picks_the_tiled_kernel_from_the_crossover_up() {
    use minisora::nn::attention_kernel::TILED_MIN_SCORES;
    assert!(!Kernel::Auto.tiled(16, 16));
    assert!(Kernel::Auto.tiled(TILED_MIN_SCORES, 1));
    assert!(!Kernel::Auto.tiled(TILED_MIN_SCORES - 1, 1));
    assert!(Kernel::Tiled.tiled(1, 1) && !Kernel::Clear.tiled(1 << 20, 1 << 20));
    assert_eq!(Kernel::parse(" Tiled"), Some(Kernel::Tiled));
    assert_eq!(Kernel::parse("flash"), None);
}
