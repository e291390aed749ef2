//! Decoding with EXIF orientation applied, and encoding in the input's format where we can
//! write it (PNG otherwise).

use crate::{Result, VisionError};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::Cursor;

/// A decoded image and the format it came in.
pub struct Decoded {
    pub image: DynamicImage,
    pub format: ImageFormat,
}

pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VisionError::BadImage(e.to_string()))?;
    let format = reader
        .format()
        .ok_or_else(|| VisionError::BadImage("unknown image type".into()))?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| VisionError::BadImage(e.to_string()))?;
    let orientation = decoder
        .orientation()
        .map_err(|e| VisionError::BadImage(e.to_string()))?;
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| VisionError::BadImage(e.to_string()))?;
    image.apply_orientation(orientation);
    Ok(Decoded { image, format })
}

/// Encodes `image` as `format` when we can write it (JPEG, PNG), else PNG. Returns the bytes
/// and the format used.
pub fn encode(image: &DynamicImage, format: ImageFormat) -> Result<(Vec<u8>, ImageFormat)> {
    let mut out = Cursor::new(Vec::new());
    let used = match format {
        ImageFormat::Jpeg => {
            let rgb = image.to_rgb8();
            let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
            encoder
                .encode_image(&rgb)
                .map_err(|e| VisionError::Model(e.to_string()))?;
            ImageFormat::Jpeg
        }
        _ => {
            image
                .write_to(&mut out, ImageFormat::Png)
                .map_err(|e| VisionError::Model(e.to_string()))?;
            ImageFormat::Png
        }
    };
    Ok((out.into_inner(), used))
}
