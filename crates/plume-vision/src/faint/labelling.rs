//! Which pixels of a box lie under the faint mark, as the labelling that makes the photo
//! smoothest once they are restored: an energy a minimum cut solves exactly (`crate::cut`).

use super::strokes::{Window, FLOOR_SLACK};
use super::{Faint, Outlines};
use crate::cut;
use crate::filters::pieces;
use crate::text::Rect;

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

/// A side of a piece's outline is restored flat when taking the mark's step off leaves at
/// most this share of the step across it (for [`Outlines::Restored`]). At 0.4 the graphic's
/// 样片 inverts; at 0.3 or 0.2, tried on every cut, letters over textured photos were
/// dropped with the photo's pieces (the car's PREVIEW 0.45 → 0.08 removed).
const RESTORED_RESIDUAL: f32 = 0.4;

/// The most work pixels one cut labels: its time grows about with the area (120 ms for a
/// word's line of 180,000 on 2 cores); a larger box is left to the voted strokes.
const MAX_CUT_AREA: usize = 400_000;

impl Faint {
    /// The mark's strokes inside `rect` (input pixels), as the labelling that makes the
    /// photo smoothest once they are restored. Under the mark a pixel's `ln(255 − v)` is
    /// its own less the mark's step `s`, in every channel; so between neighbours `p`, `q`
    /// with difference `d`, labels (0, 0) and (1, 1) leave `|d|`, (0, 1) leaves `|d − s|`
    /// and (1, 0) `|d + s|`. Summed over channels and pairs (each difference capped at
    /// [`CUT_CAP`] steps), that is an energy a minimum cut solves exactly (`cut`). The
    /// mark's outline is where restoring one side takes a whole step off, all around a
    /// stroke; pixels too dark to lie under the mark (a channel under `255·a`) and the
    /// box's border keep label 0. Pairs two apart take the step across an anti-aliased rim,
    /// which one label change between neighbours would leave split. Pieces whose outline
    /// is mostly not the mark's edges ([`CUT_ON_EDGES`]), or for [`Outlines::Restored`]
    /// mostly not flattened by taking the step off ([`RESTORED_RESIDUAL`]), are dropped.
    pub(super) fn cut(&self, rect: Rect) -> Vec<(u32, u32)> {
        let Some(window) = self.window(rect) else {
            return Vec::new();
        };
        let Window { x0, y0, w, h } = window;
        if w * h > MAX_CUT_AREA {
            return Vec::new();
        }
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
            for (n, j, inside) in [
                (cut::Neighbour::Right, i + 1, x + 1 < w),
                (cut::Neighbour::Down, i + w, y + 1 < h),
                (cut::Neighbour::Right2, i + 2, x + 2 < w),
                (cut::Neighbour::Down2, i + 2 * w, y + 2 < h),
            ] {
                if !inside {
                    continue;
                }
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
                energy.pair(i, n, pair);
            }
        }
        let mut under = energy.minimise();
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
            let kept = match self.outlines {
                Outlines::OnEdges => self.on_edges(&window, &outline),
                Outlines::Restored => restored(&under, w, h, &outline, &distance, &logs, s),
            };
            if !kept {
                for i in piece {
                    under[i] = false;
                }
            }
        }
        self.to_input(rect, &window, |i| under[i])
    }

    /// Whether at least [`CUT_ON_EDGES`] of a piece's `outline` (indices in `window`) lies
    /// within [`CUT_NEAR`] px of the mark's edges.
    fn on_edges(&self, window: &Window, outline: &[usize]) -> bool {
        let Window { x0, y0, w, h } = *window;
        let ew = self.edges_width;
        let near_edge = |i: usize| {
            let (x, y) = (i % w, i / w);
            (y.saturating_sub(CUT_NEAR)..=(y + CUT_NEAR).min(h - 1)).any(|yy| {
                (x.saturating_sub(CUT_NEAR)..=(x + CUT_NEAR).min(w - 1))
                    .any(|xx| self.edges[(y0 + yy) * ew + x0 + xx] != [0, 0])
            })
        };
        let on = outline.iter().filter(|&&i| near_edge(i)).count();
        on as f32 >= CUT_ON_EDGES * outline.len() as f32
    }
}

