//! Large faint words laid over a photo ("SAMPLE", "PREVIEW" at 30–40 % across the middle),
//! which the text detector misses in context: its probability map stays at 0 over a busy
//! photo, though the same word cut out on flat grey scores 0.99. They are found by the
//! blend's own signature instead.
//!
//! A white mark of opacity `a` makes `255 − m = (1 − a)·(255 − I)`: across each edge of its
//! strokes the distance from white steps by the same factor, in every channel, all along
//! the mark, and a stroke is entered and left by the same step whatever lies under it. The
//! photo's own edges step by any factor, change hue on the way, and rarely come back by the
//! step they went. So the edges whose step in `ln(255 − v)` agrees across the three
//! channels are kept, paired along each row and column (one entering a bright stroke, the
//! next leaving it by the same step), and the mark's factor stands out as a peak of the
//! pairs' histogram. The edges at that step draw the outline of the mark's letters, and the
//! text detector, run on that drawing instead of the photo, finds the word. Inside its box
//! `strokes` finds which pixels are under the mark, and `watermark` inverts those with the
//! opacity the step means, and only where the inverse fits (`blend`).

use crate::runtime::Vision;
use crate::text::{detect, Rect};
use crate::Result;
use image::{imageops, RgbImage};

mod labelling;
mod strokes;

/// The drawing is made at most this size on the long side; larger photos are reduced first
/// (a blend is linear, so averaging pixels keeps its factor).
const WORK_SIDE: u32 = 1440;

/// Pixels closer to white than this (in every channel's `255 − v`) step too little to
/// measure: on a pale ground a 40 % white mark moves them by a few levels.
const MIN_DISTANCE: f32 = 12.0;

/// The histogram's bins (in `ln(255 − v)`) and the range searched for the mark's step:
/// opacities of about 0.18 to 0.53. Fainter marks barely show; denser ones the detector
/// sees itself.
const BIN: f32 = 0.025;
const SEARCH: std::ops::Range<usize> = 8..30;

/// An edge entering a stroke pairs with an edge leaving it this far on at most (in the
/// work image's pixels: a stroke of a word a tenth of the photo's height and more)...
const PAIR_REACH: usize = 60;
/// ...whose step is the entering one's to within this.
const PAIR_TOLERANCE: f32 = 0.03;

/// The pairs at the mark's step must stand this many standard deviations over what the
/// histogram around them predicts. Clean photos measure up to 7.2 (a handbag's cream
/// leather), photos with a large faint word 13 (the same handbag) to 34 (a car); words the
/// detector finds itself may measure less.
const MIN_SIGNIFICANCE: f32 = 10.0;

/// Inside a box the detector drew on the darkest channel, the pairs at the mark's step need
/// only stand this far over the rest: the box is the evidence, and what is inverted must
/// still measure the step's opacity and fit the blend. The graphic's 样片 measures about 15
/// in its box (9 with a box height more on each side, where the clean screen measures 2.7).
const MIN_LOCAL_SIGNIFICANCE: f32 = 5.0;

/// Edges within this of the peak's step are drawn.
const BAND: f32 = 0.06;

/// What [`find`] found: boxes in the input's pixels, the opacity the edges' step means, and
/// what finding its strokes needs.
pub(crate) struct Faint {
    pub boxes: Vec<Rect>,
    pub opacity: f32,
    /// Per pixel at `scale` of the input's size, across it horizontally and vertically:
    /// +1 where the mark's step enters a stroke (going right or down), −1 where it leaves.
    edges: Vec<[i8; 2]>,
    /// The photo at the same size.
    work: RgbImage,
    edges_width: usize,
    scale: f32,
    outlines: Outlines,
}

/// How [`Faint::cut`] tells a letter it labelled from a bright part of the photo, by the
/// piece's outline.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outlines {
    /// Mostly along the mark's edges (those whose step the three channels agree on): when
    /// the step was found from them, they are many.
    OnEdges,
    /// Mostly restored flat: across it, taking the mark's step off the inside leaves little
    /// of the step there was. For a word found on the darkest channel, over vivid colours
    /// where the channels rarely agree.
    Restored,
}

