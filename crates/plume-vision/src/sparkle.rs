//! Gemini's visible sparkle: found, then taken out exactly by inverting its alpha blend.
//!
//! Images from Gemini's image models (Banana2, BananaPro) carry a white four-pointed sparkle
//! in the bottom-right corner, blended as `marked = (1 − α)·original + α·255` with a fixed
//! alpha map: 48×48 at a 32 px margin when either side is ≤ 1024 px, else 96×96 at 64 px.
//! Knowing α, the blend inverts: `original = (marked − α·255) / (1 − α)`, so nothing is
//! painted and the photo under the mark comes back. The alpha maps are captures of the real
//! mark from PyPI `py-gemini-watermark-remover==0.2.9` (MIT), installed by
//! `scripts/setup-models` as `gemini-sparkle-48.png` and `gemini-sparkle-96.png`.
//!
//! Images that were resized after generation carry the sparkle scaled, with its margin
//! scaled alike, so sizes between the two are searched too (the map resampled). A sparkle is
//! accepted only when the image matches the map (normalized cross-correlation) and the
//! inverse is physically possible: a white blend never darkens, so a pixel darker than
//! `α·255` proves there is no sparkle there. Clean corners fail one test or the other.

use crate::{Result, VisionError};
use image::RgbImage;
use std::path::Path;

pub const SPARKLE_48: &str = "gemini-sparkle-48.png";
pub const SPARKLE_96: &str = "gemini-sparkle-96.png";

/// Correlation with the map at or above which a corner is a sparkle candidate: at Gemini's
/// own size and place (where the prior is strong and a bright corner hides much of the mark),
/// and at any other scale.
const MIN_MATCH_NATIVE: f32 = 0.2;
const MIN_MATCH: f32 = 0.5;
/// Pixels that may be darker than the blend allows (JPEG noise), as a fraction.
const MAX_IMPOSSIBLE: f32 = 0.03;
/// How much darker than `α·255` a pixel may be before it counts as impossible.
const TOLERANCE: f32 = 10.0;
/// The most correlation with the map the inverse may leave: a real sparkle inverts to none,
/// a clean patch inverts to a dark imprint of the map.
const MAX_TRACE: f32 = 0.25;
/// Opacity above which the inverse amplifies noise too much; such pixels are inpainted.
pub const UNSTABLE_ALPHA: f32 = 0.9;

/// An alpha map of one size, row-major, values in 0..=1.
#[derive(Debug, Clone)]
pub struct AlphaMap {
    pub size: u32,
    pub alpha: Vec<f32>,
}

impl AlphaMap {
    fn at(&self, x: u32, y: u32) -> f32 {
        self.alpha[(y * self.size + x) as usize]
    }
}

/// The two native alpha maps.
#[derive(Debug, Clone)]
pub struct SparkleMaps {
    small: AlphaMap,
    large: AlphaMap,
}

fn load_map(path: &Path, size: u32) -> Result<AlphaMap> {
    let img = image::open(path)
        .map_err(|e| VisionError::Unavailable(format!("cannot read {}: {e}", path.display())))?
        .to_rgb8();
    if img.dimensions() != (size, size) {
        return Err(VisionError::Unavailable(format!(
            "{} is {}×{}, expected {size}×{size}; run scripts/setup-models",
            path.display(),
            img.width(),
            img.height()
        )));
    }
    // The capture is the mark over black: its brightest channel is α·255.
    let alpha = img
        .pixels()
        .map(|p| f32::from(p[0].max(p[1]).max(p[2])) / 255.0)
        .collect();
    Ok(AlphaMap { size, alpha })
}

impl SparkleMaps {
    pub fn load(dir: &Path) -> Result<SparkleMaps> {
        Ok(SparkleMaps {
            small: load_map(&dir.join(SPARKLE_48), 48)?,
            large: load_map(&dir.join(SPARKLE_96), 96)?,
        })
    }
}

/// A sparkle found: where, how well it matched, and the opacity gain that inverts it best.
#[derive(Debug, Clone, PartialEq)]
pub struct Sparkle {
    pub x: u32,
    pub y: u32,
    pub size: u32,
    pub score: f32,
    pub gain: f32,
}

