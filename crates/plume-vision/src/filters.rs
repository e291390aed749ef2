//! Box filters on `f32` planes, shared by the tiled-mark search and the matte's edges, and
//! the connected pieces of a set of pixels, shared by `faint` and `inpaint`.

/// Mean over a (2r+1)² window (clamped at the edges), separable, on f32.
pub(crate) fn box_blur(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    vertical_mean(&horizontal_mean(src, w, h, r), w, h, r)
}

/// The running mean along each row over 2r+1 pixels (fewer at the ends).
fn horizontal_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; src.len()];
    for (line, row) in out.chunks_exact_mut(w).zip(src.chunks_exact(w)).take(h) {
        let mut acc = 0.0f32;
        let mut n = 0usize;
        for v in &row[..=r.min(w - 1)] {
            acc += v;
            n += 1;
        }
        for i in 0..w {
            line[i] = acc / n as f32;
            if i + r + 1 < w {
                acc += row[i + r + 1];
                n += 1;
            }
            if i >= r {
                acc -= row[i - r];
                n -= 1;
            }
        }
    }
    out
}

/// The running mean down each column over 2r+1 pixels (fewer at the ends), kept for all
/// columns at once and moved a row at a time: walking down one column at a time touches a
/// new cache line at every pixel, which made this pass most of a large image's blur.
fn vertical_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; src.len()];
    let mut acc = vec![0.0f32; w];
    let row = |y: usize| &src[y * w..(y + 1) * w];
    let mut n = 0usize;
    for y in 0..=r.min(h - 1) {
        for (a, v) in acc.iter_mut().zip(row(y)) {
            *a += v;
        }
        n += 1;
    }
    for y in 0..h {
        for (o, a) in out[y * w..(y + 1) * w].iter_mut().zip(&acc) {
            *o = a / n as f32;
        }
        if y + r + 1 < h {
            for (a, v) in acc.iter_mut().zip(row(y + r + 1)) {
                *a += v;
            }
            n += 1;
        }
        if y >= r {
            for (a, v) in acc.iter_mut().zip(row(y - r)) {
                *a -= v;
            }
            n -= 1;
        }
    }
    out
}

/// Mean of `values` over a (2r+1)² window, each pixel counted by its `weight` (0..1): the
/// background around a mark with its strokes left out, say. `None` where the weights near a
/// pixel add up to under 5 % of the window.
pub(crate) fn masked_mean(
    values: &[f32],
    weight: &[f32],
    w: usize,
    h: usize,
    r: usize,
) -> Vec<Option<f32>> {
    let weighted: Vec<f32> = values.iter().zip(weight).map(|(v, k)| v * k).collect();
    let sums = box_blur(&weighted, w, h, r);
    let shares = box_blur(weight, w, h, r);
    sums.iter()
        .zip(&shares)
        .map(|(s, k)| (*k > 0.05).then(|| s / k))
        .collect()
}

/// The 8-connected pieces of `set` (`w`×`h`, row-major), each as its pixels' indices.
pub(crate) fn pieces(set: &[bool], w: usize, h: usize) -> Vec<Vec<usize>> {
    let mut seen = vec![false; w * h];
    let mut all = Vec::new();
    for start in 0..w * h {
        if !set[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let mut piece = vec![start];
        let mut next = 0;
        while let Some(&i) = piece.get(next) {
            next += 1;
            let (x, y) = (i % w, i / w);
            for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = yy * w + xx;
                    if set[j] && !seen[j] {
                        seen[j] = true;
                        piece.push(j);
                    }
                }
            }
        }
        all.push(piece);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blur against the window's mean taken pixel by pixel, at the edges too.
    #[test]
    fn the_blur_is_the_mean_over_the_clamped_window() {
        let (w, h, r) = (13usize, 9usize, 3usize);
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 23) as f32).collect();
        let blurred = box_blur(&src, w, h, r);
        for y in 0..h {
            for x in 0..w {
                let (x0, x1) = (x.saturating_sub(r), (x + r).min(w - 1));
                let (y0, y1) = (y.saturating_sub(r), (y + r).min(h - 1));
                let mut sum = 0.0f32;
                for yy in y0..=y1 {
                    for xx in x0..=x1 {
                        sum += src[yy * w + xx];
                    }
                }
                let mean = sum / ((x1 - x0 + 1) * (y1 - y0 + 1)) as f32;
                assert!((blurred[y * w + x] - mean).abs() < 1e-3, "({x}, {y})");
            }
        }
    }

    #[test]
    fn pieces_join_diagonal_neighbours_and_nothing_else() {
        // 5×3: a diagonal pair at (0,0)-(1,1), a lone pixel at (4,0), a bar on the last row
        // from (2,2) to (4,2) that touches (1,1) diagonally.
        let mut set = vec![false; 15];
        for i in [0, 6, 4, 12, 13, 14] {
            set[i] = true;
        }
        let mut found: Vec<Vec<usize>> = pieces(&set, 5, 3)
            .into_iter()
            .map(|mut p| {
                p.sort_unstable();
                p
            })
            .collect();
        found.sort();
        assert_eq!(found, vec![vec![0, 6, 12, 13, 14], vec![4]]);
        assert!(pieces(&[false; 15], 5, 3).is_empty());
    }
}
