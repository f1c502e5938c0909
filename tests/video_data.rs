//! Moving digits: seeded and prefix-stable, the shapes asked for, wrong settings refused by
//! range, the sprite moving exactly speed × direction per frame on the canvas, labels and
//! captions agreeing, classes balanced, real UCI sprites usable, and the tracker reading the
//! motion back.

use minisora::data::DataSource;
use minisora::metrics::video::track::{centroid, main_motion, track};
use minisora::video::moving_digits::{
    caption, class_name, label, unlabel, Motion, MovingDigits, Sprites, MOTIONS, NUM_CLASSES,
};
use ndarray::{s, Axis};

#[test]
fn same_seed_same_bits_and_prefixes_agree() {
    let g = MovingDigits::default();
    let a = g.generate(45, 7).unwrap();
    let b = g.generate(45, 7).unwrap();
    assert_eq!(a.clips, b.clips);
    assert_eq!(a.speeds, b.speeds);
    let short = g.generate(12, 7).unwrap();
    assert_eq!(short.clips, a.clips.slice(s![..12, .., .., .., ..]));
    assert_eq!(short.speeds, a.speeds[..12]);
    let other = g.generate(12, 8).unwrap();
    assert_ne!(other.clips, short.clips);
}

#[test]
fn shapes_for_one_eight_and_32_frames() {
    for f in [1, 8, 32] {
        let g = MovingDigits {
            frames: f,
            ..MovingDigits::default()
        };
        let set = g.generate(5, 1).unwrap();
        assert_eq!(set.clips.dim(), (5, 1, f, 32, 32));
        assert_eq!(set.frame_count(), f);
        let frames = set.frames();
        assert_eq!(frames.images.dim(), (5 * f, 1, 32, 32));
        assert_eq!(frames.num_classes(), 10);
        // frame t of clip n is image n·F + t, labelled by the clip's digit
        let (n, t) = (3, f - 1);
        assert_eq!(
            frames.image(n * f + t),
            set.clips.slice(s![n, .., t, .., ..])
        );
        assert_eq!(frames.labels[n * f + t], set.digits[n]);
        assert!(set.clips.iter().all(|&v| (-1.0..=1.0).contains(&v)));
    }
}

#[test]
fn wrong_settings_are_errors_naming_the_range() {
    for f in [0, 33] {
        let g = MovingDigits {
            frames: f,
            ..MovingDigits::default()
        };
        let e = g.generate(2, 0).unwrap_err();
        assert!(e.fix.contains("1 to 32"), "{e}");
    }
    let g = MovingDigits {
        min_speed: 3,
        max_speed: 2,
        ..MovingDigits::default()
    };
    assert!(g.validate().is_err());
    let g = MovingDigits {
        sprite: 32,
        ..MovingDigits::default()
    };
    assert!(g.validate().is_err());
    let e = Motion::parse("sideways").unwrap_err();
    assert!(e.fix.contains("left, right, up or down"), "{e}");
    for m in MOTIONS {
        assert_eq!(Motion::parse(m.name()).unwrap(), m);
    }
}

#[test]
fn the_sprite_moves_by_speed_times_direction_and_stays_on_the_canvas() {
    let g = MovingDigits {
        frames: 8,
        max_speed: 2,
        ..MovingDigits::default()
    };
    let set = g.generate(80, 3).unwrap();
    let mut seen_speeds = [false; 3];
    for i in 0..set.len() {
        let clip = set.clip(i); // (1, F, H, W)
        let (dx, dy) = set.motions[i].velocity();
        let s = set.speeds[i] as f32;
        seen_speeds[set.speeds[i]] = true;
        let ink: Vec<f32> = clip
            .axis_iter(Axis(1))
            .map(|f| f.iter().map(|&v| v + 1.0).sum())
            .collect();
        let c: Vec<(f32, f32)> = clip
            .index_axis(Axis(0), 0)
            .outer_iter()
            .map(|f| centroid(f).unwrap())
            .collect();
        for t in 1..c.len() {
            // whole pixels: the centre moves by exactly s·d
            assert!(
                (c[t].0 - c[t - 1].0 - s * dx as f32).abs() < 1e-3,
                "clip {i}"
            );
            assert!(
                (c[t].1 - c[t - 1].1 - s * dy as f32).abs() < 1e-3,
                "clip {i}"
            );
            // on the canvas: no ink is lost at an edge
            assert!(
                (ink[t] - ink[0]).abs() < 1e-2 * ink[0],
                "clip {i} frame {t}"
            );
        }
    }
    assert!(seen_speeds[1] && seen_speeds[2], "both speeds drawn");
}

