//! The exact minimum of a two-label energy on a pixel grid (a graph cut), for `faint`: which
//! pixels lie under a mark is the labelling that makes the photo smoothest once they are
//! restored, and that energy is of the kind a minimum cut solves exactly (Kolmogorov and
//! Zabih, "What energy functions can be minimized via graph cuts?", 2004).
//!
//! The energy is `Σ_p unary_p·x_p + Σ_(p,q) E_pq(x_p, x_q)` over the pixels one and two
//! apart along a row or column (the second across an anti-aliased rim), each
//! `E_pq` given by its four values and submodular (`E(0,1) + E(1,0) ≥ E(0,0) + E(1,1)`).
//! The maximum flow is found by push-relabel (Goldberg and Tarjan), first-in first-out, with
//! the global relabelling that makes it fast on grids; pixels that can still send flow to
//! the sink afterwards are labelled 1.

/// Costs are kept as integers in these units (push-relabel on floats can loop on rounding).
const UNIT: f32 = 64.0;

/// A cost that forbids a label (a pixel that cannot be under the mark).
pub(crate) const FORBID: f32 = 1.0e6;

/// The four values of one pair's energy: `[E(0,0), E(0,1), E(1,0), E(1,1)]`, with `p` the
/// first label.
pub(crate) type Pair = [f32; 4];

/// A two-label energy on a `w`×`h` grid.
pub(crate) struct Energy {
    w: usize,
    h: usize,
    /// What label 1 costs over label 0, per pixel.
    linear: Vec<f32>,
    /// Per pixel, the arcs to its neighbours, in the order of [`STEPS`].
    arcs: Vec<[f32; ARCS]>,
}

/// A pixel's arcs: right, left, down, up, then the same two pixels away. Arc `d ^ 1` runs
/// the other way.
const ARCS: usize = 8;
const STEPS: [(isize, isize); ARCS] = [
    (1, 0),
    (-1, 0),
    (0, 1),
    (0, -1),
    (2, 0),
    (-2, 0),
    (0, 2),
    (0, -2),
];

/// The neighbour a pair term joins a pixel to: the next one right or down, or the one after.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Neighbour {
    Right = 0,
    Down = 2,
    Right2 = 4,
    Down2 = 6,
}

impl Energy {
    pub(crate) fn new(w: usize, h: usize) -> Energy {
        Energy {
            w,
            h,
            linear: vec![0.0; w * h],
            arcs: vec![[0.0; ARCS]; w * h],
        }
    }

    /// Adds `cost` to labelling pixel `p` with 1 (negative: labelling it 0 costs `-cost`).
    pub(crate) fn unary(&mut self, p: usize, cost: f32) {
        self.linear[p] += cost;
    }

    /// Adds the pair term between `p` and its neighbour `n`, which must be inside the grid.
    /// A pair that is not submodular is made so by lowering `E(0,1)+E(1,0)` to
    /// `E(0,0)+E(1,1)` (its labels then cost nothing extra to differ).
    pub(crate) fn pair(&mut self, p: usize, n: Neighbour, e: Pair) {
        let (dx, dy) = STEPS[n as usize];
        let q = p + dx as usize + dy as usize * self.w;
        let [a, b, c, d] = e;
        // E = a + (c − a)·x_p + (d − c)·x_q + (b + c − a − d)·(1 − x_p)·x_q
        self.linear[p] += c - a;
        self.linear[q] += d - c;
        let k = (b + c - a - d).max(0.0);
        self.arcs[p][n as usize] += k;
    }

    /// The labelling of least energy: `true` for label 1.
    pub(crate) fn minimise(&self) -> Vec<bool> {
        Flow::new(self).run()
    }
}

/// The residual graph of push-relabel. A pixel labelled 1 is on the sink's side of the cut:
/// an arc from the source with capacity `c` is cut when its pixel is labelled 1, so it
/// carries the cost of label 1; an arc to the sink carries the cost of label 0; an arc
/// `p → q` is cut when `p` is 0 and `q` is 1.
struct Flow {
    w: usize,
    h: usize,
    /// Residual capacity of each pixel's arcs ([`STEPS`]).
    cap: Vec<[i64; ARCS]>,
    /// Residual capacity to the sink.
    sink: Vec<i64>,
    excess: Vec<i64>,
    height: Vec<u32>,
}

