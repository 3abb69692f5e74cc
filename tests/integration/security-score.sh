#!/bin/sh
# Usage: security-score.sh UNIT MAX — fails when systemd-analyze rates the unit's exposure above
# MAX (0.0 safest … 10.0 unsafe). Skips (77) without a systemd-analyze that knows --offline (252+).
unit=$1 max=$2
command -v systemd-analyze >/dev/null 2>&1 || { echo "no systemd-analyze: skipped"; exit 77; }
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
# A copy under the unit's own name, so the test does not depend on the build dir's path.
cp "$unit" "$dir/$(basename "$unit")" || exit 1
out=$(systemd-analyze security --offline=true --no-pager "$dir/$(basename "$unit")" 2>&1)
status=$?
echo "$out" | grep -E '✗|Overall'
score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
    echo "$out" | tail -5
    if echo "$out" | grep -qi "unrecognized option\|unknown option"; then
        echo "systemd-analyze does not know --offline: skipped"; exit 77
    fi
    echo "no exposure score (systemd-analyze exited $status)"; exit 1
fi
echo "exposure score of $(basename "$unit"): $score (allowed: at most $max)"
awk -v s="$score" -v m="$max" 'BEGIN { exit !(s + 0 <= m + 0) }' || {
    echo "the unit's exposure rose above $max: tighten it back or explain why in SECURITY.md"
    exit 1
}
