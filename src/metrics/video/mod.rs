//! Numbers for generated clips of moving digits: where the digit is ([`track`]), the frame and
//! clip classifiers trained on real clips ([`scorer`]), and the report of a set of clips —
//! digit, motion, speed, consistency, Fréchet video distance ([`clips`]) — and, for captioned
//! colour clips, whether each clip shows what its caption says, and an RGB FVD ([`captions`]).

pub mod captions;
pub mod clips;
pub mod scorer;
pub mod track;
pub mod window;
