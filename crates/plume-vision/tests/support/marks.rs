//! A varied set of watermarks as they appear in the wild, stamped on the sample photos: several
//! fonts (sans, serif, mono, and a CJK font), white and dark inks, opacities from 25 % to 90 %,
//! corner handles, copyright lines, CJK account stamps, large centred words and tiled rotated
//! words. Each stamp returns its exact coverage, so removal is scored from outside.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{GrayImage, Luma, Rgb, RgbImage};

const FONTS: [(&str, u32); 6] = [
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 0),
    (
        "/usr/share/fonts/truetype/liberation/LiberationSerif-Bold.ttf",
        0,
    ),
    (
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        0,
    ),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 0),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf", 0),
    // Debian fonts-wqy-microhei: Chinese glyphs for account stamps.
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
];
pub const CJK: usize = 5;

fn font(index: usize) -> FontRef<'static> {
    static BYTES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let all = BYTES.get_or_init(|| {
        FONTS
            .iter()
            .map(|(path, _)| {
                std::fs::read(path).unwrap_or_else(|e| {
                    panic!("{path}: {e} (Debian fonts-dejavu-core, fonts-liberation, fonts-wqy-microhei)")
                })
            })
            .collect()
    });
    FontRef::try_from_slice_and_index(&all[index], FONTS[index].1).unwrap()
}

/// The coverage (0..1) of `text` in font `index` at `px`, on a canvas with a little padding.
pub fn render(text: &str, index: usize, px: f32) -> (Vec<f32>, u32, u32) {
    let font = font(index);
    let scaled = font.as_scaled(PxScale::from(px));
    let width: f32 = text
        .chars()
        .map(|c| scaled.h_advance(scaled.glyph_id(c)))
        .sum();
    let pad = (px * 0.2) as u32 + 2;
    let (w, h) = (
        width.ceil() as u32 + 2 * pad,
        (scaled.ascent() - scaled.descent()).ceil() as u32 + 2 * pad,
    );
    let mut cov = vec![0f32; (w * h) as usize];
    let mut caret = pad as f32;
    for ch in text.chars() {
        let mut glyph = scaled.scaled_glyph(ch);
        let advance = scaled.h_advance(glyph.id);
        glyph.position = ab_glyph::point(caret, pad as f32 + scaled.ascent());
        if let Some(outline) = font.outline_glyph(glyph) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, c| {
                let (x, y) = (
                    b.min.x as i64 + i64::from(gx),
                    b.min.y as i64 + i64::from(gy),
                );
                if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                    let k = (y as u32 * w + x as u32) as usize;
                    cov[k] = (cov[k] + c).min(1.0);
                }
            });
        }
        caret += advance;
    }
    (cov, w, h)
}

/// One stamp: text, font, size, ink, opacity, rotation (degrees) and where its centre goes.
#[derive(Clone, Copy)]
pub struct Stamp<'a> {
    pub text: &'a str,
    pub font: usize,
    pub px: f32,
    pub ink: [u8; 3],
    pub opacity: f32,
    pub angle: f32,
    pub centre: (f32, f32),
}

/// Blends `stamp` into `img`; marks in `truth` every pixel the stamp changed visibly.
pub fn apply(img: &mut RgbImage, truth: &mut GrayImage, stamp: &Stamp) {
    let (cov, cw, ch) = render(stamp.text, stamp.font, stamp.px);
    let (sin, cos) = stamp.angle.to_radians().sin_cos();
    let half = ((cw * cw + ch * ch) as f32).sqrt() / 2.0 + 2.0;
    let (cx, cy) = stamp.centre;
    let (x0, x1) = (
        (cx - half).max(0.0) as u32,
        ((cx + half) as u32).min(img.width()),
    );
    let (y0, y1) = (
        (cy - half).max(0.0) as u32,
        ((cy + half) as u32).min(img.height()),
    );
    let sample = |u: f32, v: f32| {
        // Bilinear in the canvas; outside is no ink.
        let (u0, v0) = (u.floor(), v.floor());
        let (fu, fv) = (u - u0, v - v0);
        let at = |x: f32, y: f32| {
            if x < 0.0 || y < 0.0 || x >= cw as f32 || y >= ch as f32 {
                0.0
            } else {
                cov[(y as u32 * cw + x as u32) as usize]
            }
        };
        at(u0, v0) * (1.0 - fu) * (1.0 - fv)
            + at(u0 + 1.0, v0) * fu * (1.0 - fv)
            + at(u0, v0 + 1.0) * (1.0 - fu) * fv
            + at(u0 + 1.0, v0 + 1.0) * fu * fv
    };
    for y in y0..y1 {
        for x in x0..x1 {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            // Inverse rotation into the canvas.
            let u = cos * dx + sin * dy + cw as f32 / 2.0 - 0.5;
            let v = -sin * dx + cos * dy + ch as f32 / 2.0 - 0.5;
            let a = sample(u, v) * stamp.opacity;
            if a <= 0.0 {
                continue;
            }
            let p = img.get_pixel_mut(x, y);
            let before = *p;
            *p = Rgb([0, 1, 2].map(|c| {
                (f32::from(p[c]) * (1.0 - a) + f32::from(stamp.ink[c]) * a).round() as u8
            }));
            let change = (0..3)
                .map(|c| (i16::from(p[c]) - i16::from(before[c])).abs())
                .max()
                .unwrap_or(0);
            if change >= 8 {
                truth.put_pixel(x, y, Luma([255]));
            }
        }
    }
}

