//! Watermark removal: invert Gemini's sparkle (`sparkle.rs`), take off a mark tiled over
//! the whole image (`tiles.rs`: found by its repetition, its blend inverted), find text
//! regions, join the detector's boxes into lines (`text.rs`), keep those that look like a
//! watermark, build tight stroke masks inside them, invert the blend of those with wide semi-transparent
//! strokes (`blend.rs`), and inpaint the rest. Large faint words the detector misses over a
//! busy photo are found by their blend's edges (`faint/`) and only ever inverted.
//!
//! A region is scored for being a watermark rather than text that belongs to the photo:
//! near an edge or in a corner, semi-transparent (the photo's texture shows through its
//! strokes), low local contrast, repeated (tiles of the same size), or a large banner. Filling
//! whole boxes leaves visible streaks, so only the strokes are masked: a morphological
//! top-hat of the text's polarity, thresholded by Otsu, plus a margin for the anti-aliased
//! edge. The polarity (light or dark ink) is decided against the ring of background around
//! the box, which holds for dense CJK glyphs too, and checked by the opacity the strokes
//! measure: near 0, they are the gaps between the real strokes. A mask to inpaint must spread
//! along its line: bunched in part of the box it is the photo's. Explicit `regions` from the caller are
//! always removed whole (logos and hard cases). An image where nothing is removed comes back
//! as the very same bytes.

use crate::blend;
use crate::faint;
use crate::inpaint::paint;
use crate::runtime::Vision;
use crate::sparkle::{self, Sparkle};
use crate::text::{detect, join_lines, Rect};
use crate::tiles::{self, Lattice};
use crate::{codec, Result};
use image::{GrayImage, ImageFormat, Luma, RgbImage};

/// A score at or above this marks a region as a watermark.
pub const ACCEPT_SCORE: f32 = 1.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub rect: Rect,
    pub score: f32,
    pub reasons: Vec<&'static str>,
    pub accepted: bool,
    /// The mark's opacity, measured on its strokes, when its blend was inverted.
    pub opacity: Option<f32>,
}

#[derive(Debug, Clone)]
pub struct Removal {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// Pixels changed on purpose: inverted or inpainted.
    pub masked_pixels: usize,
    pub candidates: Vec<Candidate>,
    /// Every pixel changed on purpose (255): a mark's blend inverted, or inpainted. For
    /// measurements; every other pixel keeps its value.
    pub mask: GrayImage,
    /// Gemini's sparkle, when one was found and inverted.
    pub sparkle: Option<Sparkle>,
    /// The lattice of a tiled mark, when one was found (its strokes are in `mask`).
    pub lattice: Option<Lattice>,
}

fn luminance(rgb: &RgbImage) -> GrayImage {
    image::imageops::grayscale(rgb)
}

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
struct Strokes {
    /// Coordinates in the image.
    pixels: Vec<(u32, u32)>,
    /// Per pixel: above the top-hat's threshold (not only grown into as a rim).
    strong: Vec<bool>,
    /// Light ink rather than dark.
    bright: bool,
    /// Mean top-hat strength over the strokes (local contrast).
    contrast: f32,
    /// Standard deviation of luminance over the strokes (texture showing through).
    texture: f32,
    /// Mean luminance over the strokes.
    level: f32,
}

fn strokes(gray: &GrayImage, rect: Rect, bright: Option<bool>) -> Strokes {
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

/// Records an inverted mark: every pixel it changed, and those left for inpainting.
fn take_off(inverted: blend::Inverted, mask: &mut GrayImage, fill: &mut GrayImage) {
    for (x, y) in inverted.changed {
        mask.put_pixel(x, y, Luma([255]));
    }
    for (x, y) in inverted.left {
        fill.put_pixel(x, y, Luma([255]));
    }
}

/// A mark whose strokes measure an opacity under this has its polarity misread...
const MISREAD_OPACITY: f32 = 0.1;
/// ...when the other polarity's strokes measure at least this.
const FLIPPED_OPACITY: f32 = 0.3;

/// A stroke mask to inpaint must reach this share of its box's length (in 8 px columns):
/// the marks of both quality sets reach 0.74 to 1; an object's edge crossing a box the
/// detector drew over several faint marks, 0.16.
const MIN_LINE_SPREAD: f32 = 0.5;

/// The share of `rect`'s 8 px columns that hold a pixel of `pixels`.
fn along_the_line(rect: Rect, pixels: &[(u32, u32)]) -> f32 {
    let columns = (rect.w / 8).max(1) as usize;
    let mut held = vec![false; columns];
    for (x, _) in pixels {
        held[((x.saturating_sub(rect.x) / 8) as usize).min(columns - 1)] = true;
    }
    held.iter().filter(|h| **h).count() as f32 / columns as f32
}

/// The strokes of a line of text as a mark to measure or invert.
fn stroke_mark(rect: Rect, s: &Strokes, margin: u32) -> blend::Mark<'_> {
    blend::Mark {
        rect,
        pixels: &s.pixels,
        strong: &s.strong,
        bright: s.bright,
        margin,
        known: None,
    }
}

