//! Writes the category catalog (`plume_core::catalog`) to the OpenClaw plugin's
//! `src/catalog.json`, or to the path given as the first argument (`-` for stdout).

fn main() -> std::io::Result<()> {
    let default = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../integrations/openclaw-plugin/src/catalog.json"
    );
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| default.to_string());
    let text = plume_core::catalog::catalog_text();
    if path == "-" {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(&path, text)?;
    eprintln!("wrote {path}");
    Ok(())
}
