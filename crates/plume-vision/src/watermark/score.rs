//! Whether a detected line of text is a watermark or text that belongs to the photo: near
//! an edge or in a corner, semi-transparent (the photo's texture shows through its
//! strokes), low local contrast, repeated (tiles of the same size), a large banner, centred.
//! Taller-than-wide lone boxes are more often a texture than a mark.

use super::strokes::Strokes;
use super::{Candidate, ACCEPT_SCORE};
use crate::text::Rect;

/// Scores each detected region; see the module docs for the reasons.
pub(super) fn score(rects: &[(Rect, Strokes)], width: u32, height: u32) -> Vec<Candidate> {
    let margin = (width.min(height) as f32 * 0.12) as u32;
    rects
        .iter()
        .map(|(rect, s)| {
            let mut score = 0.0;
            let mut reasons = Vec::new();
            let near_x = rect.x <= margin || rect.x + rect.w + margin >= width;
            let near_y = rect.y <= margin || rect.y + rect.h + margin >= height;
            if near_x && near_y {
                score += 1.0;
                reasons.push("corner");
            } else if near_x || near_y {
                score += 0.5;
                reasons.push("edge");
            }
            if s.texture > 14.0 {
                score += 0.4;
                reasons.push("semi-transparent");
            }
            if s.contrast < 60.0 {
                score += 0.5;
                reasons.push("low contrast");
            }
            let similar = rects
                .iter()
                .filter(|(r, o)| {
                    // The same mark tiled (four or more times): same size, brightness and ink.
                    r != rect
                        && (r.h as f32 - rect.h as f32).abs() <= 0.25 * rect.h as f32
                        && (r.w as f32 - rect.w as f32).abs() <= 0.25 * rect.w as f32
                        && (o.level - s.level).abs() <= 30.0
                        && (o.pixels.len() as f32 - s.pixels.len() as f32).abs()
                            <= 0.3 * s.pixels.len() as f32
                })
                .count();
            // A tiled mark over a varied photo changes brightness and stroke count from tile
            // to tile, but not its box: three or more boxes of one size (within 10 %) that are
            // not tiny are the same mark repeated.
            let same_size = rects
                .iter()
                .filter(|(r, _)| {
                    r != rect
                        && rect.h >= 20
                        && (r.h as f32 - rect.h as f32).abs() <= 0.1 * rect.h as f32
                        && (r.w as f32 - rect.w as f32).abs() <= 0.1 * rect.w as f32
                })
                .count();
            if similar >= 3 || same_size >= 2 {
                score += 0.8;
                reasons.push("repeated");
            } else if rect.h as f32 > 1.2 * rect.w as f32 {
                // Taller than wide and alone: a texture the detector took for text more often
                // than a mark (marks are lines of text); when unsure, leave it.
                score -= 0.5;
                reasons.push("not a line");
            }
            if rect.w as f32 >= 0.25 * width as f32 {
                score += 0.3;
                reasons.push("large");
            }
            let (cx, cy) = ((rect.x + rect.w / 2) as f32, (rect.y + rect.h / 2) as f32);
            if (cx - width as f32 / 2.0).abs() <= 0.1 * width as f32
                && (cy - height as f32 / 2.0).abs() <= 0.1 * height as f32
            {
                score += 0.5;
                reasons.push("centred");
            }
            if s.pixels.is_empty() {
                score = 0.0;
            }
            Candidate {
                rect: *rect,
                score,
                reasons,
                accepted: score >= ACCEPT_SCORE,
                opacity: None,
            }
        })
        .collect()
}
