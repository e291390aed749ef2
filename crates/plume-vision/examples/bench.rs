//! Times remove-bg and remove-watermark at 1024² and 2048²: the whole executor call (decode,
//! preprocess, inference, postprocess, encode), the model inference alone, and their ratio
//! (our overhead). Run with `scripts/bench-vision`.

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
    }
}
