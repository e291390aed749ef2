//! Checking an uploaded image before anything is stored.
//!
//! The type comes from the magic bytes, never the file name; the dimensions from the header.
//! Size and pixel limits are enforced before any full decode, so a decompression bomb (a tiny
//! file declaring a huge canvas) costs nothing. Only then is the image decoded once, under
//! allocation limits, to refuse truncated or corrupt data.

use image::{ImageFormat, ImageReader, Limits};
use std::io::Cursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl ImageKind {
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::Webp => "image/webp",
            ImageKind::Gif => "image/gif",
        }
    }

    pub fn ext(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
            ImageKind::Webp => "webp",
            ImageKind::Gif => "gif",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            ImageKind::Jpeg => ImageFormat::Jpeg,
            ImageKind::Png => ImageFormat::Png,
            ImageKind::Webp => ImageFormat::WebP,
            ImageKind::Gif => ImageFormat::Gif,
        }
    }

    /// The type the bytes announce, from their first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageKind::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageKind::Png)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(ImageKind::Webp)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(ImageKind::Gif)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    pub max_bytes: u64,
    pub max_pixels: u64,
}

/// Checks `bytes` as an input image; the error is a reason a user can act on. CPU-bound:
/// call it from a blocking thread.
pub fn inspect_image(bytes: &[u8], limits: ImageLimits) -> Result<ImageInfo, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(format!(
            "the file is larger than {} bytes",
            limits.max_bytes
        ));
    }
    let kind = ImageKind::sniff(bytes).ok_or("not a JPEG, PNG, WebP or GIF image")?;
    let reader = || ImageReader::with_format(Cursor::new(bytes), kind.format());
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|e| format!("unreadable {} header: {e}", kind.ext()))?;
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 {
        return Err("the image has no pixels".into());
    }
    if pixels > limits.max_pixels {
        return Err(format!(
            "{width}x{height} is {pixels} pixels, more than the limit of {}",
            limits.max_pixels
        ));
    }
    let mut decoder = reader();
    let mut decode_limits = Limits::default();
    decode_limits.max_image_width = Some(width);
    decode_limits.max_image_height = Some(height);
    decode_limits.max_alloc = Some(pixels.saturating_mul(16).max(1 << 20));
    decoder.limits(decode_limits);
    decoder
        .decode()
        .map_err(|e| format!("the {} data is corrupt or truncated: {e}", kind.ext()))?;
    Ok(ImageInfo {
        kind,
        width,
        height,
    })
}

/// An output image's type (from its bytes) and size (from its header).
pub fn image_info(bytes: &[u8]) -> Option<(ImageKind, u32, u32)> {
    let kind = ImageKind::sniff(bytes)?;
    let format = image::ImageFormat::from_mime_type(kind.mime())?;
    let (w, h) = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .ok()?;
    Some((kind, w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ImageLimits = ImageLimits {
        max_bytes: 1 << 20,
        max_pixels: 1_000_000,
    };

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn accepts_real_images_and_reads_their_size() {
        let info = inspect_image(&png(30, 20), LIMITS).unwrap();
        assert_eq!(
            (info.kind, info.width, info.height),
            (ImageKind::Png, 30, 20)
        );
    }

    #[test]
    fn refuses_what_is_not_a_whole_image_within_limits() {
        let good = png(64, 64);
        assert!(inspect_image(b"", LIMITS).unwrap_err().contains("empty"));
        assert!(inspect_image(b"hello, not an image", LIMITS)
            .unwrap_err()
            .contains("not a JPEG"));
        let truncated = &good[..good.len() / 2];
        assert!(inspect_image(truncated, LIMITS)
            .unwrap_err()
            .contains("corrupt or truncated"));
        let big = ImageLimits {
            max_bytes: 100,
            ..LIMITS
        };
        assert!(inspect_image(&good, big)
            .unwrap_err()
            .contains("larger than"));
        let few_pixels = ImageLimits {
            max_pixels: 1000,
            ..LIMITS
        };
        assert!(inspect_image(&good, few_pixels)
            .unwrap_err()
            .contains("pixels"));
    }
}
