#!/usr/bin/env bash
# Side-by-side benchmark of nfsrecover's nfsdcltrack and the real one, in
# one run: per-exec latency (median of N) and gracedone on 10k/100k clients.
# Usage: bench/cltrack.sh [./nfsrecover] [extra cltrack-bench flags]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-./nfsrecover}; shift || true
[ -x "$bin" ] || make build
[ -x /usr/sbin/nfsdcltrack ] || ./scripts/test-deps.sh
exec go run ./bench/cltrack -ours "$bin" -n 200 "$@"
