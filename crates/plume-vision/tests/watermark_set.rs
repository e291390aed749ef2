//! remove-watermark on a varied set of marks (support/marks.rs): five kinds of mark, each on
//! the six sample photos with a different font, text, size, opacity and place, scored from
//! outside (how much of what each mark changed is gone, fidelity outside the marks), and the
//! clean photos, which must stay as they are.
//!
//! By hand: `PLUME_SAVE_MARKS=1` saves each marked area before and after, and the mask, to
//! `target/tmp/marks/`, with every marked photo, what came out of it and the clean ones whole
//! (the held-out tiled marks too); `PLUME_SHOW_ALL=1` prints every candidate with its score
//! and reasons.

mod support;
use support::marks::{score, stamp_kind, KINDS};
use support::*;

fn sized(name: &str) -> image::RgbImage {
    let p = photo(name);
    let h = (1024.0 * p.height() as f32 / p.width() as f32).round() as u32;
    image::imageops::resize(&p, 1024, h, image::imageops::FilterType::Triangle)
}

/// With `PLUME_SAVE_MARKS`, saves a marked photo and what came out of it whole to
/// `target/tmp/marks/{prefix}-full.png` and `-out.png`, and returns the folder.
fn save_marked(
    prefix: &str,
    marked: &image::RgbImage,
    out: &image::RgbImage,
) -> Option<std::path::PathBuf> {
    std::env::var_os("PLUME_SAVE_MARKS")?;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("marks");
    std::fs::create_dir_all(&dir).unwrap();
    marked.save(dir.join(format!("{prefix}-full.png"))).unwrap();
    out.save(dir.join(format!("{prefix}-out.png"))).unwrap();
    Some(dir)
}

/// The regions a removal took as marks: place, size and why.
fn accepted(removal: &plume_vision::watermark::Removal) -> Vec<(u32, u32, u32, u32, String)> {
    removal
        .candidates
        .iter()
        .filter(|c| c.accepted)
        .map(|c| (c.rect.x, c.rect.y, c.rect.w, c.rect.h, c.reasons.join(",")))
        .collect()
}

