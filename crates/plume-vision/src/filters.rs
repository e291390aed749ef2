//! Box filters on `f32` planes, shared by the tiled-mark search and the matte's edges.

/// Mean over a (2r+1)² window (clamped at the edges), separable, on f32.
pub(crate) fn box_blur(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let pass = |src: &[f32], len: usize, count: usize, stride: usize, step: usize| {
        let mut out = vec![0.0f32; src.len()];
        for line in 0..count {
            let at = |i: usize| src[line * stride + i * step];
            let mut acc = 0.0f32;
            let mut n = 0usize;
            for i in 0..=r.min(len - 1) {
                acc += at(i);
                n += 1;
            }
            for i in 0..len {
                out[line * stride + i * step] = acc / n as f32;
                if i + r + 1 < len {
                    acc += at(i + r + 1);
                    n += 1;
                }
                if i >= r {
                    acc -= at(i - r);
                    n -= 1;
                }
            }
        }
        out
    };
    let rows = pass(src, w, h, w, 1);
    pass(&rows, h, w, 1, w)
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
