#!/usr/bin/env bash
# Debian's Chromium for the playground's browser tests (tests/browser): Playwright (a dev extra)
# drives /usr/bin/chromium and never downloads a browser. A no-op when it is installed.
# As root (CI) it is installed with apt-get; otherwise this says how, and the browser tests skip
# with that reason (under CI=true they fail instead).
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: $CHROMIUM missing and no apt-get here; install Chromium for tests/browser" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "note: $CHROMIUM missing; run: sudo apt-get install chromium (for tests/browser)" >&2
  [ "${CI:-}" != "true" ] || exit 1
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
"$CHROMIUM" --version
