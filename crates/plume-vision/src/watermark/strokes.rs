//! The strokes inside a text box the detector drew: a morphological top-hat of the text's
//! polarity (light or dark ink, decided against the ring of background around the box),
//! thresholded by Otsu and grown by hysteresis into the anti-aliased rim, with the
//! measurements the scorer reads (contrast, texture showing through, level).

use crate::text::Rect;
use image::{GrayImage, Luma};

/// Min (erode) or max (dilate) over a (2r+1)² window, separable.
fn window(img: &GrayImage, r: u32, max: bool) -> GrayImage {
    let (w, h) = img.dimensions();
    let pick = |a: u8, b: u8| if max { a.max(b) } else { a.min(b) };
    let mut rows = GrayImage::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let (lo, hi) = (x.saturating_sub(r), (x + r).min(w - 1));
            let v = (lo..=hi).fold(if max { 0 } else { 255 }, |acc, xx| {
                pick(acc, img.get_pixel(xx, y)[0])
            });
            rows.put_pixel(x, y, Luma([v]));
        }
    }
    let mut out = GrayImage::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let (lo, hi) = (y.saturating_sub(r), (y + r).min(h - 1));
            let v = (lo..=hi).fold(if max { 0 } else { 255 }, |acc, yy| {
                pick(acc, rows.get_pixel(x, yy)[0])
            });
            out.put_pixel(x, y, Luma([v]));
        }
    }
    out
}

fn otsu(values: &[u8]) -> u8 {
    let mut hist = [0u64; 256];
    for v in values {
        hist[*v as usize] += 1;
    }
    let total = values.len() as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, n)| i as f64 * *n as f64)
        .sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0f64, 0f64, 0f64, 0u8);
    for (t, n) in hist.iter().enumerate() {
        w0 += *n as f64;
        if w0 == 0.0 || w0 == total {
            continue;
        }
        sum0 += t as f64 * *n as f64;
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / (total - w0));
        let between = w0 * (total - w0) * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}

/// Whether the text in a box is lighter than what is around it. The ring just outside the box
/// is background (detector boxes are padded); inside, the pixels split (Otsu) into two classes,
/// and the ink is the class farther from the ring. Comparing the two top-hats instead fails on
/// dense glyphs (CJK): closing fills the gaps between strokes and the polarity flips.
fn ink_is_bright(sub: &GrayImage, inside: &dyn Fn(u32, u32) -> bool) -> bool {
    let (mut ring, mut body) = (Vec::new(), Vec::new());
    for (x, y, p) in sub.enumerate_pixels() {
        if inside(x, y) {
            body.push(p[0]);
        } else {
            ring.push(p[0]);
        }
    }
    if ring.is_empty() || body.is_empty() {
        return true;
    }
    ring.sort_unstable();
    let background = f32::from(ring[ring.len() / 2]);
    let t = otsu(&body);
    let mean = |hi: bool| {
        let (sum, n) = body
            .iter()
            .filter(|v| (**v > t) == hi)
            .fold((0f32, 0f32), |(s, n), v| (s + f32::from(*v), n + 1.0));
        if n == 0.0 {
            background
        } else {
            sum / n
        }
    };
    // The ink is what the surroundings rarely hold: the class whose mean fewer ring pixels
    // reach. (Plain distance from the ring's median fails for white text on a bright sheet
    // with shadows: the shadows are farther from the median than the faint white strokes.)
    let (hi, lo) = (mean(true), mean(false));
    let above = ring.iter().filter(|v| f32::from(**v) >= hi).count();
    let below = ring.iter().filter(|v| f32::from(**v) <= lo).count();
    if above != below {
        return above < below;
    }
    (hi - background).abs() >= (background - lo).abs()
}

/// Stroke pixels inside `rect`, and the measurements scoring needs.
pub(super) struct Strokes {
    /// Coordinates in the image.
    pub(super) pixels: Vec<(u32, u32)>,
    /// Per pixel: above the top-hat's threshold (not only grown into as a rim).
    pub(super) strong: Vec<bool>,
    /// Light ink rather than dark.
    pub(super) bright: bool,
    /// Mean top-hat strength over the strokes (local contrast).
    pub(super) contrast: f32,
    /// Standard deviation of luminance over the strokes (texture showing through).
    pub(super) texture: f32,
    /// Mean luminance over the strokes.
    pub(super) level: f32,
}

