#!/usr/bin/env bash
# e2e/backup/* — backup sessions against a real QEMU (paused q35, two virtio-blk disks on qcow2) and
# sp-fake-agent. The VM writes through its own block layer (HMP qemu-io on a second monitor);
# the backup is read the way a tool reads it: over NBD (qemu-img convert from nbd+unix://) and
# the dirty bitmap through qemu-img map. Every check is on content.   backup.sh CASE
set -euo pipefail
case_name=${1:?usage: backup.sh CASE}
SP=${SP_STILLPOINT:?}
FAKE=${SP_FAKE_AGENT:?}
command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null &&
  command -v qemu-io >/dev/null && command -v jq >/dev/null \
  || { echo "SKIP: qemu-system-x86_64, qemu-img, qemu-io or jq missing"; exit 77; }

T=$(mktemp -d /tmp/sp-backup.XXXXXX)
export STILLPOINT_STORE=$T/store.db
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer"
QEMU_PID= AGENT_PID=
cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null || true
  [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL ($case_name): $*" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/qemu-test-lib.sh"
check() { local what=$1; shift; "$@" || fail "$what"; echo "ok - $what"; }


start_qemu() {
  mkdir -p -m 0755 "$T/img" # stillpoint refuses image directories others can write
  qemu-img create -q -f qcow2 "$T/img/a.qcow2" 64M
  qemu-img create -q -f qcow2 "$T/img/b.qcow2" 32M
  qemu-system-x86_64 -machine q35 -accel tcg -S -nodefaults -display none \
    -qmp "unix:$T/qmp.sock,server=on,wait=off" -qmp "unix:$T/mon.sock,server=on,wait=off" \
    -blockdev "driver=qcow2,node-name=disk0,file.driver=file,file.filename=$T/img/a.qcow2" \
    -device virtio-blk-pci,drive=disk0,id=vda,serial=SPDATA0 \
    -blockdev "driver=qcow2,node-name=disk1,file.driver=file,file.filename=$T/img/b.qcow2" \
    -device virtio-blk-pci,drive=disk1,id=vdb,serial=SPDATA1 >"$T/qemu.out" &
  QEMU_PID=$!
  wait_socket "$T/qmp.sock"; wait_socket "$T/mon.sock"
}

start_agent() {
  [ -n "$AGENT_PID" ] && { kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; }
  rm -f "$T/agent.sock"
  "$FAKE" --socket "$T/agent.sock" --log "$T/agent.log" "$@" &
  AGENT_PID=$!
  wait_socket "$T/agent.sock"
}


# io DEV "qemu-io command": the VM does it through its block layer, as a guest would.
io() {
  local out
  out=$(mon "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"qemu-io -d /machine/peripheral/$1/virtio-backend \\\"$2\\\"\"}}")
  echo "$out"
}
write() { # DEV PATTERN OFFSET LENGTH (qemu-io units: 1M, 64k)
  [ "$(io "$1" "write -P $2 $3 $4")" = '""' ] || fail "write $* failed"
}
vm_reads() { # DEV PATTERN OFFSET LENGTH: the running VM sees this data
  ! grep -q "Pattern verification failed" <<<"$(io "$1" "read -P $2 $3 $4")"
}
# copy_over_nbd URI FILE: what a backup tool does.
copy_over_nbd() { qemu-img convert -f raw -O raw "$1" "$2"; }
raw_holds() { # FILE PATTERN OFFSET LENGTH
  local out; out=$(qemu-io -r -f raw -c "read -P $2 $3 $4" "$1" 2>&1)
  grep -q "^read " <<<"$out" && ! grep -q "failed" <<<"$out"
}
n_checkpoints() { "$SP" --json checkpoint list "$1" 2>/dev/null | jq '.checkpoints | length'; }
top_images() { "$SP" --json vm disks "$1" | jq -r '[.[].image] | join(" ")'; }
no_sanitizer_reports() { ! ls "$T"/sanitizer* >/dev/null 2>&1; }

setup() {
  start_qemu; start_agent
  "$SP" -q vm add vm1 --qmp "$T/qmp.sock" --agent "$T/agent.sock"
}

case "$case_name" in
session)
  setup
  # No agent to quiesce with: no backup, and no session left behind (nor a leak: see the end).
  "$SP" -q vm add noagent --qmp "$T/qmp.sock" --agent "$T/nosuch.sock"
  check "begin without a reachable agent fails clearly and leaves no session" \
    bash -c "! '$SP' -q backup begin noagent 2>'$T/err0' && grep -q 'could not quiesce' '$T/err0' &&
             [ ! -e '$T/store.db.noagent.backup.json' ]"
  "$SP" -q vm remove noagent
  write vda 0x11 0 1M; write vdb 0x12 1M 1M
  before=$(top_images vm1)
  "$SP" --json backup begin vm1 >"$T/s.json" 2>"$T/err" || { cat "$T/err"; fail "begin"; }
  check "application-consistent, full" \
    [ "$(jq -r '"\(.consistency) \(.incremental) \(.state)"' "$T/s.json")" = "application false open" ]
  check "froze and thawed once" grep -q thaw "$T/agent.log"
  check "two disks, each with an image and an NBD URI" \
    [ "$(jq '[.disks[] | select(.image and ."nbd-uri" and .size)] | length' "$T/s.json")" = 2 ]
  check "the images named are the frozen ones" \
    [ "$(jq -r '[.disks[].image] | join(" ")' "$T/s.json")" = "$before" ]
  # The guest runs on: writes after begin do not reach the backup's view.
  write vda 0x99 0 1M
  uri=$(jq -r '.disks[] | select(.disk == "vda") | ."nbd-uri"' "$T/s.json")
  copy_over_nbd "$uri" "$T/vda.raw"
  check "NBD view holds the data at begin" raw_holds "$T/vda.raw" 0x11 0 1M
  check "NBD view is 64M" [ "$(stat -c %s "$T/vda.raw")" = 67108864 ]
  uri=$(jq -r '.disks[] | select(.disk == "vdb") | ."nbd-uri"' "$T/s.json")
  copy_over_nbd "$uri" "$T/vdb.raw"
  check "second disk over NBD too" raw_holds "$T/vdb.raw" 0x12 1M 1M
  check "the export is read-only" \
    bash -c "! qemu-io -f raw -c 'write 0 4k' '$uri' >/dev/null 2>&1"
  check "a second begin is refused while one is open" \
    bash -c "! '$SP' -q backup begin vm1 2>'$T/err2' && grep -q 'backup session open' '$T/err2'"
  "$SP" -q backup end vm1 || fail "end"
  check "chain back to its length before begin" [ "$(top_images vm1)" = "$before" ]
  check "no checkpoint left" [ "$(n_checkpoints vm1)" = 0 ]
  check "the VM kept what it wrote during the session" vm_reads vda 0x99 0 1M
  check "exports gone" [ "$(mon '{"execute":"query-block-exports"}')" = "[]" ]
  check "session closed" [ "$("$SP" --json backup status vm1 | jq -r .state)" = closed ]
  "$SP" -q backup begin vm1 >/dev/null || fail "begin again"
  "$SP" -q backup end vm1 --keep || fail "end --keep"
  check "--keep keeps the checkpoint" [ "$(n_checkpoints vm1)" = 1 ]
  check "after --keep the next incremental is a full backup (no bitmap left)" \
    [ "$("$SP" --json backup status vm1 | jq -r '.bitmap // "none"')" = none ]
  check "no sanitizer report" no_sanitizer_reports
  ;;
