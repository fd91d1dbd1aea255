#!/usr/bin/env bash
# Runs the tests of the code that reads and writes native-byte-order files
# (FreeBSD's stable restart file, the store, the cld pipe messages) on big-endian linux/s390x
# under qemu-user. FreeBSD runs on big-endian powerpc64; this host is
# little-endian, so this is where the second byte order is tested.
set -euo pipefail
go=${GO:-go}
qemu=$(command -v qemu-s390x-static || command -v qemu-s390x || true)
if [ -z "$qemu" ]; then
  echo "bigendian: qemu-s390x not found (scripts/test-deps.sh installs qemu-user-static)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for pkg in ./pkg/stablerestart ./pkg/store ./pkg/cld ./applets/stablerestart; do
  bin=$tmp/$(basename "$pkg").test
  GOOS=linux GOARCH=s390x CGO_ENABLED=0 "$go" test -c -tags "${TAGS:-urfave_cli_no_docs}" -o "$bin" "$pkg"
  echo "bigendian: $pkg on s390x" >&2
  (cd "$pkg" && "$qemu" "$bin" -test.count=1) || { echo "bigendian: $pkg failed on s390x" >&2; exit 1; }
done
