//! Tiled watermarks: one mark repeated on a lattice over the whole image (stock previews,
//! "© stock" diagonals). The repetition itself is the detector: a photo's fine detail does
//! not repeat on a lattice, the mark does, so the autocorrelation of the detail layer peaks at
//! the lattice's vectors. Stacking every cell of the lattice (a median per cell position)
//! then cancels the photo and leaves the mark, whose strokes become the mask at every
//! instance. A text detector sees these marks as a few large, dissimilar, rotated boxes and
//! cannot tell them from the photo; the lattice needs no text at all, so logos tile too.
//!
//! Everything is decided on the luminance's detail layer (the image less a box blur),
//! clipped so that the photo's strong edges do not outweigh a faint mark. The lattice is
//! found at a working scale of at most 512 px a side and refined by a least-squares fit to
//! every clear lattice point; the stack and the mask are built at full size. It needs about
//! three instances each way (six lattice points standing out of the correlation's noise).
//!
//! Where the mark can show on only a few instances (a white mark over a mostly white
//! graphic), parts of the photo line up by chance in the stack too. They are told apart by
//! the opacity they measure: the mark's is the same at every instance, whatever lies under
//! it; a chance alignment's is not. Those parts are left as they are.
//!
//! By hand: `PLUME_DEBUG_TILES=1` prints the lattice search to stderr.

mod lattice;

use crate::blend::{self, ink_level, MAX_INVERTIBLE, MAX_RESIDUAL, MIN_INK_STEP};
use crate::filters::{box_blur, masked_mean};
use image::{GrayImage, Luma, RgbImage};
use lattice::{cross, norm};

/// Detail beyond this (in grey levels) is clipped: a photo's edges are stronger than a
/// 25 % mark's, and unclipped they would drown its repetition.
const DETAIL_CLIP: f32 = 24.0;

/// Below this (grey levels of spread in the background under the mark, across its
/// instances) what repeats is a texture of the photo, not a mark laid over it: a synthetic
/// brick wall measures 0.7, marks on the sample photos 18–86.
const MIN_BACKGROUND_SPREAD: f32 = 10.0;

/// Above this (the median absolute deviation of a cell position's opacity across its
/// instances, as a share of the opacity, over a part of the stack) the part is the photo,
/// not the mark. A mark's opacity is the same at every instance whatever lies under it: its
/// stroke interiors measure a median spread of 0.06–0.21 on the sample photos. The stack of
/// a white mark over a mostly white graphic, where it shows on only four to nine instances
/// and parts of the photo line up by chance (keys of a keyboard, colour swatches), measures
/// a median of 0.99 over its positions (0.52 at the lower quartile).
const MAX_OPACITY_SPREAD: f32 = 0.4;

/// A tiled mark: its lattice, its strokes, and which cell position each pixel is at.
#[derive(Debug, Clone)]
pub struct Tiled {
    pub lattice: Lattice,
    /// The strokes at every instance (255), with a pixel of margin.
    pub mask: GrayImage,
    /// Each pixel's cell position (row-major), an index below `cells`.
    bins: Vec<u32>,
    /// Each pixel's instance of the mark (which cell of the lattice it is in).
    instances: Vec<u32>,
    cells: usize,
    /// Cell positions per row of the cell grid (`cells` is a whole number of rows).
    columns: usize,
    /// Per cell position: on a stroke of the stacked mark.
    marked: Vec<bool>,
    /// Per cell position: inside a stroke, all four neighbours in it too (an interior one's
    /// opacity is measured well; a rim's shifts with each instance's sub-pixel phase).
    interior: Vec<bool>,
    /// Light ink (on most stock previews) rather than dark.
    bright: bool,
}

/// A lattice of repeated marks, in full-size pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Lattice {
    pub v1: (f32, f32),
    pub v2: (f32, f32),
    /// Normalised autocorrelation of the detail at `v1` and `v2` (1 = identical).
    pub peaks: (f32, f32),
    /// The fraction of a cell the mark's strokes cover (their rims included).
    pub cover: f32,
}

/// Whether `PLUME_DEBUG_TILES` asks for the search to be printed (read once).
pub(super) fn debugging() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PLUME_DEBUG_TILES").is_some())
}

