//! `plume-server` with the scripted test executor (see the crate docs). Test use only.

fn main() -> std::process::ExitCode {
    plume_server::cli::main_with(plume_testkit::executors_from_env())
}
