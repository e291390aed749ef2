//! Local image models for Plume, as pure functions: image bytes in, image bytes out. No HTTP,
//! no database.
//!
//! * [`runtime`]: ONNX Runtime loaded from the models folder (`load-dynamic`), one session per
//!   model per process, created once, and a bound on concurrent inferences;
//! * [`matte`]: background removal with U²-Net small (u2netp) or ISNet;
//! * [`text`]: text-region detection with PP-OCRv4's DB detector;
//! * [`sparkle`]: Gemini's visible sparkle, found and inverted exactly from its alpha map;
//! * [`tiles`]: marks repeated on a lattice, found by autocorrelation and stacked;
//! * [`watermark`]: scoring regions for being a watermark, tight stroke masks, the pipeline;
//! * [`inpaint`]: Telea's fast-marching inpainting, written here, for strokes, and the
//!   entry point that sends boxed regions to `exemplar`;
//! * `exemplar`: wide holes filled from the photo's own patches (Criminisi's method);
//! * [`codec`]: decoding with EXIF orientation applied, encoding in the input's format;
//! * `blend`: a semi-transparent mark's blend, measured from its strokes and inverted;
//! * `faint`: large faint words found by their blend's edges where the detector misses them;
//! * `cut`: the exact minimum of a two-label energy on the pixel grid (a minimum cut), which
//!   `faint` uses to say which pixels lie under a mark;
//! * `filters`: box means on float planes, shared by `tiles` and `matte`.
//!
//! The model files come from `scripts/setup-models` (docs in MODELS.md); nothing is
//! downloaded at run time.

mod blend;
pub mod codec;
mod cut;
mod exemplar;
mod faint;
mod filters;
pub mod inpaint;
pub mod matte;
pub mod runtime;
pub mod sparkle;
pub mod text;
pub mod tiles;
pub mod watermark;

pub use runtime::{Vision, VisionConfig};

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The input is not an image we can read (corrupt, truncated, unknown type).
    #[error("the image cannot be read: {0}")]
    BadImage(String),
    /// A model file or the runtime is missing or broken.
    #[error("{0}")]
    Unavailable(String),
    /// Inference failed.
    #[error("the model failed: {0}")]
    Model(String),
}

impl From<ort::Error> for VisionError {
    fn from(e: ort::Error) -> VisionError {
        VisionError::Model(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, VisionError>;
