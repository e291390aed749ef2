//! Composites with an exactly known alpha, for measuring remove-bg: real subjects cut out of
//! real photos once (`tests/data/cutouts/`, see `examples/matte_truth.rs`) and pasted onto
//! real textures and sharp photos, at varied sizes and places. The alpha we paste with is the
//! composite's ground truth.
//!
//! Two sets: one to develop against, and one held out with other subjects and backgrounds.

use image::{imageops, GrayImage, Rgb, RgbImage};

/// A subject: its photo in the models folder's `test-photos/` and its cut-out's name.
struct Subject {
    photo: &'static str,
    cutout: &'static str,
}

/// A background: a file in `test-photos/`, the part of it used (fractions x0, y0, x1, y1: a
/// stretch of a photo with no subject in it), and a tint for the grey textures.
struct Background {
    name: &'static str,
    file: &'static str,
    part: [f64; 4],
    tint: [f32; 3],
}

const fn subject(photo: &'static str, cutout: &'static str) -> Subject {
    Subject { photo, cutout }
}
const fn bg(name: &'static str, file: &'static str, part: [f64; 4], tint: [f32; 3]) -> Background {
    Background {
        name,
        file,
        part,
        tint,
    }
}
const NONE: [f32; 3] = [1.0, 1.0, 1.0];
const WHOLE: [f64; 4] = [0.0, 0.0, 1.0, 1.0];

const DEV_SUBJECTS: [Subject; 4] = [
    subject("animal.jpg", "animal"),
    subject("car.jpg", "car"),
    subject("people.jpg", "people"),
    subject("product.jpg", "product"),
];
const DEV_BACKGROUNDS: [Background; 5] = [
    bg("brick", "brick.png", WHOLE, [1.0, 0.62, 0.48]),
    bg("grass", "grass.png", WHOLE, [0.55, 0.85, 0.35]),
    bg("gravel", "gravel.png", WHOLE, NONE),
    bg("cafe", "people.jpg", [0.0, 0.0, 0.22, 0.5], NONE),
    bg("wood", "coffee.png", [0.0, 0.5, 0.22, 1.0], NONE),
];
const HELD_OUT_SUBJECTS: [Subject; 3] = [
    subject("astronaut.png", "astronaut"),
    subject("coffee.png", "coffee"),
    subject("motorcycle.png", "motorcycle"),
];
const HELD_OUT_BACKGROUNDS: [Background; 6] = [
    bg("sand", "gravel.png", WHOLE, [0.9, 0.75, 0.55]),
    bg("grey brick", "brick.png", WHOLE, NONE),
    bg("garage", "motorcycle.png", [0.0, 0.0, 1.0, 0.33], NONE),
    bg("sunset", "car.jpg", [0.0, 0.0, 1.0, 0.32], NONE),
    bg("blossom", "product.jpg", [0.75, 0.0, 1.0, 0.45], NONE),
    bg("sheet", "animal.jpg", [0.0, 0.75, 1.0, 1.0], NONE),
];
/// Whole photos with subjects of their own behind the pasted one: two salient things, so
/// there is no one right answer. Reported, not held to the targets.
const BUSY_BACKGROUNDS: [Background; 3] = [
    bg("baby photo", "baby.jpg", WHOLE, NONE),
    bg("kitten photo", "animal.jpg", WHOLE, NONE),
    bg("bag photo", "product.jpg", WHOLE, NONE),
];

/// One composite: what it shows, the image, and its true alpha.
pub struct Composite {
    pub label: String,
    pub image: RgbImage,
    pub truth: GrayImage,
    /// The subject's colour wherever its alpha is above 0 (black away from the subject).
    pub colour: RgbImage,
}

/// The set to develop against: 4 subjects × 4 backgrounds.
pub fn dev_set() -> Vec<Composite> {
    build(&DEV_SUBJECTS, &DEV_BACKGROUNDS, 7)
}

/// The held-out set: 3 other subjects × 6 other backgrounds.
pub fn held_out_set() -> Vec<Composite> {
    build(&HELD_OUT_SUBJECTS, &HELD_OUT_BACKGROUNDS, 1234)
}

/// Every subject over whole photos that have their own subject.
pub fn busy_set() -> Vec<Composite> {
    let mut set = build(&DEV_SUBJECTS, &BUSY_BACKGROUNDS[..1], 99);
    set.extend(build(&HELD_OUT_SUBJECTS, &BUSY_BACKGROUNDS[1..], 98));
    set
}

fn build(subjects: &[Subject], backgrounds: &[Background], seed: u64) -> Vec<Composite> {
    let mut rng = Lcg(seed);
    let mut out = Vec::new();
    for s in subjects {
        let truth_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/cutouts")
            .join(format!("{}.png", s.cutout));
        let alpha = image::open(&truth_path).unwrap().to_luma8();
        let photo = super::test_image(s.photo);
        let photo = imageops::resize(
            &photo,
            alpha.width(),
            alpha.height(),
            imageops::FilterType::Lanczos3,
        );
        for b in backgrounds {
            let landscape = rng.next() < 0.5;
            let (w, h) = if landscape { (640, 480) } else { (480, 640) };
            let source = super::test_image(b.file);
            let [x0, y0, x1, y1] = b.part;
            let (pw, ph) = (f64::from(source.width()), f64::from(source.height()));
            let part = imageops::crop_imm(
                &source,
                (x0 * pw) as u32,
                (y0 * ph) as u32,
                ((x1 - x0) * pw) as u32,
                ((y1 - y0) * ph) as u32,
            )
            .to_image();
            let ground = cover(&part, w, h, b.tint, &mut rng);
            let (image, truth, colour) = paste(&ground, &photo, &alpha, &mut rng);
            out.push(Composite {
                label: format!("{} on {}", s.cutout, b.name),
                image,
                truth,
                colour,
            });
        }
    }
    out
}

