//! The `plume-server` binary. This release ships no production executor: every category
//! answers CATEGORY_UNAVAILABLE until one is configured.

fn main() -> std::process::ExitCode {
    plume_server::cli::main_with(plume_server::Executors::new())
}
