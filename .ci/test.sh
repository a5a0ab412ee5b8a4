#!/usr/bin/env bash
# The whole test suite, installing what it needs (the README's test command).
# Installs Debian's chromium + chromium-driver for the browser tests when they are
# missing, then runs every test (unit, property, integration, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "installing chromium and chromium-driver (Debian packages)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

cargo test --locked "$@"