/// Normalized cross-correlation of paired samples; 0 when either side is flat.
fn ncc(pairs: impl Iterator<Item = (f32, f32)> + Clone) -> f32 {
    let (mut n, mut sg, mut sa) = (0f32, 0f32, 0f32);
    for (g, a) in pairs.clone() {
        n += 1.0;
        sg += g;
        sa += a;
    }
    if n < 2.0 {
        return 0.0;
    }
    let (mg, ma) = (sg / n, sa / n);
    let (mut cov, mut vg, mut va) = (0f32, 0f32, 0f32);
    for (g, a) in pairs {
        let (g, a) = (g - mg, a - ma);
        cov += g * a;
        vg += g * g;
        va += a * a;
    }
    if vg <= 1e-6 || va <= 1e-9 {
        return 0.0;
    }
    cov / (vg.sqrt() * va.sqrt())
}

/// The native sparkles: its map, and its margin from the right and bottom edges.
fn families(maps: &SparkleMaps) -> [(&AlphaMap, f32); 2] {
    [(&maps.small, 32.0), (&maps.large, 64.0)]
}

/// The sparkle of a native map as it appears after the image was resized by `scale`: where
/// its box starts in a `width`×`height` image and its alpha there, area-sampled from the map.
fn scaled(
    map: &AlphaMap,
    margin: f32,
    scale: f32,
    width: u32,
    height: u32,
) -> Option<(u32, u32, AlphaMap)> {
    const SUB: u32 = 4;
    let reach = (map.size as f32 + margin) * scale;
    let (fx, fy) = (width as f32 - reach, height as f32 - reach);
    if fx < 0.0 || fy < 0.0 {
        return None;
    }
    let (x0, y0) = (fx.floor() as u32, fy.floor() as u32);
    let side = ((fx + map.size as f32 * scale).ceil() as u32 - x0)
        .min(width - x0)
        .min(height - y0);
    let mut alpha = Vec::with_capacity((side * side) as usize);
    for j in 0..side {
        for i in 0..side {
            let mut sum = 0.0;
            for sj in 0..SUB {
                for si in 0..SUB {
                    // The sample's place in the original image, relative to the map.
                    let u = ((x0 + i) as f32 + (si as f32 + 0.5) / SUB as f32 - fx) / scale;
                    let v = ((y0 + j) as f32 + (sj as f32 + 0.5) / SUB as f32 - fy) / scale;
                    if u >= 0.0 && v >= 0.0 && u < map.size as f32 && v < map.size as f32 {
                        sum += map.at(u as u32, v as u32);
                    }
                }
            }
            alpha.push(sum / (SUB * SUB) as f32);
        }
    }
    Some((x0, y0, AlphaMap { size: side, alpha }))
}

/// Luminance of the `size`² patch at (x, y).
fn patch(rgb: &RgbImage, x: u32, y: u32, size: u32) -> Vec<f32> {
    let mut out = Vec::with_capacity((size * size) as usize);
    for j in 0..size {
        for i in 0..size {
            let p = rgb.get_pixel(x + i, y + j);
            out.push(0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]));
        }
    }
    out
}

/// A luminance this close to white may be clipped: it says nothing about the blend.
const CLIPPED: f32 = 250.0;

/// `values` (a `size`² patch) less their local mean over a `(2r+1)`² window: what is left
/// is the patch's fine structure, where the sparkle's edges are and a smooth photo is not.
fn detrend(values: &[f32], size: u32, r: u32) -> Vec<f32> {
    let n = size as usize;
    // A summed-area table makes each window mean O(1).
    let mut sum = vec![0f64; (n + 1) * (n + 1)];
    for y in 0..n {
        for x in 0..n {
            sum[(y + 1) * (n + 1) + x + 1] = f64::from(values[y * n + x])
                + sum[y * (n + 1) + x + 1]
                + sum[(y + 1) * (n + 1) + x]
                - sum[y * (n + 1) + x];
        }
    }
    let r = r as usize;
    (0..n * n)
        .map(|k| {
            let (x, y) = (k % n, k / n);
            let (x0, y0, x1, y1) = (
                x.saturating_sub(r),
                y.saturating_sub(r),
                (x + r + 1).min(n),
                (y + r + 1).min(n),
            );
            let total = sum[y1 * (n + 1) + x1] - sum[y0 * (n + 1) + x1] - sum[y1 * (n + 1) + x0]
                + sum[y0 * (n + 1) + x0];
            values[k] - (total / ((x1 - x0) * (y1 - y0)) as f64) as f32
        })
        .collect()
}