#[test]
fn long_clips_bounce_and_stay_on_the_canvas() {
    let g = MovingDigits {
        frames: 32,
        ..MovingDigits::default()
    };
    let set = g.generate(8, 5).unwrap();
    for i in 0..set.len() {
        let clip = set.clip(i);
        let ink: Vec<f32> = clip
            .axis_iter(Axis(1))
            .map(|f| f.iter().map(|&v| v + 1.0).sum())
            .collect();
        assert!(ink.iter().all(|&k| (k - ink[0]).abs() < 1e-2 * ink[0]));
    }
}

#[test]
fn labels_captions_and_classes_agree_and_are_balanced() {
    for l in 0..NUM_CLASSES {
        let (d, m) = unlabel(l);
        assert_eq!(label(d, m), l);
    }
    assert_eq!(label(3, Motion::Left), 12);
    assert_eq!(class_name(12), "3 left");
    assert_eq!(caption(label(7, Motion::Down)), "a 7 moving down");
    let set = MovingDigits::default().generate(120, 0).unwrap();
    let mut counts = vec![0; NUM_CLASSES];
    for i in 0..set.len() {
        counts[set.labels[i]] += 1;
        assert_eq!(set.labels[i], label(set.digits[i], set.motions[i]));
        assert_eq!(
            set.captions[i],
            format!("a {} moving {}", set.digits[i], set.motions[i].name())
        );
        assert_eq!(set.class_names[set.labels[i]], class_name(set.labels[i]));
    }
    assert!(counts.iter().all(|&c| c == 3), "{counts:?}");
}

#[test]
fn uci_digit_sprites_work_and_shapes_are_refused() {
    let g = MovingDigits {
        sprites: Sprites::Dataset(DataSource::UciDigits),
        ..MovingDigits::default()
    };
    let a = g.generate(40, 2).unwrap();
    assert_eq!(a.clips, g.generate(40, 2).unwrap().clips);
    let procedural = MovingDigits::default().generate(40, 2).unwrap();
    assert_ne!(a.clips, procedural.clips, "the sprites come from the scans");
    for i in 0..a.len() {
        let t = track(a.clip(i));
        let (m, speed) = main_motion(&t).unwrap();
        assert_eq!(m, a.motions[i]);
        assert!((speed - a.speeds[i] as f32).abs() < 1e-3);
    }
    let shapes = MovingDigits {
        sprites: Sprites::Dataset(DataSource::Shapes),
        ..MovingDigits::default()
    };
    let e = shapes.generate(4, 0).unwrap_err();
    assert!(e.problem.contains("3 channels"), "{e}");
}

#[test]
fn the_tracker_recovers_every_motion_and_speed() {
    let set = MovingDigits::default().generate(80, 11).unwrap();
    for i in 0..set.len() {
        let (m, speed) = main_motion(&track(set.clip(i))).unwrap();
        assert_eq!(m, set.motions[i], "clip {i}");
        assert!(
            (speed - set.speeds[i] as f32).abs() < 0.3,
            "clip {i}: {speed}"
        );
    }
    // reversed time reads the opposite way
    let rev = set.clips.slice(s![0, .., ..;-1, .., ..]);
    let (m, _) = main_motion(&track(rev)).unwrap();
    assert_ne!(m, set.motions[0]);
}
