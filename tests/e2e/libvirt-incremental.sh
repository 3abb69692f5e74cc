# e2e/libvirt/incremental, sourced by libvirt.sh once the domain runs and its agent answers: backup
# sessions of a libvirt domain through libvirt's checkpoint and backup API while sp-workload
# writes. Each incremental's changed extents are checked against the blocks that really changed
# (incremental_check.py); libvirt's other users see the same checkpoints: virsh's own backup
# job starts from stillpoint's, and Debian's virtnbdbackup finds it in libvirt's list.
: "${SP_STILLPOINT:?}" "${SP_WORKLOAD:?}"
HERE=$(cd "$(dirname "$0")" && pwd)
SP() { "${AS[@]}" env STILLPOINT_STORE="$T/store.db" "$SP_STILLPOINT" "$@"; }
status() { V qemu-agent-command sptest '{"execute":"guest-fsfreeze-status"}' | jq -r .return; }
checkpoints() { V checkpoint-list sptest --name | sed '/^$/d' | sort | tr '\n' ' '; }
no_job() { ! V backup-dumpxml sptest >/dev/null 2>&1; }
read_disk() { qemu-img convert -f raw -O raw "$(jq -r '.disks[0]."nbd-uri"' "$1")" "$2"; }
records_ok() { # RAW: e2fsck-clean ext4 whose /records are whole, valid records; prints count
  local report
  e2fsck -fn "$1" >/dev/null 2>&1 || return 1
  report=$(python3 "$HERE/../guest/spguest.py" check-image "$1" --file /records \
           --workload "$SP_WORKLOAD") || return 1
  jq -e .ok <<<"$report" >/dev/null && jq -r .valid <<<"$report"
}
begin() { # OUT.json [--incremental]
  local out=$1; shift
  SP --json -q backup begin web "$@" >"$out" 2>"$T/err" || fail "backup begin $*: $(cat "$T/err")"
}
changes_ok() { # BASE.raw SESSION.json CURRENT.raw: the extents against the real changes
  local report
  report=$(python3 "$HERE/incremental_check.py" "$1" "$3" "$2") || { echo "$report" >&2; return 1; }
  echo "# changes: $report"
  jq -e '."reported-bytes" < ."disk-bytes" / 2' <<<"$report" >/dev/null
}

SP -q vm add web --driver libvirt --domain sptest --uri "$URI" || fail "vm add"
sleep 1
begin "$T/s1.json"
check "first session: a full backup by libvirt's job, application-consistent" \
  jq -e '.incremental == false and .consistency == "application" and .nbd.server == "libvirt"' "$T/s1.json"
cp1=$(jq -r .bitmap "$T/s1.json")
check "libvirt lists the session's checkpoint ($cp1)" [ "$(checkpoints)" = "$cp1 " ]
check "... described with the session's name" \
  bash -c "${AS[*]} virsh -q -c $URI checkpoint-dumpxml sptest $cp1 | grep -q '<description>backup '"
read_disk "$T/s1.json" "$T/base1.raw" || fail "reading the full backup"
n1=$(records_ok "$T/base1.raw") || fail "the full backup is not clean"
check "the full backup is clean ext4 with $n1 whole records" [ "$n1" -gt 0 ]
SP -q backup end web || fail "backup end"
check "backup end ended libvirt's job" no_job
sock=$(jq -r .nbd.socket "$T/s1.json")
check "... its socket and scratch image are gone" bash -c "! ls '$sock'* 2>/dev/null"

sleep 2 # the guest writes on
begin "$T/s2.json" --incremental
check "second session: incremental since $cp1, its dirty bitmap on the export" \
  jq -e --arg cp "$cp1" '.incremental and ."since-bitmap" == $cp and
    .disks[0]."dirty-bitmap" == "qemu:dirty-bitmap:backup-vda" and .disks[0]."changed-bytes" > 0' "$T/s2.json"
read_disk "$T/s2.json" "$T/cur2.raw" || fail "reading the second backup"
check "every block the guest changed is in the reported extents; the full one plus them is the disk" \
  changes_ok "$T/base1.raw" "$T/s2.json" "$T/cur2.raw"
n2=$(records_ok "$T/cur2.raw") || fail "the second backup is not clean"
check "... which holds more records ($n2 > $n1)" [ "$n2" -gt "$n1" ]
SP -q backup end web || fail "backup end"
cp2=$(jq -r .bitmap "$T/s2.json")
check "libvirt keeps only the newest checkpoint ($cp2)" [ "$(checkpoints)" = "$cp2 " ]

# A copy that failed: its checkpoint goes, and the next incremental starts from cp2 again.
sleep 1
begin "$T/s3.json" --incremental
SP -q backup end web --failed || fail "backup end --failed"
check "end --failed deleted the session's checkpoint, kept $cp2" [ "$(checkpoints)" = "$cp2 " ]
sleep 1
begin "$T/s4.json" --incremental
check "the next incremental starts from $cp2" \
  jq -e --arg cp "$cp2" '."since-bitmap" == $cp' "$T/s4.json"
