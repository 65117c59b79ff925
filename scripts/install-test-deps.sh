#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: iproute2 and curl for
# the remote-peer tests (test hosts in network namespaces), the D-Bus headers the
# keyring crate builds against, bubblewrap and socat for the OS sandbox of the `vault`
# trust level, python3 for its escape tests, Docker and mmdebstrap for the `sandboxed`
# level (its image is built offline by the tests; nothing is pulled), Chromium and its
# WebDriver for the UI tests, the WebKitGTK/GTK/AppIndicator headers the desktop app
# (src-tauri) builds against plus Xvfb, a D-Bus session daemon, an XEmbed tray host
# (trayer), x11-utils, python3-xlib (to close a window as a window manager would) and
# ImageMagick for its tests under a virtual display, ffmpeg and espeak-ng for the bots'
# voice-message test,
# gnome-keyring for the OS-keychain tests (a real Secret Service), the pinned
# Claude Code CLI and the Telegram Bot API emulator (telegram-test-api) from npm. Starts dockerd when no engine answers (its pid goes to
# /run/parachute-test-dockerd.pid; .ci/run stops it). Idempotent.
set -euo pipefail

CLAUDE_CODE_VERSION=2.1.330

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v pkg-config >/dev/null || need+=(pkg-config)
dpkg -s libdbus-1-dev >/dev/null 2>&1 || need+=(libdbus-1-dev)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v socat >/dev/null || need+=(socat)
command -v python3 >/dev/null || need+=(python3)
# The schema fuzzer (scripts/schema-fuzz.sh) installs schemathesis into a venv.
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
command -v dockerd >/dev/null || need+=(docker.io)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
for pkg in libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev \
  libsoup-3.0-dev libjavascriptcoregtk-4.1-dev libxdo-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xauth >/dev/null || need+=(xauth)
command -v dbus-daemon >/dev/null || need+=(dbus)
command -v dbus-send >/dev/null || need+=(dbus-bin)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v trayer >/dev/null || need+=(trayer)
command -v xwininfo >/dev/null || need+=(x11-utils)
command -v import >/dev/null || need+=(imagemagick)
/usr/bin/python3 -c 'import Xlib' 2>/dev/null || need+=(python3-xlib)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! claude --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION "; then
  echo "installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
  $SUDO npm install -g --no-fund --no-audit "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >/dev/null
fi
claude --version

# The Telegram Bot API emulator the bot tests drive (through a proxy in the tests).
TELEGRAM_TEST_API_VERSION=4.2.1
if [ ! -f "$(npm root -g)/telegram-test-api/package.json" ] || \
   ! grep -q "\"version\": \"$TELEGRAM_TEST_API_VERSION\"" "$(npm root -g)/telegram-test-api/package.json"; then
  echo "installing telegram-test-api@$TELEGRAM_TEST_API_VERSION"
  $SUDO npm install -g --no-fund --no-audit "telegram-test-api@$TELEGRAM_TEST_API_VERSION" >/dev/null
fi

# A Docker engine for the sandbox tests: no bridge, no iptables, the vfs storage driver
# (works inside containers and VMs alike).
if ! docker version >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "starting dockerd"
    nohup dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
      >/tmp/parachute-test-dockerd.log 2>&1 &
    echo $! > /run/parachute-test-dockerd.pid
    for _ in $(seq 1 50); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
    docker version --format 'docker engine {{.Server.Version}}' || {
      echo "dockerd did not start; see /tmp/parachute-test-dockerd.log" >&2; exit 1; }
  else
    echo "warning: no Docker engine answers; start one (the sandbox tests need it)" >&2
  fi
fi
