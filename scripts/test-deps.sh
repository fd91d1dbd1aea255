#!/usr/bin/env bash
# Installs the real tools the differential tests compare against and what
# the tests need to run (FUSE for the power-cut and pipefs tests, systemd-analyze
# for the units, qemu-user for the
# big-endian run). In CI (CI=true) failing to get them is an error;
# elsewhere the tests that need them skip with a message.
set -euo pipefail
need=()
command -v /usr/sbin/nfsdcltrack >/dev/null 2>&1 || need+=(nfs-kernel-server)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
[ -x /usr/sbin/rpcbind ] || need+=(rpcbind)
command -v qemu-s390x-static >/dev/null 2>&1 || need+=(qemu-user-static)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
command -v nfsconf >/dev/null 2>&1 || need+=(nfs-common)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
command -v killall >/dev/null 2>&1 || need+=(psmisc)
[ -x /usr/sbin/rpc.statd ] || need+=(nfs-common)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "test-deps: not root, cannot install ${need[*]}; oracle tests will skip" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi
echo "test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq --no-install-recommends $(printf "%s\n" "${need[@]}" | sort -u) </dev/null >/dev/null
