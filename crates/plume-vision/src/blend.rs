//! The blend of a semi-transparent mark, `m = (1 − a)·I + a·ink`, and its inverse. Where a
//! mark's opacity `a` and ink can be measured from its own strokes, the photo under the
//! strokes comes back exactly instead of being painted over; inpainting is left for what is
//! too opaque to invert. `tiles` measures `a` per cell position over a lattice's instances;
//! [`measure`] and [`Measured::invert`] do it for one mark found as text or by its edges, which has a single opacity over
//! all its strokes.

use crate::filters::masked_mean;
use crate::text::Rect;
use image::{GrayImage, RgbImage};

/// Above this opacity the inverse amplifies noise too much (by 1/(1 − a)): inpaint instead.
pub(crate) const MAX_INVERTIBLE: f32 = 0.8;

/// Below this the measured opacity is more likely a misread polarity (the gaps between
/// strokes taken for them; `watermark` tries the other polarity under 0.1) than a mark.
const MIN_OPACITY: f32 = 0.15;

/// The share of a mark's strong stroke pixels that must be interior (strokes about 8 px
/// wide or more) for its blend to be inverted; see [`Measured::invert`].
const MIN_INTERIOR_SHARE: f32 = 0.75;

/// A known opacity and the one the strokes measure agree to within this, or the strokes
/// are not the mark's.
const KNOWN_AGREEMENT: f32 = 0.1;

/// Where the ink and the background under it differ by less than this (grey levels), a
/// pixel's step from its background says nothing about the opacity.
pub(crate) const MIN_INK_STEP: f32 = 24.0;

/// An inverse that leaves more than this share of the marked pixels' step from their
/// background does not fit the mark (a coloured or mixed ink, say; the photo's own texture
/// under the strokes keeps a good fit above 0).
pub(crate) const MAX_RESIDUAL: f64 = 0.5;

/// The ink's grey level from `(background, marked)` pairs of stroke interiors. Inside the
/// strokes `m = (1 − a)·B + a·ink` over every background `B` the mark lies on, so a straight
/// line through (B, m) gives both: slope 1 − a, intercept a·ink. Marks are often grey, not
/// white: a grey mark lightens dark ground and darkens light ground, and assuming white would
/// get half of it wrong. Falls back to white (`bright`) or black when the fit is unsure.
pub(crate) fn ink_level(pairs: impl Iterator<Item = (f32, f32)>, bright: bool) -> f32 {
    let fallback = pure_ink(bright);
    let (mut n, mut sb, mut sm, mut sbb, mut sbm) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (b, m) in pairs {
        let (b, m) = (f64::from(b), f64::from(m));
        n += 1.0;
        sb += b;
        sm += m;
        sbb += b * b;
        sbm += b * m;
    }
    let spread = n * sbb - sb * sb;
    // A fit needs backgrounds of many levels under the mark.
    if n < 200.0 || spread / (n * n) < 20.0 * 20.0 {
        return fallback;
    }
    let slope = (n * sbm - sb * sm) / spread;
    let intercept = (sm - slope * sb) / n;
    let a = 1.0 - slope;
    if !(0.08..=0.95).contains(&a) {
        return fallback;
    }
    ((intercept / a) as f32).clamp(0.0, 255.0)
}

/// White for a light mark, black for a dark one.
fn pure_ink(bright: bool) -> f32 {
    if bright {
        255.0
    } else {
        0.0
    }
}

/// Whether a fitted grey `ink` shows itself in the `(background, marked)` pairs: a grey ink
/// darkens what is lighter than it (a light ink) or lightens what is darker (a dark one).
/// Where the background is measured well beside a stroke rather than under it (the wide
/// strokes of a large word), it is a noisy stand-in for the one under the stroke, and the
/// fit's slope flattens: a white mark at 30 % over hair and skin fitted as ink 161 at 53 %,
/// though nothing lighter than 161 was darkened.
fn grey_shown(pairs: &[(f32, f32)], ink: f32, bright: bool) -> bool {
    let beyond: Vec<f32> = pairs
        .iter()
        .filter(|(b, _)| {
            if bright {
                *b >= ink + GREY_MARGIN
            } else {
                *b <= ink - GREY_MARGIN
            }
        })
        .map(|(b, m)| m - b)
        .collect();
    if beyond.len() < MIN_GREY_EVIDENCE || beyond.len() * 50 < pairs.len() {
        return false;
    }
    let mut steps = beyond;
    let mid = steps.len() / 2;
    let median = *steps.select_nth_unstable_by(mid, f32::total_cmp).1;
    if bright {
        median < 0.0
    } else {
        median > 0.0
    }
}

