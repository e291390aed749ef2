//! Writes the true alphas of the remove-bg composite set (`tests/data/cutouts/*.png`).
//!
//! Each subject is cut out of its photo once, by ISNet (the strongest matte model we can run,
//! `scripts/setup-models --isnet --test-photos`), cleaned (near-0 and near-1 snapped, specks
//! apart from the subject dropped) and checked by eye. The test then pastes that cut-out onto
//! other backgrounds, so the alpha of every composite is known exactly by construction: it is
//! ground truth for the composite whatever ISNet got wrong on the original photo.
//!
//! Run: `cargo run --release -p plume-vision --example matte_truth`.

use image::{GrayImage, Luma};
use plume_vision::runtime::MatteModel;
use plume_vision::{Vision, VisionConfig};
use std::path::PathBuf;

/// The subjects: photo file (in the models folder's `test-photos/`) and the cut-out's name.
const SUBJECTS: [&str; 7] = [
    "animal.jpg",
    "car.jpg",
    "people.jpg",
    "product.jpg",
    "astronaut.png",
    "coffee.png",
    "motorcycle.png",
];
/// The long side the alphas are kept at: the composites are smaller than the photos.
const KEEP_SIDE: u32 = 512;

fn main() {
    let models = std::env::var_os("PLUME_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/models"));
    let vision = Vision::new(VisionConfig {
        models_dir: models.clone(),
        matte_model: MatteModel::Isnet,
        max_concurrent_inferences: 1,
        intra_threads: 2,
    });
    if let Err(e) = vision.matte_ready() {
        eprintln!("{e} (needs scripts/setup-models --isnet)");
        std::process::exit(1);
    }
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cutouts");
    std::fs::create_dir_all(&out_dir).unwrap();
    for file in SUBJECTS {
        let photo = image::open(models.join("test-photos").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}; run scripts/setup-models --test-photos"))
            .to_rgb8();
        let matte = plume_vision::matte::matte(&vision, &photo).unwrap();
        let cleaned = drop_specks(&snap(&matte));
        let (w, h) = cleaned.dimensions();
        let scale = f64::from(KEEP_SIDE) / f64::from(w.max(h));
        let kept = if scale < 1.0 {
            let (kw, kh) = (
                (f64::from(w) * scale).round() as u32,
                (f64::from(h) * scale).round() as u32,
            );
            image::imageops::resize(&cleaned, kw, kh, image::imageops::FilterType::Triangle)
        } else {
            cleaned
        };
        let name = file.split('.').next().unwrap();
        let path = out_dir.join(format!("{name}.png"));
        kept.save(&path).unwrap();
        println!("{} {}x{}", path.display(), kept.width(), kept.height());
    }
}

/// Alpha within 4 % of 0 or 1 becomes exactly 0 or 1: ISNet's faint haze is not subject.
fn snap(matte: &GrayImage) -> GrayImage {
    GrayImage::from_fn(matte.width(), matte.height(), |x, y| {
        let a = matte.get_pixel(x, y)[0];
        Luma([if a < 10 {
            0
        } else if a > 245 {
            255
        } else {
            a
        }])
    })
}

/// Removes the connected parts of the matte (alpha ≥ 0.5) smaller than 2 % of the largest:
/// specks of background ISNet kept.
fn drop_specks(matte: &GrayImage) -> GrayImage {
    let (w, h) = matte.dimensions();
    let mut label = vec![0u32; (w * h) as usize];
    let mut sizes = vec![0usize];
    for start in 0..(w * h) as usize {
        if label[start] != 0 || matte.as_raw()[start] < 128 {
            continue;
        }
        let id = sizes.len() as u32;
        let mut stack = vec![start];
        label[start] = id;
        let mut size = 0;
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = ((i as u32 % w) as i64, (i as u32 / w) as i64);
            for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= i64::from(w) || ny >= i64::from(h) {
                    continue;
                }
                let j = (ny as u32 * w + nx as u32) as usize;
                if label[j] == 0 && matte.as_raw()[j] >= 128 {
                    label[j] = id;
                    stack.push(j);
                }
            }
        }
        sizes.push(size);
    }
    let largest = sizes.iter().copied().max().unwrap_or(0);
    // Soft pixels (below 0.5) keep their value when a kept part is within 3 px.
    let keep_part = |id: u32| id != 0 && sizes[id as usize] * 50 >= largest;
    let solid = GrayImage::from_fn(w, h, |x, y| {
        Luma([u8::from(keep_part(label[(y * w + x) as usize])) * 255])
    });
    let near = image::imageops::blur(&solid, 3.0);
    GrayImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        let a = matte.as_raw()[i];
        if a >= 128 {
            Luma([if keep_part(label[i]) { a } else { 0 }])
        } else {
            Luma([if near.get_pixel(x, y)[0] > 0 { a } else { 0 }])
        }
    })
}
