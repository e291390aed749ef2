//! The strokes of a faint word inside the box `find` gave, and their inversion. They are
//! found two ways: the labelling of least energy under the blend's model (`labelling.rs`),
//! and, where that does not invert, the regions the mark's edges enclose, voted by the
//! edges around them (`strokes_at`), with the runs between an edge entering a stroke and
//! the next leaving it (`runs`). The work image's geometry (`window`, `to_input`) is here.

use super::Faint;
use crate::blend;
use crate::filters::pieces;
use crate::text::Rect;
use image::{GrayImage, RgbImage};

/// Gaps in the mark's outlines up to about twice these are closed, one closing at a time:
/// wider closings seal leakier outlines but eat more of thin strokes.
const CLOSINGS: [usize; 3] = [3, 4, 5];

/// The margin taken around the strokes found, in the drawing's pixels: the outline's band
/// the closing ate, whose pixels are inverted by their own step.
const STROKE_MARGIN: f32 = 5.0;

/// How far under `255·a` a run's darkest channel may fall (an anti-aliased rim, noise).
pub(super) const FLOOR_SLACK: f32 = 8.0;

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

impl Faint {
    /// Takes off the strokes [`Faint::cut`] finds in `area` (input pixels), by inverting
    /// the blend at the mark's opacity where the strokes measure it too and the inverse
    /// fits (`blend`); `None`, with `rgb` untouched, where they do not. `gray` is `rgb`'s
    /// luminance.
    pub(crate) fn invert_cut(
        &self,
        area: Rect,
        gray: &GrayImage,
        rgb: &mut RgbImage,
    ) -> Option<blend::Inverted> {
        self.invert(area, &self.cut(area), gray, rgb)
    }

    /// As [`Faint::invert_cut`], with the strokes the edges vote ([`Faint::strokes`]).
    pub(crate) fn invert_voted(
        &self,
        area: Rect,
        gray: &GrayImage,
        rgb: &mut RgbImage,
    ) -> Option<blend::Inverted> {
        self.invert(area, &self.strokes(area), gray, rgb)
    }

    fn invert(
        &self,
        area: Rect,
        pixels: &[(u32, u32)],
        gray: &GrayImage,
        rgb: &mut RgbImage,
    ) -> Option<blend::Inverted> {
        let strong = vec![true; pixels.len()];
        let mark = blend::Mark {
            rect: area,
            pixels,
            strong: &strong,
            bright: true,
            margin: self.margin(),
            known: Some((255.0, self.opacity)),
        };
        blend::measure(gray, &mark).and_then(|m| m.invert(rgb))
    }

    /// The margin to take around [`Faint::strokes`], in the input's pixels (the band the
    /// closing ate grows with the input's size).
    fn margin(&self) -> u32 {
        (STROKE_MARGIN / self.scale).ceil() as u32
    }

    /// The union of [`Faint::strokes_at`] over several closings of the outlines' gaps (a
    /// stroke whose outline leaks at one closing is sealed at a wider one) and of
    /// [`Faint::runs`] (thin strokes, which the closings fill).
    fn strokes(&self, rect: Rect) -> Vec<(u32, u32)> {
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

    /// The darkest channel of the work image's pixel: a white mark of opacity `a` leaves
    /// none under `255·a`.
    pub(super) fn floor(&self, x: usize, y: usize) -> f32 {
        let p = self.work.get_pixel(x as u32, y as u32);
        f32::from(p[0].min(p[1]).min(p[2]))
    }

    /// `rect` (input pixels) in the edges' pixels; `None` when it is too small to hold a
    /// stroke there.
    pub(super) fn window(&self, rect: Rect) -> Option<Window> {
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
    pub(super) fn to_input(
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
pub(super) struct Window {
    pub(super) x0: usize,
    pub(super) y0: usize,
    pub(super) w: usize,
    pub(super) h: usize,
}

#[cfg(test)]
mod tests {
    use super::super::Outlines;
    use super::*;
    use image::Rgb;

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
            outlines: Outlines::OnEdges,
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
}
