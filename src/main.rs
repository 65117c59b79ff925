//! The `parachute` command line: parses arguments and hands them to the library.

fn main() -> std::process::ExitCode {
    parachute::cli::main()
}