/// The kinds of mark the set holds, each stamped on every photo.
pub const KINDS: [&str; 5] = [
    "corner handle",
    "dark (c) line",
    "CJK stamp",
    "large centred",
    "tiled diagonal",
];

/// Stamps mark `kind` (an index into [`KINDS`]) on `img`, varied by `seed`; returns the truth.
pub fn stamp_kind(img: &mut RgbImage, kind: usize, seed: usize) -> GrayImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let mut truth = GrayImage::new(img.width(), img.height());
    let pick = |options: &[f32]| options[seed % options.len()];
    let white = [255, 255, 255];
    match kind {
        0 => {
            let texts = ["@lily.shoots", "@travel_diary_92", "@ MarcoPhoto", "@kate"];
            let text = texts[seed % texts.len()];
            let font = [0, 2, 1, 3][seed % 4];
            let px = w * pick(&[0.035, 0.045, 0.03]);
            let tw = render(text, font, px).1 as f32;
            let right = seed.is_multiple_of(2);
            let cx = if right {
                w - tw / 2.0 - w * 0.02
            } else {
                tw / 2.0 + w * 0.02
            };
            apply(
                img,
                &mut truth,
                &Stamp {
                    text,
                    font,
                    px,
                    ink: white,
                    opacity: pick(&[0.75, 0.85, 0.65]),
                    angle: 0.0,
                    centre: (cx, h - px * 1.1 - h * 0.015),
                },
            );
        }
        1 => {
            let texts = [
                "© ANNA BERG",
                "© 2026 Northlight",
                "(c) J. MORENO",
                "© STUDIO K",
            ];
            let text = texts[seed % texts.len()];
            let font = [1, 0, 4, 2][seed % 4];
            let px = w * pick(&[0.04, 0.03, 0.05]);
            let tw = render(text, font, px).1 as f32;
            let ink = [[20, 20, 20], [40, 30, 30], [0, 0, 0]][seed % 3];
            apply(
                img,
                &mut truth,
                &Stamp {
                    text,
                    font,
                    px,
                    ink,
                    opacity: pick(&[0.6, 0.5, 0.7]),
                    angle: 0.0,
                    centre: (tw / 2.0 + w * 0.02, px * 0.9 + h * 0.02),
                },
            );
        }
        2 => {
            let texts = [
                "小红书号：83920417",
                "抖音号：dy5521",
                "微博 @山野小记",
                "小红书 ID 4412098",
            ];
            let text = texts[seed % texts.len()];
            let px = w * pick(&[0.035, 0.03, 0.04]);
            let tw = render(text, CJK, px).1 as f32;
            let right = seed % 3 != 1;
            let cx = if right {
                w - tw / 2.0 - w * 0.02
            } else {
                tw / 2.0 + w * 0.02
            };
            apply(
                img,
                &mut truth,
                &Stamp {
                    text,
                    font: CJK,
                    px,
                    ink: white,
                    opacity: pick(&[0.8, 0.9, 0.7]),
                    angle: 0.0,
                    centre: (cx, h - px - h * 0.02),
                },
            );
        }
        3 => {
            let texts = ["SAMPLE", "PREVIEW", "样片", "PROOF"];
            let text = texts[seed % texts.len()];
            let font = if text == "样片" {
                CJK
            } else {
                [0, 1, 2][seed % 3]
            };
            let px = w * pick(&[0.14, 0.11, 0.17]);
            let dx = w * pick(&[0.0, 0.04, -0.03]);
            apply(
                img,
                &mut truth,
                &Stamp {
                    text,
                    font,
                    px,
                    ink: white,
                    opacity: pick(&[0.35, 0.3, 0.4]),
                    angle: 0.0,
                    centre: (w / 2.0 + dx, h / 2.0 + h * 0.03),
                },
            );
        }
        _ => {
            let texts = ["preview", "© stock", "shutterpix", "样图"];
            let text = texts[seed % texts.len()];
            let font = if text == "样图" {
                CJK
            } else {
                [0, 2, 3][seed % 3]
            };
            let px = w * pick(&[0.045, 0.05, 0.04]);
            let angle = pick(&[-30.0, -25.0, -35.0]);
            let opacity = pick(&[0.3, 0.25, 0.35]);
            let step = (w * 0.3, h * 0.24);
            let stamp = Stamp {
                text,
                font,
                px,
                ink: white,
                opacity,
                angle,
                centre: (0.0, 0.0),
            };
            let tiling = Tiling {
                first: (step.0 * 0.35, step.1 * 0.5),
                step,
                stagger: 0.5,
                overhang: (0.0, 0.0),
            };
            tile(img, &mut truth, &stamp, &tiling);
        }
    }
    truth
}

