#!/usr/bin/env bash
# Installs the system packages R1 Coder's build and tests need, on Debian/Ubuntu, then the npm
# dependencies. Idempotent: packages already present are not reinstalled.
#   chromium                       headless browser for the webview and end-to-end tests
#   libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config
#                                  native modules of code-server (the real VS Code the e2e tests use)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: please install these packages with your system's package manager: ${missing[*]}" >&2
    exit 1
  fi
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# `npm ci` when the lock file and node_modules disagree (or node_modules is missing).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
