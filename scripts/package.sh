#!/usr/bin/env bash
# Packages the desktop app with the Tauri CLI: .deb and .AppImage on Linux, .dmg on
# macOS, .msi on Windows (each built on its own OS). Needs `cargo install tauri-cli
# --version "^2" --locked` and, on Linux, the WebKitGTK packages listed in the README.
# Output: target/release/bundle/.
set -euo pipefail
cd "$(dirname "$0")/../src-tauri"
if ! cargo tauri --version >/dev/null 2>&1; then
  echo "the Tauri CLI is not installed: cargo install tauri-cli --version '^2' --locked" >&2
  exit 1
fi
cargo tauri build "$@"
