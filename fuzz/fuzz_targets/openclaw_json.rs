//! The client's readers of OpenClaw's files: `openclaw.json` (JSON5) and `.env`.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The client is a binary crate: its settings module is compiled in here as it is there.
#[allow(dead_code)]
#[path = "../../crates/plume-client/src/settings.rs"]
mod settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = settings::parse_openclaw_json(text) {
        let _ = value.pointer("/skills/entries/plume-image/apiKey");
    }
    for (name, _) in settings::parse_dotenv(text) {
        assert!(!name.contains('\n'));
    }
});