/// Scores each detected region; see the module docs for the reasons.
fn score(rects: &[(Rect, Strokes)], width: u32, height: u32) -> Vec<Candidate> {
    let margin = (width.min(height) as f32 * 0.12) as u32;
    rects
        .iter()
        .map(|(rect, s)| {
            let mut score = 0.0;
            let mut reasons = Vec::new();
            let near_x = rect.x <= margin || rect.x + rect.w + margin >= width;
            let near_y = rect.y <= margin || rect.y + rect.h + margin >= height;
            if near_x && near_y {
                score += 1.0;
                reasons.push("corner");
            } else if near_x || near_y {
                score += 0.5;
                reasons.push("edge");
            }
            if s.texture > 14.0 {
                score += 0.4;
                reasons.push("semi-transparent");
            }
            if s.contrast < 60.0 {
                score += 0.5;
                reasons.push("low contrast");
            }
            let similar = rects
                .iter()
                .filter(|(r, o)| {
                    // The same mark tiled (four or more times): same size, brightness and ink.
                    r != rect
                        && (r.h as f32 - rect.h as f32).abs() <= 0.25 * rect.h as f32
                        && (r.w as f32 - rect.w as f32).abs() <= 0.25 * rect.w as f32
                        && (o.level - s.level).abs() <= 30.0
                        && (o.pixels.len() as f32 - s.pixels.len() as f32).abs()
                            <= 0.3 * s.pixels.len() as f32
                })
                .count();
            // A tiled mark over a varied photo changes brightness and stroke count from tile
            // to tile, but not its box: three or more boxes of one size (within 10 %) that are
            // not tiny are the same mark repeated.
            let same_size = rects
                .iter()
                .filter(|(r, _)| {
                    r != rect
                        && rect.h >= 20
                        && (r.h as f32 - rect.h as f32).abs() <= 0.1 * rect.h as f32
                        && (r.w as f32 - rect.w as f32).abs() <= 0.1 * rect.w as f32
                })
                .count();
            if similar >= 3 || same_size >= 2 {
                score += 0.8;
                reasons.push("repeated");
            } else if rect.h as f32 > 1.2 * rect.w as f32 {
                // Taller than wide and alone: a texture the detector took for text more often
                // than a mark (marks are lines of text); when unsure, leave it.
                score -= 0.5;
                reasons.push("not a line");
            }
            if rect.w as f32 >= 0.25 * width as f32 {
                score += 0.3;
                reasons.push("large");
            }
            let (cx, cy) = ((rect.x + rect.w / 2) as f32, (rect.y + rect.h / 2) as f32);
            if (cx - width as f32 / 2.0).abs() <= 0.1 * width as f32
                && (cy - height as f32 / 2.0).abs() <= 0.1 * height as f32
            {
                score += 0.5;
                reasons.push("centred");
            }
            if s.pixels.is_empty() {
                score = 0.0;
            }
            Candidate {
                rect: *rect,
                score,
                reasons,
                accepted: score >= ACCEPT_SCORE,
                opacity: None,
            }
        })
        .collect()
}

