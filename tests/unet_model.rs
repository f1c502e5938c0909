//! The U-Net model: config validation and metadata, shapes and ADM's parameter names, the
//! zero-initialised output, the label embedding's null label, and the FLOP counter against a
//! count by hand.

mod support;

use minisora::diffusion::Condition;
use minisora::diffusion::{Denoiser, TrainableDenoiser};
use minisora::param::Parameters;
use minisora::tensor::{init, rng};
use minisora::unet::{UNet, UNetConfig};
use std::collections::BTreeMap;
use support::tiny_unet;

// ---------------------------------------------------------------------------------------------
// Config

#[test]
fn default_config_is_valid() {
    let c = UNetConfig::default();
    c.validate().unwrap();
    assert_eq!(c.emb_dim(), 256);
    assert_eq!(c.downsample_factor(), 2);
    assert_eq!(c.widths(), vec![64, 128]);
    c.check_size(8, 8).unwrap();
}

#[test]
fn config_validation_names_the_bad_field() {
    let err = |c: UNetConfig| c.validate().unwrap_err().to_string();
    let base = UNetConfig::default;
    for field in ["in_channels", "model_channels", "num_heads", "groups"] {
        let mut c = base();
        match field {
            "in_channels" => c.in_channels = 0,
            "model_channels" => c.model_channels = 0,
            "num_heads" => c.num_heads = 0,
            _ => c.groups = 0,
        }
        let e = err(c);
        assert!(
            e.contains(&format!("{field} is 0")) && e.contains("fix"),
            "{e}"
        );
    }
    let e = err(UNetConfig {
        out_channels: 5,
        ..base()
    });
    assert!(e.contains("out_channels = 5"), "{e}");
    let e = err(UNetConfig {
        channel_mult: vec![],
        ..base()
    });
    assert!(e.contains("channel_mult is empty"), "{e}");
    let e = err(UNetConfig {
        channel_mult: vec![1, 0],
        ..base()
    });
    assert!(e.contains("channel_mult[1] is 0"), "{e}");
    let e = err(UNetConfig {
        attention_ds: vec![4],
        ..base()
    });
    assert!(e.contains("attention_ds contains 4"), "{e}");
    let e = err(UNetConfig {
        num_classes: Some(0),
        ..base()
    });
    assert!(e.contains("num_classes"), "{e}");
    // 64 · 1 = 64 is divisible by 16, 12 · 1 = 12 is not
    let e = err(UNetConfig {
        model_channels: 12,
        groups: 8,
        ..base()
    });
    assert!(e.contains("groups = 8") && e.contains("level 0"), "{e}");
    // 3 heads do not divide the attended width 128 of level 1
    let e = err(UNetConfig {
        num_heads: 3,
        ..base()
    });
    assert!(e.contains("num_heads = 3") && e.contains("level 1"), "{e}");
    // inputs must halve cleanly
    let e = base().check_size(7, 8).unwrap_err().to_string();
    assert!(e.contains("7×8"), "{e}");
}

#[test]
fn config_metadata_round_trips_and_rejects_damage() {
    for c in [
        UNetConfig::default(),
        UNetConfig {
            in_channels: 1,
            out_channels: 2,
            model_channels: 16,
            channel_mult: vec![1, 2, 4],
            num_res_blocks: 1,
            attention_ds: vec![],
            num_heads: 2,
            groups: 4,
            num_classes: Some(10),
            scale_shift: false,
        },
    ] {
        let m = c.to_metadata();
        assert_eq!(UNetConfig::from_metadata(&m).unwrap(), c);
    }
    let m = UNetConfig::default().to_metadata();
    assert_eq!(m["unet.channel_mult"], "1,2");
    assert_eq!(m["unet.num_classes"], "none");
    let mut missing = m.clone();
    missing.remove("unet.groups");
    let e = UNetConfig::from_metadata(&missing).unwrap_err().to_string();
    assert!(e.contains("unet.groups is missing"), "{e}");
    let mut bad: BTreeMap<String, String> = m.clone();
    bad.insert("unet.scale_shift".into(), "maybe".into());
    let e = UNetConfig::from_metadata(&bad).unwrap_err().to_string();
    assert!(e.contains("true or false"), "{e}");
    let mut bad = m.clone();
    bad.insert("unet.groups".into(), "7".into());
    assert!(UNetConfig::from_metadata(&bad).is_err());
}

