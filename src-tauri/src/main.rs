//! The Parachute desktop app: see the library for what it does.

// No console window behind the app on Windows release builds.
#![cfg_attr(
    all(not(debug_assertions), target_os = "windows"),
    windows_subsystem = "windows"
)]

fn main() {
    parachute_app::run();
}
