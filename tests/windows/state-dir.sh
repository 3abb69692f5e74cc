#!/bin/sh
# Prepares, inside the wine prefix's C: drive, what another local user could have left where the
# agent makes its state directory, then runs test-state-dir.exe on it (under wine-run.sh).
#   state-dir.sh WINE_RUN PREFIX_DIR SECONDS TEST_EXE
# A directory owned by another user needs chown: run as root (the suite does).
set -eu
winerun=$1 prefix=$2 seconds=$3 exe=$4
if [ "$(id -u)" -ne 0 ]; then
  echo "state-dir.sh: must run as root (it chowns a directory to another user)" >&2
  exit 1
fi
name=sp-state-test-$$
base=$prefix/drive_c/$name
trap 'rm -rf "$base"' EXIT
mkdir -p "$base/fresh" "$base/readable/stillpoint" "$base/other/stillpoint" \
  "$base/junction" "$base/target" "$base/world/stillpoint" "$base/loglink/stillpoint" \
  "$base/hardlink/stillpoint"
chmod 0755 "$base/readable/stillpoint"
chown nobody: "$base/other/stillpoint"
ln -s ../target "$base/junction/stillpoint"
chmod 0777 "$base/world/stillpoint"
printf 'victim\n' >"$base/victim.txt"
printf 'victim\n' >"$base/victim2.txt"
chmod 0700 "$base/loglink/stillpoint" "$base/hardlink/stillpoint"
ln -s ../../victim.txt "$base/loglink/stillpoint/agent.log"
ln "$base/victim2.txt" "$base/hardlink/stillpoint/agent.log"
"$winerun" "$prefix" "$seconds" "$exe" "C:\\$name"
