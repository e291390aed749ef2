//! Measured quality of remove-bg and remove-watermark on real photographs.

mod support;
use image::RgbImage;
use support::*;

#[test]
fn remove_bg_matches_a_known_alpha_on_real_backgrounds() {
    let v = vision(2);
    let (fg, fg_alpha) = ball(220);
    let mut worst_mae: f64 = 0.0;
    let mut worst_iou: f64 = 1.0;
    for name in ["animal", "car", "graphic", "people", "product"] {
        // A subject in front of an out-of-focus scene: the photo, blurred as a portrait lens
        // would, so that the scene's own subjects are no longer competing foregrounds.
        let bg = image::imageops::blur(
            &image::imageops::resize(
                &photo(name),
                512,
                512,
                image::imageops::FilterType::Triangle,
            ),
            6.0,
        );
        let (img, truth) = composite(&bg, &fg, &fg_alpha);
        let (out, w, h) = plume_vision::matte::remove_background(&v, &png(&img)).unwrap();
        assert_eq!((w, h), (512, 512));
        let got = image::load_from_memory(&out).unwrap().to_rgba8();
        let (mut abs, mut inter, mut union) = (0f64, 0u64, 0u64);
        for (x, y, t) in truth.enumerate_pixels() {
            let a = got.get_pixel(x, y)[3];
            abs += (f64::from(a) - f64::from(t[0])).abs() / 255.0;
            let (pa, pt) = (a >= 128, t[0] >= 128);
            inter += u64::from(pa && pt);
            union += u64::from(pa || pt);
        }
        let mae = abs / (512.0 * 512.0);
        let iou = inter as f64 / union as f64;
        println!("remove-bg on {name}: MAE {mae:.4}, IoU@0.5 {iou:.4}");
        worst_mae = worst_mae.max(mae);
        worst_iou = worst_iou.min(iou);
    }
    println!("remove-bg worst: MAE {worst_mae:.4}, IoU {worst_iou:.4}");
    // Measured with u2netp on these five backgrounds: MAE 0.0009-0.0013, IoU 0.994-0.996
    // (0.0017-0.0026 and 0.992-0.995 before the second look at small subjects).
    // The bounds leave room for another CPU's arithmetic, not for a broken matte: a matte
    // that misses the subject scores IoU below 0.4 and MAE above 0.2 (seen with sharp,
    // subject-filled backgrounds).
    assert!(
        worst_mae <= 0.02,
        "mean absolute alpha error {worst_mae:.4}"
    );
    assert!(worst_iou >= 0.95, "IoU at 0.5 {worst_iou:.4}");
}

/// What one stamped case measured.
struct Case {
    label: &'static str,
    removed: f64,
    psnr_before: f64,
    psnr_inside: f64,
    psnr_outside: f64,
}

#[test]
fn remove_watermark_removes_stamped_text_and_leaves_the_rest() {
    let v = vision(2);
    let mut cases = Vec::new();
    for name in PHOTOS {
        let original = image::imageops::resize(
            &photo(name),
            768,
            768,
            image::imageops::FilterType::Triangle,
        );
        for (label, opacity) in [
            ("corner-30", 0.3f32),
            ("corner-55", 0.55),
            ("corner-80", 0.8),
        ] {
            let mut img = original.clone();
            let text = "© STOCKPHOTO";
            let px = 40.0;
            let tw = text_width(text, px) as i32;
            let mask = stamp(&mut img, text, 768 - tw - 16, 768 - 60, px, opacity);
            cases.push(report(&v, name, label, &original, &img, &mask));
        }
        let mut img = original.clone();
        let tw = text_width("SAMPLE", 90.0) as i32;
        let mask = stamp(&mut img, "SAMPLE", (768 - tw) / 2, 330, 90.0, 0.45);
        cases.push(report(&v, name, "centred-45", &original, &img, &mask));
        let mut img = original.clone();
        let mut mask = image::GrayImage::new(768, 768);
        for row in 0..4 {
            for col in 0..3 {
                let m = stamp(
                    &mut img,
                    "preview",
                    30 + col * 250,
                    60 + row * 190,
                    34.0,
                    0.4,
                );
                for (x, y, p) in m.enumerate_pixels() {
                    if p[0] != 0 {
                        mask.put_pixel(x, y, *p);
                    }
                }
            }
        }
        cases.push(report(&v, name, "tiled-40", &original, &img, &mask));
    }
    let n = cases.len() as f64;
    let mean_removed = cases.iter().map(|c| c.removed).sum::<f64>() / n;
    let mean_gain = cases
        .iter()
        .map(|c| c.psnr_inside - c.psnr_before)
        .sum::<f64>()
        / n;
    let worst_outside = cases
        .iter()
        .map(|c| c.psnr_outside)
        .fold(f64::MAX, f64::min);
    let worst_corner = cases
        .iter()
        .filter(|c| c.label.starts_with("corner"))
        .map(|c| c.removed)
        .fold(f64::MAX, f64::min);
    println!("watermarks: mean removed {:.1}%, worst corner {:.1}%, mean PSNR gain inside {mean_gain:.1} dB, worst PSNR outside {worst_outside:.1} dB", 100.0 * mean_removed, 100.0 * worst_corner);
    // Measured: mean 80 %, every corner stamp ≥ 91 %, +9.5 dB inside, ≥ 35 dB outside. The
    // misses are large centred words on busy photos (car, graphic) and parts of tiled grids,
    // where the detector does not find every word; bounds sit a little under what we measured.
    assert!(mean_removed >= 0.70, "mean removed {mean_removed:.3}");
    assert!(
        worst_corner >= 0.85,
        "a corner watermark was only {worst_corner:.3} removed"
    );
    assert!(mean_gain >= 6.0, "PSNR inside gained {mean_gain:.1} dB");
    assert!(
        worst_outside >= 30.0,
        "PSNR outside the watermark {worst_outside:.1} dB"
    );
}