#[test]
fn every_kind_of_mark_is_removed_and_clean_photos_stay() {
    let v = vision(2);
    let mut table = Vec::new();
    for (kind, label) in KINDS.iter().enumerate() {
        let mut removed = Vec::new();
        let mut outside = f64::MAX;
        for (i, name) in PHOTOS.iter().enumerate() {
            let original = sized(name);
            let mut img = original.clone();
            let truth = stamp_kind(&mut img, kind, i + kind);
            let removal = plume_vision::watermark::remove_watermark(&v, &png(&img), &[]).unwrap();
            let out = image::load_from_memory(&removal.bytes).unwrap().to_rgb8();
            let s = score(&original, &img, &out, &truth);
            println!(
                "{label:15} {name:8} removed {:>6}  PSNR outside {:5.1} dB  lattice {:?} accepted {:?}",
                s.removed.map_or("-".into(), |r| format!("{r:.2}")),
                s.psnr_outside,
                removal.lattice.as_ref().map(|l| format!(
                    "({:.1},{:.1}) ({:.1},{:.1}) peaks {:.2}/{:.2} cover {:.3}",
                    l.v1.0, l.v1.1, l.v2.0, l.v2.1, l.peaks.0, l.peaks.1, l.cover
                )),
                removal
                    .candidates
                    .iter()
                    .filter(|c| c.accepted || std::env::var_os("PLUME_SHOW_ALL").is_some())
                    .map(|c| (
                        c.rect.x,
                        c.rect.y,
                        c.rect.w,
                        c.rect.h,
                        (c.score * 100.0) as i32,
                        c.reasons.join(","),
                        c.opacity.map(|a| (a * 100.0).round() as i32)
                    ))
                    .collect::<Vec<_>>()
            );
            if let Some(dir) = save_marked(&format!("{kind}-{name}"), &img, &out) {
                if kind == 0 {
                    original
                        .save(dir.join(format!("clean-{name}-full.png")))
                        .unwrap();
                }
                // The marked area, before above after, at twice the size.
                let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
                for (x, y, t) in truth.enumerate_pixels() {
                    if t[0] != 0 {
                        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                    }
                }
                if x1 > x0 {
                    let (x0, y0) = (x0.saturating_sub(12), y0.saturating_sub(12));
                    let (cw, ch) = (
                        (x1 + 12).min(img.width()) - x0,
                        (y1 + 12).min(img.height()) - y0,
                    );
                    let mut both = image::RgbImage::new(cw, ch * 2);
                    image::imageops::replace(
                        &mut both,
                        &image::imageops::crop_imm(&img, x0, y0, cw, ch).to_image(),
                        0,
                        0,
                    );
                    image::imageops::replace(
                        &mut both,
                        &image::imageops::crop_imm(&out, x0, y0, cw, ch).to_image(),
                        0,
                        i64::from(ch),
                    );
                    let both = image::imageops::resize(
                        &both,
                        cw * 2,
                        ch * 4,
                        image::imageops::FilterType::Nearest,
                    );
                    both.save(dir.join(format!("{kind}-{name}.png"))).unwrap();
                    let m = image::imageops::crop_imm(&removal.mask, x0, y0, cw, ch).to_image();
                    image::imageops::resize(
                        &m,
                        cw * 2,
                        ch * 2,
                        image::imageops::FilterType::Nearest,
                    )
                    .save(dir.join(format!("{kind}-{name}-mask.png")))
                    .unwrap();
                }
            }
            removed.extend(s.removed);
            outside = outside.min(s.psnr_outside);
        }
        let mean = removed.iter().sum::<f64>() / removed.len() as f64;
        let worst = removed.iter().copied().fold(f64::MAX, f64::min);
        table.push((*label, mean, worst, outside));
    }
    let mut clean = Vec::new();
    for name in PHOTOS {
        let img = sized(name);
        let removal = plume_vision::watermark::remove_watermark(&v, &png(&img), &[]).unwrap();
        let out = image::load_from_memory(&removal.bytes).unwrap().to_rgb8();
        clean.push(unchanged(&img, &out));
        println!(
            "clean {name:8} {:.2} % unchanged, accepted {:?}",
            100.0 * clean.last().unwrap(),
            accepted(&removal)
        );
    }
    println!("\nkind            mean removed  worst  worst PSNR outside");
    for (label, mean, worst, outside) in &table {
        println!("{label:15} {mean:12.2} {worst:6.2} {outside:10.1} dB");
    }
    let clean_mean = clean.iter().sum::<f64>() / clean.len() as f64;
    let clean_worst = clean.iter().copied().fold(f64::MAX, f64::min);
    println!(
        "clean photos unchanged: mean {:.2} %, worst {:.2} %",
        100.0 * clean_mean,
        100.0 * clean_worst
    );
    // Floors a little under what was measured (mean removed: corner handle 0.86, dark line
    // 0.97, CJK stamp 0.85 (worst of the three 0.74), large centred 0.68 (worst 0.45;
    // inverted where found, by the detector on the photo or on its darkest channel, or by
    // the blend's edges, the rest of the line by a graph cut), tiled 0.81 (worst 0.67, the
    // graphic, where the mark shows on few instances and the parts of the stack that are
    // the photo's are dropped by their wavering opacity); clean photos 100 % unchanged),
    // so a change that loses ground fails here. Large low-opacity words are the open
    // problem: the text detector misses most of them.
    let floor = [0.8, 0.9, 0.8, 0.64, 0.78];
    for ((label, mean, _, _), floor) in table.iter().zip(floor) {
        assert!(*mean >= floor, "{label}: mean removed {mean:.2} < {floor}");
    }
    for (label, _, worst, outside) in &table[..3] {
        assert!(*worst >= 0.6, "{label}: one photo only {worst:.2} removed");
        assert!(
            *outside >= 40.0,
            "{label}: PSNR outside the marks {outside:.1} dB"
        );
    }
    let (_, _, large_worst, large_outside) = table[3];
    assert!(
        large_worst >= 0.4,
        "large centred: one photo only {large_worst:.2} removed"
    );
    assert!(
        large_outside >= 38.0,
        "large centred: PSNR outside the marks {large_outside:.1} dB"
    );
    let (_, _, tiled_worst, tiled_outside) = table[4];
    assert!(
        tiled_worst >= 0.6,
        "tiled: one photo only {tiled_worst:.2} removed"
    );
    assert!(
        tiled_outside >= 35.0,
        "tiled: PSNR outside the marks {tiled_outside:.1} dB"
    );
    assert!(
        clean_mean >= 0.995,
        "clean photos: mean {clean_mean:.4} unchanged"
    );
    assert!(
        clean_worst >= 0.99,
        "a clean photo only {clean_worst:.4} unchanged"
    );
}

