#!/usr/bin/env bash
# Side-by-side benchmark of nfsrecover's nfsdcld and the real one, in one
# run, each behind its own FUSE emulation of rpc_pipefs: creates/s with 10k
# clients from 16 nfsd threads, the GraceStart stream of 100k clients, one
# create's latency (also against one nfsdcltrack exec) and peak RSS.
# Needs root, /dev/fuse, fuse3 and nfs-kernel-server (installed if missing).
# Usage: bench/cld.sh [./nfsrecover] [extra cld-bench flags]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-./nfsrecover}; shift || true
[ -x "$bin" ] || make build
[ -x /usr/sbin/nfsdcld ] && command -v fusermount3 >/dev/null || ./scripts/test-deps.sh
exec go run ./bench/cld -ours "$bin" "$@"
