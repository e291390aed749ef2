//! Watermark removal: invert Gemini's sparkle (`sparkle.rs`), take off a mark tiled over
//! the whole image (`tiles/`: found by its repetition, its blend inverted), find text
//! regions, join the detector's boxes into lines (`text.rs`), keep those that look like a
//! watermark (`score.rs`), build tight stroke masks inside them (`strokes.rs`), invert the
//! blend of those with wide semi-transparent strokes (`blend.rs`), and inpaint the rest.
//! Large white words the detector misses are looked for twice more, and only ever
//! inverted: on the photo's darkest channel (over vivid colours), and by their blend's
//! edges over the whole photo (`faint/`).
//!
//! Filling whole boxes leaves visible streaks, so only the strokes are masked, plus a
//! margin for the anti-aliased edge. The polarity (light or dark ink) is checked by the
//! opacity the strokes measure: near 0, they are the gaps between the real strokes. A mask
//! to inpaint must spread along its line: bunched in part of the box it is the photo's. A
//! banner's white strokes that neither invert nor are opaque are not inpainted either.
//! Explicit `regions` from the caller are always removed whole (logos and hard cases). An
//! image where nothing is removed comes back as the very same bytes.

use crate::blend;
use crate::faint;
use crate::inpaint::paint;
use crate::runtime::Vision;
use crate::sparkle::{self, Sparkle};
use crate::text::{detect, join_lines, Rect};
use crate::tiles::{self, Lattice};
use crate::{codec, Result};
use image::{GrayImage, ImageFormat, Luma, RgbImage};

mod score;
mod strokes;

use score::score;
use strokes::{strokes, Strokes};

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

/// Large lines of text the detector finds on `rgb`'s darkest channel and not among `boxes`
/// (found on `rgb`): a white mark raises the darkest channel most, and on it a vivid
/// photo's hues, which hid the mark from the detector, fade to one grey.
fn on_darkest_channel(vision: &Vision, rgb: &RgbImage, boxes: &[Rect]) -> Result<Vec<Rect>> {
    let darkest = RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let p = rgb.get_pixel(x, y);
        let v = p[0].min(p[1]).min(p[2]);
        image::Rgb([v, v, v])
    });
    let min_height = rgb.width().min(rgb.height()) / 25;
    Ok(join_lines(
        detect(vision, &darkest)?
            .into_iter()
            .map(|b| b.rect)
            .filter(|r| !boxes.iter().any(|b| overlaps(b, r)))
            .collect(),
    )
    .into_iter()
    .filter(|r| r.h >= min_height && 2 * r.w >= 3 * r.h)
    .collect())
}

/// Whether `a` and `b` share a pixel.
fn overlaps(a: &Rect, b: &Rect) -> bool {
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
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

/// A large white word found by its blend rather than scored (`reasons` say how): a mark,
/// taken off, when its strokes were `inverted`.
fn word_taken_off(
    rect: Rect,
    reasons: Vec<&'static str>,
    inverted: Option<blend::Inverted>,
    mask: &mut GrayImage,
    fill: &mut GrayImage,
) -> Candidate {
    let opacity = inverted.as_ref().map(|i| i.opacity);
    if let Some(inverted) = inverted {
        take_off(inverted, mask, fill);
    }
    Candidate {
        rect,
        score: if opacity.is_some() { ACCEPT_SCORE } else { 0.0 },
        reasons,
        accepted: opacity.is_some(),
        opacity,
    }
}

/// A large line away from the edges and corners: a banner across the photo.
fn banner(candidate: &Candidate) -> bool {
    let has = |r: &str| candidate.reasons.contains(&r);
    has("large") && !has("corner") && !has("edge")
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
    let joined = join_lines(detect(vision, &rgb)?.into_iter().map(|b| b.rect).collect());
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
    let found_large = candidates
        .iter()
        .any(|c| c.accepted && c.reasons.contains(&"large"));
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
        let opaque = measured
            .as_ref()
            .is_some_and(|m| m.opacity >= blend::MAX_INVERTIBLE);
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
            // A large white word across the photo is semi-transparent as a rule: when its
            // strokes do not invert and are not opaque either, they are likely the photo's
            // bright parts (a cup's rim under the word), and inpainting a banner's worth of
            // them would smear the photo. The faint-word search below looks for its strokes.
            None if s.bright && banner(candidate) && !opaque => {
                candidate.accepted = false;
                candidate.reasons.push("large, not inverted");
            }
            None => {
                for (x, y) in &s.pixels {
                    mark(*x, *y, margin, &mut fill);
                }
            }
        }
    }
    // A large white word the detector missed over vivid colours is looked for on the darkest
    // channel, unless it took a large line for a mark already (the look costs a second
    // detection).
    let whiter = if !found_large {
        on_darkest_channel(vision, &rgb, &joined)?
    } else {
        Vec::new()
    };
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
    // Large white words seen on the darkest channel alone, at the step their edges pair at
    // inside them; inverted as the faint words below are, never inpainted.
    for rect in whiter {
        let gray = luminance(&rgb);
        let area = faint::grown(rect, w, h);
        let inverted = faint::within(&rgb, area).and_then(|found| {
            found
                .invert_cut(area, &gray, &mut rgb)
                .or_else(|| found.invert_voted(area, &gray, &mut rgb))
        });
        let reasons = vec!["white", "darkest channel"];
        candidates.push(word_taken_off(
            area, reasons, inverted, &mut mask, &mut fill,
        ));
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
            let reasons = vec!["faint", "blend edges"];
            candidates.push(word_taken_off(
                faint::grown(rect, w, h),
                reasons,
                inverted,
                &mut mask,
                &mut fill,
            ));
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