incremental)
  setup
  write vda 0x11 0 4M
  "$SP" -q backup begin vm1 >/dev/null || fail "full begin"
  "$SP" -q backup end vm1 || fail "full end"
  # Known blocks between the two backups: two ranges on vda, one on vdb.
  write vda 0x22 1M 64k; write vda 0x33 5M 128k; write vdb 0x44 2M 64k
  "$SP" --json backup begin vm1 --incremental >"$T/s.json" 2>"$T/err" \
    || { cat "$T/err"; fail "incremental begin"; }
  check "incremental" [ "$(jq -r .incremental "$T/s.json")" = true ]
  check "vda's changed extents are exactly the blocks written" \
    [ "$(jq -c '.disks[] | select(.disk == "vda") | .changed' "$T/s.json")" \
      = '[{"offset":1048576,"length":65536},{"offset":5242880,"length":131072}]' ]
  check "vdb's changed extents are exactly the block written" \
    [ "$(jq -c '.disks[] | select(.disk == "vdb") | .changed' "$T/s.json")" \
      = '[{"offset":2097152,"length":65536}]' ]
  ctx=$(jq -r '.disks[] | select(.disk == "vda") | ."dirty-bitmap"' "$T/s.json")
  check "the bitmap is on the export as qemu:dirty-bitmap:NAME" grep -q '^qemu:dirty-bitmap:sp-backup-' <<<"$ctx"
  write vda 0x55 1M 64k # after begin: not part of this backup
  uri=$(jq -r '.disks[] | select(.disk == "vda") | ."nbd-uri"' "$T/s.json")
  copy_over_nbd "$uri" "$T/vda.raw"
  check "changed data read over NBD" raw_holds "$T/vda.raw" 0x22 1M 64k
  check "changed data read over NBD (2)" raw_holds "$T/vda.raw" 0x33 5M 128k
  check "unchanged data read over NBD" raw_holds "$T/vda.raw" 0x11 0 1M
  "$SP" -q backup end vm1 || fail "incremental end"
  "$SP" --json backup begin vm1 --incremental >"$T/s3.json" || fail "third begin"
  check "the next incremental holds what was written during the last session" \
    [ "$(jq -c '.disks[] | select(.disk == "vda") | .changed' "$T/s3.json")" \
      = '[{"offset":1048576,"length":65536}]' ]
  check "and nothing on the untouched disk" \
    [ "$(jq -c '.disks[] | select(.disk == "vdb") | .changed' "$T/s3.json")" = '[]' ]
  "$SP" -q backup end vm1 --failed || fail "failed end"
  write vdb 0x66 3M 64k
  "$SP" --json backup begin vm1 --incremental >"$T/s4.json" || fail "fourth begin"
  check "after a failed backup the next incremental still covers the failed one's changes" \
    [ "$(jq -c '.disks[] | select(.disk == "vda") | .changed' "$T/s4.json")" \
      = '[{"offset":1048576,"length":65536}]' ]
  check "and the changes since" \
    [ "$(jq -c '.disks[] | select(.disk == "vdb") | .changed' "$T/s4.json")" \
      = '[{"offset":3145728,"length":65536}]' ]
  "$SP" -q backup end vm1 || fail "fourth end"
  check "no checkpoint left" [ "$(n_checkpoints vm1)" = 0 ]
  check "no sanitizer report" no_sanitizer_reports
  ;;
