//! # minisora
//!
//! The stack behind Sora-style generation — VAE, U-Net, attention, DiT, DDPM/DDIM and latent
//! diffusion so far, with the space-time DiT of video to come — written from scratch for the
//! CPU, with every backward pass written by hand. Read it beside the book in `book/`.
//!
//! The layers, bottom up: [`tensor`], [`param`], [`nn`] and [`optim`]; [`diffusion`] (the
//! math only); the networks [`vae`], [`unet`], [`dit`] and [`toy2d`]; [`data`], [`io`],
//! [`text`] (captions as tokens) and [`metrics`]; [`train`] (one trainer for any model and
//! rank of data), [`models`] (the registry and each model's recipe); the commands
//! [`sample`], [`interpolate`], [`demo`] and [`experiments`]; and [`cli`], the command line.

pub mod cli;
pub mod data;
pub mod demo;
pub mod demo_text;
pub mod demo_video;
pub mod diffusion;
pub mod dit;
pub mod error;
pub mod evaluate_frames;
pub mod evaluate_text;
pub mod evaluate_video;
pub mod experiments;
pub mod generate;
pub mod gradcheck;
pub mod interpolate;
pub mod io;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod optim;
pub mod param;
pub mod sample;
pub mod sample_frames;
pub mod tensor;
pub mod text;
pub mod toy2d;
pub mod train;
pub mod unet;
pub mod vae;
pub mod video;

pub use param::{Param, Parameters};