/// Backgrounds this far beyond a fitted grey ink (lighter than a light one, darker than a
/// dark one) show whether the mark really is grey...
const GREY_MARGIN: f32 = 16.0;
/// ...when there are at least this many of them, and 2 % of all.
const MIN_GREY_EVIDENCE: usize = 20;

/// One channel's value under a mark of opacity `a` and grey `ink`.
pub(crate) fn unblend(value: f32, a: f32, ink: f32) -> f32 {
    (value - a * ink) / (1.0 - a)
}

/// One mark: a line of text `watermark` measured, or a word `faint` found by its edges.
pub(crate) struct Mark<'a> {
    /// The detector's box (joined into a line).
    pub rect: Rect,
    /// The stroke pixels, in image coordinates.
    pub pixels: &'a [(u32, u32)],
    /// Per stroke pixel: it passed the top-hat's threshold (not only grown into).
    pub strong: &'a [bool],
    /// Light ink rather than dark.
    pub bright: bool,
    /// The margin every stroke pixel takes around it (the anti-aliased rim).
    pub margin: u32,
    /// The ink's grey level and the mark's opacity, when they are known from elsewhere
    /// (`faint`); otherwise they are measured on the strokes.
    pub known: Option<(f32, f32)>,
}

/// What [`Measured::invert`] did.
pub(crate) struct Inverted {
    /// Pixels changed by the inverse.
    pub changed: Vec<(u32, u32)>,
    /// Pixels the inverse could not restore (the blend overshoots them: an opaque part, or
    /// a pixel of the photo taken for a stroke), for inpainting.
    pub left: Vec<(u32, u32)>,
    /// The opacity measured on the stroke interiors.
    pub opacity: f32,
}

/// Lays `mark` out over the area around it and measures its background, ink and opacity
/// (or checks the known opacity); `None` when too few pixels can be measured, or they
/// disagree with the known opacity. [`Measured::invert`] then takes the mark off.
pub(crate) fn measure(gray: &GrayImage, mark: &Mark) -> Option<Measured> {
    let (iw, ih) = gray.dimensions();
    // The background of a pixel deep inside a wide stroke is measured beyond the stroke,
    // to measure the opacity there. A known opacity needs the background only at the rims
    // (and the wide one to check it), and there the nearest pixels beyond the margin say it
    // best: a wide mean pulls the photo's own detail in the margin toward it.
    let wide = (mark.rect.h / 4).clamp(6, 32);
    let r = match mark.known {
        Some(_) => mark.margin + 3,
        None => wide,
    };
    let pad = i64::from(wide + mark.margin + 2);
    let area = Rect::clip(
        i64::from(mark.rect.x) - pad,
        i64::from(mark.rect.y) - pad,
        i64::from(mark.rect.w) + 2 * pad,
        i64::from(mark.rect.h) + 2 * pad,
        iw,
        ih,
    )?;
    let (w, h) = (area.w as usize, area.h as usize);
    let at = |x: u32, y: u32| -> Option<usize> {
        (area.contains(x, y)).then(|| (y - area.y) as usize * w + (x - area.x) as usize)
    };
    // In the area: 1 = a stroke pixel (with its margin), 2 = strong, 0 = not the mark.
    let mut kind = vec![0u8; w * h];
    for (&(x, y), &strong) in mark.pixels.iter().zip(mark.strong) {
        let m = mark.margin;
        for yy in y.saturating_sub(m)..=(y + m).min(ih - 1) {
            for xx in x.saturating_sub(m)..=(x + m).min(iw - 1) {
                if let Some(i) = at(xx, yy) {
                    kind[i] = kind[i].max(1);
                }
            }
        }
        if strong {
            if let Some(i) = at(x, y) {
                kind[i] = 2;
            }
        }
    }
    let outside: Vec<f32> = kind.iter().map(|k| f32::from(u8::from(*k == 0))).collect();
    let values: Vec<f32> = (0..w * h)
        .map(|i| {
            let (x, y) = (area.x + (i % w) as u32, area.y + (i / w) as u32);
            f32::from(gray.get_pixel(x, y)[0])
        })
        .collect();
    let background = masked_mean(&values, &outside, w, h, r as usize);
    // An interior pixel: strong, and so are its four neighbours (a rim's step is only part
    // of the opacity).
    let interior: Vec<bool> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            kind[i] == 2
                && x > 0
                && y > 0
                && x + 1 < w
                && y + 1 < h
                && [i - 1, i + 1, i - w, i + w].iter().all(|&j| kind[j] == 2)
        })
        .collect();
    let ink = match mark.known {
        Some((ink, _)) => ink,
        None => {
            let pairs: Vec<(f32, f32)> = (0..w * h)
                .filter(|&i| interior[i])
                .filter_map(|i| background[i].map(|b| (b, values[i])))
                .collect();
            let ink = ink_level(pairs.iter().copied(), mark.bright);
            if grey_shown(&pairs, ink, mark.bright) {
                ink
            } else {
                pure_ink(mark.bright)
            }
        }
    };
    let own = |i: usize| own_step(&values, &background, ink, i);
    let opacity = match mark.known {
        Some((_, opacity)) => {
            // What the strokes measure must agree: regions of the photo taken for strokes
            // step by anything.
            let wide_background = masked_mean(&values, &outside, w, h, wide as usize);
            let measured = median_step(&interior, &kind, &|i| {
                own_step(&values, &wide_background, ink, i)
            })?;
            if (measured - opacity).abs() > KNOWN_AGREEMENT {
                return None;
            }
            opacity
        }
        None => median_step(&interior, &kind, &own)?,
    };
    Some(Measured {
        area,
        r: r as usize,
        kind,
        outside,
        interior,
        values,
        background,
        ink,
        opacity,
        known: mark.known.is_some(),
    })
}

