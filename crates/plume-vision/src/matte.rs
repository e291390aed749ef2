//! Background removal: the saliency model's matte, at the input's full resolution, as alpha.
//!
//! U²-Net small (u2netp) runs at 320², ISNet at 1024². The input is resized to the model's
//! square, scaled to 0..1 and normalised per channel; the output is min-max normalised,
//! resized back to the original size, and becomes the alpha channel of a PNG.

use crate::runtime::{MatteModel, Vision};
use crate::{codec, Result, VisionError};
use image::imageops::FilterType;
use image::{GrayImage, Luma, RgbImage, RgbaImage};

/// Per-model input side and normalisation (mean, std per channel).
fn model_params(model: MatteModel) -> (u32, [f32; 3], [f32; 3]) {
    match model {
        MatteModel::U2netp => (320, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        MatteModel::Isnet => (1024, [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]),
    }
}

/// NCHW float input from an RGB image already at the model's size.
pub(crate) fn to_nchw(img: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = (f32::from(px[c]) / 255.0 - mean[c]) / std[c];
        }
    }
    data
}

/// The matte of `rgb` as a grey image of the same size (255 = foreground).
pub fn matte(vision: &Vision, rgb: &RgbImage) -> Result<GrayImage> {
    let (side, mean, std) = model_params(vision.config.matte_model);
    let small = image::imageops::resize(rgb, side, side, FilterType::Triangle);
    let (shape, out) = vision.infer(
        false,
        [1, 3, side as usize, side as usize],
        to_nchw(&small, mean, std),
    )?;
    let (oh, ow) = match shape.as_slice() {
        [_, _, h, w] => (*h, *w),
        other => {
            return Err(VisionError::Model(format!(
                "unexpected matte shape {other:?}"
            )))
        }
    };
    let plane = &out[..oh * ow];
    let (lo, hi) = plane
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let range = (hi - lo).max(1e-6);
    let small_matte = GrayImage::from_fn(ow as u32, oh as u32, |x, y| {
        let v = (plane[y as usize * ow + x as usize] - lo) / range;
        Luma([(v * 255.0).round().clamp(0.0, 255.0) as u8])
    });
    let (w, h) = rgb.dimensions();
    Ok(image::imageops::resize(
        &small_matte,
        w,
        h,
        FilterType::Triangle,
    ))
}

/// A cut-out: the input with its matte as alpha, as PNG bytes, and its size.
pub fn remove_background(vision: &Vision, bytes: &[u8]) -> Result<(Vec<u8>, u32, u32)> {
    let decoded = codec::decode(bytes)?;
    let rgb = decoded.image.to_rgb8();
    let alpha = matte(vision, &rgb)?;
    let (w, h) = rgb.dimensions();
    let mut out = RgbaImage::new(w, h);
    for (x, y, px) in out.enumerate_pixels_mut() {
        let c = rgb.get_pixel(x, y);
        *px = image::Rgba([c[0], c[1], c[2], alpha.get_pixel(x, y)[0]]);
    }
    let (png, _) = codec::encode(
        &image::DynamicImage::ImageRgba8(out),
        image::ImageFormat::Png,
    )?;
    Ok((png, w, h))
}
