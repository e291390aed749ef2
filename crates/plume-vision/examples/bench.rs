//! Times remove-bg and remove-watermark (on a photo with a forced region, on one under a large
//! centred word, and on one under a tiled logo) at 1024² and 2048²: the whole executor call
//! (decode, preprocess, inference, postprocess, encode), the model inference alone, and their
//! ratio (our overhead). Run with `scripts/bench-vision`.

use plume_vision::runtime::{with_inference_time, MatteModel};
use plume_vision::{Vision, VisionConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let dir = std::env::var_os("PLUME_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/models"));
    let vision = Vision::new(VisionConfig {
        models_dir: dir.clone(),
        matte_model: MatteModel::U2netp,
        max_concurrent_inferences: 1,
        intra_threads: 2,
    });
    if let Err(e) = vision.matte_ready().and_then(|_| vision.text_ready()) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let photo = image::open(dir.join("test-photos/people.jpg"))
        .expect("run scripts/setup-models --test-photos")
        .to_rgb8();
    println!(
        "{:<18} {:>6} {:>12} {:>12} {:>8}",
        "operation", "size", "end-to-end", "inference", "ratio"
    );
    for side in [1024u32, 2048] {
        let img =
            image::imageops::resize(&photo, side, side, image::imageops::FilterType::Triangle);
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let png = png.into_inner();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
            .encode_image(&img)
            .unwrap();
        let run = |name: &str, f: &dyn Fn() -> Duration| {
            f(); // warm-up: loads the session
            let mut samples: Vec<(Duration, Duration)> = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    let inference = f();
                    (started.elapsed(), inference)
                })
                .collect();
            samples.sort();
            let (total, inference) = samples[2];
            println!(
                "{name:<18} {side:>5}² {:>10.1}ms {:>10.1}ms {:>7.2}x",
                total.as_secs_f64() * 1000.0,
                inference.as_secs_f64() * 1000.0,
                total.as_secs_f64() / inference.as_secs_f64().max(1e-9)
            );
        };
        run("remove-bg (png)", &|| {
            with_inference_time(|| plume_vision::matte::remove_background(&vision, &png).unwrap()).1
        });
        // The same photo at 40 % on a plain grey ground: a small subject, which gets the
        // second look (two inferences).
        let small = {
            let inner = image::imageops::resize(
                &img,
                side * 2 / 5,
                side * 2 / 5,
                image::imageops::FilterType::Triangle,
            );
            let mut ground = image::RgbImage::from_pixel(side, side, image::Rgb([128, 128, 128]));
            image::imageops::replace(
                &mut ground,
                &inner,
                i64::from(side * 3 / 10),
                i64::from(side * 3 / 10),
            );
            let mut out = std::io::Cursor::new(Vec::new());
            ground.write_to(&mut out, image::ImageFormat::Png).unwrap();
            out.into_inner()
        };
        run("remove-bg (small)", &|| {
            with_inference_time(|| plume_vision::matte::remove_background(&vision, &small).unwrap())
                .1
        });
        run("remove-watermark", &|| {
            with_inference_time(|| {
                plume_vision::watermark::remove_watermark(&vision, &jpeg, &[[40, 40, 200, 60]])
                    .unwrap()
            })
            .1
        });
        // The photo under a tiled logo (a ring and a bar, white at 30 %, on a staggered
        // lattice): the whole path, lattice search, stack and inverse included.
        let tiled = {
            let mut marked = img.clone();
            let unit = side as f32 / 1024.0;
            let (step_x, step_y) = (300.0 * unit, 240.0 * unit);
            for (x, y, p) in marked.enumerate_pixels_mut() {
                let row = (y as f32 / step_y).floor();
                let shift = if row as i64 % 2 == 1 {
                    step_x / 2.0
                } else {
                    0.0
                };
                let cx = (x as f32 + shift).rem_euclid(step_x) - step_x / 2.0;
                let cy = (y as f32).rem_euclid(step_y) - step_y / 2.0;
                let r = (cx * cx + cy * cy).sqrt();
                let ring = (22.0 * unit..30.0 * unit).contains(&r);
                let bar = cx.abs() < 60.0 * unit && (cy - 45.0 * unit).abs() < 5.0 * unit;
                if ring || bar {
                    for c in p.0.iter_mut() {
                        *c = (0.7 * f32::from(*c) + 0.3 * 255.0).round() as u8;
                    }
                }
            }
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
                .encode_image(&marked)
                .unwrap();
            out
        };
        // The photo under a large centred word ("SAMPLE", white at 35 %, a seventh of the
        // width high): the detector's path, the cut along its line and the faint-word search.
        let large = {
            let mut marked = img.clone();
            stamp_word(&mut marked, "SAMPLE", side as f32 * 0.14, 0.35);
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
                .encode_image(&marked)
                .unwrap();
            out
        };
        run("remove-wm (large)", &|| {
            with_inference_time(|| {
                plume_vision::watermark::remove_watermark(&vision, &large, &[]).unwrap()
            })
            .1
        });
        run("remove-wm (tiled)", &|| {
            with_inference_time(|| {
                let removal =
                    plume_vision::watermark::remove_watermark(&vision, &tiled, &[]).unwrap();
                assert!(removal.lattice.is_some(), "the tiled logo is found");
                removal
            })
            .1
        });
    }
}

/// Blends `text` in white at `opacity` across the middle of `img` (DejaVu Sans Bold, Debian
/// fonts-dejavu-core).
fn stamp_word(img: &mut image::RgbImage, text: &str, px: f32, opacity: f32) {
    use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
    let bytes = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
        .expect("DejaVu Sans Bold (Debian fonts-dejavu-core)");
    let font = FontRef::try_from_slice(&bytes).unwrap();
    let scaled = font.as_scaled(PxScale::from(px));
    let width: f32 = text
        .chars()
        .map(|c| scaled.h_advance(scaled.glyph_id(c)))
        .sum();
    let (w, h) = (img.width() as f32, img.height() as f32);
    let mut caret = (w - width) / 2.0;
    let baseline = h / 2.0 + scaled.ascent() / 2.0;
    for c in text.chars() {
        let mut glyph = scaled.scaled_glyph(c);
        glyph.position = ab_glyph::point(caret, baseline);
        caret += scaled.h_advance(glyph.id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, cover| {
            let (x, y) = (
                b.min.x as i64 + i64::from(gx),
                b.min.y as i64 + i64::from(gy),
            );
            if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                return;
            }
            let a = cover.min(1.0) * opacity;
            let p = img.get_pixel_mut(x as u32, y as u32);
            for v in p.0.iter_mut() {
                *v = (f32::from(*v) * (1.0 - a) + 255.0 * a).round() as u8;
            }
        });
    }
}
