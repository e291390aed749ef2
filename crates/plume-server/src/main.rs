//! The `plume-server` binary: the executors are the upstream providers the configuration
//! names (`[providers.*]`); a category without one answers CATEGORY_UNAVAILABLE.

fn main() -> std::process::ExitCode {
    plume_server::cli::main_with(plume_server::Executors::new())
}