crash)
  setup
  before=$(top_images vm1)
  write vda 0x11 0 1M
  # Killed after the checkpoint and the exports were made, before the session was marked open.
  if STILLPOINT_TEST_CRASH_AT=backup-exported "$SP" -q backup begin vm1 >/dev/null 2>&1; then
    fail "begin survived its crash point"
  fi
  check "the session file says it was interrupted" \
    [ "$("$SP" --json backup status vm1 | jq -r .state)" = beginning ]
  check "the exports of the killed run are still there" \
    [ "$(mon '{"execute":"query-block-exports"}' | jq length)" = 2 ]
  "$SP" backup begin vm1 >/dev/null 2>"$T/err" || { cat "$T/err"; fail "begin after crash"; }
  check "the next start ended the interrupted session" grep -q "interrupted while beginning" "$T/err"
  check "one checkpoint (the new session's), the killed one merged" [ "$(n_checkpoints vm1)" = 1 ]
  # Killed in the middle of ending (after the exports went, before the merge): end resumes.
  if STILLPOINT_TEST_CRASH_AT=backup-ending "$SP" -q backup end vm1 2>/dev/null; then
    fail "end survived its crash point"
  fi
  "$SP" -q backup end vm1 || fail "end after crash"
  check "chain back to its length before" [ "$(top_images vm1)" = "$before" ]
  check "no checkpoint left" [ "$(n_checkpoints vm1)" = 0 ]
  check "exports gone" [ "$(mon '{"execute":"query-block-exports"}')" = "[]" ]
  check "data intact" vm_reads vda 0x11 0 1M
  # vm recover ends an interrupted session too.
  if STILLPOINT_TEST_CRASH_AT=backup-exported "$SP" -q backup begin vm1 >/dev/null 2>&1; then
    fail "begin survived its crash point"
  fi
  "$SP" vm recover vm1 2>"$T/err" || { cat "$T/err"; fail "vm recover"; }
  check "vm recover ended the interrupted session" \
    [ "$("$SP" --json backup status vm1 | jq -r .state)/$(n_checkpoints vm1)" = closed/0 ]
  check "and removed its exports" [ "$(mon '{"execute":"query-block-exports"}')" = "[]" ]
  # QEMU restarted under an open session: its exports are gone; the next begin ends it.
  "$SP" -q backup begin vm1 >/dev/null || fail "begin"
  mon '{"execute":"block-export-del","arguments":{"id":"sp-backup-vda","mode":"hard"}}' >/dev/null
  mon '{"execute":"block-export-del","arguments":{"id":"sp-backup-vdb","mode":"hard"}}' >/dev/null
  "$SP" backup begin vm1 >/dev/null 2>"$T/err" || { cat "$T/err"; fail "begin after exports vanished"; }
  check "a session whose exports vanished is ended by the next start" grep -q "exports are gone" "$T/err"
  "$SP" -q backup end vm1 || fail "end"
  check "no checkpoint left" [ "$(n_checkpoints vm1)" = 0 ]
  check "no sanitizer report" no_sanitizer_reports
  ;;
