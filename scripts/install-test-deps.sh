#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: iproute2 and curl for
# the remote-peer tests (test hosts in network namespaces), the D-Bus headers the
# keyring crate builds against, bubblewrap and socat for the OS sandbox of the `vault`
# trust level, python3 for its escape tests, and the pinned Claude Code CLI from npm.
# Idempotent: skips what is already there.
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