/// The clipped detail layer of `values` (`w`×`h`): each pixel less its neighbourhood's mean.
pub(super) fn detail(values: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let blurred = box_blur(values, w, h, r);
    values
        .iter()
        .zip(&blurred)
        .map(|(v, b)| (v - b).clamp(-DETAIL_CLIP, DETAIL_CLIP))
        .collect()
}

/// Finds a lattice of repeated marks on `gray` and returns it with the mask of its strokes
/// (255 = mark) at full size; `None` when nothing repeats like a tiled mark.
pub fn find(gray: &GrayImage) -> Option<Tiled> {
    let found = lattice::search(gray)?;
    let mut tiled = stack(gray, found.v1, found.v2, found.factor * 4)?;
    tiled.lattice.peaks = found.peaks;
    Some(tiled)
}

/// Per cell position, over the instances `usable` keeps: the median detail, and how sure
/// it is (the median over its standard error). The photo's detail differs from instance to
/// instance and cancels; the mark's is the same at every instance, so it stands out on one
/// side of zero.
fn cell_medians(
    bins: &[u32],
    cells: usize,
    d: &[f32],
    usable: impl Fn(usize) -> bool,
) -> (Vec<f32>, Vec<f32>) {
    // Counting sort of the detail by cell position, then a median per position.
    let mut start = vec![0usize; cells + 1];
    for (i, &b) in bins.iter().enumerate() {
        if usable(i) {
            start[b as usize + 1] += 1;
        }
    }
    for i in 0..cells {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut sorted = vec![0.0f32; start[cells]];
    for (i, &b) in bins.iter().enumerate() {
        if usable(i) {
            sorted[fill[b as usize]] = d[i];
            fill[b as usize] += 1;
        }
    }
    let mut template = vec![0.0f32; cells];
    let mut sure = vec![0.0f32; cells];
    let mut deviations = Vec::new();
    for b in 0..cells {
        let values = &mut sorted[start[b]..start[b + 1]];
        if values.len() < 4 {
            continue;
        }
        let mid = values.len() / 2;
        let median = *values.select_nth_unstable_by(mid, f32::total_cmp).1;
        deviations.clear();
        deviations.extend(values.iter().map(|v| (v - median).abs()));
        let mad = *deviations.select_nth_unstable_by(mid, f32::total_cmp).1;
        let error = 1.2533 * 1.4826 * mad / (values.len() as f32).sqrt();
        template[b] = median;
        sure[b] = median / (error + 1.0);
    }
    (template, sure)
}

/// Stacks the detail of every cell of the lattice (v1, v2): the median per cell position is
/// the mark; its strokes, repeated over the image, are the mask. `None` when the stack
/// shows nothing mark-like (too little or too much of a cell).
fn stack(gray: &GrayImage, v1: (f32, f32), v2: (f32, f32), r: usize) -> Option<Tiled> {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let values: Vec<f32> = gray.pixels().map(|p| f32::from(p[0])).collect();
    let d = detail(&values, w, h, r);
    let det = cross(v1, v2);
    if det.abs() < 1.0 {
        return None;
    }
    // Cell coordinates: q = a·v1 + b·v2, so (a, b) = B⁻¹ q.
    let (na, nb) = (
        norm(v1).ceil() as usize,
        (det.abs() / norm(v1)).ceil() as usize,
    );
    // Each pixel's cell position, and which instance (cell) of the lattice it is in.
    let place = |x: usize, y: usize| {
        let (qx, qy) = (x as f32, y as f32);
        let a = (qx * v2.1 - qy * v2.0) / det;
        let b = (v1.0 * qy - v1.1 * qx) / det;
        let (fa, fb) = (a - a.floor(), b - b.floor());
        let i = ((fa * na as f32) as usize).min(na - 1);
        let j = ((fb * nb as f32) as usize).min(nb - 1);
        let cell = (a.floor() as i64 + 4096) * 8192 + (b.floor() as i64 + 4096);
        ((j * na + i) as u32, cell as u32)
    };
    let (bins, instances): (Vec<u32>, Vec<u32>) = (0..w * h).map(|i| place(i % w, i / w)).unzip();
    // A light mark cannot show on a white background nor a dark one on black: each ink is
    // stacked over the instances where it could show, or those would outvote the rest.
    let blurred = box_blur(&values, w, h, r);
    let (bright_t, bright_s) = cell_medians(&bins, na * nb, &d, |i| blurred[i] < 225.0);
    let (dark_t, dark_s) = cell_medians(&bins, na * nb, &d, |i| blurred[i] > 30.0);
    // How sure a cell position must be to count as the mark's when deciding whether there
    // is a mark at all (and its ink), and to seed a stroke. Seeds are taken less sure than
    // the count, because the parts they make are judged again on the opacity they measure
    // (`steady_parts`): at 3 the left half of a CJK mark over a busy graphic was lost.
    const SURE: f32 = 3.0;
    const SEED: f32 = 2.0;
    const LEVEL: f32 = 4.0;
    let bright = (0..na * nb)
        .filter(|&b| bright_s[b] > SURE && bright_t[b] > LEVEL)
        .count();
    let dark = (0..na * nb)
        .filter(|&b| dark_s[b] < -SURE && dark_t[b] < -LEVEL)
        .count();
    let (template, sure) = if bright >= dark {
        (bright_t, bright_s)
    } else {
        (dark_t, dark_s)
    };
    let sign = if bright >= dark { 1.0 } else { -1.0 };
    let mut marked: Vec<bool> = (0..template.len())
        .map(|b| sure[b] * sign > SEED && template[b] * sign > LEVEL)
        .collect();
    let near = |b: usize| neighbours(b, na, nb);
    // The strokes' anti-aliased rims are fainter: grow into neighbours that lean the same
    // way (hysteresis, two steps), as the text masks do.
    for _ in 0..2 {
        let before = marked.clone();
        for b in 0..na * nb {
            if before[b] || sure[b] * sign < SURE / 2.0 || template[b] * sign < LEVEL / 2.0 {
                continue;
            }
            marked[b] = near(b).iter().any(|&n| before[n]);
        }
    }
    let interior: Vec<bool> = (0..na * nb)
        .map(|b| marked[b] && near(b).iter().all(|&n| marked[n]))
        .collect();
    // Whether there is a mark at all is decided on the sure positions only.
    let sure_cover = bright.max(dark) as f32 / template.len() as f32;
    if debugging() {
        eprintln!("tiles: stack {na}x{nb} bright {bright} dark {dark} cover {sure_cover:.4}");
    }
    if !(0.005..=0.3).contains(&sure_cover) {
        return None;
    }
    let mask = paint(&bins, &marked, w, h);
    Some(Tiled {
        lattice: Lattice {
            v1,
            v2,
            peaks: (0.0, 0.0),
            cover: share(&marked),
        },
        mask,
        bins,
        instances,
        cells: na * nb,
        columns: na,
        marked,
        interior,
        bright: sign > 0.0,
    })
}

/// The share of cell positions that are set.
fn share(positions: &[bool]) -> f32 {
    positions.iter().filter(|&&p| p).count() as f32 / positions.len().max(1) as f32
}

/// A cell position's four neighbours on an `na`×`nb` cell grid; the cell wraps around.
fn neighbours(b: usize, na: usize, nb: usize) -> [usize; 4] {
    let (i, j) = (b % na, b / na);
    [
        (i + na - 1) % na + j * na,
        (i + 1) % na + j * na,
        i + ((j + nb - 1) % nb) * na,
        i + ((j + 1) % nb) * na,
    ]
}

/// The mask (255) of every pixel whose cell position is `marked`, with one pixel of
/// margin, as for text strokes.
fn paint(bins: &[u32], marked: &[bool], w: usize, h: usize) -> GrayImage {
    let mut mask = GrayImage::new(w as u32, h as u32);
    for (i, &b) in bins.iter().enumerate() {
        if marked[b as usize] {
            let (x, y) = (i % w, i / w);
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    mask.put_pixel(xx as u32, yy as u32, Luma([255]));
                }
            }
        }
    }
    mask
}

