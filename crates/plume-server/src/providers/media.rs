//! Reading what providers return: base64 payloads, image sizes, and an MP4's duration from
//! its `mvhd` box (the result JSON reports the real duration, not the requested one).

use base64::Engine;

pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

pub fn b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn data_uri(bytes: &[u8], mime: &str) -> String {
    format!("data:{mime};base64,{}", b64_encode(bytes))
}

pub use crate::upload::image_info;

fn boxes(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let size32 = u32::from_be_bytes(data[0..4].try_into().ok()?) as u64;
        let kind: [u8; 4] = data[4..8].try_into().ok()?;
        let (header, size) = match size32 {
            0 => (8, data.len() as u64),
            1 if data.len() >= 16 => (16, u64::from_be_bytes(data[8..16].try_into().ok()?)),
            s => (8, s),
        };
        if size < header || size > data.len() as u64 {
            return None;
        }
        let body = &data[header as usize..size as usize];
        data = &data[size as usize..];
        Some((kind, body))
    })
}

/// The duration in seconds from `moov/mvhd`, or `None` when the bytes are not an MP4 we can
/// read.
pub fn mp4_duration(data: &[u8]) -> Option<f64> {
    let (_, moov) = boxes(data).find(|(k, _)| k == b"moov")?;
    let (_, mvhd) = boxes(moov).find(|(k, _)| k == b"mvhd")?;
    let version = *mvhd.first()?;
    let (timescale, duration) = if version == 1 {
        let ts = u32::from_be_bytes(mvhd.get(20..24)?.try_into().ok()?);
        let d = u64::from_be_bytes(mvhd.get(24..32)?.try_into().ok()?);
        (ts, d)
    } else {
        let ts = u32::from_be_bytes(mvhd.get(12..16)?.try_into().ok()?);
        let d = u32::from_be_bytes(mvhd.get(16..20)?.try_into().ok()?) as u64;
        (ts, d)
    };
    (timescale > 0).then(|| duration as f64 / f64::from(timescale))
}

/// A minimal MP4 (`ftyp` + `moov/mvhd`) of the given duration: what test doubles serve.
pub fn minimal_mp4(duration_ms: u32) -> Vec<u8> {
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
    mvhd[16..20].copy_from_slice(&duration_ms.to_be_bytes());
    let wrap = |kind: &[u8], body: &[u8]| {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    };
    let mut out = wrap(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
    out.extend(wrap(b"moov", &wrap(b"mvhd", &mvhd)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mp4_duration() {
        assert_eq!(mp4_duration(&minimal_mp4(6000)), Some(6.0));
        assert_eq!(mp4_duration(&minimal_mp4(8500)), Some(8.5));
        assert_eq!(mp4_duration(b"not a video"), None);
        assert_eq!(mp4_duration(&minimal_mp4(6000)[..30]), None);
    }
}
