#!/usr/bin/env bash
# make run: start our rpc.statd in the foreground, with debug logging, on a
# throwaway state directory and database, next to a local rpcbind (started
# here if none runs). Ctrl-C stops it; it unregisters itself.
set -euo pipefail
bin=$(readlink -f "${1:-./nfsrecover}")
[ "$(id -u)" = 0 ] || { echo "run as root: rpc.statd binds privileged ports and registers with rpcbind" >&2; exit 1; }
./scripts/test-deps.sh
work=$(mktemp -d /tmp/nfsrecover-statd.XXXXXX)
mkdir -p "$work/sm" "$work/sm.bak"
ln -s "$bin" "$work/rpc.statd"
if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
  mkdir -p /run/rpcbind; /usr/sbin/rpcbind -f -w & rpcbind_pid=$!
  trap 'kill $rpcbind_pid 2>/dev/null' EXIT
  sleep 0.5
fi
cat <<MSG
nfsrecover rpc.statd on a throwaway state directory: $work
Talk to it from another terminal:
  rpcinfo -p 127.0.0.1                 # program 100024 "status" on udp, tcp, udp6, tcp6
  rpcinfo -u 127.0.0.1 status          # SM_NULL over UDP (-t: TCP)
  $bin db dump --db $work/nfsrecover.db   # the monitor list
  sm-notify -d -f -P <dir with sm/127.0.0.1>   # a peer's reboot notice
Ctrl-C stops it.
MSG
exec "$work/rpc.statd" -F -d -L -P "$work" --db "$work/nfsrecover.db" --pid-file "$work/rpc.statd.pid" --nsm-state-file "$work/nsm_local_state"
