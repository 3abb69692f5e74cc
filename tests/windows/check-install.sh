#!/bin/sh
# The Windows tree's installer layout: the exe, the provider DLL and README-windows.md,
# side by side (the agent finds the DLL next to itself).
#   check-install.sh CMAKE WINDOWS_BUILD_DIR SCRATCH_DIR
set -eu
cmake=$1 tree=$2 dest=$3
rm -rf "$dest"
"$cmake" --install "$tree" --prefix "$dest" >/dev/null
# Other components may install their own files; ours must be these, at the top, and no test
# program may be installed.
have=$(cd "$dest" && ls -1 | grep -E '^(README-windows\.md|.*\.(exe|dll))$' | sort | tr '\n' ' ')
want="README-windows.md stillpoint-agent.exe stillpoint-vss-provider.dll "
if [ "$have" != "$want" ]; then
  echo "install layout: expected '$want', got '$have'" >&2
  exit 1
fi
echo "install layout ok: $have"
