//! The MP4 `mvhd` reader: any bytes give a finite, non-negative duration or none.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(seconds) = plume_server::providers::media::mp4_duration(data) {
        assert!(seconds.is_finite() && seconds >= 0.0, "{seconds}");
    }
});
