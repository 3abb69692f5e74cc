# e2e/libvirt/standard, sourced by libvirt.sh once the domain runs and its agent answers: standard
# checkpoints (memory state) of a libvirt domain through libvirt's own snapshot API, applied and
# resumed with libvirt's restore, while sp-workload writes records to data0.
: "${SP_STILLPOINT:?}" "${SP_WORKLOAD:?}"
GUESTPY=$(cd "$(dirname "$0")/../guest" && pwd)
SP() { "${AS[@]}" env STILLPOINT_STORE="$T/store.db" "$SP_STILLPOINT" "$@"; }
cps() { SP --json -q checkpoint list web; }
top_image() { V domblklist sptest | awk '$1 == "vda" {print $2}'; }
snapshots() { V snapshot-list sptest --name | sed '/^$/d' | sort | tr '\n' ' '; }
# One sp-workload control command (report, wait N MS) on the domain's workload channel.
wl() {
  python3 -c 'import json, sys; sys.path.insert(0, sys.argv[1]); from spguest import WorkloadClient
print(json.dumps(WorkloadClient(sys.argv[2]).command(sys.argv[3])))' "$GUESTPY" "$T/sptest-workload.sock" "$1"
}
wl_field() { wl report | jq -r ".$1"; }

SP -q vm add web --driver libvirt --domain sptest --uri "$URI" || fail "vm add"
wl "wait 20 60000" >/dev/null || fail "the workload does not write"
first=$(wl_field first)
before=$(wl_field last)
out=$(SP checkpoint create web --type standard --name S 2>&1) || fail "standard checkpoint: $out"
at_s=$(wl_field last)
check "a standard checkpoint through libvirt" grep -q "through the libvirt driver (a standard checkpoint)" <<<"$out"
state=$(cps | jq -r '.checkpoints[0].state')
check "it is recorded standard, with its saved state ($(stat -c %s "$state" 2>/dev/null) bytes)" \
  [ "$(cps | jq -r '.checkpoints[0].type')" = standard -a -s "$state" ]
overlay=$(cps | jq -r '.checkpoints[0].disks[0].overlay')
snap=$(basename "$overlay" .qcow2)
check "libvirt's snapshot holds the memory in the state file" \
  bash -c "${AS[*]} virsh -q -c $URI snapshot-dumpxml sptest $snap | grep -qF \"<memory snapshot='external' file='$state'/>\""
check "the domain runs on, on the new overlay" [ "$(V domstate sptest)|$(top_image)" = "running|$overlay" ]
wl "wait $((at_s + 40)) 60000" >/dev/null || fail "the workload stopped"
later=$(wl_field last)

out=$(SP checkpoint apply web S --force 2>&1) || fail "apply: $out"
check "apply destroyed the domain" [ "$(V domstate sptest)" = "shut off" ]
check "... and says how to resume it" grep -q "checkpoint resume web" <<<"$out"
applied=$(top_image)
check "... redefined on a new overlay on the checkpoint's image" \
  bash -c "[ '$applied' != '$overlay' ] && qemu-img info -U --output=json '$applied' | jq -e '.\"backing-filename\" == \"$T/data0.qcow2\"' >/dev/null"
out=$(SP checkpoint resume web 2>&1) || fail "resume: $out"
check "resume restored the domain from the saved memory" [ "$(V domstate sptest)" = running ]
check "... on the applied overlay" [ "$(top_image)" = "$applied" ]
for _ in $(seq 100); do wl report >/dev/null 2>&1 && break; sleep 0.2; done
rep=$(wl report) || fail "the workload does not answer after the restore"
check "it is the same workload process, not a new boot" [ "$(jq -r .first <<<"$rep")" = "$first" ]
last=$(jq -r .last <<<"$rep")
# (It writes on from the saved point as soon as it runs: $last is that point plus a few seconds.)
check "its counter went back to the checkpoint's instant ($before <= $last < $later)" \
  [ "$before" -le "$last" -a "$last" -lt "$later" ]
wl "wait $((last + 20)) 60000" >/dev/null || fail "the restored workload does not write"
check "and it keeps writing" [ "$(wl_field last)" -ge $((last + 20)) ]
out=$(SP checkpoint resume web 2>&1) && fail "a second resume went ahead"
check "a second resume is refused (the disk was written since)" grep -q "written since checkpoint 'S' was applied" <<<"$out"

# Killed right after libvirt's snapshot: the next run records it, standard, its state kept.
"${AS[@]}" env STILLPOINT_STORE="$T/store.db" STILLPOINT_TEST_CRASH_AT=state-saved \
  "$SP_STILLPOINT" -q checkpoint create web --type standard --name K >/dev/null 2>&1 && fail "not killed"
SP -q vm recover web || fail "vm recover"
state_k=$(cps | jq -r '.checkpoints[] | select(.name == "K") | .state')
check "after kill -9: recorded standard with its state" \
  [ "$(cps | jq -r '.checkpoints[] | select(.name == "K") | .type')" = standard -a -s "$state_k" ]
check "the domain runs" [ "$(V domstate sptest)" = running ]

# Deleting standard checkpoints: merged through libvirt, their state files and snapshots gone.
SP -q checkpoint delete web K || fail "delete K"
SP -q checkpoint delete web S || fail "delete S"
check "deleting them removed their state files" [ ! -e "$state" -a ! -e "$state_k" ]
check "... and libvirt's snapshots; the domain writes to data0 again" \
  [ "$(snapshots)|$(top_image)" = "|$T/data0.qcow2" ]
echo "PASS e2e/libvirt/standard"