/// `img` scaled to cover w×h, cropped at a random place, tinted.
fn cover(img: &RgbImage, w: u32, h: u32, tint: [f32; 3], rng: &mut Lcg) -> RgbImage {
    let scale = (f64::from(w) / f64::from(img.width())).max(f64::from(h) / f64::from(img.height()));
    let (sw, sh) = (
        (f64::from(img.width()) * scale).ceil() as u32,
        (f64::from(img.height()) * scale).ceil() as u32,
    );
    let scaled = imageops::resize(img, sw.max(w), sh.max(h), imageops::FilterType::Triangle);
    let x = (rng.next() * f64::from(scaled.width() - w)) as u32;
    let y = (rng.next() * f64::from(scaled.height() - h)) as u32;
    let crop = imageops::crop_imm(&scaled, x, y, w, h).to_image();
    RgbImage::from_fn(w, h, |x, y| {
        let p = crop.get_pixel(x, y);
        Rgb([0, 1, 2].map(|c| (f32::from(p[c]) * tint[c]).round().clamp(0.0, 255.0) as u8))
    })
}

/// Pastes the subject at 55–85 % of the ground's height (or what its width allows), standing
/// on the bottom edge when the photo cut it there, else at a random place.
fn paste(
    ground: &RgbImage,
    photo: &RgbImage,
    alpha: &GrayImage,
    rng: &mut Lcg,
) -> (RgbImage, GrayImage, RgbImage) {
    let (x0, y0, x1, y1) = bounds(alpha);
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let (w, h) = ground.dimensions();
    let fraction = 0.55 + 0.3 * rng.next();
    let scale = (fraction * f64::from(h) / f64::from(bh)).min(0.9 * f64::from(w) / f64::from(bw));
    let (sw, sh) = (
        ((f64::from(bw) * scale).round() as u32).max(1),
        ((f64::from(bh) * scale).round() as u32).max(1),
    );
    let fg = imageops::resize(
        &imageops::crop_imm(photo, x0, y0, bw, bh).to_image(),
        sw,
        sh,
        imageops::FilterType::Lanczos3,
    );
    let fa = imageops::resize(
        &imageops::crop_imm(alpha, x0, y0, bw, bh).to_image(),
        sw,
        sh,
        imageops::FilterType::Triangle,
    );
    let ox = (rng.next() * f64::from(w - sw)) as u32;
    let oy = if y1 + 1 >= alpha.height() {
        h - sh
    } else {
        (rng.next() * f64::from(h - sh)) as u32
    };
    let (image, truth) = super::composite_at(ground, &fg, &fa, ox, oy);
    // Under the pasted rectangle: only where the truth is above 0 is it ever read.
    let mut colour = RgbImage::new(w, h);
    imageops::replace(&mut colour, &fg, i64::from(ox), i64::from(oy));
    (image, truth, colour)
}

/// The bounding box of the alpha's non-zero pixels.
fn bounds(alpha: &GrayImage) -> (u32, u32, u32, u32) {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, a) in alpha.enumerate_pixels() {
        if a[0] > 0 {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    (x0, y0, x1, y1)
}

/// IoU at alpha 0.5 and the mean absolute alpha error of `got` against `truth`.
pub fn score(got: &GrayImage, truth: &GrayImage) -> (f64, f64) {
    let (mut abs, mut inter, mut union) = (0f64, 0u64, 0u64);
    for (g, t) in got.pixels().zip(truth.pixels()) {
        abs += (f64::from(g[0]) - f64::from(t[0])).abs() / 255.0;
        let (pg, pt) = (g[0] >= 128, t[0] >= 128);
        inter += u64::from(pg && pt);
        union += u64::from(pg || pt);
    }
    (
        inter as f64 / union.max(1) as f64,
        abs / f64::from(truth.width() * truth.height()),
    )
}

/// PSNR (dB) of a cut-out laid over a plain green, against the true subject laid over it,
/// over the soft band (pixels that either alpha puts strictly between 0 and 1): fringes of
/// the old background show here.
pub fn edge_psnr(cut: &image::RgbaImage, c: &Composite) -> f64 {
    const GREEN: [f32; 3] = [0.0, 170.0, 90.0];
    let (mut se, mut n) = (0f64, 0u64);
    for (x, y, o) in cut.enumerate_pixels() {
        let t = f32::from(c.truth.get_pixel(x, y)[0]);
        let a = f32::from(o[3]);
        if !((1.0..255.0).contains(&t) || (1.0..255.0).contains(&a)) {
            continue;
        }
        let f = c.colour.get_pixel(x, y);
        for k in 0..3 {
            let got = (a * f32::from(o[k]) + (255.0 - a) * GREEN[k]) / 255.0;
            let want = (t * f32::from(f[k]) + (255.0 - t) * GREEN[k]) / 255.0;
            se += f64::from((got - want).powi(2));
            n += 1;
        }
    }
    if n == 0 || se == 0.0 {
        return 99.0;
    }
    10.0 * (255.0f64 * 255.0 / (se / n as f64)).log10()
}

/// A small deterministic generator: the sets are the same on every machine.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
