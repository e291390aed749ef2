//! The strokes of a faint word inside the box `find` gave, three ways: the labelling of
//! least energy under the blend's model (`cut`), the regions the mark's edges enclose, voted
//! by the edges around them (`strokes_at`), and the runs between an edge entering a stroke
//! and the next leaving it (`runs`).

use super::Faint;
use crate::cut;
use crate::filters::pieces;
use crate::text::Rect;

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

/// In the cut's energy, a difference between neighbours counts up to this many of the
/// mark's steps: past it, taking a step off a photo's edge (a bright reflection against a
/// dark body) gains nothing.
const CUT_CAP: f32 = 1.5;

/// A channel's difference is weighed by `m / (m + CUT_SOFT)`, `m` the nearer of the two
/// pixels' distance from white: near white a blend barely moves a pixel and a level's
/// rounding is a large step in the log.
const CUT_SOFT: f32 = 8.0;

/// A piece of the cut is kept when at least this share of its outline runs within
/// [`CUT_NEAR`] px of the mark's edges: the photo's bright parts the cut takes with the
/// letters (a headlight, a chrome strip) are outlined by the photo's own edges. (Without
/// this the older quality set's tiled marks on the graphic lost 35.0 → 32.1 dB outside.)
const CUT_ON_EDGES: f32 = 0.5;
const CUT_NEAR: usize = 2;

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
        let under = |x: usize, y: usize| self.floor(x0 + x, y0 + y) >= least;
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

    /// The mark's strokes inside `rect` (input pixels), as the labelling that makes the
    /// photo smoothest once they are restored. Under the mark a pixel's `ln(255 − v)` is
    /// its own less the mark's step `s`, in every channel; so between neighbours `p`, `q`
    /// with difference `d`, labels (0, 0) and (1, 1) leave `|d|`, (0, 1) leaves `|d − s|`
    /// and (1, 0) `|d + s|`. Summed over channels and pairs (each difference capped at
    /// [`CUT_CAP`] steps), that is an energy a minimum cut solves exactly (`cut`). The
    /// mark's outline is where restoring one side takes a whole step off, all around a
    /// stroke; pixels too dark to lie under the mark (a channel under `255·a`) and the
    /// box's border keep label 0. Pieces whose outline is mostly not the mark's edges are
    /// dropped ([`CUT_ON_EDGES`]).
    pub(crate) fn cut(&self, rect: Rect) -> Vec<(u32, u32)> {
        let Some(window) = self.window(rect) else {
            return Vec::new();
        };
        let Window { x0, y0, w, h } = window;
        let s = -(1.0 - self.opacity).ln();
        let least = 255.0 * self.opacity - FLOOR_SLACK;
        let distance: Vec<[f32; 3]> = (0..w * h)
            .map(|i| {
                let p = self
                    .work
                    .get_pixel((x0 + i % w) as u32, (y0 + i / w) as u32);
                p.0.map(|v| 255.0 - f32::from(v))
            })
            .collect();
        let logs: Vec<[f32; 3]> = distance.iter().map(|d| d.map(|v| (v + 1.0).ln())).collect();
        let mut energy = cut::Energy::new(w, h);
        for i in 0..w * h {
            let (x, y) = (i % w, i / w);
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h || self.floor(x0 + x, y0 + y) < least {
                energy.unary(i, cut::FORBID);
            }
        }
        let cap = CUT_CAP * s;
        for i in 0..w * h {
            let (x, y) = (i % w, i / w);
            for (down, inside) in [(false, x + 1 < w), (true, y + 1 < h)] {
                if !inside {
                    continue;
                }
                let j = if down { i + w } else { i + 1 };
                let mut pair = [0f32; 4];
                for c in 0..3 {
                    let near = distance[i][c].min(distance[j][c]);
                    let weight = near / (near + CUT_SOFT);
                    let d = logs[i][c] - logs[j][c];
                    pair[0] += weight * d.abs().min(cap);
                    pair[1] += weight * (d - s).abs().min(cap);
                    pair[2] += weight * (d + s).abs().min(cap);
                    pair[3] += weight * d.abs().min(cap);
                }
                energy.pair(i, down, pair);
            }
        }
        let mut under = energy.minimise();
        let ew = self.edges_width;
        let near_edge = |i: usize| {
            let (x, y) = (i % w, i / w);
            (y.saturating_sub(CUT_NEAR)..=(y + CUT_NEAR).min(h - 1)).any(|yy| {
                (x.saturating_sub(CUT_NEAR)..=(x + CUT_NEAR).min(w - 1))
                    .any(|xx| self.edges[(y0 + yy) * ew + x0 + xx] != [0, 0])
            })
        };
        for piece in pieces(&under, w, h) {
            let inner = |i: usize| {
                let (x, y) = (i % w, i / w);
                x > 0
                    && x + 1 < w
                    && y > 0
                    && y + 1 < h
                    && [i - 1, i + 1, i - w, i + w].iter().all(|&j| under[j])
            };
            let outline: Vec<usize> = piece.iter().copied().filter(|&i| !inner(i)).collect();
            let on = outline.iter().filter(|&&i| near_edge(i)).count();
            if (on as f32) < CUT_ON_EDGES * outline.len() as f32 {
                for i in piece {
                    under[i] = false;
                }
            }
        }
        self.to_input(rect, &window, |i| under[i])
    }

    /// The darkest channel of the work image's pixel: a white mark of opacity `a` leaves
    /// none under `255·a`.
    fn floor(&self, x: usize, y: usize) -> f32 {
        let p = self.work.get_pixel(x as u32, y as u32);
        f32::from(p[0].min(p[1]).min(p[2]))
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

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
            work: RgbImage::from_pixel(w as u32, h as u32, Rgb([255; 3])),
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
        let work = RgbImage::from_fn(w as u32, h as u32, |_, y| {
            Rgb([if y >= 60 { 40 } else { 200 }; 3])
        });
        let found = Faint {
            edges,
            work,
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
            ..bar()
        };
        assert!(lone.runs(area).is_empty());
    }

    #[test]
    fn the_cut_takes_the_marks_strokes_and_leaves_the_photos_bright_parts() {
        // A textured photo with a bright patch of its own (x 10..30), and a white bar at
        // 40 % over x 40..60, rows 10..50, with the mark's edges along the bar's outline.
        let (w, h) = (80usize, 60usize);
        let photo = RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let t = ((x as f32 * 0.7).sin() * 25.0 + (y as f32 * 0.45).cos() * 20.0) as i32;
            let base = if (10..30).contains(&x) && (10..50).contains(&y) {
                200
            } else {
                120
            };
            Rgb([
                (base + t) as u8,
                (base - 10 + t / 2) as u8,
                (base - 20 - t / 3) as u8,
            ])
        });
        let opacity = 0.4;
        let under = |x: usize, y: usize| (40..60).contains(&x) && (10..50).contains(&y);
        let work = RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let p = photo.get_pixel(x, y);
            if under(x as usize, y as usize) {
                Rgb(p
                    .0
                    .map(|v| (f32::from(v) * (1.0 - opacity) + 255.0 * opacity).round() as u8))
            } else {
                *p
            }
        });
        let mut edges = vec![[0i8; 2]; w * h];
        for y in 8..52 {
            for x in 38..62 {
                let i = y * w + x;
                if (38..42).contains(&x) || (58..62).contains(&x) {
                    edges[i][0] = 1;
                }
                if (8..12).contains(&y) || (48..52).contains(&y) {
                    edges[i][1] = 1;
                }
            }
        }
        let found = Faint {
            boxes: Vec::new(),
            opacity,
            edges,
            work,
            edges_width: w,
            scale: 1.0,
        };
        let area = Rect {
            x: 0,
            y: 0,
            w: w as u32,
            h: h as u32,
        };
        let taken = found.cut(area);
        let inside = taken
            .iter()
            .filter(|&&(x, y)| under(x as usize, y as usize))
            .count();
        assert!(
            inside >= 20 * 40 * 9 / 10,
            "{inside} of the bar's 800 pixels taken"
        );
        assert!(
            taken.len() - inside <= 40,
            "{} pixels outside the bar taken",
            taken.len() - inside
        );
        // Without the mark's edges around it the same cut keeps nothing: the bright patch
        // (and the bar itself) are not outlined by the mark's step.
        let bare = Faint {
            edges: vec![[0; 2]; w * h],
            ..found
        };
        assert!(bare.cut(area).is_empty());
    }
}