/// How well `patch` matches the map: correlation of their fine structure over the pixels that
/// are not clipped, so a photo's own shading does not drown a faint mark.
fn match_score(patch: &[f32], map: &AlphaMap) -> f32 {
    let r = (map.size / 8).max(2);
    let (g, a) = (
        detrend(patch, map.size, r),
        detrend(&map.alpha, map.size, r),
    );
    ncc(g
        .iter()
        .zip(&a)
        .zip(patch)
        .filter(|(_, m)| **m < CLIPPED)
        .map(|((g, a), _)| (*g, *a)))
}

/// Fits the opacity gain of a candidate and checks the blend is physically there: the gain and
/// the trace of the map its inverse leaves (0 = none), or `None` when it is no sparkle.
fn verify(patch: &[f32], map: &AlphaMap) -> Option<(f32, f32)> {
    let restore = |gain: f32| {
        patch.iter().zip(&map.alpha).map(move |(m, a)| {
            let a = (a * gain).min(0.99);
            ((m - a * 255.0) / (1.0 - a), a, *m)
        })
    };
    // A mark re-encoded or resized is a little fainter or stronger than the capture: the gain
    // whose inverse leaves the least trace of the map wins.
    let mut best = (f32::MAX, 1.0f32);
    for step in 0..=16 {
        let gain = 0.8 + 0.025 * step as f32;
        let trace = ncc(restore(gain)
            .filter(|(_, _, m)| *m < CLIPPED)
            .map(|(r, a, _)| (r, a)))
        .abs();
        if trace < best.0 {
            best = (trace, gain);
        }
    }
    // A white blend never darkens: a patch much darker than α·255 has no sparkle in it.
    let (mut marked, mut impossible, mut clipped) = (0usize, 0usize, 0usize);
    for (r, a, m) in restore(best.1) {
        if a > 0.1 {
            marked += 1;
            impossible += usize::from(r < -TOLERANCE / (1.0 - a));
            clipped += usize::from(m >= CLIPPED);
        }
    }
    // On a white corner the mark is invisible and any match is noise: nothing to remove.
    if marked == 0
        || 2 * clipped > marked
        || impossible as f32 > MAX_IMPOSSIBLE * marked as f32
        || best.0 > MAX_TRACE
    {
        return None;
    }
    Some((best.1, best.0))
}

/// Looks for the sparkle in the bottom-right corner of `rgb`: at Gemini's native size and
/// placement first, then at any scale a resized image could carry it.
pub fn find(maps: &SparkleMaps, rgb: &RgbImage) -> Option<(Sparkle, AlphaMap)> {
    let (w, h) = rgb.dimensions();
    if w < 64 || h < 64 {
        return None;
    }
    let candidate = |map: &AlphaMap, margin: f32, scale: f32| {
        let (x, y, template) = scaled(map, margin, scale, w, h)?;
        let patch = patch(rgb, x, y, template.size);
        let score = match_score(&patch, &template);
        Some((score, x, y, template, patch))
    };
    let accept = |min: f32, (score, x, y, template, patch): (f32, u32, u32, AlphaMap, Vec<f32>)| {
        if score < min {
            return None;
        }
        let (gain, trace) = verify(&patch, &template)?;
        let sparkle = Sparkle {
            x,
            y,
            size: template.size,
            score,
            gain,
        };
        Some((sparkle, template, trace))
    };
    let native = if w > 1024 && h > 1024 { 1 } else { 0 };
    let (map, margin) = families(maps)[native];
    if let Some((s, t, _)) = candidate(map, margin, 1.0).and_then(|c| accept(MIN_MATCH_NATIVE, c)) {
        return Some((s, t));
    }
    // A resized image: a coarse search over the scale, then a fine one around the best.
    let mut found: Option<(Sparkle, AlphaMap, f32)> = None;
    for (map, margin) in families(maps) {
        let longest = w.max(h) as f32;
        let (lo, hi) = (
            16.0 / map.size as f32,
            (longest / 8.0 / map.size as f32).min(2.0),
        );
        let mut best: Option<(f32, f32)> = None;
        let mut scale = lo;
        while scale <= hi {
            if let Some((score, ..)) = candidate(map, margin, scale) {
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, scale));
                }
            }
            scale += 0.01;
        }
        let Some((_, coarse)) = best.filter(|(score, _)| *score >= MIN_MATCH) else {
            continue;
        };
        let fine = (-10..=10)
            .filter_map(|k| candidate(map, margin, coarse + 0.001 * k as f32))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(hit) = fine.and_then(|c| accept(MIN_MATCH, c)) {
            if found.as_ref().is_none_or(|f| hit.2 < f.2) {
                found = Some(hit);
            }
        }
    }
    found.map(|(s, t, _)| (s, t))
}