/// Tiled marks the set does not hold (dark and grey inks, horizontal, −45° and +20°, other
/// spacings and texts, rows not staggered), each on two photos: the lattice finder must not
/// be tuned to the set's one kind of tiling.
#[test]
fn tiled_marks_unlike_the_sets_are_found_and_taken_off() {
    let v = vision(2);
    let mut removed = Vec::new();
    let mut outside = f64::MAX;
    for variant in 0..3 {
        for name in [PHOTOS[variant], PHOTOS[variant + 3]] {
            let original = sized(name);
            let mut img = original.clone();
            let truth = support::marks::stamp_tiles_variant(&mut img, variant);
            let removal = plume_vision::watermark::remove_watermark(&v, &png(&img), &[]).unwrap();
            let out = image::load_from_memory(&removal.bytes).unwrap().to_rgb8();
            let s = score(&original, &img, &out, &truth);
            save_marked(&format!("tiles{variant}-{name}"), &img, &out);
            println!(
                "tiles variant {variant} {name:8} removed {:>5}  PSNR outside {:5.1} dB  lattice {:?} accepted {:?}",
                s.removed.map_or("-".into(), |r| format!("{r:.2}")),
                s.psnr_outside,
                removal.lattice.as_ref().map(|l| (l.v1, l.v2, l.cover)),
                accepted(&removal)
            );
            removed.extend(s.removed);
            outside = outside.min(s.psnr_outside);
        }
    }
    let mean = removed.iter().sum::<f64>() / removed.len() as f64;
    let worst = removed.iter().copied().fold(f64::MAX, f64::min);
    println!(
        "held-out tiles: mean removed {mean:.2}, worst {worst:.2}, worst PSNR outside {outside:.1} dB"
    );
    // Where the grey mark is not found (the handbag), the photo must not pay for it: a
    // detector box drawn over several of its instances once had the mirror's gold frame
    // for strokes and inpainted it (34.3 dB outside); now 40.6.
    assert!(
        outside >= 38.0,
        "held-out tiles: PSNR outside the marks {outside:.1} dB"
    );
    // Measured 0.67: the dark and the light variants 0.80–0.88, a grey (210) mark at 40 %
    // 0.66 on one photo and not found on the other.
    assert!(mean >= 0.55, "held-out tiles: mean removed {mean:.2}");
}

/// A photo that repeats by itself (a brick wall, tiles, fabric) is not a tiled mark: the
/// lattice is real, but there is no mark blended over a varying background to take off.
#[test]
fn a_wall_of_bricks_is_left_as_it_is() {
    let v = vision(2);
    let (w, h) = (1024u32, 768u32);
    let mut seed = 7u32;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 17) as i32 - 8
    };
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let row = y / 48;
        let x_in = (x + if row % 2 == 1 { 64 } else { 0 }) % 128;
        let mortar = y % 48 < 4 || x_in < 4;
        // Each brick a little different, as real ones are.
        let tone = 150 + ((x / 128 + row * 7) % 5) as i32 * 6 + noise();
        let v = if mortar { 200 + noise() } else { tone };
        let v = v.clamp(0, 255) as u8;
        image::Rgb([v, (v as f32 * 0.55) as u8, (v as f32 * 0.4) as u8])
    });
    let removal = plume_vision::watermark::remove_watermark(&v, &png(&img), &[]).unwrap();
    let out = image::load_from_memory(&removal.bytes).unwrap().to_rgb8();
    let kept = unchanged(&img, &out);
    println!(
        "bricks: {:.2} % unchanged, lattice {:?}",
        100.0 * kept,
        removal.lattice
    );
    assert!(kept >= 0.99, "bricks only {kept:.4} unchanged");
}

