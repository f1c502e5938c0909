use minisora::io::image::{save_grid, GridLayout};
use minisora::sample::strips;
use minisora::tensor::rng;
use minisora::train::preview::{load_decoder, to_pixels};
use minisora::train::{Source, TrainData, TrainOptions};
fn main() {
    let opts = TrainOptions {
        data: Source::Latents("out/demo-video/latents.safetensors".into()),
        ..TrainOptions::default()
    };
    let data = TrainData::load(&opts).unwrap();
    let vae = load_decoder(
        std::path::Path::new("out/demo-video/vae/vae.safetensors"),
        4,
    )
    .unwrap();
    let idx = [0usize, 1, 2, 3, 41, 42];
    println!(
        "labels {:?}",
        idx.iter().map(|&i| data.labels[i]).collect::<Vec<_>>()
    );
    let x = data.batch(&idx, &mut rng(0));
    let px = to_pixels(&x, Some(&vae), &data.norm);
    save_grid(
        std::path::Path::new("/tmp/check.png"),
        strips(&px).view(),
        GridLayout::new(8).pad(2).upscale(2),
    )
    .unwrap();
}
