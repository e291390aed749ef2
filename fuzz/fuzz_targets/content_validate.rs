//! The server's content rule: any JSON for any category is accepted or refused with field
//! details, and accepted content can be priced.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plume_core::{validate_content, Category, PriceTable};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let category = Category::ALL[usize::from(first) % Category::ALL.len()];
    let Ok(content) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    match validate_content(category, &content) {
        Ok(valid) => {
            let _ = PriceTable::default().price(&valid);
        }
        Err(e) => {
            assert!(!e.message().is_empty());
            let _ = e.details_json();
        }
    }
});
