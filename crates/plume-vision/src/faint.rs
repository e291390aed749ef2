//! Large faint words laid over a photo ("SAMPLE", "PREVIEW" at 30–40 % across the middle),
//! which the text detector misses in context: its probability map stays at 0 over a busy
//! photo, though the same word cut out on flat grey scores 0.99. They are found by the
//! blend's own signature instead.
//!
//! A white mark of opacity `a` makes `255 − m = (1 − a)·(255 − I)`: across each edge of its
//! strokes the distance from white steps by the same factor, in every channel, all along
//! the mark. The photo's own edges step by any factor and change hue on the way. So the
//! edges whose step in `ln(255 − v)` agrees across the three channels are kept; the mark's
//! factor stands out as a peak of their histogram; the edges at that peak draw the outline
//! of the mark's letters, and the text detector, run on that drawing instead of the photo,
//! finds the word. Inside its box the same edges cut the box into regions and vote which
//! are strokes; strokes too thin for that lie between an edge entering a stroke and the
//! next one leaving it ([`Faint::strokes`]); `watermark` inverts those with the opacity the edges'
//! factor means, and only where the inverse fits (`blend`).

use crate::filters::pieces;
use crate::runtime::Vision;
use crate::text::{detect, Rect};
use crate::Result;
use image::{imageops, RgbImage};

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

/// A peak must stand this far above the histogram around it. Clean photos measure up to
/// 1.25 (and a photo with a dense corner mark 1.12, whose peak found a grille); the large
/// faint words 1.5–1.8 where they are found, and as little as 1.12 on a pale ground, where
/// they are missed.
const MIN_PEAK: f32 = 1.3;

/// Edges within this of the peak's step are drawn.
const BAND: f32 = 0.06;

/// Gaps in the mark's outlines up to about twice these are closed, one closing at a time:
/// wider closings seal leakier outlines but eat more of thin strokes.
const CLOSINGS: [usize; 3] = [3, 4, 5];

/// The margin taken around the strokes found, in the drawing's pixels: the outline's band
/// the closing ate, whose pixels are inverted by their own step.
const STROKE_MARGIN: f32 = 5.0;

/// How far under `255·a` a run's darkest channel may fall (an anti-aliased rim, noise).
const FLOOR_SLACK: f32 = 8.0;

/// Runs longer than this many times the commonest join a stroke's edge to one of the
/// photo's.
const RUN_SPREAD: f32 = 1.5;

/// Runs join into pieces of at least this many squares of the stroke width: a letter's
/// strokes make large pieces, chance pairs of the photo's edges small ones. (At 2 and 4
/// the pieces the photo's edges make took the older quality set's centred word on the car
/// from 63 % removed to 60 % and 62 %.)
const MIN_PIECE: usize = 8;

/// A region needs this many of the mark's edge pixels voting it a stroke.
const MIN_VOTES: u32 = 12;

/// What [`find`] found: boxes in the input's pixels, the opacity the edges' step means, and
/// the edges themselves.
pub(crate) struct Faint {
    pub boxes: Vec<Rect>,
    pub opacity: f32,
    /// Per pixel at `scale` of the input's size, across it horizontally and vertically:
    /// +1 where the mark's step enters a stroke (going right or down), −1 where it leaves.
    edges: Vec<[i8; 2]>,
    /// Each pixel's darkest channel, at the same size: a white mark of opacity `a` leaves
    /// no channel under `255·a`.
    floor: Vec<u8>,
    edges_width: usize,
    scale: f32,
}

impl Faint {
    /// The margin to take around [`Faint::strokes`], in the input's pixels (the band the
    /// closing ate grows with the input's size).
    pub(crate) fn margin(&self) -> u32 {
        (STROKE_MARGIN / self.scale).ceil() as u32
    }