hook)
  setup
  write vda 0x21 0 1M
  "$SP" -q hook pre vm1 >"$T/vars" || fail "hook pre"
  # shellcheck disable=SC1091
  . "$T/vars"
  check "pre: shell variables name the VM and its disks" [ "$STILLPOINT_VM $STILLPOINT_DISKS" = "vm1 vda vdb" ]
  check "pre: application-consistent" [ "$STILLPOINT_CONSISTENCY" = application ]
  copy_over_nbd "$STILLPOINT_DISK_vda_NBD" "$T/vda.raw"
  check "a job reads the disk from the URI given" raw_holds "$T/vda.raw" 0x21 0 1M
  "$SP" -q hook post vm1 --status 0 || fail "hook post"
  check "post: no checkpoint left" [ "$(n_checkpoints vm1)" = 0 ]
  kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
  set +e; "$SP" -q hook pre vm1 >/dev/null 2>"$T/err"; rc=$?; set -e
  check "pre: exit status 1 when the guest cannot be quiesced" [ "$rc" = 1 ]
  check "pre: says FAILED and why" grep -q "hook pre: FAILED: .*quiesce" "$T/err"
  check "post without a session fails clearly" \
    bash -c "! '$SP' -q hook post vm1 2>'$T/err3' && grep -q 'no backup session' '$T/err3'"
  check "no sanitizer report" no_sanitizer_reports
  ;;
retention)
  setup
  names() { "$SP" --json checkpoint list vm1 | jq -r '[.checkpoints[].name] | sort | join(",")'; }
  for i in 1 2 3 4; do
    write vda "0x3$i" "${i}M" 64k
    "$SP" -q checkpoint create vm1 --scheduled --name "cp$i" || fail "create cp$i"
    # A user's own checkpoint among the schedule's: retention is not its to merge.
    if [ "$i" = 1 ]; then "$SP" -q checkpoint create vm1 --name "before upgrade" || fail "manual"; fi
  done
  write vda 0x35 5M 64k
  "$SP" -q checkpoint retention vm1 --keep 2 || fail "retention"
  check "the newest 2 of the schedule's are kept, and the user's" [ "$(names)" = "before upgrade,cp3,cp4" ]
  check "the schedule's are recorded as such" \
    [ "$("$SP" --json checkpoint list vm1 | jq -r '[.checkpoints[].origin] | sort | join(",")')" = "schedule,schedule,user" ]
  "$SP" -q checkpoint retention vm1 --keep 2 --all || fail "retention --all"
  check "--all: the newest 2 of every kind are kept" [ "$(names)" = "cp3,cp4" ]
  for i in 1 2 3 4 5; do check "the VM still reads what it wrote ($i)" vm_reads vda "0x3$i" "${i}M" 64k; done
  "$SP" -q backup begin vm1 >/dev/null || fail "begin"
  "$SP" -q checkpoint retention vm1 --keep 0 --all || fail "retention during a session"
  check "retention leaves the open backup session's checkpoint alone" [ "$(n_checkpoints vm1)" = 1 ]
  "$SP" -q backup end vm1 || fail "end"
  check "then nothing is left" [ "$(n_checkpoints vm1)" = 0 ]
  "$SP" schedule create vm1 --on-calendar hourly --keep 3 --unit-dir "$T/units" >/dev/null \
    || fail "schedule create"
  check "schedule: the timer fires hourly" grep -qx 'OnCalendar=hourly' "$T/units/stillpoint-checkpoint-vm1.timer"
  check "schedule: the service creates, then keeps 3" \
    bash -c "grep -q '^ExecStart=.* checkpoint create --scheduled \"vm1\"\$' '$T/units/stillpoint-checkpoint-vm1.service' &&
             grep -q '^ExecStartPost=.* checkpoint retention \"vm1\" --keep 3\$' '$T/units/stillpoint-checkpoint-vm1.service'"
  # Without systemd reading that directory, schedule list shows the units (the distro/schedule
  # test has the timer's state under a real systemd) and remove deletes them.
  check "schedule list: the calendar and the retention" \
    [ "$("$SP" --json schedule list --unit-dir "$T/units" | jq -c '.schedules | map([.vm, .on_calendar, .keep])')" = '[["vm1","hourly",3]]' ]
  "$SP" -q schedule remove vm1 --unit-dir "$T/units" || fail "schedule remove"
  check "schedule remove deletes both units" [ -z "$(ls -A "$T/units")" ]
  check "a second remove says there is none" bash -c "! '$SP' schedule remove vm1 --unit-dir '$T/units' 2>/dev/null"
  check "no sanitizer report" no_sanitizer_reports
  ;;
*) fail "unknown case" ;;
esac
