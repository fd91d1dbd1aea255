#!/usr/bin/env bash
# make package-test: build the .deb, install it on this machine, check that
# it took over nfs-utils' programs (dpkg-divert) and works, purge it, and
# check that the originals are back byte for byte. Run apart from the Go
# tests, which use the real tools as oracles. Needs root and dpkg; under
# CI=true their absence is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null; then
  [ "${CI:-}" = true ] && fail "needs root and dpkg"
  echo "package-test: skipped (needs root and dpkg)" >&2; exit 0
fi
progs="/sbin/rpc.statd /sbin/sm-notify /sbin/nfsdcltrack /usr/sbin/nfsdcld"
installed() { dpkg-query -W -f='${Status}' nfsrecover 2>/dev/null | grep -qv 'not-installed'; }
installed && fail "nfsrecover is already installed here; not touching it"
out=$(mktemp -d); sums=$out/orig.sums
sha256sum $progs > "$sums"
cleanup() {
  installed && dpkg -P nfsrecover >/dev/null 2>&1
  sha256sum --quiet -c "$sums" || echo "package-test: WARNING: originals differ after cleanup" >&2
  rm -rf "$out"
}
trap cleanup EXIT
./scripts/packages.sh ./nfsrecover "$out" >/dev/null
deb=$(ls "$out"/nfsrecover_*.deb)
dpkg-deb -f "$deb" Version | grep -q '^[0-9]' || fail "package version $(dpkg-deb -f "$deb" Version) is not from git"
dpkg -i "$deb" >/dev/null || fail "dpkg -i"

for p in $progs; do
  "$p" --version | grep -q nfsrecover || fail "$p is not ours: $("$p" --version 2>&1 | head -1)"
  [ "$(dpkg-divert --listpackage "$p")" = nfsrecover ] || fail "$p is not diverted by nfsrecover"
  [ -x "$p.nfs-utils" ] || fail "$p.nfs-utils (the original) is missing"
done
grep -q "$(sha256sum < /sbin/rpc.statd.nfs-utils | cut -d' ' -f1)" "$sums" || fail "the diverted rpc.statd is not the original"
[ -f /sbin/sm-notify ] && [ ! -L /sbin/sm-notify ] || fail "sm-notify must be a file of its own (killall by path)"
getent passwd statd >/dev/null || fail "no statd user"
[ "$(stat -c %U /var/lib/nfs/sm)" = statd ] || fail "/var/lib/nfs/sm is not owned by statd"
zcat /usr/share/man/man8/nfsrecover-cld.8.gz | grep -q 'nfsdcld' || fail "man page nfsrecover-cld(8)"
[ -f /usr/share/doc/nfsrecover/copyright ] || fail "no copyright file"

dpkg -P nfsrecover >/dev/null || fail "dpkg -P"
dpkg-divert --list | grep -q nfsrecover && fail "diversions left after purge"
sha256sum --quiet -c "$sums" || fail "the originals are not back"
[ ! -e /usr/sbin/nfsrecover ] || fail "/usr/sbin/nfsrecover left after purge"
echo "package-test: ok: $(basename "$deb") installed, diverted nfs-utils' programs, purged, originals restored"