    /// The union of [`Faint::strokes_at`] over several closings of the outlines' gaps (a
    /// stroke whose outline leaks at one closing is sealed at a wider one) and of
    /// [`Faint::runs`] (thin strokes, which the closings fill).
    pub(crate) fn strokes(&self, rect: Rect) -> Vec<(u32, u32)> {
        let mut all: Vec<(u32, u32)> = CLOSINGS
            .iter()
            .flat_map(|&c| self.strokes_at(rect, c))
            .chain(self.runs(rect))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The mark's strokes inside `rect` (input pixels). The mark's edges cut the box into
    /// regions; each edge says which side of it is the stroke (the brighter, by the mark's
    /// factor), and votes for the regions on either side. Regions voted strokes by most of
    /// their edges are the strokes. A letter's counter and the photo around the word are on
    /// the other side of their edges; the photo's own bright parts have few of the mark's
    /// edges around them; a stroke whose outline has a gap merges with the photo around it
    /// and is outvoted (missed rather than wrongly taken).
    fn strokes_at(&self, rect: Rect, close: usize) -> Vec<(u32, u32)> {
        let Some(window) = self.window(rect) else {
            return Vec::new();
        };
        let Window { x0, y0, w, h } = window;
        let ew = self.edges_width;
        let edge = |x: usize, y: usize| self.edges[(y0 + y) * ew + x0 + x];
        // The edges, thickened to close the gaps where the photo under an outline broke its
        // step (the strokes are wider than that).
        let mut blocked = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                if edge(x, y) != [0, 0] {
                    for yy in y.saturating_sub(close)..=(y + close).min(h - 1) {
                        for xx in x.saturating_sub(close)..=(x + close).min(w - 1) {
                            blocked[yy * w + xx] = true;
                        }
                    }
                }
            }
        }
        let on_edge = |x: usize, y: usize| blocked[y * w + x];
        // Regions: 4-connected pixels off the edges.
        let mut region = vec![u32::MAX; w * h];
        let mut count = 0u32;
        for start in 0..w * h {
            if region[start] != u32::MAX || on_edge(start % w, start / w) {
                continue;
            }
            region[start] = count;
            let mut stack = vec![start];
            while let Some(i) = stack.pop() {
                let (x, y) = (i % w, i / w);
                for (ok, j) in [
                    (x > 0, i.wrapping_sub(1)),
                    (x + 1 < w, i + 1),
                    (y > 0, i.wrapping_sub(w)),
                    (y + 1 < h, i + w),
                ] {
                    if ok && region[j] == u32::MAX && !on_edge(j % w, j / w) {
                        region[j] = count;
                        stack.push(j);
                    }
                }
            }
            count += 1;
        }
        // Votes: (as a stroke, as not one) per region, from the first region past each edge
        // pixel on either side.
        let mut votes = vec![(0u32, 0u32); count as usize];
        let reach = 2 * close as i64 + 4;
        for y in 0..h {
            for x in 0..w {
                for (dir, sign) in edge(x, y).iter().enumerate() {
                    if *sign == 0 {
                        continue;
                    }
                    for (side, stroke) in [(i64::from(*sign), true), (-i64::from(*sign), false)] {
                        let found = (1..=reach).find_map(|k| {
                            let (xx, yy) = if dir == 0 {
                                (x as i64 + side * k, y as i64)
                            } else {
                                (x as i64, y as i64 + side * k)
                            };
                            if xx < 0 || yy < 0 || xx >= w as i64 || yy >= h as i64 {
                                return None;
                            }
                            let r = region[yy as usize * w + xx as usize];
                            (r != u32::MAX).then_some(r)
                        });
                        if let Some(r) = found {
                            let v = &mut votes[r as usize];
                            if stroke {
                                v.0 += 1;
                            } else {
                                v.1 += 1;
                            }
                        }
                    }
                }
            }
        }
        let is_stroke: Vec<bool> = votes
            .iter()
            .map(|&(yes, no)| yes >= MIN_VOTES && yes >= 2 * no)
            .collect();
        self.to_input(rect, &window, |i| {
            region[i] != u32::MAX && is_stroke[region[i] as usize]
        })
    }

    /// The mark's thin strokes inside `rect` (input pixels), from its outlines' pairs: along
    /// a row (or a column), an edge entering a stroke and the next one leaving it hold a
    /// stroke between them. The closings of [`Faint::strokes_at`] fill a stroke narrower
    /// than twice their width with its own outline; these do not. A pair is kept when no
    /// channel between its edges lies under what the mark leaves (`255·a`, on more than half
    /// its pixels), it is not much longer than the commonest pair (the strokes' width), and
    /// its pixels join a large piece.
    fn runs(&self, rect: Rect) -> Vec<(u32, u32)> {
        let Some(window) = self.window(rect) else {
            return Vec::new();
        };
        let Window { x0, y0, w, h } = window;
        let ew = self.edges_width;
        let widest = (h / 4).max(3);
        let least = 255.0 * self.opacity - FLOOR_SLACK;
        let under = |x: usize, y: usize| f32::from(self.floor[(y0 + y) * ew + x0 + x]) >= least;
        // (direction, line, first, last): direction 0 along rows, 1 along columns.
        let mut pairs = Vec::new();
        for dir in 0..2 {
            let (lines, len) = if dir == 0 { (h, w) } else { (w, h) };
            for line in 0..lines {
                let at = |k: usize| if dir == 0 { (k, line) } else { (line, k) };
                let mut entered: Option<usize> = None;
                for k in 0..len {
                    let (x, y) = at(k);
                    match self.edges[(y0 + y) * ew + x0 + x][dir] {
                        1 => entered = Some(k),
                        -1 => {
                            let Some(e) = entered.take() else { continue };
                            let feasible = (e..=k).filter(|&j| under(at(j).0, at(j).1)).count();
                            if k - e <= widest && feasible * 2 > k - e {
                                pairs.push((dir, line, e, k));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut lengths = vec![0u32; widest + 1];
        for &(_, _, e, k) in &pairs {
            lengths[k - e] += 1;
        }
        let common = (0..lengths.len()).max_by_key(|&l| lengths[l]).unwrap_or(0);
        let longest = (common as f32 * RUN_SPREAD) as usize + 2;
        let mut stroke = vec![false; w * h];
        for &(dir, line, e, k) in pairs.iter().filter(|p| p.3 - p.2 <= longest) {
            for j in e..=k {
                let (x, y) = if dir == 0 { (j, line) } else { (line, j) };
                stroke[y * w + x] = true;
            }
        }
        for piece in pieces(&stroke, w, h) {
            if piece.len() < MIN_PIECE * common * common {
                for i in piece {
                    stroke[i] = false;
                }
            }
        }
        self.to_input(rect, &window, |i| stroke[i])
    }

    /// `rect` (input pixels) in the edges' pixels; `None` when it is too small to hold a
    /// stroke there.
    fn window(&self, rect: Rect) -> Option<Window> {
        let (ew, eh) = (self.edges_width, self.edges.len() / self.edges_width.max(1));
        let (x0, y0) = (self.to_work(rect.x, ew), self.to_work(rect.y, eh));
        let (x1, y1) = (
            self.to_work(rect.x + rect.w, ew),
            self.to_work(rect.y + rect.h, eh),
        );
        (x1 > x0 + 2 && y1 > y0 + 2).then_some(Window {
            x0,
            y0,
            w: x1 - x0,
            h: y1 - y0,
        })
    }

    fn to_work(&self, v: u32, most: usize) -> usize {
        ((v as f32 * self.scale) as usize).min(most)
    }

    /// The input's pixels in `rect` whose pixel in `window` (row-major index) is `kept`.
    fn to_input(
        &self,
        rect: Rect,
        window: &Window,
        kept: impl Fn(usize) -> bool,
    ) -> Vec<(u32, u32)> {
        let (ew, eh) = (self.edges_width, self.edges.len() / self.edges_width.max(1));
        let Window { x0, y0, w, h } = *window;
        (rect.y..rect.y + rect.h)
            .flat_map(|y| (rect.x..rect.x + rect.w).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let (wx, wy) = (self.to_work(x, ew - 1), self.to_work(y, eh - 1));
                (x0..x0 + w).contains(&wx)
                    && (y0..y0 + h).contains(&wy)
                    && kept((wy - y0) * w + wx - x0)
            })
            .collect()
    }
}

/// A rectangle of the edges' pixels.
#[derive(Clone, Copy)]
struct Window {
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
}

/// Finds large faint white words on `rgb`; `None` when the edges show no common step.
pub(crate) fn find(vision: &Vision, rgb: &RgbImage) -> Result<Option<Faint>> {
    let (iw, ih) = rgb.dimensions();
    let scale = (WORK_SIDE as f32 / iw.max(ih) as f32).min(1.0);
    let small;
    let work = if scale < 1.0 {
        let (w, h) = (
            ((iw as f32 * scale).round() as u32).max(1),
            ((ih as f32 * scale).round() as u32).max(1),
        );
        small = imageops::resize(rgb, w, h, imageops::FilterType::Triangle);
        &small
    } else {
        rgb
    };
    let (w, h) = (work.width() as usize, work.height() as usize);
    const D: usize = 2;
    if w <= 2 * D || h <= 2 * D {
        return Ok(None);
    }
    let logs: Vec<[f32; 3]> = work
        .pixels()
        .map(|p| [0, 1, 2].map(|c| (259.0 - f32::from(p[c])).ln()))
        .collect();
    let distance: Vec<f32> = work
        .pixels()
        .map(|p| 255.0 - f32::from(p[0].max(p[1]).max(p[2])))
        .collect();
    // Each pixel's step across it (2 px each way, over an anti-aliased rim), horizontally and
    // vertically; 0 where the channels disagree.
    let mut steps = vec![[0f32; 2]; w * h];
    let mut histogram = [0u32; SEARCH.end + 4];
    for y in D..h - D {
        for x in D..w - D {
            let i = y * w + x;
            let mut best = 0f32;
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
                    if mean.abs() > best.abs() {
                        best = mean;
                    }
                }
            }
            let bin = (best.abs() / BIN) as usize;
            if best != 0.0 && bin < histogram.len() {
                histogram[bin] += 1;
            }
        }
    }
    let mut peak = (0usize, 0f32);
    for b in SEARCH {
        let around = (histogram[b - 3] as f32 * histogram[b + 3] as f32)
            .sqrt()
            .max(1.0);
        let ratio = (histogram[b - 1] + histogram[b] + histogram[b + 1]) as f32 / 3.0 / around;
        if ratio > peak.1 {
            peak = (b, ratio);
        }
    }
    if peak.1 < MIN_PEAK {
        return Ok(None);
    }
    let step = (peak.0 as f32 + 0.5) * BIN;
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
    let boxes = detect(vision, &drawing)?
        .into_iter()
        .map(|b| b.rect)
        .filter(|r| r.h >= min_height && 2 * r.w >= 3 * r.h)
        .filter_map(|r| {
            let back = |v: u32| (v as f32 / scale).round() as i64;
            Rect::clip(back(r.x), back(r.y), back(r.w), back(r.h), iw, ih)
        })
        .collect();
    Ok(Some(Faint {
        boxes,
        opacity: 1.0 - (-step).exp(),
        floor: work.pixels().map(|p| p[0].min(p[1]).min(p[2])).collect(),
        // Entering a white stroke, the distance from white falls: a negative step.
        edges: steps
            .iter()
            .map(|s| s.map(|d| if at_peak(d) { -(d.signum() as i8) } else { 0 }))
            .collect(),
        edges_width: w,
        scale,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The edges of a bar 20 px wide on a 60×50 area, outlined from x = 20 to 40 (rows 5 to
    /// 45), with a gap of 3 px in its right outline.
    fn bar() -> Faint {
        let (w, h) = (60usize, 50usize);
        let mut edges = vec![[0i8; 2]; w * h];
        for y in 5..45 {
            for x in 19..22 {
                edges[y * w + x][0] = 1;
            }
            if !(20..23).contains(&y) {
                for x in 39..42 {
                    edges[y * w + x][0] = -1;
                }
            }
        }
        for x in 20..40 {
            for y in 4..7 {
                edges[y * w + x][1] = 1;
            }
            for y in 43..46 {
                edges[y * w + x][1] = -1;
            }
        }
        Faint {
            boxes: Vec::new(),
            opacity: 0.35,
            edges,
            floor: vec![255; w * h],
            edges_width: w,
            scale: 1.0,
        }
    }

    #[test]
    fn the_regions_inside_the_marks_outlines_are_its_strokes() {
        let found = bar();
        let area = Rect {
            x: 0,
            y: 0,
            w: 60,
            h: 50,
        };
        let strokes = found.strokes(area);
        assert!(
            !strokes.is_empty(),
            "the bar is found despite its outline's gap"
        );
        assert!(
            strokes.contains(&(30, 25)),
            "the middle of the bar is a stroke"
        );
        for (x, y) in &strokes {
            assert!(
                (19..42).contains(x) && (4..46).contains(y),
                "({x}, {y}) is outside the bar"
            );
        }
        // No edges, no strokes: the photo around a mark is never taken for one.
        let bare = Faint {
            edges: vec![[0; 2]; 60 * 50],
            ..bar()
        };
        assert!(bare.strokes(area).is_empty());
    }

    #[test]
    fn a_thin_stroke_is_found_between_its_outlines_pairs() {
        // A bar 8 px wide (x = 21 to 28, rows 5 to 75) whose outlines the closings fill.
        let (w, h) = (60usize, 80usize);
        let mut edges = vec![[0i8; 2]; w * h];
        for y in 5..75 {
            for x in 19..22 {
                edges[y * w + x][0] = 1;
            }
            for x in 27..30 {
                edges[y * w + x][0] = -1;
            }
        }
        // Rows 60 to 75 lie on a photo too dark to be under a mark of this opacity.
        let floor = (0..w * h)
            .map(|i| if i / w >= 60 { 40 } else { 200 })
            .collect();
        let found = Faint {
            edges,
            floor,
            ..bar()
        };
        let area = Rect {
            x: 0,
            y: 0,
            w: 60,
            h: 80,
        };
        assert!(
            CLOSINGS
                .iter()
                .all(|&c| found.strokes_at(area, c).is_empty()),
            "the closings fill the thin bar with its own outline"
        );
        let strokes = found.strokes(area);
        assert!(
            strokes.contains(&(24, 15)),
            "the middle of the bar is a stroke"
        );
        for (x, y) in &strokes {
            assert!(
                (21..=27).contains(x) && (5..60).contains(y),
                "({x}, {y}) is outside the bar's light part"
            );
        }
        // A short pair on its own is a chance pair of the photo's edges, not a stroke.
        let mut lone = vec![[0i8; 2]; w * h];
        for y in 10..12 {
            lone[y * w + 21][0] = 1;
            lone[y * w + 27][0] = -1;
        }
        let lone = Faint {
            edges: lone,
            floor: vec![255; w * h],
            ..bar()
        };
        assert!(lone.runs(area).is_empty());
    }
}