/// Inverts the blend in place; returns the pixels inverted, and those too opaque to invert
/// (to be inpainted).
pub fn remove(rgb: &mut RgbImage, sparkle: &Sparkle, map: &AlphaMap) -> Removed {
    let (mut inverted, mut unstable) = (Vec::new(), Vec::new());
    for j in 0..map.size {
        for i in 0..map.size {
            let a = map.at(i, j) * sparkle.gain;
            if a < 0.002 {
                continue;
            }
            let (x, y) = (sparkle.x + i, sparkle.y + j);
            if a >= UNSTABLE_ALPHA {
                unstable.push((x, y));
                continue;
            }
            let p = rgb.get_pixel_mut(x, y);
            for c in 0..3 {
                let v = crate::blend::unblend(f32::from(p[c]), a, 255.0);
                p[c] = v.round().clamp(0.0, 255.0) as u8;
            }
            inverted.push((x, y));
        }
    }
    Removed { inverted, unstable }
}

/// What [`remove`] did, in image coordinates.
pub struct Removed {
    /// Pixels restored by inverting the blend.
    pub inverted: Vec<(u32, u32)>,
    /// Pixels too opaque to invert, for inpainting.
    pub unstable: Vec<(u32, u32)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diamond(size: u32) -> AlphaMap {
        let c = (size as f32 - 1.0) / 2.0;
        let alpha = (0..size * size)
            .map(|k| {
                let (x, y) = ((k % size) as f32, (k / size) as f32);
                let d = ((x - c).abs() + (y - c).abs()) / c;
                (0.6 * (1.0 - d)).max(0.0)
            })
            .collect();
        AlphaMap { size, alpha }
    }

    fn stamp(img: &mut RgbImage, x: u32, y: u32, map: &AlphaMap) {
        for j in 0..map.size {
            for i in 0..map.size {
                let a = map.at(i, j);
                let p = img.get_pixel_mut(x + i, y + j);
                for c in 0..3 {
                    p[c] = (f32::from(p[c]) * (1.0 - a) + 255.0 * a).round() as u8;
                }
            }
        }
    }

    fn textured(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = ((x * 7 + y * 13) % 97) as u8 + 40;
            image::Rgb([v, v / 2 + 30, 200 - v])
        })
    }

    #[test]
    fn a_stamped_corner_is_found_and_inverted_and_a_clean_one_is_left() {
        let maps = SparkleMaps {
            small: diamond(48),
            large: diamond(96),
        };
        let clean = textured(800, 600);
        assert!(find(&maps, &clean).is_none());
        let mut img = clean.clone();
        let (x, y) = (800 - 48 - 32, 600 - 48 - 32);
        stamp(&mut img, x, y, &maps.small);
        let (found, map) = find(&maps, &img).expect("the sparkle");
        assert_eq!((found.x, found.y, found.size), (x, y, 48));
        assert!(remove(&mut img, &found, &map).unstable.is_empty());
        let worst = img
            .pixels()
            .zip(clean.pixels())
            .flat_map(|(a, b)| (0..3).map(move |c| (i16::from(a[c]) - i16::from(b[c])).abs()))
            .max()
            .unwrap();
        assert!(worst <= 2, "worst channel error {worst}");
    }
}