/// Finds large faint white words on `rgb`; `None` when the edges show no common step.
pub(crate) fn find(vision: &Vision, rgb: &RgbImage) -> Result<Option<Faint>> {
    let Some(measured) = Steps::of(rgb) else {
        return Ok(None);
    };
    let Steps {
        ref steps,
        w,
        h,
        scale,
        ..
    } = measured;
    let Some(step) = peak(&pairs(steps, w, (0, 0, w, h)), MIN_SIGNIFICANCE) else {
        return Ok(None);
    };
    let at_peak = |s: f32| (s.abs() - step).abs() <= BAND;
    let drawing = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let s = steps[y as usize * w + x as usize];
        // The larger of the two steps draws (both draw the corners of strokes twice over).
        let larger = if s[0].abs() >= s[1].abs() { s[0] } else { s[1] };
        let v = if at_peak(larger) { 0 } else { 255 };
        image::Rgb([v, v, v])
    });
    // Large words only: the detector on the drawing also outlines bits of the photo, small.
    let min_height = (w.min(h) / 25) as u32;
    let (iw, ih) = rgb.dimensions();
    let boxes = detect(vision, &drawing)?
        .into_iter()
        .map(|b| b.rect)
        .filter(|r| r.h >= min_height && 2 * r.w >= 3 * r.h)
        .filter_map(|r| {
            let back = |v: u32| (v as f32 / scale).round() as i64;
            Rect::clip(back(r.x), back(r.y), back(r.w), back(r.h), iw, ih)
        })
        .collect();
    Ok(Some(measured.at(step, boxes)))
}

/// A white mark of `opacity` known from elsewhere (a large word the detector found and
/// inverted), to look for the rest of its strokes with [`Faint::cut`]; `None` when the
/// photo is too small.
pub(crate) fn known(rgb: &RgbImage, opacity: f32) -> Option<Faint> {
    let step = -(1.0 - opacity.clamp(0.0, 0.95)).ln();
    Steps::of(rgb).map(|s| s.at(step, Vec::new()))
}

/// A large white word the text detector saw on the photo's darkest channel alone (`rect`,
/// input pixels: over vivid colours, where one channel sits at 255 and the photo's own
/// gradients make the channels' steps disagree, its edges do not stand out of the whole
/// photo's), with the step the pairs inside `rect` peak at; `None` when they show none.
pub(crate) fn within(rgb: &RgbImage, rect: Rect) -> Option<Faint> {
    let measured = Steps::of(rgb)?;
    let at = |v: u32, most: usize| ((v as f32 * measured.scale) as usize).min(most);
    let region = (
        at(rect.x, measured.w),
        at(rect.y, measured.h),
        at(rect.x + rect.w, measured.w),
        at(rect.y + rect.h, measured.h),
    );
    let step = peak(
        &pairs(&measured.steps, measured.w, region),
        MIN_LOCAL_SIGNIFICANCE,
    )?;
    Some(Faint {
        outlines: Outlines::Restored,
        ..measured.at(step, Vec::new())
    })
}

/// Each pixel's step in `ln(255 − v)` across it, at most [`WORK_SIDE`] on the long side.
struct Steps {
    work: RgbImage,
    scale: f32,
    /// Horizontally and vertically, 2 px each way (over an anti-aliased rim); 0 where the
    /// channels disagree.
    steps: Vec<[f32; 2]>,
    w: usize,
    h: usize,
}

