//! `/files/` keys: whatever the path, an accepted key stays inside the store (no empty,
//! dot-led or traversal segments, nothing but [A-Za-z0-9_.-] in a segment).
#![no_main]
use libfuzzer_sys::fuzz_target;
use plume_server::blob::FileKey;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = FileKey::parse(text) {
        assert_eq!(key.as_str(), text);
        for segment in key.as_str().split('/') {
            assert!(!segment.is_empty() && !segment.starts_with('.'), "{text:?}");
            assert!(segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
        }
        let _ = key.content_type();
    }
});
