//! The lattice search: the whitened autocorrelation of the detail layer at a working
//! scale, the lattice hypotheses its peaks propose, the one the correlation supports, and
//! its sub-pixel fit. See `mod.rs` for the why.

use super::{debugging, detail};
use image::GrayImage;
use rustfft::{num_complex::Complex, FftPlanner};

/// Longest side the lattice is searched at.
const WORK_SIDE: u32 = 512;
/// A lattice vector shorter than this fraction of the longer side is texture, not tiling.
const MIN_PERIOD: f32 = 0.06;
/// Lattice points (of those a tile could use) that must stand 3σ out of the correlation's
/// noise for a lattice to be believed.
const MIN_SUPPORT: usize = 6;
/// Normalised autocorrelation a lattice vector must reach.
const MIN_PEAK: f32 = 0.02;

/// What the search found: the lattice in full-size pixels, the correlation at its two
/// vectors, and the working scale's factor.
pub(super) struct Found {
    pub v1: (f32, f32),
    pub v2: (f32, f32),
    pub peaks: (f32, f32),
    pub factor: usize,
}

/// The luminance area-averaged by an integer `factor`.
fn downscale(gray: &GrayImage, factor: u32) -> (Vec<f32>, usize, usize) {
    let (w, h) = (gray.width() / factor, gray.height() / factor);
    let mut out = vec![0.0f32; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0u32;
            for yy in 0..factor {
                for xx in 0..factor {
                    acc += u32::from(gray.get_pixel(x * factor + xx, y * factor + yy)[0]);
                }
            }
            out[(y * w + x) as usize] = acc as f32 / (factor * factor) as f32;
        }
    }
    (out, w as usize, h as usize)
}

/// Half the side of the window a power spectrum is averaged over to whiten it.
const WHITEN_REACH: usize = 4;

/// Mean over a (2r+1)² window of a grid that wraps around (a spectrum), separable.
fn wrapped_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let n = (2 * r + 1) as f32;
    let mut rows = vec![0.0f32; src.len()];
    for y in 0..h {
        let line = &src[y * w..(y + 1) * w];
        let mut acc: f32 = (0..=2 * r).map(|i| line[(i + w - r) % w]).sum();
        for x in 0..w {
            rows[y * w + x] = acc / n;
            acc += line[(x + r + 1) % w] - line[(x + w - r) % w];
        }
    }
    let mut out = vec![0.0f32; src.len()];
    for x in 0..w {
        let at = |y: usize| rows[(y % h) * w + x];
        let mut acc: f32 = (0..=2 * r).map(|i| at(i + h - r)).sum();
        for y in 0..h {
            out[y * w + x] = acc / n;
            acc += at(y + r + 1) - at(y + h - r);
        }
    }
    out
}

/// The autocorrelation of `d` (`w`×`h`) for every shift, normalised by the overlap of each
/// shift and by the zero shift: `r[dy][dx]` for dx, dy in (−w, w), (−h, h), indexed with
/// wrap-around in a (pw × ph) grid.
struct Autocorrelation {
    r: Vec<f32>,
    pw: usize,
    ph: usize,
}