impl Flow {
    fn new(e: &Energy) -> Flow {
        let n = e.w * e.h;
        let mut cap = vec![[0i64; ARCS]; n];
        for (p, arcs) in cap.iter_mut().enumerate() {
            for (arc, k) in arcs.iter_mut().zip(e.arcs[p]) {
                *arc = (k * UNIT).round().max(0.0) as i64;
            }
        }
        // Label 1's cost on the source's arc, label 0's on the sink's; the source's arcs are
        // saturated at once, so they become each pixel's excess.
        let (mut excess, mut sink) = (vec![0i64; n], vec![0i64; n]);
        for p in 0..n {
            let c = (e.linear[p] * UNIT).round() as i64;
            if c > 0 {
                excess[p] = c;
            } else {
                sink[p] = -c;
            }
        }
        Flow {
            w: e.w,
            h: e.h,
            cap,
            sink,
            excess,
            height: vec![0; n],
        }
    }

    /// The neighbour through arc `dir` of `p`, if inside the grid.
    fn next(&self, p: usize, dir: usize) -> Option<usize> {
        let (dx, dy) = STEPS[dir];
        let x = (p % self.w)
            .checked_add_signed(dx)
            .filter(|&x| x < self.w)?;
        let y = (p / self.w)
            .checked_add_signed(dy)
            .filter(|&y| y < self.h)?;
        Some(y * self.w + x)
    }

    /// Exact heights: each pixel's distance to the sink in the residual graph (1 for a pixel
    /// with a residual arc to it); pixels that cannot reach it get `n` (inactive). Returns
    /// which pixels reach it.
    fn relabel_all(&mut self) -> Vec<bool> {
        let n = self.w * self.h;
        let unreached = n as u32;
        self.height.iter_mut().for_each(|h| *h = unreached);
        let mut queue = std::collections::VecDeque::new();
        for p in 0..n {
            if self.sink[p] > 0 {
                self.height[p] = 1;
                queue.push_back(p);
            }
        }
        while let Some(q) = queue.pop_front() {
            for dir in 0..ARCS {
                // A pixel p with a residual arc p → q: q's neighbour through `dir`, whose arc
                // back to q is the opposite direction.
                if let Some(p) = self.next(q, dir) {
                    if self.height[p] == unreached && self.cap[p][dir ^ 1] > 0 {
                        self.height[p] = self.height[q] + 1;
                        queue.push_back(p);
                    }
                }
            }
        }
        self.height.iter().map(|&h| h < unreached).collect()
    }

