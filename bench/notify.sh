#!/usr/bin/env bash
# Side-by-side benchmark of nfsrecover's sm-notify and the real one, in one
# run: time to notify 1,000 and 10,000 answering peers, and 1,000 with 10%
# silent, inside a network namespace. Needs root and nfs-common.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-./nfsrecover}; shift || true
[ -x "$bin" ] || make build
./scripts/test-deps.sh
go run ./bench/notify -ours "$bin" "$@"
