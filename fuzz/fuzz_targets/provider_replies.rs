//! Upstream replies: a Gemini image reply and the Google and Ark error envelopes, from any
//! JSON, give images or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plume_server::providers::{gemini, http};

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(images) = gemini::reply_images(&reply) {
        for (bytes, mime) in images {
            assert!(!bytes.is_empty() && !mime.is_empty());
        }
    }
    let _ = http::google_error(&reply);
    let _ = http::ark_error(&reply);
});
