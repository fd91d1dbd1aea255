#!/usr/bin/env bash
# The package version from git: a tag vX.Y.Z gives X.Y.Z (plus ~N.gSHA
# past it); no tag gives 0.0~gitYYYYMMDD.SHA of the commit. Never empty.
set -euo pipefail
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
  echo "${d#v}" | sed 's/-\([0-9]*\)-g/~\1.g/'
  exit 0
fi
echo "0.0~git$(git log -1 --date=format:%Y%m%d --format=%cd).$(git rev-parse --short=7 HEAD)"
