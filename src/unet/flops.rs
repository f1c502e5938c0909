//! How much a U-Net computes: the forward pass's multiply-accumulates, counted layer by layer
//! from the model's own structure. (The parameter count is [`Parameters::num_params`](crate::param::Parameters::num_params).)
//!
//! The convention is the one DiT's paper uses for its "Gflops" (Peebles & Xie 2023,
//! <https://arxiv.org/abs/2212.09748>, counted with fvcore): one multiply-add is one flop, and
//! only the products are counted —
//!
//! - a conv: $C_\text{out} \cdot C_\text{in} \cdot k^2 \cdot H_\text{out} W_\text{out}$;
//! - a Linear: $d_\text{in} \cdot d_\text{out}$ per sample (the timestep MLP and every
//!   ResBlock's `emb_layers`);
//! - attention: its two matrix products, $Q K^\top$ and $P V$, $T^2 C$ each for $T = HW$
//!   positions and $C$ channels (summed over heads), besides the `qkv` and `proj_out` convs.
//!
//! Not counted, as in fvcore: biases, GroupNorm, SiLU, softmax, the scale-shift, additions,
//! the concatenations, nearest upsampling, the sinusoids and the label lookup — all linear in
//! the activations' size, a few percent of the total. So the DiT chapter can compare the two
//! models at equal `flops`. The count is for ONE sample; a batch costs `B` times as much.

use super::model::UNet;
use super::sequential::{Block, Layer};
use crate::nn::Conv2d;

/// MACs of `conv` on an `h × w` input, and its output size.
fn conv(conv: &Conv2d, h: usize, w: usize) -> (u64, usize, usize) {
    let (k, s, p) = (conv.kernel(), conv.stride, conv.padding);
    let oh = (h + 2 * p - k) / s + 1;
    let ow = (w + 2 * p - k) / s + 1;
    let macs = conv.c_out() * conv.c_in() * k * k * oh * ow;
    (macs as u64, oh, ow)
}

/// MACs of one layer on an `h × w` input; updates `h`, `w` to its output size.
fn layer(l: &Layer, h: &mut usize, w: &mut usize) -> u64 {
    match l {
        Layer::Conv(c) => {
            let (m, oh, ow) = conv(c, *h, *w);
            (*h, *w) = (oh, ow);
            m
        }
        Layer::Res(r) => {
            let emb = (r.emb_linear.d_in() * r.emb_linear.d_out()) as u64;
            let skip = r.skip_connection.as_ref().map_or(0, |c| conv(c, *h, *w).0);
            conv(&r.in_conv, *h, *w).0 + emb + conv(&r.out_conv, *h, *w).0 + skip
        }
        Layer::Attn(a) => {
            let (t, c) = ((*h * *w) as u64, a.channels() as u64);
            // $QK^\top$ and $PV$: $T^2 C$ each
            conv(&a.qkv, *h, *w).0 + 2 * t * t * c + conv(&a.proj_out, *h, *w).0
        }
        Layer::Down(d) => {
            let (m, oh, ow) = conv(&d.conv, *h, *w);
            (*h, *w) = (oh, ow);
            m
        }
        Layer::Up(u) => {
            (*h, *w) = (2 * *h, 2 * *w);
            conv(&u.conv, *h, *w).0
        }
    }
}

fn block(b: &Block, h: &mut usize, w: &mut usize) -> u64 {
    b.layers.iter().map(|l| layer(l, h, w)).sum()
}

impl UNet {
    // ANCHOR: unet_flops
    /// Multiply-accumulates of one forward pass of ONE `h × w` sample (DiT's "Gflops" are
    /// these divided by 10⁹): convs, Linears and the attention products; see the module docs.
    pub fn flops(&self, h: usize, w: usize) -> u64 {
        let e = &self.embed;
        let mut total = (e.linear_0.d_in() * e.linear_0.d_out()
            + e.linear_2.d_in() * e.linear_2.d_out()) as u64;
        let (mut hh, mut ww) = (h, w);
        for b in &self.input_blocks {
            total += block(b, &mut hh, &mut ww);
        }
        total += block(&self.middle_block, &mut hh, &mut ww);
        for b in &self.output_blocks {
            total += block(b, &mut hh, &mut ww); // the concatenation only widens the input
        }
        total + conv(&self.out_conv, hh, ww).0
    }
    // ANCHOR_END: unet_flops
}
