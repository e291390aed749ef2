//! The upload inspector: any bytes are refused with a reason or accepted with their true
//! type and size, within the limits, and never panic or allocate past them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plume_server::upload::{image_info, inspect_image, ImageLimits};

fuzz_target!(|data: &[u8]| {
    let limits = ImageLimits {
        max_bytes: 1 << 20,
        max_pixels: 4_000_000,
    };
    if let Ok(info) = inspect_image(data, limits) {
        assert!(u64::from(info.width) * u64::from(info.height) <= limits.max_pixels);
        assert!(info.width > 0 && info.height > 0);
    }
    let _ = image_info(data);
});
