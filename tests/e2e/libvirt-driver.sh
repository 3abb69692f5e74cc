# e2e/libvirt/driver, sourced by libvirt.sh once the domain runs and its agent answers: stillpoint's
# libvirt driver against the real session libvirtd, while sp-workload writes records to data0.
: "${SP_STILLPOINT:?}" "${SP_WORKLOAD:?}"
SPGUEST=$(dirname "$0")/../guest/spguest.py
SP() { "${AS[@]}" env STILLPOINT_STORE="$T/store.db" "$SP_STILLPOINT" "$@"; }
status() { V qemu-agent-command sptest '{"execute":"guest-fsfreeze-status"}' | jq -r .return; }
top_image() { V domblklist sptest | awk '$1 == "vda" {print $2}'; }
snapshots() { V snapshot-list sptest --name | sed '/^$/d' | sort | tr '\n' ' '; }
cps() { SP --json -q checkpoint list web; }
records_ok() { # IMAGE: e2fsck-clean ext4 whose /records are whole, valid records; prints count
  local image=$1 raw=$T/check.raw report
  qemu-img convert -U -O raw "$image" "$raw"
  e2fsck -fn "$raw" >/dev/null 2>&1 || { rm -f "$raw"; return 1; }
  rm -f "$raw"
  report=$(python3 "$SPGUEST" check-image "$image" --file /records --workload "$SP_WORKLOAD") ||
    return 1
  jq -e .ok <<<"$report" >/dev/null && jq -r .valid <<<"$report"
}

out=$(SP vm add web --driver libvirt --domain sptest --uri "$URI" 2>&1) || fail "vm add: $out"
check "vm add --driver libvirt registers the domain and lists its disk" \
  grep -qF "disk vda: $T/data0.qcow2 (qcow2, serial data0)" <<<"$out"
out=$(SP vm add bad --driver libvirt --domain sptest --qmp /x 2>&1) && fail "vm add took --qmp"
check "vm add refuses --qmp with the libvirt driver" grep -q "libvirt owns" <<<"$out"
[ "$(SP --json vm list | jq -r '.[0]."libvirt-domain"')" = sptest ] || fail "vm list names the domain"

sleep 1 # some records before the first checkpoint
out=$(SP checkpoint create web --name first 2>&1) || fail "checkpoint create: $out"
check "the checkpoint went through libvirt's agent channel, leased" \
  grep -q "through libvirt (domain 'sptest')" <<<"$out"
check "it is application-consistent" grep -q "application-consistent" <<<"$out"
check "the guest is thawed" [ "$(status)" = thawed ]
overlay1=$(cps | jq -r '.checkpoints[0].disks[0].overlay')
check "libvirt's domain writes to the checkpoint's overlay now" [ "$(top_image)" = "$overlay1" ]
snap1=$(basename "$overlay1" .qcow2)
check "libvirt lists the checkpoint as its snapshot" [ "$(snapshots)" = "$snap1 " ]
check "libvirt's snapshot carries the checkpoint's name" \
  bash -c "${AS[*]} virsh -q -c $URI snapshot-dumpxml sptest $snap1 | grep -q '<description>first</description>'"
n1=$(records_ok "$T/data0.qcow2") || fail "the frozen image is not clean or its records are torn"
check "the frozen image is clean ext4 holding $n1 whole records" [ "$n1" -gt 0 ]

sleep 1
SP -q checkpoint create web --name second >/dev/null || fail "second checkpoint"
overlay2=$(cps | jq -r '.checkpoints[] | select(.name == "second") | .disks[0].overlay')
snap2=$(basename "$overlay2" .qcow2)
n2=$(records_ok "$overlay1") || fail "the second frozen image is not clean"
check "the second checkpoint holds more records ($n2 > $n1)" [ "$n2" -gt "$n1" ]
check "libvirt lists both snapshots" [ "$(snapshots)" = "$(printf '%s\n' "$snap1" "$snap2" | sort | tr '\n' ' ')" ]

"${AS[@]}" mkdir "$T/export"
SP -q checkpoint export web second "$T/export" --format qcow2 || fail "export"
ne=$(records_ok "$T/export/web-vda.qcow2") || fail "the exported disk is not clean"
check "export: a standalone copy of the checkpoint ($ne = $n2 records, no backing file)" \
  bash -c "[ '$ne' = '$n2' ] && ! qemu-img info --output=json '$T/export/web-vda.qcow2' | jq -e '.\"backing-filename\"' >/dev/null"
SP -q checkpoint rename web second "second (renamed)" || fail "rename"
check "rename: libvirt's snapshot takes the new name as its description" \
  bash -c "${AS[*]} virsh -q -c $URI snapshot-dumpxml sptest $snap2 | grep -qF '<description>second (renamed)</description>'"