read_disk "$T/s4.json" "$T/cur4.raw" || fail "reading the fourth backup"
check "its extents cover every change since $cp2, the failed session's too" \
  changes_ok "$T/cur2.raw" "$T/s4.json" "$T/cur4.raw"
out=$(SP backup end web --keep 2>&1) && fail "--keep went ahead"
check "--keep is refused clearly (nothing of stillpoint's tree to keep)" grep -q "no checkpoint in stillpoint's tree" <<<"$out"
SP -q backup end web || fail "backup end"
cp4=$(jq -r .bitmap "$T/s4.json")

# Another libvirt tool starts from stillpoint's checkpoint: virsh's own pull backup job.
cat >"$T/vb.xml" <<XML
<domainbackup mode='pull'><incremental>$cp4</incremental>
  <server transport='unix' socket='$T/virsh-nbd.sock'/><disks><disk name='vda' backup='yes' type='file'><scratch file='$T/virsh-scratch'/></disk></disks>
</domainbackup>
XML
chown 65534 "$T/vb.xml"
sleep 1
V backup-begin sptest "$T/vb.xml" >/dev/null || fail "virsh backup-begin from $cp4"
dirty=$(qemu-img map --output=json --image-opts \
  "driver=nbd,export=vda,server.type=unix,server.path=$T/virsh-nbd.sock,x-dirty-bitmap=qemu:dirty-bitmap:backup-vda" |
  jq '[.[] | select(.data == false)] | length')
V domjobabort sptest >/dev/null || fail "virsh domjobabort"
check "virsh backup-begin --incremental $cp4 reads stillpoint's bitmap ($dirty dirty extents)" [ "$dirty" -gt 0 ]

# Debian's virtnbdbackup sees stillpoint's checkpoint in libvirt's list: it will not start its
# own chain next to one it did not make, and its copy mode (no checkpoints) reads the disk.
if command -v virtnbdbackup >/dev/null; then
  "${AS[@]}" mkdir "$T/vnb-full" "$T/vnb-copy"
  out=$("${AS[@]}" virtnbdbackup -U "$URI" -d sptest -l full -o "$T/vnb-full" 2>&1) &&
    fail "virtnbdbackup started a chain next to a foreign checkpoint"
  check "virtnbdbackup finds stillpoint's checkpoint in libvirt's list" grep -q "Foreign checkpoint found: \[$cp4\]" <<<"$out"
  "${AS[@]}" virtnbdbackup -U "$URI" -d sptest -l copy -o "$T/vnb-copy" >"$T/vnb.log" 2>&1 ||
    { cat "$T/vnb.log" >&2; fail "virtnbdbackup -l copy"; }
  "${AS[@]}" virtnbdrestore -i "$T/vnb-copy" -o "$T/vnb-restore" >>"$T/vnb.log" 2>&1 ||
    { cat "$T/vnb.log" >&2; fail "virtnbdrestore"; }
  # virtnbdrestore names the image after the disk's own file: the largest file it wrote.
  restored=$T/vnb-restore/$(ls -S "$T/vnb-restore" | head -1)
  echo "# virtnbdrestore wrote: $(ls "$T/vnb-restore" | tr '\n' ' ')"
  qemu-img convert -O raw "$restored" "$T/vnb.raw" || fail "reading virtnbdbackup's copy"
  nv=$(records_ok "$T/vnb.raw") || fail "virtnbdbackup's copy is not clean"
  check "... and its copy, next to stillpoint's checkpoint, is clean with $nv whole records" [ "$nv" -gt "$n2" ]
  check "stillpoint's checkpoint is still there" [ "$(checkpoints)" = "$cp4 " ]
else
  fail "virtnbdbackup is not installed (scripts/deps installs it)"
fi

# Killed inside the frozen window: the next command thaws the guest, ends whatever libvirt
# began, and the next incremental still starts from the last good checkpoint.
"${AS[@]}" env STILLPOINT_STORE="$T/store.db" STILLPOINT_TEST_CRASH_AT=frozen \
  "$SP_STILLPOINT" -q backup begin web --incremental >/dev/null 2>&1 && fail "not killed"
check "killed in the window: the guest is still frozen" [ "$(status)" = frozen ]
SP -q vm recover web || fail "vm recover"
check "vm recover thawed it at once (before its lease)" [ "$(status)" = thawed ]
check "... no backup job" no_job
check "... $cp4 the only checkpoint" [ "$(checkpoints)" = "$cp4 " ]
check "... the session closed on $cp4" \
  [ "$(SP --json -q backup status web | jq -r '.state + " " + .bitmap')" = "closed $cp4" ]
echo "PASS e2e/libvirt/incremental"
