#!/bin/sh
# R1 Coder's GPU check, for a Linux x64 machine with neither a network nor Node (README.txt):
#
#   ./run.sh [--tiny] [--cpu] [--provider LIST] [--work DIR] [--cuda-libs DIR]
#            [--prompts 128,1024,4096] [--new-tokens N] [--timeout S]
#
# Builds random-weight q4f16 models of DeepSeek-R1-Distill-Qwen-1.5B's shapes (the onnx-community
# and onnxruntime-genai layouts; --tiny: a tiny model, under a minute), runs `r1 info` and the
# decode / time-to-first-token benchmark on WebGPU and CUDA (--cpu: the CPU too), and prints one
# JSON line on stdout. Progress goes to stderr. Everything it needs is in this folder.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) echo "run.sh: this archive is for Linux x64; this is $(uname -s) $(uname -m)." >&2; exit 1 ;;
esac
# --no-js-float16array: onnxruntime-node 1.30's binding reads a Float16Array (a global since Node 23)
# as 0 bytes, so every float16 input fails ("not enough space: expected N, got 0";
# microsoft/onnxruntime PR #32323). Without the global, float16 tensors hold a Uint16Array as on
# Node 20 and 22. The children (r1 info, the benchmark) get the same flag.
exec "$here/node/bin/node" --no-js-float16array "$here/app/gpu-check.js" "$@"
