#!/usr/bin/env bash
# make run: start our rpc.statd in the foreground, with debug logging, on a
# throwaway state directory and database, next to a local rpcbind (started
# here if none runs). It installs nothing. Ctrl-C (or SIGTERM to this
# script) stops it; on every way out it removes its directory and stops the
# rpcbind it started.
set -euo pipefail
bin=$(readlink -f "${1:-./nfsrecover}")
[ "$(id -u)" = 0 ] || { echo "make run: run as root: rpc.statd binds privileged ports and registers with rpcbind" >&2; exit 1; }
[ -x /usr/sbin/rpcbind ] || { echo "make run: needs rpcbind (apt-get install rpcbind); make test installs it" >&2; exit 1; }
work=$(mktemp -d /tmp/nfsrecover-statd.XXXXXX)
rpcbind_pid= statd_pid=
cleanup() {
  [ -n "$statd_pid" ] && kill "$statd_pid" 2>/dev/null && wait "$statd_pid" 2>/dev/null
  [ -n "$rpcbind_pid" ] && kill "$rpcbind_pid" 2>/dev/null && wait "$rpcbind_pid" 2>/dev/null
  rm -rf "$work"
  echo "make run: stopped; removed $work${rpcbind_pid:+ and stopped the rpcbind it started}" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$work/sm" "$work/sm.bak"
ln -s "$bin" "$work/rpc.statd"
if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
  mkdir -p /run/rpcbind; /usr/sbin/rpcbind -f -w & rpcbind_pid=$!
  for _ in $(seq 50); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.1; done
fi
cat <<MSG
nfsrecover rpc.statd on a throwaway state directory: $work
Talk to it from another terminal:
  rpcinfo -p 127.0.0.1                 # program 100024 "status" on udp, tcp, udp6, tcp6
  rpcinfo -u 127.0.0.1 status          # SM_NULL over UDP (-t: TCP)
  $bin db dump --db $work/nfsrecover.db   # the monitor list
  sm-notify -d -f -P <dir with sm/127.0.0.1>   # a peer's reboot notice
Stop it with Ctrl-C (or kill $$); the directory${rpcbind_pid:+ and the rpcbind started here} go with it.
MSG
"$work/rpc.statd" -F -d -L -P "$work" --db "$work/nfsrecover.db" --pid-file "$work/rpc.statd.pid" --nsm-state-file "$work/nsm_local_state" &
statd_pid=$!
wait "$statd_pid"
