//! The `accordo` binary.

fn main() -> std::process::ExitCode {
    web::cli::run()
}
