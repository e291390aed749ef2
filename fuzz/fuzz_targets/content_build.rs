//! The client's content builder: whatever options it is given, what it builds passes the
//! server's own rule (the builder runs the validator; this checks that promise holds).
#![no_main]
use libfuzzer_sys::{arbitrary, fuzz_target};
use plume_core::{build_content, validate_content, BuildOptions, Category};

#[derive(Debug, arbitrary::Arbitrary)]
struct Options {
    category: u8,
    prompt: Option<String>,
    processing_mode: Option<String>,
    image_urls: Vec<String>,
    first_frame_url: Option<String>,
    last_frame_url: Option<String>,
    reference_url: Option<String>,
    image_size: Option<String>,
    aspect_ratio: Option<String>,
    duration: Option<u64>,
    model: Option<String>,
    regions: Vec<[u64; 4]>,
}

fuzz_target!(|o: Options| {
    let category = Category::ALL[usize::from(o.category) % Category::ALL.len()];
    let opts = BuildOptions {
        prompt: o.prompt,
        processing_mode: o.processing_mode,
        image_urls: o.image_urls,
        first_frame_url: o.first_frame_url,
        last_frame_url: o.last_frame_url,
        reference_url: o.reference_url,
        image_size: o.image_size,
        aspect_ratio: o.aspect_ratio,
        duration: o.duration,
        model: o.model,
        regions: o.regions,
    };
    if let Ok(content) = build_content(category, &opts) {
        if let Err(e) = validate_content(category, &content) {
            panic!(
                "built content the server refuses: {}: {content}",
                e.message()
            );
        }
    }
});