impl Steps {
    fn of(rgb: &RgbImage) -> Option<Steps> {
        let (iw, ih) = rgb.dimensions();
        let scale = (WORK_SIDE as f32 / iw.max(ih) as f32).min(1.0);
        let work = if scale < 1.0 {
            let (w, h) = (
                ((iw as f32 * scale).round() as u32).max(1),
                ((ih as f32 * scale).round() as u32).max(1),
            );
            imageops::resize(rgb, w, h, imageops::FilterType::Triangle)
        } else {
            rgb.clone()
        };
        let (w, h) = (work.width() as usize, work.height() as usize);
        const D: usize = 2;
        if w <= 2 * D || h <= 2 * D {
            return None;
        }
        let logs: Vec<[f32; 3]> = work
            .pixels()
            .map(|p| [0, 1, 2].map(|c| (259.0 - f32::from(p[c])).ln()))
            .collect();
        let distance: Vec<f32> = work
            .pixels()
            .map(|p| 255.0 - f32::from(p[0].max(p[1]).max(p[2])))
            .collect();
        let mut steps = vec![[0f32; 2]; w * h];
        for y in D..h - D {
            for x in D..w - D {
                let i = y * w + x;
                for (dir, off) in [D, D * w].into_iter().enumerate() {
                    let (a, b) = (i + off, i - off);
                    let near_white = distance[a].min(distance[b]);
                    if near_white < MIN_DISTANCE {
                        continue;
                    }
                    let s = [0, 1, 2].map(|c| logs[a][c] - logs[b][c]);
                    let mean = (s[0] + s[1] + s[2]) / 3.0;
                    let spread = s.iter().map(|v| (v - mean).abs()).fold(0.0, f32::max);
                    // The channels agree to within a share of the step, and the rounding of
                    // levels close to white.
                    if spread <= 0.04 * mean.abs() + 0.02 + 0.5 / near_white {
                        steps[i][dir] = mean;
                    }
                }
            }
        }
        Some(Steps {
            work,
            scale,
            steps,
            w,
            h,
        })
    }

    /// The mark whose edges step by `step`.
    fn at(self, step: f32, boxes: Vec<Rect>) -> Faint {
        let at_step = |s: f32| (s.abs() - step).abs() <= BAND;
        Faint {
            boxes,
            opacity: 1.0 - (-step).exp(),
            // Entering a white stroke, the distance from white falls: a negative step.
            edges: self
                .steps
                .iter()
                .map(|s| s.map(|d| if at_step(d) { -(d.signum() as i8) } else { 0 }))
                .collect(),
            work: self.work,
            edges_width: self.w,
            scale: self.scale,
            outlines: Outlines::OnEdges,
        }
    }
}

/// `rect` grown by a sixth of its height all round: a detector's box is tight on a word's
/// strokes, whose rims reach past it.
pub(crate) fn grown(rect: Rect, w: u32, h: u32) -> Rect {
    let grow = i64::from(rect.h / 6);
    Rect::clip(
        i64::from(rect.x) - grow,
        i64::from(rect.y) - grow,
        i64::from(rect.w) + 2 * grow,
        i64::from(rect.h) + 2 * grow,
        w,
        h,
    )
    .unwrap_or(rect)
}

/// [`grown`], and a box height further along the line each way: the detector's box on a
/// large faint word stops short of letters whose outlines broke (the handbag's S and E).
pub(crate) fn along_line(rect: Rect, w: u32, h: u32) -> Rect {
    let rect = grown(rect, w, h);
    let reach = i64::from(rect.h);
    Rect::clip(
        i64::from(rect.x) - reach,
        i64::from(rect.y),
        i64::from(rect.w) + 2 * reach,
        i64::from(rect.h),
        w,
        h,
    )
    .unwrap_or(rect)
}

/// The histogram of paired steps (bins of [`BIN`]): along each row and column, the middle
/// of each edge (its step's extreme within 2 px) that enters a bright stroke, paired with
/// the first edge after it, within [`PAIR_REACH`], that leaves by the same step; within
/// `region` (`x0, y0, x1, y1`, exclusive) of the `w`-wide grid.
fn pairs(steps: &[[f32; 2]], w: usize, region: (usize, usize, usize, usize)) -> Vec<u32> {
    let mut histogram = vec![0u32; SEARCH.end + 4];
    let mut middles: Vec<(usize, f32)> = Vec::new();
    let (x0, y0, x1, y1) = region;
    for dir in [0usize, 1] {
        let (lines, along) = if dir == 0 {
            (y0..y1, x0..x1)
        } else {
            (x0..x1, y0..y1)
        };
        for line in lines {
            let step = |k: usize| {
                let i = if dir == 0 { line * w + k } else { k * w + line };
                steps[i][dir]
            };
            middles.clear();
            for k in along.start.max(2)..along.end.saturating_sub(2) {
                let s = step(k);
                // The first of equal extremes stands for the edge.
                if s != 0.0
                    && (k - 2..k).all(|j| step(j).abs() < s.abs())
                    && (k + 1..=k + 2).all(|j| step(j).abs() <= s.abs())
                {
                    middles.push((k, s));
                }
            }
            // Entering a white stroke the distance from white falls: a negative step.
            for (n, &(k, s)) in middles.iter().enumerate() {
                if s >= 0.0 {
                    continue;
                }
                let leaving = middles[n + 1..]
                    .iter()
                    .take_while(|(k2, _)| k2 - k <= PAIR_REACH)
                    .find(|(_, s2)| *s2 > 0.0 && (s2 + s).abs() <= PAIR_TOLERANCE);
                if let Some((_, s2)) = leaving {
                    let bin = ((s2 - s) / 2.0 / BIN) as usize;
                    if let Some(count) = histogram.get_mut(bin) {
                        *count += 1;
                    }
                }
            }
        }
    }
    histogram
}