#[test]
fn invalid_configs_are_refused_by_the_model() {
    let mut r = rng(0);
    let e = UNet::new(
        UNetConfig {
            groups: 3,
            ..tiny_unet()
        },
        &mut r,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("groups = 3"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The model

#[test]
fn output_has_the_input_shape_or_twice_the_channels() {
    let mut r = rng(1);
    for (out, classes) in [(1, None), (2, Some(3))] {
        let net = UNet::new(
            UNetConfig {
                out_channels: out,
                num_classes: classes,
                ..tiny_unet()
            },
            &mut r,
        )
        .unwrap();
        let x = init::normal(&[3, 1, 8, 4], 1.0, &mut r);
        let y = classes.map(|_| vec![0, 1, 3]);
        let (o, _) = net.forward_train(
            &x,
            &[0, 10, 999],
            &y.as_deref().map_or(Condition::None, Condition::labels),
        );
        assert_eq!(o.shape(), &[3, out, 8, 4]);
        assert_eq!(
            o,
            net.predict(
                &x,
                &[0, 10, 999],
                &y.as_deref().map_or(Condition::None, Condition::labels)
            )
        );
    }
}

#[test]
fn parameter_names_follow_adm() {
    let mut r = rng(2);
    let mut net = UNet::new(
        UNetConfig {
            model_channels: 8,
            num_res_blocks: 2,
            num_classes: Some(10),
            ..UNetConfig::default()
        },
        &mut r,
    )
    .unwrap();
    let shapes: BTreeMap<String, Vec<usize>> = net.param_shapes().into_iter().collect();
    let want: [(&str, &[usize]); 16] = [
        ("time_embed.0.weight", &[32, 8]),
        ("time_embed.2.weight", &[32, 32]),
        ("label_emb.weight", &[11, 32]),
        ("input_blocks.0.0.weight", &[8, 4, 3, 3]),
        ("input_blocks.1.0.in_layers.0.weight", &[8]),
        ("input_blocks.1.0.in_layers.2.weight", &[8, 8, 3, 3]),
        ("input_blocks.1.0.emb_layers.1.weight", &[16, 32]),
        ("input_blocks.1.0.out_layers.0.weight", &[8]),
        ("input_blocks.1.0.out_layers.3.weight", &[8, 8, 3, 3]),
        ("input_blocks.3.0.op.weight", &[8, 8, 3, 3]),
        ("input_blocks.4.0.skip_connection.weight", &[16, 8, 1, 1]),
        ("input_blocks.4.1.qkv.weight", &[48, 16, 1, 1]),
        ("middle_block.1.qkv.weight", &[48, 16, 1, 1]),
        ("middle_block.2.out_layers.3.bias", &[16]),
        ("output_blocks.2.2.conv.weight", &[16, 16, 3, 3]),
        ("out.2.weight", &[4, 8, 3, 3]),
    ];
    for (name, shape) in want {
        assert_eq!(shapes.get(name).map(Vec::as_slice), Some(shape), "{name}");
    }
    assert!(shapes.contains_key("out.0.bias"));
    assert!(shapes.contains_key("output_blocks.0.1.proj_out.weight"));
    // ADM: 1 + 2·2 + 1 input blocks, 2·3 output blocks; the last output block has no Upsample
    assert_eq!(net.input_blocks.len(), 6);
    assert_eq!(net.output_blocks.len(), 6);
    assert!(!shapes.keys().any(|k| k.starts_with("output_blocks.5.1")));
    assert_eq!(
        net.num_params(),
        shapes
            .values()
            .map(|s| s.iter().product::<usize>())
            .sum::<usize>()
    );
}

#[test]
fn fresh_model_predicts_exactly_zero_and_has_a_gradient() {
    // out.2 is zero-initialised (ADM's zero_module), so the output is 0 whatever the input;
    // its own gradient is not, so training can start.
    let mut r = rng(3);
    let mut net = UNet::new(
        UNetConfig {
            num_classes: Some(10),
            out_channels: 2,
            ..tiny_unet()
        },
        &mut r,
    )
    .unwrap();
    let x = init::normal(&[2, 1, 4, 4], 1.0, &mut r);
    let out = net.predict(&x, &[5, 900], &Condition::labels(&[3, 10]));
    assert!(out.iter().all(|&v| v == 0.0));
    let (out, cache) = net.forward_train(&x, &[5, 900], &Condition::None);
    assert!(out.iter().all(|&v| v == 0.0));
    net.zero_grad();
    net.backward_train(&cache, &out.mapv(|_| 1.0));
    let g = net
        .out_conv
        .weight
        .grad
        .iter()
        .map(|v| v.abs())
        .sum::<f32>();
    assert!(g > 0.0);
}

#[test]
fn the_null_label_is_the_last_row_and_the_default() {
    let mut r = rng(4);
    let mut net = UNet::new(
        UNetConfig {
            num_classes: Some(3),
            ..tiny_unet()
        },
        &mut r,
    )
    .unwrap();
    assert_eq!(net.null_label(), Some(3));
    assert_eq!(net.embed.label_emb.as_ref().unwrap().num(), 4);
    // give the zero-initialised convs values, so the output depends on the labels
    net.visit("", &mut |name, p| {
        if name.ends_with("weight") && p.value.iter().all(|&v| v == 0.0) {
            p.value = init::normal(p.shape(), 0.1, &mut r);
        }
    });
    let x = init::normal(&[2, 1, 4, 4], 1.0, &mut r);
    let null = net.predict(&x, &[7, 7], &Condition::labels(&[3, 3]));
    assert_eq!(net.predict(&x, &[7, 7], &Condition::None), null);
    assert_ne!(net.predict(&x, &[7, 7], &Condition::labels(&[0, 1])), null);
    let uncond = UNet::new(tiny_unet(), &mut r).unwrap();
    assert_eq!(uncond.null_label(), None);
}

// ---------------------------------------------------------------------------------------------
// FLOPs

#[test]
#[allow(clippy::identity_op)] // the counts keep their factors of 1 to read as C_out·C_in·k²·HW
fn flops_match_a_count_by_hand() {
    // tiny_unet() at 4×4: emb_dim E = 16, widths 4 (at 4×4, 16 positions) and 8 (at 2×2, 4).
    // A conv is C_out·C_in·k²·positions, a Linear d_in·d_out, attention's QKᵀ and PV T²·C each.
    let time_embed = 4 * 16 + 16 * 16; // 320
    let conv_in = 4 * 1 * 9 * 16; // 576

    // ResBlock 4→4 at 4×4: in conv + emb Linear (16 → 2·4) + out conv
    let in_res1 = 4 * 4 * 9 * 16 + 16 * 8 + 4 * 4 * 9 * 16; // 4736
    let down = 4 * 4 * 9 * 4; // 576, stride 2 → 2×2

    // attention on 8 channels at 2×2: qkv 1×1 + QKᵀ + PV + proj_out 1×1
    let attn = 24 * 8 * 4 + 2 * 4 * 4 * 8 + 8 * 8 * 4; // 1280

    // ResBlock 4→8 at 2×2 with a 1×1 skip conv, then attention
    let in_res2 = 8 * 4 * 9 * 4 + 16 * 16 + 8 * 8 * 9 * 4 + 8 * 4 * 4; // 3840
    let res_8 = 8 * 8 * 9 * 4 + 16 * 16 + 8 * 8 * 9 * 4; // 4864
    let middle = res_8 + attn + res_8; // 11008

    // decoder: the skips are [4, 4, 4, 8] (input blocks 0..3), taken from the end
    let out0 = 8 * 16 * 9 * 4 + 16 * 16 + 8 * 8 * 9 * 4 + 8 * 16 * 4 + attn; // 16+8 → 8: 8960
    let up = 8 * 8 * 9 * 16; // 9216, the conv after nearest ×2 at 4×4
    let out1 = 8 * 12 * 9 * 4 + 16 * 16 + 8 * 8 * 9 * 4 + 8 * 12 * 4 + attn + up; // 16896
    let out2 = 4 * 12 * 9 * 16 + 16 * 8 + 4 * 4 * 9 * 16 + 4 * 12 * 16; // 10112
    let out3 = 4 * 8 * 9 * 16 + 16 * 8 + 4 * 4 * 9 * 16 + 4 * 8 * 16; // 7552
    let conv_out = 1 * 4 * 9 * 16; // 576
    let total = time_embed
        + conv_in
        + in_res1
        + down
        + in_res2
        + attn
        + middle
        + out0
        + out1
        + out2
        + out3
        + conv_out;
    assert_eq!(total, 66432);
    let net = UNet::new(tiny_unet(), &mut rng(5)).unwrap();
    assert_eq!(net.flops(4, 4), total as u64);
}

#[test]
fn doubling_the_width_roughly_quadruples_the_flops() {
    let mut r = rng(6);
    let small = UNet::new(UNetConfig::default(), &mut r).unwrap();
    let wide = UNet::new(
        UNetConfig {
            model_channels: 128,
            ..UNetConfig::default()
        },
        &mut r,
    )
    .unwrap();
    let ratio = wide.flops(8, 8) as f64 / small.flops(8, 8) as f64;
    // convs and Linears scale as width², attention's T²·C products only as width
    assert!((3.8..4.0).contains(&ratio), "ratio {ratio}");
    // and doubling the side quadruples the conv work (attention grows faster)
    let ratio = small.flops(16, 16) as f64 / small.flops(8, 8) as f64;
    assert!((4.0..4.5).contains(&ratio), "ratio {ratio}");
}