impl Autocorrelation {
    fn new(d: &[f32], w: usize, h: usize) -> Autocorrelation {
        // Zero padding to twice the size makes the circular correlation a linear one.
        let (pw, ph) = ((2 * w).next_power_of_two(), (2 * h).next_power_of_two());
        let mut grid = vec![Complex::new(0.0f32, 0.0); pw * ph];
        for y in 0..h {
            for x in 0..w {
                grid[y * pw + x].re = d[y * w + x];
            }
        }
        let mut planner = FftPlanner::<f32>::new();
        let (row_fwd, col_fwd) = (planner.plan_fft_forward(pw), planner.plan_fft_forward(ph));
        let (row_inv, col_inv) = (planner.plan_fft_inverse(pw), planner.plan_fft_inverse(ph));
        let columns = |grid: &mut Vec<Complex<f32>>, fft: &dyn rustfft::Fft<f32>| {
            let mut column = vec![Complex::new(0.0f32, 0.0); ph];
            for x in 0..pw {
                for y in 0..ph {
                    column[y] = grid[y * pw + x];
                }
                fft.process(&mut column);
                for y in 0..ph {
                    grid[y * pw + x] = column[y];
                }
            }
        };
        row_fwd.process(&mut grid);
        columns(&mut grid, col_fwd.as_ref());
        // Whitening: a lattice's spectrum is a set of sharp peaks, a photo's is smooth. The
        // power over its local mean keeps the peaks and flattens the photo, so the
        // correlation that comes back is the repeated part's.
        let power: Vec<f32> = grid.iter().map(|c| c.norm_sqr()).collect();
        let local = wrapped_mean(&power, pw, ph, WHITEN_REACH);
        for (i, c) in grid.iter_mut().enumerate() {
            let (fx, fy) = (i % pw, i / pw);
            let (fx, fy) = (fx.min(pw - fx), fy.min(ph - fy));
            let whitened = if fx <= 2 && fy <= 2 {
                0.0
            } else {
                (power[i] / (local[i] + f32::MIN_POSITIVE) - 1.0).max(0.0)
            };
            *c = Complex::new(whitened, 0.0);
        }
        row_inv.process(&mut grid);
        columns(&mut grid, col_inv.as_ref());
        let zero = grid[0].re / (w * h) as f32;
        let mut r = vec![0.0f32; pw * ph];
        if zero > 0.0 {
            for (i, c) in grid.iter().enumerate() {
                let (x, y) = (i % pw, i / pw);
                let dx = if x < pw / 2 { x } else { pw - x };
                let dy = if y < ph / 2 { y } else { ph - y };
                if dx < w && dy < h {
                    let overlap = ((w - dx) * (h - dy)) as f32;
                    r[i] = c.re / overlap / zero;
                }
            }
        }
        Autocorrelation { r, pw, ph }
    }

    fn at(&self, dx: i64, dy: i64) -> f32 {
        let x = dx.rem_euclid(self.pw as i64) as usize;
        let y = dy.rem_euclid(self.ph as i64) as usize;
        self.r[y * self.pw + x]
    }

    /// The peak within `reach` of (x, y), refined to a sub-pixel place by a parabola through
    /// its neighbours; its value.
    fn peak_near(&self, x: f32, y: f32, reach: i64) -> ((f32, f32), f32) {
        let (cx, cy) = (x.round() as i64, y.round() as i64);
        let mut best = (cx, cy, f32::MIN);
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let v = self.at(cx + dx, cy + dy);
                if v > best.2 {
                    best = (cx + dx, cy + dy, v);
                }
            }
        }
        let (bx, by, v) = best;
        let offset = |a: f32, b: f32, c: f32| {
            let denom = a - 2.0 * b + c;
            if denom.abs() < 1e-6 {
                0.0
            } else {
                (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
            }
        };
        let ox = offset(self.at(bx - 1, by), v, self.at(bx + 1, by));
        let oy = offset(self.at(bx, by - 1), v, self.at(bx, by + 1));
        ((bx as f32 + ox, by as f32 + oy), v)
    }
}

