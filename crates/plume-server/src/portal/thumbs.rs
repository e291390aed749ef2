//! Gallery thumbnails: a task's first result image (or a video's poster) scaled to fit
//! 480×480 as a JPEG, made on first view and kept in the file store beside the result.
//!
//! The thumbnail's key is the result's own key with `.thumb.jpg` in place of its extension,
//! so it is as unguessable as the result (128 random bits) and retention deletes it with
//! the task's other results. Pages reach it only through `/tasks/{id}/thumb`, which checks
//! the session's owner.

use crate::blob::FileKey;
use crate::db::TaskRecord;
use crate::error::ApiError;
use crate::executor::ExecOutput;
use crate::service::Service;
use bytes::Bytes;
use std::io::Cursor;

/// The longest side of a thumbnail, in pixels.
const SIDE: u32 = 480;
/// Results larger than this are not thumbnailed (the page shows a placeholder).
const MAX_SOURCE_BYTES: u64 = 64 * 1024 * 1024;

/// The image a task's thumbnail is made from.
fn source_key(task: &TaskRecord) -> Option<String> {
    let output = serde_json::from_value::<ExecOutput>(task.output.clone()?).ok()?;
    match output {
        ExecOutput::Images { images } => images.first().map(|i| i.key.clone()),
        ExecOutput::Videos { parts } => parts.first().and_then(|p| p.poster_key.clone()),
    }
}

/// Where the thumbnail of the result `source` is kept: beside it, as unguessable as it.
pub fn thumb_name(source: &str) -> String {
    let stem = source.rsplit_once('.').map_or(source, |(stem, _)| stem);
    format!("{stem}.thumb.jpg")
}

fn thumb_key(source: &str) -> Option<FileKey> {
    FileKey::parse(&thumb_name(source)).ok()
}

/// Scales an image to fit `SIDE`×`SIDE` and encodes it as JPEG, under the upload limits.
fn render(bytes: &[u8], max_pixels: u64) -> Result<Vec<u8>, String> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let (w, h) = reader.into_dimensions().map_err(|e| e.to_string())?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!("{w}×{h} is over the pixel limit"));
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    reader.limits(limits);
    let image = reader.decode().map_err(|e| e.to_string())?;
    let scale = f64::from(SIDE) / f64::from(w.max(h));
    let small = if scale < 1.0 {
        let (tw, th) = (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        );
        image::DynamicImage::ImageRgba8(image::imageops::thumbnail(&image, tw, th))
    } else {
        image
    };
    // JPEG has no alpha: cut-outs are shown on white, as the page's cards are.
    let rgba = small.to_rgba8();
    let mut rgb = image::RgbImage::new(rgba.width(), rgba.height());
    for (x, y, p) in rgba.enumerate_pixels() {
        let a = u16::from(p[3]);
        let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        rgb.put_pixel(x, y, image::Rgb([blend(p[0]), blend(p[1]), blend(p[2])]));
    }
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&rgb)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

/// The task's thumbnail, made and stored on first request; `None` when the task has no
/// image to show (not finished, failed, a video without a poster, or an unreadable result).
pub async fn thumbnail(service: &Service, task: &TaskRecord) -> Result<Option<Bytes>, ApiError> {
    let Some(source) = source_key(task) else {
        return Ok(None);
    };
    let (Some(key), Ok(source)) = (thumb_key(&source), FileKey::parse(&source)) else {
        return Ok(None);
    };
    let store = |e: crate::blob::BlobError| ApiError::internal(format!("thumbnail: {e}"));
    if let Some(bytes) = service
        .blobs
        .read(&key, 4 * 1024 * 1024)
        .await
        .map_err(store)?
    {
        return Ok(Some(bytes));
    }
    let Some(original) = service
        .blobs
        .read(&source, MAX_SOURCE_BYTES)
        .await
        .map_err(store)?
    else {
        return Ok(None);
    };
    let max_pixels = service.config.limits.upload_max_pixels.max(16_000_000);
    let rendered = tokio::task::spawn_blocking(move || render(&original, max_pixels))
        .await
        .map_err(ApiError::internal)?;
    let bytes = match rendered {
        Ok(jpeg) => Bytes::from(jpeg),
        Err(reason) => {
            tracing::warn!(task = task.id, %reason, "cannot make a thumbnail");
            return Ok(None);
        }
    };
    service
        .blobs
        .put(&key, bytes.clone())
        .await
        .map_err(store)?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_fit_the_box_and_keep_the_aspect() {
        let img =
            image::RgbaImage::from_fn(1200, 600, |x, _| image::Rgba([(x % 256) as u8, 0, 0, 255]));
        let mut png = Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let jpeg = render(png.get_ref(), 40_000_000).unwrap();
        let thumb = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (480, 240));
        assert!(
            render(png.get_ref(), 1000).is_err(),
            "the pixel limit holds"
        );
        assert!(render(b"not an image", 1000).is_err());
    }

    #[test]
    fn a_thumbnail_key_is_the_results_own() {
        assert_eq!(
            thumb_key("results/7/0123abcd.png").unwrap().as_str(),
            "results/7/0123abcd.thumb.jpg"
        );
    }
}
