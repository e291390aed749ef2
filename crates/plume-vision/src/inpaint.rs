//! Telea's fast-marching inpainting ("An Image Inpainting Technique Based on the Fast Marching
//! Method", 2004), written here.
//!
//! Unknown pixels (the mask) are filled in order of their distance `T` from the known region,
//! which the fast-marching method computes from the boundary inwards. Each pixel becomes a
//! weighted mean of the known pixels within `radius`, plus their gradient toward it; the
//! weights favour neighbours along the normal (direction), close by (distance) and on the
//! same level set (level).
//!
//! [`paint`] is the entry point: what a caller boxed is filled from the photo's own patches
//! (`exemplar`), strokes by Telea.

use crate::exemplar;
use crate::filters::pieces;
use image::{GrayImage, RgbImage};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

const KNOWN: u8 = 0;
const BAND: u8 = 1;
const INSIDE: u8 = 2;

#[derive(PartialEq)]
struct Entry(f32, usize);

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.partial_cmp(&self.0).unwrap_or(Ordering::Equal) // min-heap on T
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Fills the pixels of `image` where `mask` is non-zero; other pixels are not touched.
pub fn telea(image: &mut RgbImage, mask: &GrayImage, radius: u32) {
    let (w, h) = image.dimensions();
    assert_eq!(mask.dimensions(), (w, h), "mask and image differ in size");
    let (wi, hi) = (w as i64, h as i64);
    let n = (w * h) as usize;
    let idx = |x: i64, y: i64| (y * wi + x) as usize;
    let mut flag = vec![KNOWN; n];
    let mut t = vec![0f32; n];
    for (i, m) in mask.as_raw().iter().enumerate() {
        if *m != 0 {
            flag[i] = INSIDE;
            t[i] = 1.0e6;
        }
    }
    let mut heap = BinaryHeap::new();
    // The band starts as the known pixels touching the mask.
    for y in 0..hi {
        for x in 0..wi {
            let i = idx(x, y);
            if flag[i] != KNOWN {
                continue;
            }
            let touches = [(1, 0), (-1, 0), (0, 1), (0, -1)].iter().any(|(dx, dy)| {
                let (nx, ny) = (x + dx, y + dy);
                nx >= 0 && ny >= 0 && nx < wi && ny < hi && flag[idx(nx, ny)] == INSIDE
            });
            if touches {
                flag[i] = BAND;
                heap.push(Entry(0.0, i));
            }
        }
    }
    let mut pixels: Vec<[f32; 3]> = image
        .pixels()
        .map(|p| [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])])
        .collect();
    let solve = |t: &[f32], flag: &[u8], x1: i64, y1: i64, x2: i64, y2: i64| -> f32 {
        let ok = |x: i64, y: i64| x >= 0 && y >= 0 && x < wi && y < hi && flag[idx(x, y)] != INSIDE;
        let (k1, k2) = (ok(x1, y1), ok(x2, y2));
        let t1 = if k1 { t[idx(x1, y1)] } else { 1.0e6 };
        let t2 = if k2 { t[idx(x2, y2)] } else { 1.0e6 };
        if k1 && k2 {
            let r = 2.0 - (t1 - t2) * (t1 - t2);
            if r > 0.0 {
                let s = (t1 + t2 + r.sqrt()) / 2.0;
                if s >= t1 && s >= t2 {
                    return s;
                }
            }
            t1.min(t2) + 1.0
        } else if k1 {
            t1 + 1.0
        } else if k2 {
            t2 + 1.0
        } else {
            1.0e6
        }
    };
    let r = radius.max(1) as i64;
    while let Some(Entry(_, i)) = heap.pop() {
        if flag[i] == KNOWN {
            continue;
        }
        flag[i] = KNOWN;
        let (x, y) = ((i as i64) % wi, (i as i64) / wi);
        for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
            let (nx, ny) = (x + dx, y + dy);
            if nx < 0 || ny < 0 || nx >= wi || ny >= hi {
                continue;
            }
            let j = idx(nx, ny);
            if flag[j] != INSIDE {
                continue;
            }
            let tj = solve(&t, &flag, nx - 1, ny, nx, ny - 1)
                .min(solve(&t, &flag, nx + 1, ny, nx, ny - 1))
                .min(solve(&t, &flag, nx - 1, ny, nx, ny + 1))
                .min(solve(&t, &flag, nx + 1, ny, nx, ny + 1));
            t[j] = tj;
            // The gradient of T at the new pixel, from its neighbours.
            let grad = |a: i64, b: i64, horizontal: bool| {
                let get = |x: i64, y: i64| {
                    (x >= 0 && y >= 0 && x < wi && y < hi && flag[idx(x, y)] != INSIDE)
                        .then(|| t[idx(x, y)])
                };
                let (p, m) = if horizontal {
                    (get(a + 1, b), get(a - 1, b))
                } else {
                    (get(a, b + 1), get(a, b - 1))
                };
                match (p, m) {
                    (Some(p), Some(m)) => (p - m) / 2.0,
                    (Some(p), None) => p - tj,
                    (None, Some(m)) => tj - m,
                    (None, None) => 0.0,
                }
            };
            let (gtx, gty) = (grad(nx, ny, true), grad(nx, ny, false));
            let mut acc = [0f32; 3];
            let mut wsum = 0f32;
            // The range of the neighbours used: the gradient term extrapolates, and at a
            // mask's rim (a stroke's faint halo) it overshoots into bright or dark streaks.
            let (mut lo, mut hi_c) = ([f32::MAX; 3], [f32::MIN; 3]);
            for ky in (ny - r).max(0)..=(ny + r).min(hi - 1) {
                for kx in (nx - r).max(0)..=(nx + r).min(wi - 1) {
                    let k = idx(kx, ky);
                    if flag[k] == INSIDE || (kx == nx && ky == ny) {
                        continue;
                    }
                    let (rx, ry) = ((nx - kx) as f32, (ny - ky) as f32);
                    let d2 = rx * rx + ry * ry;
                    if d2 > (r * r) as f32 {
                        continue;
                    }
                    let len = d2.sqrt();
                    let dir = ((rx * gtx + ry * gty) / len).abs().max(1e-6);
                    let dst = 1.0 / (d2 * len);
                    let lev = 1.0 / (1.0 + (t[k] - tj).abs());
                    let weight = dir * dst * lev;
                    // The known pixel's colour gradient, toward the new pixel.
                    let colour = |x: i64, y: i64| {
                        (x >= 0 && y >= 0 && x < wi && y < hi && flag[idx(x, y)] != INSIDE)
                            .then(|| pixels[idx(x, y)])
                    };
                    for c in 0..3 {
                        let gx = match (colour(kx + 1, ky), colour(kx - 1, ky)) {
                            (Some(a), Some(b)) => (a[c] - b[c]) / 2.0,
                            _ => 0.0,
                        };
                        let gy = match (colour(kx, ky + 1), colour(kx, ky - 1)) {
                            (Some(a), Some(b)) => (a[c] - b[c]) / 2.0,
                            _ => 0.0,
                        };
                        acc[c] += weight * (pixels[k][c] + gx * rx + gy * ry);
                        lo[c] = lo[c].min(pixels[k][c]);
                        hi_c[c] = hi_c[c].max(pixels[k][c]);
                    }
                    wsum += weight;
                }
            }
            if wsum > 0.0 {
                pixels[j] = [0, 1, 2].map(|c| (acc[c] / wsum).clamp(lo[c], hi_c[c]));
            }
            flag[j] = BAND;
            heap.push(Entry(tj, j));
        }
    }
    for (i, px) in image.pixels_mut().enumerate() {
        if mask.as_raw()[i] != 0 {
            *px = image::Rgb(pixels[i].map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
    }
}

/// Boxes larger than this many pixels are left to Telea: the patch search grows with the
/// hole's area times its surroundings' (a box of 200×90 takes about 0.2 s).
const MAX_EXEMPLAR_AREA: usize = 40_000;

/// Fills the pixels of `image` where `strokes` or `boxes` is non-zero. A hole that holds part
/// of a box (a region the caller marked: a logo, a stamp) is filled from the photo's own
/// patches ([`exemplar`]), which keeps its texture where Telea's means smear it; the rest
/// (the strokes of marks, thin) and what the patches could not fill, by Telea (`radius`).
pub fn paint(image: &mut RgbImage, strokes: &GrayImage, boxes: &GrayImage, radius: u32) {
    let (w, h) = image.dimensions();
    assert_eq!(
        strokes.dimensions(),
        (w, h),
        "mask and image differ in size"
    );
    assert_eq!(boxes.dimensions(), (w, h), "mask and image differ in size");
    let boxed = boxes.as_raw();
    let mut unknown: Vec<bool> = strokes
        .as_raw()
        .iter()
        .zip(boxed)
        .map(|(&s, &b)| s != 0 || b != 0)
        .collect();
    for hole in pieces(&unknown, w as usize, h as usize) {
        if hole.len() <= MAX_EXEMPLAR_AREA && hole.iter().any(|&i| boxed[i] != 0) {
            exemplar::fill(image, &mut unknown, &hole);
        }
    }
    if unknown.iter().any(|&u| u) {
        let rest = unknown.iter().map(|&u| if u { 255 } else { 0 }).collect();
        let rest = GrayImage::from_raw(w, h, rest).expect("the mask has the image's size");
        telea(image, &rest, radius);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_a_hole_in_a_gradient_and_touches_nothing_else() {
        let original = RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 100])
        });
        let mut img = original.clone();
        let mask = GrayImage::from_fn(64, 48, |x, y| {
            image::Luma([if (20..30).contains(&x) && (15..25).contains(&y) {
                255
            } else {
                0
            }])
        });
        for (x, y, m) in mask.enumerate_pixels() {
            if m[0] != 0 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        telea(&mut img, &mask, 5);
        let mut worst = 0i32;
        for (x, y, m) in mask.enumerate_pixels() {
            let (a, b) = (img.get_pixel(x, y), original.get_pixel(x, y));
            if m[0] == 0 {
                assert_eq!(a, b, "outside the mask at {x},{y}");
            } else {
                for c in 0..3 {
                    worst = worst.max((i32::from(a[c]) - i32::from(b[c])).abs());
                }
            }
        }
        assert!(
            worst <= 12,
            "a smooth gradient is restored closely, worst error {worst}"
        );
    }

    /// Diagonal stripes 7 px apart, and a mask of the box `(x, y, w, h)`.
    fn striped_with_box(w: u32, h: u32, b: (u32, u32, u32, u32)) -> (RgbImage, GrayImage) {
        let img = RgbImage::from_fn(w, h, |x, y| {
            let v = if (x + 2 * y) % 7 < 3 { 200 } else { 40 };
            image::Rgb([v, 255 - v, 90])
        });
        let mask = GrayImage::from_fn(w, h, |x, y| {
            let inside = x >= b.0 && y >= b.1 && x < b.0 + b.2 && y < b.1 + b.3;
            image::Luma([if inside { 255 } else { 0 }])
        });
        (img, mask)
    }

    #[test]
    fn boxes_take_patches_and_strokes_and_oversized_boxes_take_telea() {
        let none = GrayImage::new(260, 250);
        let telea_of = |img: &RgbImage, mask: &GrayImage| {
            let mut out = img.clone();
            telea(&mut out, mask, 5);
            out
        };
        // A small box is filled from patches: not what Telea makes of it.
        let (img, small) = striped_with_box(260, 250, (100, 100, 30, 30));
        let mut boxed = img.clone();
        paint(&mut boxed, &none, &small, 5);
        assert_ne!(boxed, telea_of(&img, &small));
        // The same hole given as strokes is Telea's.
        let mut stroked = img.clone();
        paint(&mut stroked, &small, &none, 5);
        assert_eq!(stroked, telea_of(&img, &small));
        // A box one row over MAX_EXEMPLAR_AREA is Telea's too.
        let (img, large) = striped_with_box(260, 250, (20, 20, 200, 201));
        const { assert!(200 * 200 == MAX_EXEMPLAR_AREA) };
        let mut boxed = img.clone();
        paint(&mut boxed, &none, &large, 5);
        assert_eq!(boxed, telea_of(&img, &large));
    }
}