out=$(SP checkpoint apply web first 2>&1) && fail "apply went ahead while the domain runs"
check "apply without --force refuses a running domain" grep -q "is running; shut it down" <<<"$out"

# A snapshot that fails inside the window: rolled back, nothing left, the guest thawed.
out=$("${AS[@]}" env STILLPOINT_STORE="$T/store.db" STILLPOINT_TEST_FAIL_AT=transaction \
      "$SP_STILLPOINT" checkpoint create web --name broken 2>&1) && fail "a failed snapshot succeeded"
check "a failed snapshot is reported ($(tail -1 <<<"$out" | cut -c1-80)...)" grep -q "test fault" <<<"$out"
check "... the guest is thawed" [ "$(status)" = thawed ]
check "... no checkpoint recorded" [ "$(cps | jq '.checkpoints | length')" = 2 ]
check "... libvirt's list is unchanged" [ "$(snapshots)" = "$(printf '%s\n' "$snap1" "$snap2" | sort | tr '\n' ' ')" ]
check "... no overlay file left" [ "$(ls "$T" | grep -c '^web-vda-.*\.qcow2$')" = 2 ]

# Delete = merge. The inner one first: overlay1 into data0 while the domain writes to overlay2.
# Killed once planned (journaled, nothing merged yet): the next run does the merge.
"${AS[@]}" env STILLPOINT_STORE="$T/store.db" STILLPOINT_TEST_CRASH_AT=planned \
  "$SP_STILLPOINT" -q checkpoint delete web first >/dev/null 2>&1 && fail "delete not killed"
out=$(SP vm recover web 2>&1) || fail "recovering the delete of first: $out"
check "a delete killed when planned is finished by recovery through libvirt's block commit" \
  grep -q "through libvirt" <<<"$out"
check "... the merged overlay is gone" [ ! -e "$overlay1" ]
check "... libvirt's chain is overlay2 -> data0" \
  bash -c "qemu-img info -U --output=json '$overlay2' | jq -e '.\"backing-filename\" == \"$T/data0.qcow2\"' >/dev/null"
check "... libvirt's domain XML agrees" \
  bash -c "! ${AS[*]} virsh -q -c $URI dumpxml sptest | grep -q '$overlay1'"
check "... libvirt lists only the second snapshot" [ "$(snapshots)" = "$snap2 " ]
check "... one checkpoint left, resting on data0" \
  [ "$(cps | jq -r '.checkpoints[0].disks[0].image')" = "$T/data0.qcow2" ]
n2b=$(records_ok "$T/data0.qcow2") || fail "data0 after the merge is not clean"
check "data0 now holds the second checkpoint's records ($n2b = $n2)" [ "$n2b" = "$n2" ]

# The current one: the active layer merges down and libvirt pivots the domain onto data0.
out=$(SP checkpoint delete web "second (renamed)" 2>&1) || fail "delete second: $out"
check "delete of the current checkpoint merged the active layer" grep -q "active layer" <<<"$out"
check "... libvirt's domain writes to data0 again" [ "$(top_image)" = "$T/data0.qcow2" ]
check "... the overlay is gone" [ ! -e "$overlay2" ]
check "... libvirt lists no snapshot" [ -z "$(snapshots)" ]
check "... no checkpoint left" [ "$(cps | jq '.checkpoints | length')" = 0 ]
check "the guest stays thawed" [ "$(status)" = thawed ]

# Killed right after libvirt's snapshot, the guest still frozen: the next run asks libvirt's
# chain whether the snapshot took effect, thaws the guest and records the checkpoint.
"${AS[@]}" env STILLPOINT_STORE="$T/store.db" STILLPOINT_TEST_CRASH_AT=snapshotted \
  "$SP_STILLPOINT" -q checkpoint create web --name killed >/dev/null 2>&1 && fail "not killed"
out=$(SP vm recover web 2>&1) || fail "vm recover: $out"
check "after kill -9: the checkpoint is recorded" \
  [ "$(cps | jq -r '[.checkpoints[].name] | join(",")')" = killed ]
check "... the guest is thawed" [ "$(status)" = thawed ]
overlay3=$(cps | jq -r '.checkpoints[0].disks[0].overlay')
check "... libvirt writes to its overlay and lists its snapshot" \
  [ "$(top_image)|$(snapshots)" = "$overlay3|$(basename "$overlay3" .qcow2) " ]
# Its delete killed after libvirt's block commit and pivot, before the record: the next run
# finishes it (record, files, libvirt's snapshot entry).
"${AS[@]}" env STILLPOINT_STORE="$T/store.db" STILLPOINT_TEST_CRASH_AT=merged:vda \
  "$SP_STILLPOINT" -q checkpoint delete web killed >/dev/null 2>&1 && fail "delete not killed"