/// The median step of the stroke interiors (of every strong pixel when too few are
/// interior); `None` when under 20 pixels can be measured.
fn median_step(interior: &[bool], kind: &[u8], own: &dyn Fn(usize) -> Option<f32>) -> Option<f32> {
    let mut cores: Vec<f32> = (0..kind.len())
        .filter(|&i| interior[i])
        .filter_map(own)
        .collect();
    if cores.len() < 20 {
        cores = (0..kind.len())
            .filter(|&i| kind[i] == 2)
            .filter_map(own)
            .collect();
    }
    if cores.len() < 20 {
        return None;
    }
    let mid = cores.len() / 2;
    Some(*cores.select_nth_unstable_by(mid, f32::total_cmp).1)
}

/// Pixel `i`'s step from its background as a share of the ink's; `None` where the ink and
/// the background are too close to tell.
fn own_step(values: &[f32], background: &[Option<f32>], ink: f32, i: usize) -> Option<f32> {
    let b = background[i]?;
    ((ink - b).abs() >= MIN_INK_STEP).then(|| (values[i] - b) / (ink - b))
}

/// A mark's strokes over the area around it (`area`, row-major), as [`measure`] found them.
pub(crate) struct Measured {
    area: Rect,
    /// The radius the background is averaged over.
    r: usize,
    /// 1 = a stroke pixel (with its margin), 2 = strong, 0 = not the mark.
    kind: Vec<u8>,
    /// 1 where not the mark (the background's weights).
    outside: Vec<f32>,
    /// Strong, and so are its four neighbours (a rim's step is only part of the opacity).
    interior: Vec<bool>,
    values: Vec<f32>,
    background: Vec<Option<f32>>,
    ink: f32,
    /// The median step of the interiors as a share of the ink's (or the known opacity).
    pub opacity: f32,
    /// The opacity was known from elsewhere.
    known: bool,
}