/// The median of a cell position's opacity samples; `None` under three.
fn median(samples: &mut [f32]) -> Option<f32> {
    if samples.len() < 3 {
        return None;
    }
    let mid = samples.len() / 2;
    Some(*samples.select_nth_unstable_by(mid, f32::total_cmp).1)
}

/// The cell positions of the stack's parts (its connected pieces, on the cell grid that
/// wraps around) whose opacity holds steady across instances ([`MAX_OPACITY_SPREAD`]),
/// given each position's opacity `samples` over the instances and their [`median`]s. A part
/// is judged on its stroke interiors when it has three, else on all its positions; a part
/// with nothing to measure (a white mark over white) is kept.
fn steady_parts(tiled: &Tiled, samples: &[Vec<f32>], medians: &[Option<f32>]) -> Vec<bool> {
    let mut deviations = Vec::new();
    let spread: Vec<Option<f32>> = (0..tiled.cells)
        .map(|b| {
            let median = medians[b].filter(|_| tiled.marked[b])?;
            deviations.clear();
            deviations.extend(samples[b].iter().map(|v| (v - median).abs()));
            let mid = deviations.len() / 2;
            let mad = *deviations.select_nth_unstable_by(mid, f32::total_cmp).1;
            Some(mad / median.abs().max(0.02))
        })
        .collect();
    let rows = tiled.cells / tiled.columns;
    let mut kept = tiled.marked.clone();
    let mut seen = vec![false; tiled.cells];
    for start in 0..tiled.cells {
        if !tiled.marked[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let mut part = vec![start];
        let mut next = 0;
        while next < part.len() {
            for n in neighbours(part[next], tiled.columns, rows) {
                if tiled.marked[n] && !seen[n] {
                    seen[n] = true;
                    part.push(n);
                }
            }
            next += 1;
        }
        let measured = |interior_only: bool| -> Vec<f32> {
            part.iter()
                .filter(|&&b| !interior_only || tiled.interior[b])
                .filter_map(|&b| spread[b])
                .collect()
        };
        let mut judged = measured(true);
        if judged.len() < 3 {
            judged = measured(false);
        }
        if judged.is_empty() {
            continue;
        }
        let mid = judged.len() / 2;
        if *judged.select_nth_unstable_by(mid, f32::total_cmp).1 > MAX_OPACITY_SPREAD {
            for &b in &part {
                kept[b] = false;
            }
        }
    }
    kept
}

/// How much the background under the mark differs from instance to instance: the median,
/// over the stroke interiors' cell positions, of the background's standard deviation
/// across that position's instances. A mark laid over a photo sits on something new at
/// every instance; a texture that repeats by itself (bricks, tiles, fabric) sits on the same.
fn background_spread(background: &[Option<f32>], tiled: &Tiled) -> f32 {
    let mut moments = vec![(0.0f64, 0.0f64, 0u32); tiled.cells];
    for (i, b) in background.iter().enumerate() {
        let Some(b) = b else { continue };
        let bin = tiled.bins[i] as usize;
        if tiled.mask.as_raw()[i] == 0 || !tiled.interior[bin] {
            continue;
        }
        let m = &mut moments[bin];
        m.0 += f64::from(*b);
        m.1 += f64::from(*b) * f64::from(*b);
        m.2 += 1;
    }
    let mut spreads: Vec<f32> = moments
        .iter()
        .filter(|m| m.2 >= 4)
        .map(|&(s, ss, n)| {
            let n = f64::from(n);
            ((ss / n - (s / n) * (s / n)).max(0.0).sqrt()) as f32
        })
        .collect();
    if spreads.is_empty() {
        return 0.0;
    }
    let mid = spreads.len() / 2;
    *spreads.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// The ink's grey level, fitted on the stroke interiors ([`ink_level`]).
fn tiled_ink(values: &[f32], background: &[Option<f32>], tiled: &Tiled) -> f32 {
    let pairs = background.iter().enumerate().filter_map(|(i, b)| {
        let interior = tiled.mask.as_raw()[i] != 0 && tiled.interior[tiled.bins[i] as usize];
        b.filter(|_| interior).map(|b| (b, values[i]))
    });
    ink_level(pairs, tiled.bright)
}

/// Takes a tiled mark off `rgb` by inverting its blend, `m = (1 − a)·I + a·ink`, with `a`
/// measured per cell position over every instance: the stroke pixel's step from the
/// background around it, as a share of the ink's step from that background. Texture under
/// the strokes comes back instead of being painted over. Returns the pixels it could not
/// invert (too opaque, or no instance to measure them on), for inpainting. `None`, with
/// `rgb` untouched, when what repeats is the photo itself (the same background under every
/// instance: bricks, tiles, fabric) or when the inverse would leave more than
/// [`MAX_RESIDUAL`] of the mark's step (the blend model does not fit it). Parts of the stack
/// whose opacity wavers from instance to instance are the photo's and are left as they are;
/// on success `tiled` is left holding the mark it took off, without them.
pub fn unblend(rgb: &mut RgbImage, gray: &GrayImage, tiled: &mut Tiled) -> Option<Unblended> {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let values: Vec<f32> = gray.pixels().map(|p| f32::from(p[0])).collect();
    let outside: Vec<f32> = tiled
        .mask
        .pixels()
        .map(|p| if p[0] == 0 { 1.0 } else { 0.0 })
        .collect();
    let background = masked_mean(&values, &outside, w, h, 6);
    let ink = tiled_ink(&values, &background, tiled);
    let spread = background_spread(&background, tiled);
    if debugging() {
        eprintln!("tiles: background spread across instances {spread:.1}");
    }
    if spread < MIN_BACKGROUND_SPREAD {
        return None;
    }
    let mut samples: Vec<Vec<f32>> = vec![Vec::new(); tiled.cells];
    for i in 0..w * h {
        if outside[i] != 0.0 {
            continue;
        }
        if let Some(b) = background[i] {
            // Where the background is close to the ink the step says nothing.
            if (ink - b).abs() >= MIN_INK_STEP {
                samples[tiled.bins[i] as usize].push((values[i] - b) / (ink - b));
            }
        }
    }
    // A part of the stack whose opacity wavers from instance to instance is the photo's:
    // it is neither inverted nor painted.
    let medians: Vec<Option<f32>> = samples.iter_mut().map(|s| median(s)).collect();
    let kept = steady_parts(tiled, &samples, &medians);
    if debugging() {
        let dropped = (0..tiled.cells)
            .filter(|&b| tiled.marked[b] && !kept[b])
            .count();
        eprintln!("tiles: {dropped} stacked positions dropped as the photo's");
    }
    let pruned = (kept != tiled.marked).then(|| paint(&tiled.bins, &kept, w, h));
    let outside: Vec<f32> = match &pruned {
        None => outside,
        Some(mask) => mask
            .pixels()
            .map(|p| if p[0] == 0 { 1.0 } else { 0.0 })
            .collect(),
    };
    let alpha: Vec<Option<f32>> = medians
        .iter()
        .map(|m| m.map(|a| a.clamp(0.0, 0.95)))
        .collect();
    // The mark's own opacity: what its stroke interiors measure.
    let mut cores: Vec<f32> = (0..tiled.cells)
        .filter(|&b| tiled.interior[b] && kept[b])
        .filter_map(|b| alpha[b])
        .collect();
    let core = if cores.is_empty() {
        MAX_INVERTIBLE
    } else {
        let mid = cores.len() / 2;
        *cores.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    // An instance whose strokes step away from the ink is another mark (or the same text in
    // the other ink): it is left to the text pipeline.
    let mut votes: std::collections::HashMap<u32, (u32, u32)> = std::collections::HashMap::new();
    for i in 0..w * h {
        let Some(b) = background[i] else { continue };
        if outside[i] != 0.0 || !tiled.interior[tiled.bins[i] as usize] {
            continue;
        }
        let step = values[i] - b;
        if step.abs() >= 8.0 && (ink - b).abs() >= MIN_INK_STEP {
            let vote = votes.entry(tiled.instances[i]).or_default();
            if (step > 0.0) == (ink > b) {
                vote.0 += 1;
            } else {
                vote.1 += 1;
            }
        }
    }
    if debugging() {
        let against = votes.values().filter(|(a, d)| d > a).count();
        eprintln!(
            "tiles: ink {ink:.0}, {} instances, {against} in another ink",
            votes.len()
        );
    }
    let foreign = |i: usize| {
        votes
            .get(&tiled.instances[i])
            .is_some_and(|&(agree, disagree)| disagree > agree)
    };
    let mut left = GrayImage::new(w as u32, h as u32);
    let mut handled = GrayImage::new(w as u32, h as u32);
    // (pixel, opacity) to invert; nothing changes until the inverse is known to fit.
    let mut inverse = Vec::new();
    let (mut step_before, mut step_after) = (0.0f64, 0.0f64);
    for i in 0..w * h {
        if outside[i] != 0.0 || foreign(i) {
            continue;
        }
        let (x, y) = ((i % w) as u32, (i / w) as u32);
        handled.put_pixel(x, y, Luma([255]));
        let bin = tiled.bins[i] as usize;
        // A rim pixel is on the stroke in one instance and beside it in the next: its own
        // step from the background says which, up to the mark's opacity.
        let own = |b: f32| ((values[i] - b) / (ink - b)).clamp(0.0, core);
        let a = match (tiled.interior[bin], alpha[bin], background[i]) {
            (true, Some(a), _) => Some(a),
            (false, _, Some(b)) if (ink - b).abs() >= MIN_INK_STEP => Some(own(b)),
            (false, a, _) => a.map(|a| a.min(core)),
            (true, None, _) => None,
        };
        match a {
            Some(a) if a <= MAX_INVERTIBLE => {
                inverse.push((i, a));
                if let Some(b) = background[i] {
                    let after = blend::unblend(values[i], a, ink);
                    step_before += f64::from((values[i] - b).abs());
                    step_after += f64::from((after - b).abs());
                }
            }
            _ => left.put_pixel(x, y, Luma([255])),
        }
    }
    // What the inverse leaves of the pixels' step from their background, against what was
    // there: a model that does not fit (instances in mixed inks, say) leaves most of it.
    let residual = if step_before > 0.0 {
        step_after / step_before
    } else {
        1.0
    };
    if debugging() {
        eprintln!("tiles: residual {residual:.2}");
    }
    if residual > MAX_RESIDUAL {
        return None;
    }
    for (i, a) in inverse {
        let p = rgb.get_pixel_mut((i % w) as u32, (i / w) as u32);
        for c in p.0.iter_mut() {
            *c = blend::unblend(f32::from(*c), a, ink)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
    if let Some(mask) = pruned {
        tiled.lattice.cover = share(&kept);
        tiled.mask = mask;
        for (interior, kept) in tiled.interior.iter_mut().zip(&kept) {
            *interior &= *kept;
        }
        tiled.marked = kept;
    }
    Some(Unblended { left, handled })
}

/// What [`unblend`] did.
pub struct Unblended {
    /// Pixels of the mark it could not invert (too opaque, nothing to measure them on):
    /// they are for inpainting.
    pub left: GrayImage,
    /// Every pixel of the mark it took care of (inverted or left for inpainting); instances
    /// in another ink are not in it.
    pub handled: GrayImage,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8×6 cell grid (which wraps) holding four parts: a steady one (every instance
    /// measures 0.3), one that wavers (the photo lining up by chance), one with nothing to
    /// measure, and a stroke whose three interior positions are steady while its four rim
    /// positions waver (a rim's opacity shifts with each instance's sub-pixel phase): it is
    /// judged on its interiors and kept.
    #[test]
    fn parts_whose_opacity_wavers_are_dropped() {
        let (columns, rows) = (8, 6);
        let cells = columns * rows;
        let steady = [0, 1, 8, 9];
        let wavering = [4, 5, 12, 13];
        let unmeasured = [42, 43];
        let stroke = [24, 25, 26, 27, 28, 29, 30];
        let stroke_interior = [26, 27, 28];
        let mut marked = vec![false; cells];
        for &b in steady
            .iter()
            .chain(&wavering)
            .chain(&unmeasured)
            .chain(&stroke)
        {
            marked[b] = true;
        }
        let mut interior = vec![false; cells];
        for &b in &stroke_interior {
            interior[b] = true;
        }
        let tiled = Tiled {
            lattice: Lattice {
                v1: (8.0, 0.0),
                v2: (0.0, 6.0),
                peaks: (0.0, 0.0),
                cover: 0.0,
            },
            mask: GrayImage::new(1, 1),
            bins: Vec::new(),
            instances: Vec::new(),
            cells,
            columns,
            interior,
            marked: marked.clone(),
            bright: true,
        };
        let steady_samples = vec![0.29, 0.3, 0.31, 0.3, 0.32];
        let wavering_samples = vec![0.05, 0.6, 0.2, 0.9, 0.1];
        let mut samples = vec![Vec::new(); cells];
        for b in steady.into_iter().chain(stroke_interior) {
            samples[b] = steady_samples.clone();
        }
        for b in wavering.into_iter().chain([24, 25, 29, 30]) {
            samples[b] = wavering_samples.clone();
        }
        let medians: Vec<Option<f32>> = samples.iter_mut().map(|s| median(s)).collect();
        let kept = steady_parts(&tiled, &samples, &medians);
        for (b, kept) in kept.iter().enumerate() {
            let expected = steady.contains(&b) || unmeasured.contains(&b) || stroke.contains(&b);
            assert_eq!(*kept, expected, "position {b}");
        }
    }
}