    fn run(mut self) -> Vec<bool> {
        let n = self.w * self.h;
        let unreached = n as u32;
        // Flow straight from the source to the sink through a pixel is cancelled first.
        for p in 0..n {
            let m = self.excess[p].min(self.sink[p]);
            self.excess[p] -= m;
            self.sink[p] -= m;
        }
        self.relabel_all();
        let mut active: std::collections::VecDeque<usize> = (0..n)
            .filter(|&p| self.excess[p] > 0 && self.height[p] < unreached)
            .collect();
        let mut queued: Vec<bool> = (0..n).map(|p| self.excess[p] > 0).collect();
        let mut relabels = 0usize;
        while let Some(p) = active.pop_front() {
            queued[p] = false;
            if self.height[p] >= unreached {
                continue;
            }
            // Discharge p: push along admissible arcs (to a pixel one lower), relabel when
            // none is left.
            while self.excess[p] > 0 {
                if self.sink[p] > 0 && self.height[p] == 1 {
                    let m = self.excess[p].min(self.sink[p]);
                    self.excess[p] -= m;
                    self.sink[p] -= m;
                    continue;
                }
                let mut pushed = false;
                for dir in 0..ARCS {
                    if self.excess[p] == 0 {
                        break;
                    }
                    let Some(q) = self.next(p, dir) else { continue };
                    if self.cap[p][dir] > 0 && self.height[p] == self.height[q] + 1 {
                        let m = self.excess[p].min(self.cap[p][dir]);
                        self.cap[p][dir] -= m;
                        self.cap[q][dir ^ 1] += m;
                        self.excess[p] -= m;
                        self.excess[q] += m;
                        pushed = true;
                        if !queued[q] && self.height[q] < unreached {
                            queued[q] = true;
                            active.push_back(q);
                        }
                    }
                }
                if self.excess[p] == 0 {
                    break;
                }
                if !pushed {
                    let mut lowest = unreached;
                    if self.sink[p] > 0 {
                        lowest = 0;
                    }
                    for dir in 0..ARCS {
                        if let Some(q) = self.next(p, dir) {
                            if self.cap[p][dir] > 0 {
                                lowest = lowest.min(self.height[q]);
                            }
                        }
                    }
                    self.height[p] = if lowest >= unreached {
                        unreached
                    } else {
                        lowest + 1
                    };
                    relabels += 1;
                    if self.height[p] >= unreached {
                        break;
                    }
                }
            }
            // Heights drift from the true distances; recomputing them now and then keeps
            // pushes going the short way to the sink.
            if relabels >= n {
                relabels = 0;
                self.relabel_all();
                queued = (0..n)
                    .map(|q| self.excess[q] > 0 && self.height[q] < unreached)
                    .collect();
                active = (0..n).filter(|&q| queued[q]).collect();
            }
        }
        // The cut: pixels that still reach the sink are on its side, labelled 1.
        self.relabel_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every labelling's energy, by brute force, for a small grid.
    fn energy(w: usize, unary: &[f32], pairs: &[(usize, Neighbour, Pair)], x: &[bool]) -> f32 {
        let mut e: f32 = (0..unary.len()).filter(|&p| x[p]).map(|p| unary[p]).sum();
        for &(p, n, pair) in pairs {
            let (dx, dy) = STEPS[n as usize];
            let q = p + dx as usize + dy as usize * w;
            e += pair[usize::from(x[p]) * 2 + usize::from(x[q])];
        }
        e
    }

    #[test]
    fn the_cut_is_the_least_energy_on_small_random_grids() {
        // A small linear congruential generator: the test needs no crate for randomness.
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % 1000) as f32 / 100.0
        };
        for _ in 0..40 {
            let (w, h) = (4usize, 3usize);
            let unary: Vec<f32> = (0..w * h).map(|_| next() - 5.0).collect();
            let mut pairs = Vec::new();
            for p in 0..w * h {
                let (x, y) = (p % w, p / w);
                for n in [
                    Neighbour::Right,
                    Neighbour::Down,
                    Neighbour::Right2,
                    Neighbour::Down2,
                ] {
                    let (dx, dy) = STEPS[n as usize];
                    if x + (dx as usize) < w && y + (dy as usize) < h {
                        let (a, d) = (next(), next());
                        // Submodular: b + c ≥ a + d.
                        let b = next();
                        let c = (a + d - b).max(0.0) + next();
                        pairs.push((p, n, [a, b, c, d]));
                    }
                }
            }
            let mut e = Energy::new(w, h);
            for (p, &u) in unary.iter().enumerate() {
                e.unary(p, u);
            }
            for &(p, n, pair) in &pairs {
                e.pair(p, n, pair);
            }
            let got = e.minimise();
            let best = (0..1u32 << (w * h))
                .map(|m| {
                    let x: Vec<bool> = (0..w * h).map(|p| m >> p & 1 == 1).collect();
                    energy(w, &unary, &pairs, &x)
                })
                .fold(f32::MAX, f32::min);
            let mine = energy(w, &unary, &pairs, &got);
            assert!(
                mine <= best + 0.05,
                "the cut's energy {mine} is above the least {best}"
            );
        }
    }

    #[test]
    fn a_forbidden_pixel_keeps_label_0() {
        let mut e = Energy::new(3, 1);
        e.unary(0, -5.0);
        e.unary(1, FORBID);
        e.unary(2, -5.0);
        assert_eq!(e.minimise(), vec![true, false, true]);
    }
}
