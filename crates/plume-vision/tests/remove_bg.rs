//! remove-bg measured against exact alphas: real subjects pasted onto real textures and
//! stretches of real photos (`support::cutouts`), a development set and a held-out one.
//!
//! By hand: `PLUME_MATTE_STEPS=1` also measures the matte with and without the second look;
//! `PLUME_SAVE_MATTES=DIR` writes each composite and its cut-out there to look at;
//! `PLUME_MATTE_MODEL=isnet` measures ISNet instead (`scripts/setup-models --isnet`; the
//! floors are u2netp's). ISNet made the cut-outs, so it is favoured on this set.

mod support;
use plume_vision::Vision;
use support::cutouts::{busy_set, dev_set, edge_psnr, held_out_set, score, Composite};
use support::*;

/// Mean and worst IoU at alpha 0.5, mean absolute alpha error, and the mean PSNR of the
/// soft band over a new background (whole call only).
struct Figures {
    mean: f64,
    worst: f64,
    mae: f64,
    edge: f64,
}

/// remove-bg over `set`: the whole call (bytes in, PNG out) with `None`, else the matte
/// alone with or without the second look.
fn measure(v: &Vision, name: &str, set: &[Composite], second_look: Option<bool>) -> Figures {
    let save = std::env::var_os("PLUME_SAVE_MATTES").map(std::path::PathBuf::from);
    let (mut sum, mut worst, mut mae_sum, mut edge_sum) = (0.0, 1.0f64, 0.0, 0.0);
    for c in set {
        let mut edge = 0.0;
        let alpha = match second_look {
            None => {
                let (out, _, _) =
                    plume_vision::matte::remove_background(v, &png(&c.image)).unwrap();
                let cut = image::load_from_memory(&out).unwrap().to_rgba8();
                if let Some(dir) = &save {
                    let stem = c.label.replace(' ', "_");
                    c.image.save(dir.join(format!("{stem}.png"))).unwrap();
                    cut.save(dir.join(format!("{stem}_cut.png"))).unwrap();
                }
                edge = edge_psnr(&cut, c);
                image::GrayImage::from_fn(cut.width(), cut.height(), |x, y| {
                    image::Luma([cut.get_pixel(x, y)[3]])
                })
            }
            Some(look) => plume_vision::matte::matte_with(v, &c.image, look).unwrap(),
        };
        let (iou, mae) = score(&alpha, &c.truth);
        if second_look.is_none() {
            println!(
                "{name}: {:<28} IoU {iou:.3}  MAE {mae:.4}  edges {edge:.1} dB",
                c.label
            );
        }
        edge_sum += edge;
        sum += iou;
        worst = worst.min(iou);
        mae_sum += mae;
    }
    let n = set.len() as f64;
    let f = Figures {
        mean: sum / n,
        worst,
        mae: mae_sum / n,
        edge: edge_sum / n,
    };
    println!(
        "{name}: mean IoU {:.3}, worst {:.3}, mean MAE {:.4}, edges {:.1} dB over {} composites",
        f.mean,
        f.worst,
        f.mae,
        f.edge,
        set.len()
    );
    f
}

#[test]
fn remove_bg_finds_real_subjects_on_textured_backgrounds() {
    // One runtime and session for every measurement: the model is loaded once.
    let v = match std::env::var("PLUME_MATTE_MODEL").as_deref() {
        Ok("isnet") => vision_with(plume_vision::runtime::MatteModel::Isnet, 1),
        _ => vision(1),
    };
    let (dev, held_out, busy) = (dev_set(), held_out_set(), busy_set());
    if std::env::var_os("PLUME_MATTE_STEPS").is_some() {
        for look in [false, true] {
            println!("== second look {}", if look { "on" } else { "off" });
            measure(&v, "dev", &dev, Some(look));
            measure(&v, "held-out", &held_out, Some(look));
            measure(&v, "busy", &busy, Some(look));
        }
    }
    let dev = measure(&v, "dev", &dev, None);
    let held = measure(&v, "held-out", &held_out, None);
    // Two salient things in one frame have no one right answer: reported, not held.
    measure(&v, "busy", &busy, None);
    // Measured here: dev 0.961 (worst 0.854), held out 0.971 (worst 0.900), MAE ≤ 0.011,
    // soft band over a new background 23.0 / 23.3 dB (22.6 / 22.7 with the old background
    // left in the edge colours).
    // The floors leave room for another CPU's arithmetic; u2netp alone (no second look)
    // scores dev 0.949 with worst 0.745 and fails them.
    assert!(dev.mean >= 0.955, "dev mean IoU {:.3}", dev.mean);
    assert!(dev.worst >= 0.82, "dev worst IoU {:.3}", dev.worst);
    assert!(held.mean >= 0.96, "held-out mean IoU {:.3}", held.mean);
    assert!(held.worst >= 0.87, "held-out worst IoU {:.3}", held.worst);
    assert!(
        dev.mae <= 0.015 && held.mae <= 0.015,
        "MAE {:.4} / {:.4}",
        dev.mae,
        held.mae
    );
}

/// Degenerate shapes go through every step (the model's squeeze, the second look's box, the
/// edge colours' window) and come back at their own size.
#[test]
fn tiny_and_thin_images_are_cut_out_at_their_own_size() {
    let v = vision(1);
    let photo = test_image("coffee.png");
    for (w, h) in [(1, 1), (2, 3), (1, 500), (700, 1), (17, 9)] {
        let img = image::imageops::resize(&photo, w, h, image::imageops::FilterType::Triangle);
        let (out, ow, oh) = plume_vision::matte::remove_background(&v, &png(&img)).unwrap();
        assert_eq!((ow, oh), (w, h));
        let cut = image::load_from_memory(&out).unwrap().to_rgba8();
        assert_eq!(cut.dimensions(), (w, h));
    }
    // A subject alone in a big empty frame: the second look's box is small and near an edge.
    let mut frame = image::RgbImage::from_pixel(900, 700, image::Rgb([240, 240, 240]));
    let small = image::imageops::resize(&photo, 60, 40, image::imageops::FilterType::Triangle);
    image::imageops::replace(&mut frame, &small, 838, 658);
    let (_, ow, oh) = plume_vision::matte::remove_background(&v, &png(&frame)).unwrap();
    assert_eq!((ow, oh), (900, 700));
}