impl Measured {
    /// Takes the mark off `rgb` by inverting its blend. The mark's opacity is
    /// the median, over its stroke interiors, of each pixel's step from the background around it
    /// as a share of the ink's step from that background; a mark has one opacity, so interiors
    /// are inverted with it (their own step carries the photo's texture, which comes back), and
    /// the anti-aliased rims with their own step. `None`, with `rgb` untouched, when the mark is
    /// too opaque to invert ([`MAX_INVERTIBLE`]), cannot be measured, or the inverse does not fit
    /// ([`MAX_RESIDUAL`]): the caller inpaints it.
    pub(crate) fn invert(self, rgb: &mut RgbImage) -> Option<Inverted> {
        let Measured {
            area,
            r,
            kind,
            outside,
            interior,
            values,
            background,
            ink,
            opacity,
            known,
        } = self;
        let (w, h) = (area.w as usize, area.h as usize);
        let own = |i: usize| own_step(&values, &background, ink, i);
        if !(MIN_OPACITY..=MAX_INVERTIBLE).contains(&opacity) {
            return None;
        }
        // Thin strokes are mostly anti-aliased rim, whose opacity is only part of the mark's
        // and is measured against a smoothed background: their inverse leaves outlines where
        // inpainting leaves none. Only marks of wide strokes are inverted.
        let strong = kind.iter().filter(|k| **k == 2).count();
        let inner = interior.iter().filter(|k| **k).count();
        if !known && (inner as f32) < MIN_INTERIOR_SHARE * strong as f32 {
            return None;
        }
        // Each marked pixel's opacity: the mark's own in the interiors, the pixel's own step on
        // the rims, nothing where it cannot be measured.
        let alpha: Vec<f32> = (0..w * h)
            .map(|i| match (kind[i], own(i)) {
                (0, _) => 0.0,
                _ if interior[i] => opacity,
                (_, Some(a)) => a.clamp(0.0, opacity),
                (_, None) => 0.0,
            })
            .collect();
        // Check the fit on every channel before changing anything: what the inverse leaves of
        // the marked pixels' step from their background, against what was there.
        let channels: Vec<Vec<f32>> = (0..3)
            .map(|c| {
                (0..w * h)
                    .map(|i| {
                        let (x, y) = (area.x + (i % w) as u32, area.y + (i / w) as u32);
                        f32::from(rgb.get_pixel(x, y)[c])
                    })
                    .collect()
            })
            .collect();
        let (mut before, mut after) = (0f64, 0f64);
        for values in &channels {
            let background = masked_mean(values, &outside, w, h, r);
            for i in 0..w * h {
                let (Some(b), true) = (background[i], alpha[i] > 0.0) else {
                    continue;
                };
                let restored = unblend(values[i], alpha[i], ink);
                before += f64::from((values[i] - b).abs());
                after += f64::from((restored.clamp(0.0, 255.0) - b).abs());
            }
        }
        if before == 0.0 || after / before > MAX_RESIDUAL {
            return None;
        }
        let mut changed = Vec::new();
        let mut left = Vec::new();
        for i in (0..w * h).filter(|&i| alpha[i] > 0.0) {
            let (x, y) = (area.x + (i % w) as u32, area.y + (i / w) as u32);
            let p = rgb.get_pixel_mut(x, y);
            let mut overshoot = 0f32;
            for (c, v) in p.0.iter_mut().enumerate() {
                let restored = unblend(channels[c][i], alpha[i], ink);
                overshoot = overshoot.max(-restored).max(restored - 255.0);
                *v = restored.round().clamp(0.0, 255.0) as u8;
            }
            changed.push((x, y));
            // A pixel the blend cannot have made (its inverse far out of range) was not under
            // this mark's opacity: an opaque part, or the photo's own detail.
            if overshoot > 16.0 {
                left.push((x, y));
            }
        }
        Some(Inverted {
            changed,
            left,
            opacity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A textured photo-like background, and a bar `thick` px wide laid over it in white at
    /// `opacity` (anti-aliased on its long edges). Returns the original, the marked image,
    /// and the bar's stroke pixels with which are strong.
    fn marked(thick: f32, opacity: f32) -> (RgbImage, RgbImage, Vec<(u32, u32)>, Vec<bool>) {
        let original = RgbImage::from_fn(160, 80, |x, y| {
            let t = ((x as f32 * 0.31).sin() * 30.0 + (y as f32 * 0.9).cos() * 25.0) as i32;
            Rgb([
                (90 + t).clamp(0, 255) as u8,
                (110 + t / 2).clamp(0, 255) as u8,
                (70 - t / 3).clamp(0, 255) as u8,
            ])
        });
        let mut img = original.clone();
        let (top, bottom) = (40.0 - thick / 2.0, 40.0 + thick / 2.0);
        let (mut pixels, mut strong) = (Vec::new(), Vec::new());
        for y in 0..80u32 {
            let yc = y as f32 + 0.5;
            let cover = ((yc + 0.5).min(bottom) - (yc - 0.5).max(top)).clamp(0.0, 1.0);
            for x in 30..130u32 {
                if cover == 0.0 {
                    continue;
                }
                let a = opacity * cover;
                let p = img.get_pixel_mut(x, y);
                for c in p.0.iter_mut() {
                    *c = (f32::from(*c) * (1.0 - a) + 255.0 * a).round() as u8;
                }
                pixels.push((x, y));
                strong.push(cover > 0.6);
            }
        }
        (original, img, pixels, strong)
    }

    fn invert(img: &mut RgbImage, pixels: &[(u32, u32)], strong: &[bool]) -> Option<Inverted> {
        let gray = image::imageops::grayscale(img);
        // The box a detector gives a line of text with strokes this wide.
        let mark = Mark {
            rect: Rect {
                x: 28,
                y: 10,
                w: 104,
                h: 60,
            },
            pixels,
            strong,
            bright: true,
            margin: 1,
            known: None,
        };
        measure(&gray, &mark)?.invert(img)
    }

    #[test]
    fn a_wide_faint_mark_is_inverted_and_its_texture_comes_back() {
        let (original, mut img, pixels, strong) = marked(10.0, 0.35);
        let inverted = invert(&mut img, &pixels, &strong).expect("a 35 % bar is invertible");
        assert!(
            (inverted.opacity - 0.35).abs() < 0.03,
            "{}",
            inverted.opacity
        );
        assert!(inverted.left.is_empty());
        // Deep inside the bar the photo's texture is back, to within rounding.
        for x in 40..120 {
            for y in 37..43 {
                let (o, r) = (original.get_pixel(x, y), img.get_pixel(x, y));
                for c in 0..3 {
                    assert!(o[c].abs_diff(r[c]) <= 4, "({x},{y}) {o:?} -> {r:?}");
                }
            }
        }
    }

    #[test]
    fn thin_or_opaque_marks_are_left_for_inpainting() {
        let (_, mut img, pixels, strong) = marked(3.0, 0.35);
        let before = img.clone();
        assert!(invert(&mut img, &pixels, &strong).is_none(), "thin strokes");
        assert_eq!(img, before, "nothing changes when the inverse is refused");
        let (_, mut img, pixels, strong) = marked(10.0, 0.95);
        assert!(invert(&mut img, &pixels, &strong).is_none(), "opaque");
    }

    #[test]
    fn the_ink_is_fitted_over_backgrounds_of_many_levels() {
        // m = 0.7·B + 0.3·200 over B from 0 to 250: a grey ink of 200.
        let pairs = (0..400).map(|i| {
            let b = (i % 250) as f32;
            (b, 0.7 * b + 60.0)
        });
        assert!((ink_level(pairs, true) - 200.0).abs() < 1.0);
        // One level of background cannot separate opacity from ink: the fallback.
        let flat = (0..400).map(|_| (100.0, 130.0));
        assert_eq!(ink_level(flat, true), 255.0);
    }

    #[test]
    fn a_grey_ink_is_believed_where_it_darkens_what_is_lighter() {
        // Grey 200 at 30 % over backgrounds from 0 to 250: it darkens those over 200.
        let grey: Vec<(f32, f32)> = (0..400)
            .map(|i| {
                let b = (i % 250) as f32;
                (b, 0.7 * b + 60.0)
            })
            .collect();
        assert!(grey_shown(
            &grey,
            ink_level(grey.iter().copied(), true),
            true
        ));
        // White at 30 % over backgrounds from 0 to 150, each measured up to 20 levels off:
        // the fit's slope flattens and reads a grey ink, but nothing lighter than that grey
        // is darkened.
        let white: Vec<(f32, f32)> = (0..400)
            .map(|i| {
                let b = (i % 150) as f32;
                let off = ((i * 37) % 41) as f32 - 20.0;
                (b + off, 0.7 * b + 0.3 * 255.0)
            })
            .collect();
        let fitted = ink_level(white.iter().copied(), true);
        assert!(fitted < 240.0, "the flattened fit reads grey: {fitted}");
        assert!(!grey_shown(&white, fitted, true));
        // Darkening shown by too few pairs (under MIN_GREY_EVIDENCE) proves nothing.
        let few: Vec<(f32, f32)> = grey
            .iter()
            .copied()
            .filter(|(b, _)| *b < 200.0)
            .chain((0..MIN_GREY_EVIDENCE - 1).map(|_| (240.0, 228.0)))
            .collect();
        assert!(!grey_shown(&few, 200.0, true));
        let enough: Vec<(f32, f32)> = few.iter().copied().chain([(240.0, 228.0); 20]).collect();
        assert!(grey_shown(&enough, 200.0, true));
    }
}