fn report(
    v: &plume_vision::Vision,
    name: &str,
    label: &'static str,
    original: &RgbImage,
    stamped: &RgbImage,
    truth: &image::GrayImage,
) -> Case {
    let removal = plume_vision::watermark::remove_watermark(v, &png(stamped), &[]).unwrap();
    let out = image::load_from_memory(&removal.bytes).unwrap().to_rgb8();
    let total = truth.pixels().filter(|p| p[0] != 0).count();
    let covered = truth
        .enumerate_pixels()
        .filter(|(x, y, p)| p[0] != 0 && removal.mask.get_pixel(*x, *y)[0] != 0)
        .count();
    let inside = psnr(&out, original, |x, y| truth.get_pixel(x, y)[0] != 0);
    let before = psnr(stamped, original, |x, y| truth.get_pixel(x, y)[0] != 0);
    let outside = psnr(&out, original, |x, y| truth.get_pixel(x, y)[0] == 0);
    println!(
        "{name:8} {label:11} removed {:5.1}%  PSNR in {before:5.1}->{inside:5.1} dB  out {outside:5.1} dB  masked {}  accepted {:?}",
        100.0 * covered as f64 / total.max(1) as f64,
        removal.masked_pixels,
        removal.candidates.iter().filter(|c| c.accepted).map(|c| (c.rect.x, c.rect.y, c.reasons.clone())).collect::<Vec<_>>()
    );
    Case {
        label,
        removed: covered as f64 / total.max(1) as f64,
        psnr_before: before,
        psnr_inside: inside,
        psnr_outside: outside,
    }
}

#[test]
fn photos_without_a_watermark_stay_unchanged() {
    let v = vision(2);
    for name in PHOTOS {
        let img = photo(name);
        let removal = plume_vision::watermark::remove_watermark(&v, &png(&img), &[]).unwrap();
        let out = image::load_from_memory(&removal.bytes).unwrap().to_rgb8();
        let frac = unchanged(&img, &out);
        println!(
            "{name}: {:.3}% unchanged, candidates {:?}",
            100.0 * frac,
            removal
                .candidates
                .iter()
                .map(|c| (c.score, c.reasons.clone(), c.accepted))
                .collect::<Vec<_>>()
        );
        assert!(
            frac >= 0.99,
            "{name}: only {:.2}% of pixels unchanged",
            100.0 * frac
        );
    }
}

#[test]
fn forced_regions_are_removed_and_bad_input_is_refused() {
    let v = vision(2);
    let original = image::imageops::resize(
        &photo("people"),
        512,
        512,
        image::imageops::FilterType::Triangle,
    );
    let mut img = original.clone();
    // A flat logo the text detector cannot see.
    for y in 40..80 {
        for x in 40..120 {
            img.put_pixel(x, y, image::Rgb([250, 250, 250]));
        }
    }
    let removal =
        plume_vision::watermark::remove_watermark(&v, &png(&img), &[[36, 36, 88, 48]]).unwrap();
    let out = image::load_from_memory(&removal.bytes).unwrap().to_rgb8();
    let logo = |x: u32, y: u32| (40..120).contains(&x) && (40..80).contains(&y);
    let before = psnr(&img, &original, logo);
    let after = psnr(&out, &original, logo);
    assert!(
        after > before + 5.0,
        "the forced region was inpainted: {before:.1} -> {after:.1} dB"
    );
    let untouched = out
        .enumerate_pixels()
        .filter(|(x, y, p)| removal.mask.get_pixel(*x, *y)[0] == 0 && **p != *img.get_pixel(*x, *y))
        .count();
    assert_eq!(untouched, 0, "pixels outside the mask keep their values");
    let err = plume_vision::watermark::remove_watermark(&v, b"not an image", &[]).unwrap_err();
    assert!(
        matches!(err, plume_vision::VisionError::BadImage(_)),
        "{err}"
    );
    let png_bytes = png(&original);
    let err =
        plume_vision::matte::remove_background(&v, &png_bytes[..png_bytes.len() / 3]).unwrap_err();
    assert!(
        matches!(err, plume_vision::VisionError::BadImage(_)),
        "{err}"
    );
}

#[test]
fn exif_orientation_is_applied() {
    let v = vision(1);
    // A 40x20 JPEG whose EXIF says "rotate 90° clockwise": the cut-out is 20x40.
    let img = image::RgbImage::from_fn(40, 20, |x, _| image::Rgb([(x * 6) as u8, 80, 80]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .encode_image(&img)
        .unwrap();
    let exif: &[u8] = &[
        b'E', b'x', b'i', b'f', 0, 0, b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0,
        0, 1, 0, 6, 0, 0, 0, 0, 0, 0,
    ];
    let mut with_exif = vec![0xFF, 0xD8, 0xFF, 0xE1];
    with_exif.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    with_exif.extend_from_slice(exif);
    with_exif.extend_from_slice(&jpeg[2..]);
    let (_, w, h) = plume_vision::matte::remove_background(&v, &with_exif).unwrap();
    assert_eq!((w, h), (20, 40));
}
