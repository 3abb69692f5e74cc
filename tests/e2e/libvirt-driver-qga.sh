# e2e/libvirt/driver-qga, sourced by libvirt.sh once domain spqga runs with stock qemu-ga (and
# sp-workload writing): the libvirt driver falls back to qemu-ga's standard freeze through
# libvirt's passthrough, and the checkpoint is still application-consistent.
: "${SP_STILLPOINT:?}" "${SP_WORKLOAD:?}"
SPGUEST=$(dirname "$0")/../guest/spguest.py
SP() { "${AS[@]}" env STILLPOINT_STORE="$T/store.db" "$SP_STILLPOINT" "$@"; }
status() { V qemu-agent-command spqga '{"execute":"guest-fsfreeze-status"}' | jq -r .return; }
cps() { SP --json -q checkpoint list qga; }

SP -q vm add qga --driver libvirt --domain spqga --uri "$URI" || fail "vm add"
sleep 1
out=$(SP checkpoint create qga --name first 2>&1) || fail "checkpoint create: $out"
check "libvirt's passthrough reaches qemu-ga: the standard freeze" \
  grep -q "qemu-ga (standard fsfreeze)" <<<"$out"
check "the checkpoint is application-consistent" \
  [ "$(cps | jq -r '.checkpoints[0].consistency')" = application ]
check "the guest is thawed" [ "$(status)" = thawed ]
qemu-img convert -U -O raw "$T/data0.qcow2" "$T/check.raw"
check "the frozen image is clean ext4" bash -c "e2fsck -fn '$T/check.raw' >/dev/null 2>&1"
rm -f "$T/check.raw"
report=$(python3 "$SPGUEST" check-image "$T/data0.qcow2" --file /records --workload "$SP_WORKLOAD") ||
  fail "record check: $report"
check "... holding whole records ($(jq -r .valid <<<"$report"))" jq -e '.ok and .valid > 0' <<<"$report"
SP -q checkpoint delete qga first || fail "delete"
check "merged away: libvirt writes to data0 again, no snapshot left" \
  [ "$(V domblklist spqga | awk '$1 == "vda" {print $2}')|$(V snapshot-list spqga --name | sed '/^$/d')" = "$T/data0.qcow2|" ]
echo "PASS e2e/libvirt/driver-qga"