/// Whether at least half the sides of a piece's `outline` (pixels of the `w`×`h` labelling
/// `under` with a neighbour outside) are restored flat: from the pixel inside to the one
/// two past the side (across an anti-aliased rim), taking the mark's step `s` off the
/// inside leaves at most [`RESTORED_RESIDUAL`] of the step there was. `distance` and `logs`
/// are each pixel's `255 − v` and `ln(256 − v)` per channel.
fn restored(
    under: &[bool],
    w: usize,
    h: usize,
    outline: &[usize],
    distance: &[[f32; 3]],
    logs: &[[f32; 3]],
    s: f32,
) -> bool {
    let (mut sides, mut flat) = (0usize, 0usize);
    for &i in outline {
        let (x, y) = (i % w, i / w);
        for (dx, dy) in [(1isize, 0isize), (-1, 0), (0, 1), (0, -1)] {
            let at = |k: isize| {
                let xx = x.checked_add_signed(dx * k).filter(|&v| v < w)?;
                let yy = y.checked_add_signed(dy * k).filter(|&v| v < h)?;
                Some(yy * w + xx)
            };
            let (Some(inside), Some(next), Some(past)) = (at(-1), at(1), at(2)) else {
                continue;
            };
            if under[next] || under[past] {
                continue;
            }
            let (mut before, mut after) = (0f32, 0f32);
            for c in 0..3 {
                let near = distance[inside][c].min(distance[past][c]);
                let weight = near / (near + CUT_SOFT);
                let d = logs[inside][c] - logs[past][c];
                before += weight * d.abs();
                after += weight * (d + s).abs();
            }
            sides += 1;
            if after <= RESTORED_RESIDUAL * before {
                flat += 1;
            }
        }
    }
    sides > 0 && 2 * flat >= sides
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A textured photo `w`×`h` with a bright patch of its own (x 10..30, rows 10..50), and
    /// a white bar at 40 % over x 40..60, rows 10..50, with the mark's edges along the
    /// bar's outline. Returns it and whether a pixel is under the bar.
    fn marked_bar(w: usize, h: usize) -> (Faint, impl Fn(usize, usize) -> bool) {
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
            outlines: Outlines::OnEdges,
        };
        (found, under)
    }

    fn area(w: usize, h: usize) -> Rect {
        Rect {
            x: 0,
            y: 0,
            w: w as u32,
            h: h as u32,
        }
    }

    /// At least 90 % of the bar of [`marked_bar`] is taken, and at most 40 pixels outside it
    /// (its bright patch is not).
    fn takes_the_bar(taken: &[(u32, u32)], under: &impl Fn(usize, usize) -> bool) {
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
    }

    #[test]
    fn the_cut_takes_the_marks_strokes_and_leaves_the_photos_bright_parts() {
        let (w, h) = (80usize, 60usize);
        let (found, under) = marked_bar(w, h);
        takes_the_bar(&found.cut(area(w, h)), &under);
        // Without the mark's edges around it the same cut keeps nothing: the bright patch
        // (and the bar itself) are not outlined by the mark's step.
        let bare = Faint {
            edges: vec![[0; 2]; w * h],
            ..found
        };
        assert!(bare.cut(area(w, h)).is_empty());
    }

    #[test]
    fn without_edges_the_cut_keeps_the_pieces_its_step_restores_flat() {
        // A word found on the darkest channel has few edges the channels agree on: its
        // pieces are told by whether taking the step off flattens their outline.
        let (w, h) = (80usize, 60usize);
        let (found, under) = marked_bar(w, h);
        let restored = Faint {
            edges: vec![[0; 2]; w * h],
            outlines: Outlines::Restored,
            ..found
        };
        takes_the_bar(&restored.cut(area(w, h)), &under);
    }

    #[test]
    fn a_box_over_the_cuts_limit_is_left_to_the_voted_strokes() {
        let (w, h) = (700usize, 600usize);
        assert!(w * h > MAX_CUT_AREA);
        let (found, _) = marked_bar(w, h);
        assert!(found.cut(area(w, h)).is_empty());
        // The bar is found in a box within the limit on the same photo.
        assert!(found.cut(area(80, 60)).len() >= 700);
    }
}