/// Photos over 1440 px on the long side are searched for faint words on a reduced copy
/// (`faint/`), and what is found is mapped back: the car's "PREVIEW" at twice the set's
/// size is taken off too (0.27 measured, 0.40 at the set's size), and the clean car at that
/// size stays as it is.
#[test]
fn a_faint_word_on_a_large_photo_is_found_on_a_reduced_copy() {
    let v = vision(2);
    let p = photo("car");
    let h = (2048.0 * p.height() as f32 / p.width() as f32).round() as u32;
    let original = image::imageops::resize(&p, 2048, h, image::imageops::FilterType::Triangle);
    let mut img = original.clone();
    // The set's large centred word on the car (kind 3, seed 2 + 3).
    let truth = stamp_kind(&mut img, 3, 5);
    let removal = plume_vision::watermark::remove_watermark(&v, &png(&img), &[]).unwrap();
    let out = image::load_from_memory(&removal.bytes).unwrap().to_rgb8();
    let s = score(&original, &img, &out, &truth);
    println!(
        "car at 2048: removed {:?}, PSNR outside {:.1} dB, accepted {:?}",
        s.removed,
        s.psnr_outside,
        accepted(&removal)
    );
    assert!(
        removal
            .candidates
            .iter()
            .any(|c| c.accepted && c.reasons.contains(&"faint")),
        "the word is found by its edges"
    );
    assert!(s.removed.unwrap() >= 0.2, "removed {:?}", s.removed);
    assert!(
        s.psnr_outside >= 40.0,
        "PSNR outside {:.1} dB",
        s.psnr_outside
    );
    let clean = plume_vision::watermark::remove_watermark(&v, &png(&original), &[]).unwrap();
    let clean_out = image::load_from_memory(&clean.bytes).unwrap().to_rgb8();
    assert!(unchanged(&original, &clean_out) >= 0.999);
}

/// Large centred words on photos the set does not hold (scikit-image's coffee and
/// motorcycle). On the coffee the detector's box over the word holds the cup's white rim,
/// whose strokes neither invert nor are opaque: inpainted, they smeared the rim (27.2 dB
/// outside); left to the faint-word search, 44.5 dB (0.38 removed). On the red motorcycle
/// the word is seen on the darkest channel alone (0.48 removed, 41.1 dB outside; 0 before).
#[test]
fn large_words_on_photos_the_set_does_not_hold() {
    let v = vision(2);
    for (file, seed, least, outside) in [
        ("coffee.png", 1, 0.3, 40.0),
        ("motorcycle.png", 22, 0.4, 38.0),
    ] {
        let p = test_image(file);
        let h = (1024.0 * p.height() as f32 / p.width() as f32).round() as u32;
        let original = image::imageops::resize(&p, 1024, h, image::imageops::FilterType::Triangle);
        let mut img = original.clone();
        let truth = stamp_kind(&mut img, 3, seed);
        let removal = plume_vision::watermark::remove_watermark(&v, &png(&img), &[]).unwrap();
        let out = image::load_from_memory(&removal.bytes).unwrap().to_rgb8();
        let s = score(&original, &img, &out, &truth);
        println!(
            "{file}: removed {:?}, PSNR outside {:.1} dB, accepted {:?}",
            s.removed,
            s.psnr_outside,
            accepted(&removal)
        );
        assert!(
            s.removed.unwrap() >= least,
            "{file}: removed {:?}",
            s.removed
        );
        assert!(
            s.psnr_outside >= outside,
            "{file}: PSNR outside {:.1} dB",
            s.psnr_outside
        );
    }
}
