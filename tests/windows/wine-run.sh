#!/bin/sh
# Runs a Windows test binary under wine, quietly and without a display, in a private prefix,
# bounded in time. The first call (the ctest fixture "windows/wineprefix") creates the prefix.
#   wine-run.sh PREFIX_DIR SECONDS --init
#   wine-run.sh PREFIX_DIR SECONDS PROGRAM [ARGS...]
set -eu
prefix=$1 seconds=$2
shift 2
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEARCH=win64
# No Mono/Gecko download dialogs, no desktop window: nothing may wait for a human.
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
unset DISPLAY WAYLAND_DISPLAY
if [ "$1" = "--init" ]; then
  mkdir -p "$prefix"
  # flock: two test trees (or ctest -j) must not initialize the same prefix at once.
  exec flock "$prefix.lock" timeout "$seconds" wineboot -i
fi
exec timeout -k 5 "$seconds" wine "$@"
