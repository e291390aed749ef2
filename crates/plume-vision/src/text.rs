//! Text-region detection with PP-OCRv4's DB detector: the image at ≤ 960 px on its long side
//! (multiples of 32), a probability map thresholded at 0.3, connected regions kept when their
//! mean probability is high enough, each box expanded the DB way (offset = area × 1.5 /
//! perimeter) and mapped back to the input's coordinates.

use crate::matte::to_nchw;
use crate::runtime::Vision;
use crate::{Result, VisionError};
use image::imageops::FilterType;
use image::RgbImage;

const MAX_SIDE: u32 = 960;
const PIXEL_THRESHOLD: f32 = 0.3;
const BOX_THRESHOLD: f32 = 0.5;

/// An axis-aligned rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && y >= self.y && x < self.x + self.w && y < self.y + self.h
    }

    /// Clips to an image of `w`×`h`; `None` when nothing is left.
    pub fn clip(x: i64, y: i64, w: i64, h: i64, iw: u32, ih: u32) -> Option<Rect> {
        let (x0, y0) = (x.max(0), y.max(0));
        let (x1, y1) = ((x + w).min(i64::from(iw)), (y + h).min(i64::from(ih)));
        (x1 > x0 && y1 > y0).then(|| Rect {
            x: x0 as u32,
            y: y0 as u32,
            w: (x1 - x0) as u32,
            h: (y1 - y0) as u32,
        })
    }
}

/// A detected text region and the detector's mean confidence in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    pub rect: Rect,
    pub score: f32,
}

fn bgr(img: &RgbImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y);
        image::Rgb([p[2], p[1], p[0]])
    })
}

/// The text regions of `rgb`.
pub fn detect(vision: &Vision, rgb: &RgbImage) -> Result<Vec<TextBox>> {
    let (w, h) = rgb.dimensions();
    if w < 8 || h < 8 {
        return Ok(Vec::new());
    }
    let scale = (MAX_SIDE as f32 / w.max(h) as f32).min(1.0);
    let round32 = |v: f32| (((v / 32.0).round() as u32).max(1)) * 32;
    let (iw, ih) = (round32(w as f32 * scale), round32(h as f32 * scale));
    let small = image::imageops::resize(rgb, iw, ih, FilterType::Triangle);
    let input = to_nchw(&bgr(&small), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    let (shape, prob) = vision.infer(true, [1, 3, ih as usize, iw as usize], input)?;
    let (ph, pw) = match shape.as_slice() {
        [_, _, h, w] => (*h, *w),
        other => {
            return Err(VisionError::Model(format!(
                "unexpected detector shape {other:?}"
            )))
        }
    };
    let (sx, sy) = (w as f32 / pw as f32, h as f32 / ph as f32);
    Ok(components(&prob[..ph * pw], pw, ph)
        .into_iter()
        .filter_map(|(x0, y0, x1, y1, score)| {
            let (bw, bh) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
            let offset = bw * bh * 1.5 / (2.0 * (bw + bh));
            let rect = Rect::clip(
                ((x0 as f32 - offset) * sx).floor() as i64,
                ((y0 as f32 - offset) * sy).floor() as i64,
                ((bw + 2.0 * offset) * sx).ceil() as i64,
                ((bh + 2.0 * offset) * sy).ceil() as i64,
                w,
                h,
            )?;
            Some(TextBox { rect, score })
        })
        .collect())
}

/// Connected regions (4-neighbour) of `prob > 0.3`: bounding box and mean probability.
fn components(prob: &[f32], w: usize, h: usize) -> Vec<(usize, usize, usize, usize, f32)> {
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if seen[start] || prob[start] <= PIXEL_THRESHOLD {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        let (mut sum, mut n) = (0f32, 0usize);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
            sum += prob[i];
            n += 1;
            let mut visit = |j: usize| {
                if !seen[j] && prob[j] > PIXEL_THRESHOLD {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        let mean = sum / n as f32;
        if n >= 6 && x1 - x0 >= 2 && y1 - y0 >= 2 && mean >= BOX_THRESHOLD {
            out.push((x0, y0, x1, y1, mean));
        }
    }
    out
}

/// Joins the detector's boxes that are one line of text: the detector splits a line where the
/// script changes or at a wide gap (an account stamp's name and its digits), and scored apart
/// the inner part misses the corner test and half a stamp stays. Boxes join when they overlap
/// vertically by most of the smaller height and the gap between them is under 1.5 times it.
pub(crate) fn join_lines(mut rects: Vec<Rect>) -> Vec<Rect> {
    loop {
        let mut joined = false;
        'outer: for i in 0..rects.len() {
            for j in i + 1..rects.len() {
                let (a, b) = (rects[i], rects[j]);
                let top = a.y.max(b.y);
                let bottom = (a.y + a.h).min(b.y + b.h);
                let overlap = bottom.saturating_sub(top);
                let small = a.h.min(b.h);
                let (big, tiny) = (a.h.max(b.h) as f32, small as f32);
                let gap =
                    b.x.saturating_sub(a.x + a.w)
                        .max(a.x.saturating_sub(b.x + b.w));
                // Only horizontal lines join: rotated text comes out as tall boxes, and tiles
                // of it must stay apart.
                let line_like = |r: Rect| r.w >= r.h * 3 / 2;
                if line_like(a)
                    && line_like(b)
                    && overlap as f32 >= 0.6 * tiny
                    && big <= 1.6 * tiny
                    && gap <= 3 * small / 2
                {
                    let (x0, y0) = (a.x.min(b.x), a.y.min(b.y));
                    let (x1, y1) = ((a.x + a.w).max(b.x + b.w), (a.y + a.h).max(b.y + b.h));
                    rects[i] = Rect {
                        x: x0,
                        y: y0,
                        w: x1 - x0,
                        h: y1 - y0,
                    };
                    rects.swap_remove(j);
                    joined = true;
                    break 'outer;
                }
            }
        }
        if !joined {
            return rects;
        }
    }
}
