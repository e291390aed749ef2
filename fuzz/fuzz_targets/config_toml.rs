//! The server's config loader: any TOML text gives a checked config or an error, never a
//! panic (no environment variables are read here).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = plume_server::Config::from_toml(text, |_| None) {
        let _ = config.listen_addr();
        let _ = config.database_url();
        let _ = config.storage_url();
    }
});