/// The mark's step: the middle of the three bins in [`SEARCH`] that stand most significantly
/// over what the bins three away on either side predict (their geometric mean: the
/// histogram falls about exponentially), if by `least` standard deviations.
fn peak(histogram: &[u32], least: f32) -> Option<f32> {
    SEARCH
        .map(|b| {
            let seen = (histogram[b - 1] + histogram[b] + histogram[b + 1]) as f32;
            let expected = 3.0
                * (histogram[b - 3] as f32 * histogram[b + 3] as f32)
                    .sqrt()
                    .max(1.0);
            // Counts are Poisson-like; a few counts more keeps an empty neighbourhood from
            // making a handful of pairs significant.
            (b, (seen - expected) / (expected + 4.0).sqrt())
        })
        .filter(|&(_, z)| z >= least)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(b, _)| (b as f32 + 0.5) * BIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_entering_a_stroke_pairs_with_one_leaving_by_the_same_step() {
        let (w, h) = (200usize, 3usize);
        let mut steps = vec![[0f32; 2]; w * h];
        let mut edge = |y: usize, x: usize, s: f32| {
            // An edge 3 px wide, strongest in its middle.
            steps[y * w + x - 1][0] = s * 0.6;
            steps[y * w + x][0] = s;
            steps[y * w + x + 1][0] = s * 0.6;
        };
        // Row 0: a stroke entered at 0.45 and left at 0.46, then a photo's edge.
        edge(0, 10, -0.45);
        edge(0, 30, 0.46);
        edge(0, 50, 0.30);
        // Row 1: left by another step; row 2: left too far on.
        edge(1, 10, -0.45);
        edge(1, 30, 0.30);
        edge(2, 10, -0.45);
        edge(2, 10 + PAIR_REACH + 5, 0.45);
        let histogram = pairs(&steps, w, (0, 0, w, h));
        assert_eq!(histogram.iter().sum::<u32>(), 1, "{histogram:?}");
        assert_eq!(histogram[(0.455 / BIN) as usize], 1);
        // Inside a region: only its rows, and only the edges within its columns.
        assert_eq!(pairs(&steps, w, (0, 0, w, 1)).iter().sum::<u32>(), 1);
        assert_eq!(pairs(&steps, w, (0, 1, w, 3)).iter().sum::<u32>(), 0);
        assert_eq!(pairs(&steps, w, (0, 0, 25, 1)).iter().sum::<u32>(), 0);
    }

    #[test]
    fn the_step_is_a_significant_peak_of_the_pairs() {
        // A photo's pairs fall about exponentially with the step; a mark adds a bump.
        let photo: Vec<u32> = (0..SEARCH.end + 4)
            .map(|b| (5000.0 * (-(b as f32) / 4.0).exp()) as u32 + 20)
            .collect();
        assert_eq!(peak(&photo, MIN_SIGNIFICANCE), None);
        let mut marked = photo.clone();
        for (b, extra) in [(17, 40), (18, 120), (19, 50)] {
            marked[b] += extra;
        }
        let step = peak(&marked, MIN_SIGNIFICANCE).expect("the bump is found");
        assert!((step - 18.5 * BIN).abs() < 1e-6, "{step}");
        // The same bump on a photo with thousands of pairs at that step is noise.
        let busy: Vec<u32> = photo.iter().map(|c| c + 3000).collect();
        let mut busy_marked = busy.clone();
        for (b, extra) in [(17, 40), (18, 120), (19, 50)] {
            busy_marked[b] += extra;
        }
        assert_eq!(peak(&busy_marked, MIN_SIGNIFICANCE), None);
    }
}