/// What removal achieved on one stamped photo.
pub struct Score {
    /// 1 − (what is left of the mark) / (what the mark changed), inside the truth; `None`
    /// when the mark changed nothing.
    pub removed: Option<f64>,
    pub psnr_outside: f64,
}

pub fn score(original: &RgbImage, stamped: &RgbImage, out: &RgbImage, truth: &GrayImage) -> Score {
    let (mut left, mut made) = (0f64, 0f64);
    for (x, y, t) in truth.enumerate_pixels() {
        if t[0] == 0 {
            continue;
        }
        let (o, s, r) = (
            original.get_pixel(x, y),
            stamped.get_pixel(x, y),
            out.get_pixel(x, y),
        );
        for c in 0..3 {
            made += (f64::from(s[c]) - f64::from(o[c])).abs();
            left += (f64::from(r[c]) - f64::from(o[c])).abs();
        }
    }
    // A mark that changed nothing (white on white) is not scored.
    let removed = (made > 0.0).then(|| (1.0 - left / made).max(-1.0));
    let psnr_outside = super::psnr(out, original, |x, y| truth.get_pixel(x, y)[0] == 0);
    Score {
        removed,
        psnr_outside,
    }
}

/// A tiled mark unlike the set's (other inks, angles, spacings, texts, no stagger), for
/// checking that the lattice finder is not tuned to the set: `variant` 0..3.
pub fn stamp_tiles_variant(img: &mut RgbImage, variant: usize) -> GrayImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let mut truth = GrayImage::new(img.width(), img.height());
    // (text, font, size, ink, opacity, angle, step, staggered)
    let (text, font, px, ink, opacity, angle, step, staggered) = match variant % 3 {
        0 => (
            "PROOF ONLY",
            4,
            w * 0.035,
            [20, 20, 20],
            0.3,
            0.0,
            (w * 0.24, h * 0.15),
            false,
        ),
        1 => (
            "版权所有",
            CJK,
            w * 0.05,
            [255, 255, 255],
            0.22,
            -45.0,
            (w * 0.27, h * 0.2),
            true,
        ),
        _ => (
            "© 2026 pix",
            1,
            w * 0.04,
            [210, 210, 210],
            0.4,
            20.0,
            (w * 0.26, h * 0.18),
            true,
        ),
    };
    let stamp = Stamp {
        text,
        font,
        px,
        ink,
        opacity,
        angle,
        centre: (0.0, 0.0),
    };
    let tiling = Tiling {
        first: (step.0 * 0.2, step.1 * 0.4),
        step,
        stagger: if staggered { 0.5 } else { 0.0 },
        overhang: step,
    };
    tile(img, &mut truth, &stamp, &tiling);
    truth
}

/// Where the instances of a tiled mark go: rows `step.1` apart from `first.1`, instances
/// `step.0` apart from `first.0` (shifted by `stagger` of a step on odd rows), for as long
/// as a centre is within the image grown by `overhang`.
struct Tiling {
    first: (f32, f32),
    step: (f32, f32),
    stagger: f32,
    overhang: (f32, f32),
}

/// Stamps `stamp` (its centre ignored) at every place of `tiling`.
fn tile(img: &mut RgbImage, truth: &mut GrayImage, stamp: &Stamp, tiling: &Tiling) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let mut row = 0;
    let mut y = tiling.first.1;
    while y < h + tiling.overhang.1 {
        let shift = if row % 2 == 1 { tiling.stagger } else { 0.0 };
        let mut x = tiling.first.0 + tiling.step.0 * shift;
        while x < w + tiling.overhang.0 {
            apply(
                img,
                truth,
                &Stamp {
                    centre: (x, y),
                    ..*stamp
                },
            );
            x += tiling.step.0;
        }
        y += tiling.step.1;
        row += 1;
    }
}