check "delete killed after the merge: libvirt already writes to data0" \
  [ "$(top_image)" = "$T/data0.qcow2" ]
SP -q vm recover web || fail "vm recover after the killed delete"
check "... recovery finished it: no checkpoint, no snapshot entry, no overlay file" \
  [ "$(cps | jq '.checkpoints | length')|$(snapshots)|$(ls "$overlay3" 2>/dev/null)" = "0||" ]
# A backup session: libvirt's own backup job, started in the frozen window, read over NBD from
# the domain's QEMU; libvirt keeps a checkpoint for the next incremental (e2e/libvirt/incremental).
out=$(SP --json -q backup begin web 2>"$T/err") || fail "backup begin: $(cat "$T/err")"
uri=$(jq -r '.disks[0]."nbd-uri"' <<<"$out")
check "backup begin hands the tool an NBD URI ($uri)" grep -q "^nbd+unix:///vda?socket=/" <<<"$uri"
check "... served by libvirt's backup job, application-consistent" \
  [ "$(jq -r '.nbd.server + " " + .consistency' <<<"$out")" = "libvirt application" ]
qemu-img convert -f raw -O qcow2 "$uri" "$T/backup.qcow2" || fail "reading the backup over NBD"
nb=$(records_ok "$T/backup.qcow2") || fail "the copy read over NBD is not clean"
check "the copy read over NBD is clean ext4 holding $nb whole records" [ "$nb" -gt "$n2" ]
rm -f "$T/backup.qcow2"
SP -q backup end web || fail "backup end"
check "backup end: libvirt's job is over" bash -c "! ${AS[*]} virsh -q -c $URI backup-dumpxml sptest >/dev/null 2>&1"
check "... no snapshot was made: data0 on top, no snapshot, no checkpoint of ours" \
  [ "$(top_image)|$(snapshots)|$(cps | jq '.checkpoints | length')" = "$T/data0.qcow2||0" ]
check "... libvirt keeps the session's checkpoint for the next incremental" \
  [ "$(V checkpoint-list sptest --name | sed '/^$/d')" = "$(jq -r .bitmap <<<"$out")" ]

V domfsfreeze sptest >/dev/null || fail "domfsfreeze"
n3=$(records_ok "$T/data0.qcow2") || { V domfsthaw sptest; fail "data0 after both merges is not clean"; }
V domfsthaw sptest >/dev/null
check "nothing was lost: data0 holds every record written ($n3 > $n2)" [ "$n3" -gt "$n2" ]
# Apply: back to a checkpoint. The domain is destroyed (--force), its definition redefined onto
# a new overlay on the checkpoint's image, and the changes since are discarded.
SP -q checkpoint create web --name before-apply || fail "checkpoint before-apply"
na=$(records_ok "$T/data0.qcow2") || fail "before-apply's frozen image is not clean"
present=$(top_image)
sleep 1 # the guest writes on
out=$(SP --json checkpoint apply web before-apply --force 2>"$T/err") || fail "apply: $(cat "$T/err")"
applied=$(jq -r '.links.vda' <<<"$out")
check "apply destroyed the domain" [ "$(V domstate sptest)" = "shut off" ]
check "... and redefined it on a new overlay ($(basename "$applied"))" \
  [ "$(top_image)" = "$applied" -a "$applied" != "$present" ]
check "... resting on the checkpoint's image" \
  bash -c "qemu-img info -U --output=json '$applied' | jq -e '.\"backing-filename\" == \"$T/data0.qcow2\"' >/dev/null"
check "... the discarded present is gone" [ ! -e "$present" ]
nb=$(records_ok "$applied") || fail "the applied disk is not clean"
check "... and the disk holds exactly the checkpoint's records ($nb = $na)" [ "$nb" = "$na" ]
V start sptest >/dev/null || fail "virsh start after apply"
wait_agent sptest || fail "the applied domain does not come back"
check "the domain boots from the applied checkpoint" [ "$(top_image)" = "$applied" ]
SP -q checkpoint delete web before-apply || fail "delete before-apply"
check "... whose libvirt snapshot is found (by its name) and removed with it" \
  [ "$(top_image)|$(snapshots)" = "$T/data0.qcow2|" ]

grep -ho "tainted: [a-z-]*" "$XDG_CACHE_HOME/libvirt/qemu/log/sptest.log" 2>/dev/null | sort -u | sed "s/^/# libvirt: /" || true
# For the record: how long the agent held each freeze (libvirt's snapshot call inside it).
grep -ho "thawed .*held [0-9]* ms" "$T/sptest-console.log" | sed 's/^/# agent: /' || true
echo "PASS e2e/libvirt/driver"