/// Removes watermarks from `bytes`; `forced` regions (`[x, y, w, h]`) are always removed.
pub fn remove_watermark(vision: &Vision, bytes: &[u8], forced: &[[u64; 4]]) -> Result<Removal> {
    let decoded = codec::decode(bytes)?;
    let mut rgb = decoded.image.to_rgb8();
    let (w, h) = rgb.dimensions();
    // Pixels to inpaint, and every pixel changed on purpose (inverted or inpainted).
    let mut fill = GrayImage::new(w, h);
    let mut regions = GrayImage::new(w, h);
    let mut mask = GrayImage::new(w, h);
    let set = |img: &mut GrayImage, (x, y): (u32, u32)| img.put_pixel(x, y, Luma([255]));
    // Gemini's sparkle is known exactly: invert it first, so text detection sees the photo.
    let found = sparkle::find(vision.sparkle_maps()?, &rgb);
    if let Some((s, map)) = &found {
        let removed = sparkle::remove(&mut rgb, s, map);
        for p in removed.inverted {
            set(&mut mask, p);
        }
        for p in removed.unstable {
            set(&mut fill, p);
        }
    }
    let sparkle = found.map(|(s, _)| s);
    // A mark repeated over the whole image is found by its repetition, not as text, and
    // taken off by inverting its blend; only what cannot be inverted is inpainted.
    let marked_gray = luminance(&rgb);
    // A texture of the photo, or a mark the blend model does not fit (mixed inks, say), is
    // left to the text pipeline.
    let (tiled, unblended) = match tiles::find(&marked_gray) {
        Some(mut t) => match tiles::unblend(&mut rgb, &marked_gray, &mut t) {
            Some(u) => (Some(t), Some(u)),
            None => (None, None),
        },
        None => (None, None),
    };
    if let Some(u) = &unblended {
        for (x, y, p) in u.handled.enumerate_pixels() {
            if p[0] != 0 {
                set(&mut mask, (x, y));
            }
        }
        for (x, y, p) in u.left.enumerate_pixels() {
            if p[0] != 0 {
                set(&mut fill, (x, y));
            }
        }
    }
    let gray = luminance(&rgb);
    let boxes = detect(vision, &rgb)?;
    let joined = join_lines(boxes.iter().map(|b| b.rect).collect());
    let measured: Vec<(Rect, Strokes)> = joined
        .iter()
        .map(|r| (*r, strokes(&gray, *r, None)))
        .collect();
    let mut candidates = score(&measured, w, h);
    let mark = |x: u32, y: u32, m: u32, fill: &mut GrayImage| {
        // A margin takes the anti-aliased edge of each stroke too: left outside the mask, the
        // halo is what inpainting would spread into the hole.
        for yy in y.saturating_sub(m)..=(y + m).min(h - 1) {
            for xx in x.saturating_sub(m)..=(x + m).min(w - 1) {
                fill.put_pixel(xx, yy, Luma([255]));
            }
        }
    };
    // A text box on a tile of the lattice is that tile: its strokes are already masked,
    // more precisely than a box's stroke mask (which catches the photo's texture).
    let on_a_tile = |rect: &Rect| {
        unblended.as_ref().is_some_and(|u| {
            let marked = (rect.y..rect.y + rect.h)
                .flat_map(|y| (rect.x..rect.x + rect.w).map(move |x| (x, y)))
                .filter(|&(x, y)| u.handled.get_pixel(x, y)[0] != 0)
                .count();
            marked * 50 > (rect.w * rect.h) as usize
        })
    };
    for (candidate, (rect, _)) in candidates.iter_mut().zip(&measured) {
        if candidate.accepted && on_a_tile(rect) {
            candidate.accepted = false;
            candidate.reasons.push("a tile of the lattice");
        }
    }
    let mut large_white = Vec::new();
    for (candidate, (rect, s)) in candidates.iter_mut().zip(&measured) {
        if !candidate.accepted {
            continue;
        }
        let margin = (rect.h / 16).clamp(1, 3);
        // A misread polarity (white text on a bright sheet with shadows, taken for dark)
        // measures an opacity near 0 on its strokes, which are then the gaps between them:
        // the other polarity is the mark's when it measures a mark's opacity.
        let mut measured = blend::measure(&gray, &stroke_mark(*rect, s, margin));
        let mut flipped = None;
        if measured
            .as_ref()
            .is_some_and(|m| m.opacity < MISREAD_OPACITY)
        {
            let other = strokes(&gray, *rect, Some(!s.bright));
            let other_measured = blend::measure(&gray, &stroke_mark(*rect, &other, margin));
            if other_measured
                .as_ref()
                .is_some_and(|m| m.opacity >= FLIPPED_OPACITY)
            {
                candidate.reasons.push("ink flipped");
                measured = other_measured;
                flipped = Some(other);
            }
        }
        let s = flipped.as_ref().unwrap_or(s);
        // A semi-transparent mark is inverted; what is too opaque for that is inpainted.
        match measured.and_then(|m| m.invert(&mut rgb)) {
            Some(inverted) => {
                candidate.opacity = Some(inverted.opacity);
                if s.bright && candidate.reasons.contains(&"large") {
                    large_white.push((*rect, inverted.opacity));
                }
                take_off(inverted, &mut mask, &mut fill);
            }
            // A line of text spreads its strokes along the box; a stroke mask bunched in
            // part of it is the photo's (an object's edge crossing a box the detector drew
            // over several faint marks), and inpainting it would smear the photo.
            None if along_the_line(*rect, &s.pixels) < MIN_LINE_SPREAD => {
                candidate.accepted = false;
                candidate.reasons.push("strokes not along the line");
            }
            None => {
                for (x, y) in &s.pixels {
                    mark(*x, *y, margin, &mut fill);
                }
            }
        }
    }
    // A large white word the detector found is often boxed short of its first or last
    // letters (their strokes broke its map): the rest is looked for along its line, by the
    // blend's edges at the opacity its strokes measured.
    for (rect, opacity) in large_white {
        let restored = luminance(&rgb);
        let rest = faint::known(&rgb, opacity)
            .and_then(|found| found.invert_cut(faint::along_line(rect, w, h), &restored, &mut rgb));
        if let Some(inverted) = rest {
            take_off(inverted, &mut mask, &mut fill);
        }
    }
    // Large faint words the detector missed over the photo, found by their blend's edges
    // and inverted with the opacity those edges step by (`faint/`); never inpainted on
    // that evidence alone.
    if let Some(mut found) = faint::find(vision, &rgb)? {
        let gray = luminance(&rgb);
        for rect in join_lines(std::mem::take(&mut found.boxes)) {
            // The cut's strokes along the line first; where they do not invert (it took some
            // of the photo's bright parts, and the opacity they measure is off), the strokes
            // the edges vote inside the box, grown as in `along_line`.
            let inverted = found
                .invert_cut(faint::along_line(rect, w, h), &gray, &mut rgb)
                .or_else(|| found.invert_voted(faint::grown(rect, w, h), &gray, &mut rgb));
            let mut candidate = Candidate {
                rect: faint::grown(rect, w, h),
                score: 0.0,
                reasons: vec!["faint", "blend edges"],
                accepted: false,
                opacity: None,
            };
            if let Some(inverted) = inverted {
                candidate.score = ACCEPT_SCORE;
                candidate.accepted = true;
                candidate.opacity = Some(inverted.opacity);
                take_off(inverted, &mut mask, &mut fill);
            }
            candidates.push(candidate);
        }
    }
    for region in forced {
        let Some(rect) = Rect::clip(
            region[0] as i64,
            region[1] as i64,
            region[2] as i64,
            region[3] as i64,
            w,
            h,
        ) else {
            continue;
        };
        // The caller saw something we did not (a logo, a stamp): the whole region goes, and
        // is filled from the photo's own patches.
        for y in rect.y..rect.y + rect.h {
            for x in rect.x..rect.x + rect.w {
                set(&mut regions, (x, y));
            }
        }
    }
    let to_paint = fill.pixels().chain(regions.pixels()).any(|p| p[0] != 0);
    for ((m, f), b) in mask.pixels_mut().zip(fill.pixels()).zip(regions.pixels()) {
        m[0] |= f[0] | b[0];
    }
    let masked_pixels = mask.pixels().filter(|p| p[0] != 0).count();
    let lattice = tiled.map(|t| t.lattice);
    if masked_pixels == 0 && sparkle.is_none() && lattice.is_none() {
        return Ok(Removal {
            bytes: bytes.to_vec(),
            format: decoded.format,
            width: w,
            height: h,
            masked_pixels,
            candidates,
            mask,
            sparkle,
            lattice,
        });
    }
    if to_paint {
        paint(&mut rgb, &fill, &regions, 5);
    }
    let (out, format) = codec::encode(&image::DynamicImage::ImageRgb8(rgb), decoded.format)?;
    Ok(Removal {
        bytes: out,
        format,
        width: w,
        height: h,
        masked_pixels,
        candidates,
        mask,
        sparkle,
        lattice,
    })
}
