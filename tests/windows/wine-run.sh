#!/bin/sh
# Runs a Windows test binary under wine, quietly and without a display, in a private prefix,
# bounded in time. The first call (the ctest fixture "windows/wineprefix") creates the prefix;
# the fixture's cleanup ("windows/wineserver-stop") stops the prefix's wineserver.
#   wine-run.sh PREFIX_DIR SECONDS --init
#   wine-run.sh PREFIX_DIR SECONDS --stop
#   wine-run.sh PREFIX_DIR SECONDS PROGRAM [ARGS...]
#
# One persistent wineserver serves the prefix for the whole run. Left to itself, wine starts a
# wineserver that exits as soon as the prefix's last process has (-p0), after shutting down its
# services; a program started while that happens can find the server gone under it ("wine
# client error:0: recvmsg: Connection reset by peer", exit status 1). Tests start and stop
# agents one after the other and in parallel, so that window came up now and then.
set -eu
prefix=$1 seconds=$2
shift 2
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEARCH=win64
# No Mono/Gecko download dialogs, no desktop window: nothing may wait for a human.
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
unset DISPLAY WAYLAND_DISPLAY

# Starts the prefix's persistent server unless one runs: "wineserver -p" returns once it listens,
# or at once (status 2) when a server already holds the prefix's lock. The server gets no
# inherited descriptor: it would keep ctest's output pipe (or the --init lock) open for good.
persistent_server() {
  timeout "$seconds" wineserver -p </dev/null >>"$prefix.wineserver.log" 2>&1 9>&- ||
    [ $? -eq 2 ]
}

case "$1" in
--init)
  mkdir -p "$prefix"
  # The lock: two test trees (or ctest -j) must not initialize the same prefix at once.
  exec 9>"$prefix.lock"
  flock 9
  persistent_server
  # The prefix's services (services.exe, winedevice.exe, rpcss.exe, ...) start here and live as
  # long as the server, so no test program starts them: they would hold its output open for
  # ctest. A new prefix is initialized (-i); an existing one just started.
  init=-i
  [ ! -f "$prefix/system.reg" ] || init=
  timeout "$seconds" wineboot $init </dev/null >>"$prefix.wineboot.log" 2>&1 9>&- || {
    tail -20 "$prefix.wineboot.log" >&2
    exit 1
  }
  exit 0
  ;;
--stop)
  # Only this prefix's server (and with it its processes): the one the fixture started.
  [ -d "$prefix" ] || exit 0
  timeout "$seconds" wineserver -k || true
  exec timeout "$seconds" wineserver -w
  ;;
esac
persistent_server
exec timeout -k 5 "$seconds" wine "$@"
