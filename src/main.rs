//! The `parachute` command line: parses arguments and hands them to the library
//! crates (`parachute-core` for settings and the store, `parachute-api` to serve).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