pub(super) fn strokes(gray: &GrayImage, rect: Rect, bright: Option<bool>) -> Strokes {
    let r = (rect.h / 6).clamp(2, 12);
    let (iw, ih) = gray.dimensions();
    let outer = Rect::clip(
        i64::from(rect.x) - i64::from(r),
        i64::from(rect.y) - i64::from(r),
        i64::from(rect.w + 2 * r),
        i64::from(rect.h + 2 * r),
        iw,
        ih,
    )
    .unwrap_or(rect);
    let sub = image::imageops::crop_imm(gray, outer.x, outer.y, outer.w, outer.h).to_image();
    let opening = window(&window(&sub, r, false), r, true);
    let closing = window(&window(&sub, r, true), r, false);
    let inside = |x: u32, y: u32| rect.contains(outer.x + x, outer.y + y);
    let (mut white, mut black) = (Vec::new(), Vec::new());
    for (x, y, p) in sub.enumerate_pixels() {
        if inside(x, y) {
            white.push(p[0].saturating_sub(opening.get_pixel(x, y)[0]));
            black.push(closing.get_pixel(x, y)[0].saturating_sub(p[0]));
        }
    }
    let bright = bright.unwrap_or_else(|| ink_is_bright(&sub, &inside));
    let tophat = if bright { &white } else { &black };
    let threshold = otsu(tophat).max(12);
    // Hysteresis: the strokes are the pixels above Otsu's threshold, grown at most two
    // pixels through pixels above half of it, so the faint anti-aliased rim of each stroke
    // goes with it (left behind, inpainting spreads it into the hole) and the texture of a
    // busy background does not.
    let weak = (threshold / 2).max(8);
    let (sw, sh) = sub.dimensions();
    let mut grid = vec![0u8; (sw * sh) as usize];
    let mut k = 0;
    for y in 0..sh {
        for x in 0..sw {
            if inside(x, y) {
                grid[(y * sw + x) as usize] = tophat[k];
                k += 1;
            }
        }
    }
    let mut taken = vec![false; grid.len()];
    let mut stack: Vec<(usize, u8)> = Vec::new();
    let (mut strength, mut lum, mut lum2, mut strong) = (0f64, 0f64, 0f64, 0usize);
    for (i, v) in grid.iter().enumerate() {
        if *v > threshold {
            taken[i] = true;
            stack.push((i, 0));
            let l = f64::from(sub.as_raw()[i]);
            strength += f64::from(*v);
            lum += l;
            lum2 += l * l;
            strong += 1;
        }
    }
    let mut pixels: Vec<(u32, u32)> = Vec::with_capacity(stack.len() * 2);
    let mut strong_ones = Vec::with_capacity(stack.len() * 2);
    while let Some((i, depth)) = stack.pop() {
        let (x, y) = (i as u32 % sw, i as u32 / sw);
        pixels.push((outer.x + x, outer.y + y));
        strong_ones.push(depth == 0);
        if depth >= 2 {
            continue;
        }
        for (dx, dy) in [
            (-1i32, -1i32),
            (0, -1),
            (1, -1),
            (-1, 0),
            (1, 0),
            (-1, 1),
            (0, 1),
            (1, 1),
        ] {
            let (nx, ny) = (x as i32 + dx, y as i32 + dy);
            if nx < 0 || ny < 0 || nx >= sw as i32 || ny >= sh as i32 {
                continue;
            }
            let j = (ny as u32 * sw + nx as u32) as usize;
            if !taken[j] && grid[j] > weak {
                taken[j] = true;
                stack.push((j, depth + 1));
            }
        }
    }
    let n = strong.max(1) as f64;
    let mean = lum / n;
    Strokes {
        contrast: (strength / n) as f32,
        texture: ((lum2 / n - mean * mean).max(0.0)).sqrt() as f32,
        level: mean as f32,
        pixels,
        strong: strong_ones,
        bright,
    }
}