/// Local maxima of the autocorrelation in the half plane of shifts (dy > 0, or dy = 0 and
/// dx > 0) that are long enough to be a tile and overlap enough of the image to be
/// trusted, strongest first.
fn peaks(ac: &Autocorrelation, w: usize, h: usize) -> Vec<((i64, i64), f32)> {
    let min = MIN_PERIOD * w.max(h) as f32;
    let (max_x, max_y) = ((w as f32 * 0.6) as i64, (h as f32 * 0.6) as i64);
    let mut out = Vec::new();
    for dy in 0..=max_y {
        for dx in -max_x..=max_x {
            if (dy == 0 && dx <= 0) || ((dx * dx + dy * dy) as f32).sqrt() < min {
                continue;
            }
            let v = ac.at(dx, dy);
            if v < MIN_PEAK {
                continue;
            }
            let local_max = (-2..=2).all(|oy: i64| {
                (-2..=2).all(|ox: i64| (ox == 0 && oy == 0) || ac.at(dx + ox, dy + oy) <= v)
            });
            if local_max {
                out.push(((dx, dy), v));
            }
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

pub(super) fn cross(a: (f32, f32), b: (f32, f32)) -> f32 {
    a.0 * b.1 - a.1 * b.0
}

pub(super) fn norm(a: (f32, f32)) -> f32 {
    (a.0 * a.0 + a.1 * a.1).sqrt()
}

/// The lattice points i·u + j·v with |i|, |j| ≤ `span`, one of each ± pair (j > 0, or j = 0
/// and i > 0: the correlation is symmetric), that lie within `reach` of the working
/// image's width and height, with their (i, j).
fn points(
    u: (f32, f32),
    v: (f32, f32),
    span: i32,
    w: usize,
    h: usize,
    reach: f32,
) -> impl Iterator<Item = (i32, i32, (f32, f32))> {
    let (max_x, max_y) = (w as f32 * reach, h as f32 * reach);
    (0..=span)
        .flat_map(move |j| (-span..=span).map(move |i| (i, j)))
        .filter(|&(i, j)| j > 0 || i > 0)
        .map(move |(i, j)| {
            let p = (
                i as f32 * u.0 + j as f32 * v.0,
                i as f32 * u.1 + j as f32 * v.1,
            );
            (i, j, p)
        })
        .filter(move |(_, _, p)| p.0.abs() <= max_x && p.1.abs() <= max_y)
}

/// Refines the lattice (u, v) to sub-pixel precision: a least-squares fit of i·u + j·v to
/// the place of every lattice point whose peak clears `floor`. The far points weigh most,
/// as they should: an error in u grows with every period the stack spans.
fn fit(
    ac: &Autocorrelation,
    u: (f32, f32),
    v: (f32, f32),
    w: usize,
    h: usize,
    floor: f32,
) -> ((f32, f32), (f32, f32)) {
    // Normal equations for [u v] from rows (i, j) → p.
    let (mut sii, mut sij, mut sjj) = (0.0f64, 0.0f64, 0.0f64);
    let (mut sip, mut sjp) = ((0.0f64, 0.0f64), (0.0f64, 0.0f64));
    for (i, j, p) in points(u, v, 8, w, h, 0.7) {
        let (place, value) = ac.peak_near(p.0, p.1, 1);
        if value < floor {
            continue;
        }
        let (fi, fj) = (f64::from(i), f64::from(j));
        sii += fi * fi;
        sij += fi * fj;
        sjj += fj * fj;
        sip.0 += fi * f64::from(place.0);
        sip.1 += fi * f64::from(place.1);
        sjp.0 += fj * f64::from(place.0);
        sjp.1 += fj * f64::from(place.1);
    }
    let det = sii * sjj - sij * sij;
    if det.abs() < 1e-9 {
        return (u, v);
    }
    let solve = |a: f64, b: f64| {
        (
            ((sjj * a - sij * b) / det) as f32,
            ((sii * b - sij * a) / det) as f32,
        )
    };
    let (ux, vx) = solve(sip.0, sjp.0);
    let (uy, vy) = solve(sip.1, sjp.1);
    ((ux, uy), (vx, vy))
}

/// The spread of the correlation over every shift a lattice could use: (median, σ from
/// the median absolute deviation). A lattice point must stand out of this.
fn noise(ac: &Autocorrelation, w: usize, h: usize) -> (f32, f32) {
    let (max_x, max_y) = ((w as f32 * 0.6) as i64, (h as f32 * 0.6) as i64);
    let mut values = Vec::new();
    for dy in 0..=max_y {
        for dx in -max_x..=max_x {
            values.push(ac.at(dx, dy));
        }
    }
    let mid = values.len() / 2;
    let median = *values.select_nth_unstable_by(mid, f32::total_cmp).1;
    let mut deviations: Vec<f32> = values.iter().map(|v| (v - median).abs()).collect();
    let mad = *deviations.select_nth_unstable_by(mid, f32::total_cmp).1;
    (median, (mad * 1.4826).max(1e-6))
}

/// The shortest basis of the lattice `u`, `v` span (Gauss's reduction).
fn reduce(mut u: (f32, f32), mut v: (f32, f32)) -> ((f32, f32), (f32, f32)) {
    for _ in 0..32 {
        if norm(u) > norm(v) {
            std::mem::swap(&mut u, &mut v);
        }
        let m = ((u.0 * v.0 + u.1 * v.1) / (u.0 * u.0 + u.1 * u.1)).round();
        if m == 0.0 {
            break;
        }
        v = (v.0 - m * u.0, v.1 - m * u.1);
    }
    (u, v)
}

/// How well the lattice (u, v) explains the correlation: of the lattice points a tile could
/// use, the fraction that stand 3σ out of the noise, their mean z-score, and their count.
fn support(
    ac: &Autocorrelation,
    u: (f32, f32),
    v: (f32, f32),
    w: usize,
    h: usize,
    noise: (f32, f32),
) -> (f32, f32, usize) {
    let min = MIN_PERIOD * w.max(h) as f32;
    let (mut strong, mut total_z, mut count) = (0usize, 0.0f32, 0usize);
    for (_, _, p) in points(u, v, 6, w, h, 0.6).filter(|(_, _, p)| norm(*p) >= min) {
        let z = (ac.peak_near(p.0, p.1, 1).1 - noise.0) / noise.1;
        count += 1;
        total_z += z;
        if z >= 3.0 {
            strong += 1;
        }
    }
    if count == 0 {
        return (0.0, 0.0, 0);
    }
    (strong as f32 / count as f32, total_z / count as f32, count)
}

/// The lattice a tiled mark repeats on, if `gray` holds one.
pub(super) fn search(gray: &GrayImage) -> Option<Found> {
    let (w, h) = gray.dimensions();
    let factor = w.max(h).div_ceil(WORK_SIDE).max(1);
    let (small, sw, sh) = downscale(gray, factor);
    if sw < 64 || sh < 64 {
        return None;
    }
    let d = detail(&small, sw, sh, 4);
    let ac = Autocorrelation::new(&d, sw, sh);
    let noise = noise(&ac, sw, sh);
    let found = peaks(&ac, sw, sh);
    // Every pair of strong peaks proposes a lattice; the finest one that the correlation
    // supports at most of its points wins (a coarser one is a sublattice of it).
    let top: Vec<(f32, f32)> = found
        .iter()
        .take(10)
        .map(|((x, y), _)| (*x as f32, *y as f32))
        .collect();
    // (u, v, cell area, mean z)
    type Hypothesis = ((f32, f32), (f32, f32), f32, f32);
    let mut best: Option<Hypothesis> = None;
    for (a, &p) in top.iter().enumerate() {
        for &q in &top[a + 1..] {
            if cross(p, q).abs() / (norm(p) * norm(q)) < 0.3 {
                continue;
            }
            let (u, v) = reduce(p, q);
            let (fraction, mean_z, count) = support(&ac, u, v, sw, sh, noise);
            if debugging() {
                eprintln!(
                    "tiles:   {u:?} {v:?}: {fraction:.2} of {count} points, mean z {mean_z:.1}"
                );
            }
            // A photo's chance alignments reach three or four points of a lattice, a tiled
            // mark seen three times each way reaches most of a dozen.
            let strong = (fraction * count as f32).round() as usize;
            if strong < MIN_SUPPORT || fraction < 0.6 || mean_z < 3.5 {
                continue;
            }
            let area = cross(u, v).abs();
            if best.is_none_or(|b| area < b.2 * 0.9 || (area < b.2 * 1.1 && mean_z > b.3)) {
                best = Some((u, v, area, mean_z));
            }
        }
    }
    if debugging() {
        eprintln!(
            "tiles: {sw}x{sh} noise {:.4}±{:.4} peaks {:?} → {best:?}",
            noise.0,
            noise.1,
            &found[..found.len().min(6)]
        );
    }
    let (u, v, _, _) = best?;
    let peak_u = ac.peak_near(u.0, u.1, 1).1;
    let peak_v = ac.peak_near(v.0, v.1, 1).1;
    // Only clear peaks place the fit: a chance bump near a lattice point would pull it.
    let (u, v) = fit(&ac, u, v, sw, sh, noise.0 + 5.0 * noise.1);
    let scale = factor as f32;
    Some(Found {
        v1: (u.0 * scale, u.1 * scale),
        v2: (v.0 * scale, v.1 * scale),
        peaks: (peak_u, peak_v),
        factor: factor as usize,
    })
}
