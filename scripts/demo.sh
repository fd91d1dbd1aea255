#!/usr/bin/env bash
# make run: exercise the cltrack applet the way the kernel does (empty
# environment, one exec per event) on a throwaway database, then show it.
set -euo pipefail
bin=$(readlink -f "${1:-./nfsrecover}")
work=$(mktemp -d /tmp/nfsrecover-demo.XXXXXX)
ln -s "$bin" "$work/nfsdcltrack"
db="$work/state/nfsrecover.db"
boot=$(date +%s)
step() {
  local env=() ; while [ "$1" != -- ]; do env+=("$1"); shift; done; shift
  set +e; env -i "${env[@]}" "$work/nfsdcltrack" -f --db "$db" --end-grace-file "$work/v4_end_grace" "$@"; local rc=$?; set -e
  printf '%-58s exit %s\n' "nfsdcltrack $* ${env[*]}" "$rc"
}
echo "nfsrecover $("$bin" --version | cut -d' ' -f2): cltrack demo in $work"
: > "$work/v4_end_grace"
step NFSDCLTRACK_GRACE_START=$boot -- init
step NFSDCLTRACK_CLIENT_HAS_SESSION=N NFSDCLTRACK_GRACE_START=$boot -- create 4c696e7578204e465376342e30
step NFSDCLTRACK_CLIENT_HAS_SESSION=Y NFSDCLTRACK_GRACE_START=$boot -- create 4c696e7578204e465376342e31
step NFSDCLTRACK_CLIENT_HAS_SESSION=N -- check 4c696e7578204e465376342e30
step NFSDCLTRACK_CLIENT_HAS_SESSION=Y -- check 0123456789
step -- gracedone "$boot"
echo
"$bin" db dump --db "$db"
echo
echo "To use it for real: nfsrecover --install -s (creates /sbin/nfsdcltrack unless nfs-utils owns it),"
echo "or point the kernel at it: echo $bin-link > /sys/module/nfsd/parameters/cltrack_prog"
echo "(a symlink named nfsdcltrack). Demo files: $work"
