#!/usr/bin/env bash
# Side-by-side benchmark of nfsrecover's rpc.statd and the real one, in one
# run: SM_MON rates (1 and 8 clients, and with 100,000 monitored peers),
# start-to-ready time and RSS, with ratios. Needs root, rpcbind, nfs-common.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-./nfsrecover}; shift || true
[ -x "$bin" ] || make build
./scripts/test-deps.sh
if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
  mkdir -p /run/rpcbind; /usr/sbin/rpcbind -f -w & trap 'kill $!' EXIT; sleep 0.5
fi
go run ./bench/statd -ours "$bin" "$@"
