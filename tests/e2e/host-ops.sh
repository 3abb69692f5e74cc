#!/usr/bin/env bash
# e2e/host/ops/* — checkpoint delete (merge), delete --subtree, rename and export against a real QEMU
# (paused q35, two virtio-blk disks on qcow2 images). Data is written into the disks through
# QEMU's own block layer (HMP qemu-io) and read back from the image files, so every check is on
# content, not exit codes.   host-ops.sh CASE
set -euo pipefail
case_name=${1:?usage: host-ops.sh CASE}
SP=${SP_STILLPOINT:?}
command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null &&
  command -v qemu-io >/dev/null && command -v jq >/dev/null && command -v sqlite3 >/dev/null \
  || { echo "SKIP: qemu-system-x86_64, qemu-img, qemu-io, jq or sqlite3 missing"; exit 77; }

T=$(mktemp -d /tmp/sp-host-ops.XXXXXX)
export STILLPOINT_STORE=$T/store.db
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer"
QEMU_PID=
cleanup() {
  [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL ($case_name): $*" >&2; [ -n "${SP_DEBUG:-}" ] && { list_json vm1; ls -la "$T/img"; for f in "$T"/img/*; do qemu-img info -U "$f" | grep -E "image|backing"; done; } >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/qemu-test-lib.sh"
check() { local what=$1; shift; "$@" || fail "$what"; echo "ok - $what"; }


start_qemu() { # [keep]
  # 0755 whatever the umask: stillpoint refuses image directories others can write (issue 15).
  mkdir -p -m 0755 "$T/img"
  if [ "${1:-}" != keep ]; then
    qemu-img create -q -f qcow2 "$T/img/a.qcow2" 64M
    qemu-img create -q -f qcow2 "$T/img/b.qcow2" 32M
  fi
  rm -f "$T/qmp.sock" "$T/mon.sock"
  # qmp.sock is stillpoint's; mon.sock is the test's own monitor, usable while stillpoint works.
  qemu-system-x86_64 -machine q35 -accel tcg -S -nodefaults -display none ${INCOMING:+-incoming defer} \
    -qmp "unix:$T/qmp.sock,server=on,wait=off" -qmp "unix:$T/mon.sock,server=on,wait=off" \
    -blockdev "driver=qcow2,node-name=disk0,file.driver=file,file.filename=${IMG_A:-$T/img/a.qcow2}" \
    -device virtio-blk-pci,drive=disk0,id=vda,serial=SPDATA0 \
    -blockdev "driver=qcow2,node-name=disk1,file.driver=file,file.filename=${IMG_B:-$T/img/b.qcow2}" \
    -device virtio-blk-pci,drive=disk1,id=vdb,serial=SPDATA1 >"$T/qemu.out" &
  QEMU_PID=$!
  wait_socket "$T/qmp.sock"; wait_socket "$T/mon.sock"
}

stop_qemu() {
  kill "$QEMU_PID"; wait "$QEMU_PID" 2>/dev/null || true; QEMU_PID=
}


# write DEV PATTERN OFFSET-MB [MB]: the VM writes (through its block layer, like a guest would).
write() {
  local out
  out=$(mon "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"qemu-io -d /machine/peripheral/$1/virtio-backend \\\"write -P $2 ${3}M ${4:-1}M\\\"\"}}")
  [ "$out" = "\"\"" ] || fail "write $* failed: $out"
}

# settle: QEMU writes its qcow2 metadata back on a flush (as a guest's fsync causes); an outside
# reader of the image files needs one first.
settle() {
  [ -n "$QEMU_PID" ] || return 0
  local d
  for d in vda vdb; do
    mon "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"qemu-io -d /machine/peripheral/$d/virtio-backend flush\"}}" >/dev/null
  done
}

# holds FILE PATTERN OFFSET-MB [MB]: the image (read through its backing chain) holds the data.
holds() {
  local out
  out=$(qemu-io -r -U -f qcow2 -c "read -P $2 ${3}M ${4:-1}M" "$1" 2>&1)
  grep -q "^read " <<<"$out" && ! grep -q "failed" <<<"$out"
}
lacks() { ! holds "$@"; }

list_json() { "$SP" --json checkpoint list "$1" 2>/dev/null; }
cp_field() { list_json "$1" | jq -r --arg n "$2" ".checkpoints[] | select(.name == \$n) | $3"; }
n_checkpoints() { list_json "$1" | jq '.checkpoints | length'; }
chain_len() { qemu-img info -U --backing-chain --output=json "$1" | jq length; }
running_image() { "$SP" --json vm disks "$1" | jq -r ".[] | select(.disk == \"$2\") | .image"; }
clean() { qemu-img check -q "$1" >/dev/null 2>&1 || qemu-img check -U -q "$1"; }
pending_ops() { sqlite3 "$STILLPOINT_STORE" "select count(*) from ops where state='intent'"; }

# Every checkpoint's files exist, every overlay on disk belongs to the tree, nothing is pending.
store_consistent() {
  local vm=$1 json files
  json=$(list_json "$vm")
  [ "$(echo "$json" | jq '[.checkpoints[] | select(."missing-files")] | length')" = 0 ] || return 1
  files=$(echo "$json" | jq -r '.checkpoints[].disks[] | .image, .overlay' | grep "/$vm-" | sort -u)
  [ "$files" = "$(find "$T/img" -name "$vm-*.qcow2" | sort)" ] || return 1
  [ "$(pending_ops)" = 0 ]
}

register() { "$SP" -q vm add "$1" --qmp "$T/qmp.sock"; }
create() { "$SP" -q checkpoint create vm1 --type crash --name "$1" || fail "create $1"; }

# A, B and the present: 0x11 at 0M before A, 0x22 at 1M before B, 0x33 at 2M after B.
three_states() {
  write vda 0x00 2 # a rerun on the same disk starts without the last run's 0x33
  write vda 0x11 0; create A
  write vda 0x22 1; create B
  write vda 0x33 2
}

# B and the present hold what they held; nothing of later states leaks into B.
b_and_present_intact() {
  local bimg now
  settle
  bimg=$(cp_field vm1 B '.disks[0].image'); now=$(cp_field vm1 B '.disks[0].overlay')
  holds "$bimg" 0x11 0 && holds "$bimg" 0x22 1 && lacks "$bimg" 0x33 2 &&
    holds "$now" 0x11 0 && holds "$now" 0x22 1 && holds "$now" 0x33 2
}

case "$case_name" in
delete-live)
  start_qemu; register vm1; three_states
  a_overlay=$(cp_field vm1 A '.disks[0].overlay')
  before=$(chain_len "$(running_image vm1 vda)")
  "$SP" checkpoint delete vm1 A 2>"$T/err" || { cat "$T/err"; fail "live delete of A"; }
  check "merged live" grep -q "merging .* (live)" "$T/err"
  # Read before any flush of the test's own: the merged clusters are on disk already.
  check "the merged clusters are in A's image on disk right after the delete" holds "$T/img/a.qcow2" 0x22 1
  check "A is gone, B is now the root" \
    [ "$(list_json vm1 | jq -r '[.checkpoints[] | "\(.name):\(.parent)"] | join(",")')" = "B:null" ]
  check "B and the present hold every record they held" b_and_present_intact
  check "the chain is one link shorter" [ "$(chain_len "$(running_image vm1 vda)")" = $((before - 1)) ]
  check "A's overlay removed" [ ! -e "$a_overlay" ]
  check "qemu-img check clean" clean "$T/img/a.qcow2"
  check "store and files agree" store_consistent vm1
  # The active layer: B is current, so its overlay (the present) is committed into B's image
  # (ready, then complete) and the VM runs on it.
  "$SP" checkpoint delete vm1 B 2>"$T/err" || { cat "$T/err"; fail "live delete of B"; }
  check "active commit" grep -q "(live, active layer)" "$T/err"
  check "no checkpoint left" [ "$(n_checkpoints vm1)" = 0 ]
  settle
  check "the VM runs on its original image" [ "$(running_image vm1 vda)" = "$T/img/a.qcow2" ]
  check "the present holds everything" \
    bash -c "$(declare -f holds); holds $T/img/a.qcow2 0x11 0 && holds $T/img/a.qcow2 0x22 1 && holds $T/img/a.qcow2 0x33 2"
  check "no overlay left" [ "$(find "$T/img" -name 'vm1-*' | wc -l)" = 0 ]
  write vda 0x44 3
  settle
  check "the VM writes to its image again" holds "$T/img/a.qcow2" 0x44 3
  ;;
delete-offline)
  start_qemu; register vm1; three_states
  stop_qemu
  a_overlay=$(cp_field vm1 A '.disks[0].overlay')
  now=$(cp_field vm1 B '.disks[0].overlay')
  before=$(chain_len "$now")
  "$SP" checkpoint delete vm1 A 2>"$T/err" || { cat "$T/err"; fail "offline delete of A"; }
  check "merged offline" grep -q "merging .* (offline)" "$T/err"
  check "B and the present hold every record they held" b_and_present_intact
  check "the chain is one link shorter" [ "$(chain_len "$now")" = $((before - 1)) ]
  check "the present's backing file is re-pointed" \
    [ "$(qemu-img info --output=json "$now" | jq -r '."backing-filename"')" = "$T/img/a.qcow2" ]
  check "A's overlay removed" [ ! -e "$a_overlay" ]
  check "qemu-img check clean" clean "$T/img/a.qcow2"
  check "store and files agree" store_consistent vm1
  "$SP" --json checkpoint delete vm1 B >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "offline delete of B"; }
  check "--json: progress lines with percentages" \
    jq -se '[.[] | select(.event == "progress")] | length > 0 and (map(.percent) | max) == 100' "$T/out" >/dev/null
  check "--json: the result" jq -se '.[-1].event == "deleted"' "$T/out" >/dev/null
  check "the image holds the present" \
    bash -c "$(declare -f holds); holds $T/img/a.qcow2 0x11 0 && holds $T/img/a.qcow2 0x22 1 && holds $T/img/a.qcow2 0x33 2"
  check "no overlay left" [ "$(find "$T/img" -name 'vm1-*' | wc -l)" = 0 ]
  start_qemu keep
  check "QEMU starts on the merged image" [ "$(running_image vm1 vda)" = "$T/img/a.qcow2" ]
  ;;
delete-while-writing)
  # The VM writes 24 MiB while its active layer is committed at a throttled speed: the job mirrors
  # those writes, and after the pivot the image holds every byte.
  start_qemu; register vm1
  write vda 0x11 0 8; create A
  write vda 0x22 8 8
  STILLPOINT_TEST_COMMIT_SPEED=$((4 * 1024 * 1024)) "$SP" checkpoint delete vm1 A 2>"$T/err" & pid=$!
  for _ in $(seq 600); do
    mon '{"execute":"query-block-jobs"}' | grep -q '"type": "commit"' && break
    kill -0 $pid 2>/dev/null || fail "the delete ended before its job was seen"
    sleep 0.05
  done
  for i in 0 1 2; do write vda 0x5$i $((16 + i * 8)) 8; done
  wait $pid || { cat "$T/err"; fail "delete while writing"; }
  settle
  check "the writes happened while the job ran" grep -q "(live, active layer)" "$T/err"
  for i in 0 1 2; do
    check "write $i made during the merge is in the image" holds "$T/img/a.qcow2" 0x5$i $((16 + i * 8)) 8
  done
  check "older data too" bash -c "$(declare -f holds); holds $T/img/a.qcow2 0x11 0 8 && holds $T/img/a.qcow2 0x22 8 8"
  check "qemu-img check clean" clean "$T/img/a.qcow2"
  ;;
delete-kill9)
  start_qemu; register vm1
  for step in planned committing merged:vda recorded; do
    three_states
    set +e; STILLPOINT_TEST_CRASH_AT=$step "$SP" -q checkpoint delete vm1 A 2>/dev/null; rc=$?; set -e
    [ $rc = 137 ] || fail "not killed at $step (rc $rc)"
    check "after a kill at $step: the operation is pending" [ "$(pending_ops)" = 1 ]
    "$SP" vm recover vm1 2>"$T/err" || { cat "$T/err"; fail "recovery after $step"; }
    check "after a kill at $step: A is gone" [ "$(list_json vm1 | jq -r '[.checkpoints[].name] | join(",")')" = B ]
    check "after a kill at $step: no data lost" b_and_present_intact
    check "after a kill at $step: store and files agree" store_consistent vm1
    check "after a kill at $step: image clean" clean "$T/img/a.qcow2"
    "$SP" -q checkpoint delete vm1 B || fail "cleanup after $step"
  done
  # Killed while an active commit waits for its pivot: the job stays READY in QEMU, the next run
  # completes it.
  three_states
  "$SP" -q checkpoint delete vm1 A || fail "delete A"
  set +e; STILLPOINT_TEST_CRASH_AT=committing "$SP" -q checkpoint delete vm1 B 2>/dev/null; set -e
  check "active commit left waiting in QEMU" bash -c "$(declare -f mon); T=$T; mon '{\"execute\":\"query-block-jobs\"}' | grep -q commit"
  "$SP" -q vm recover vm1 || fail "recovery of an active commit"
  check "active commit: completed, the VM runs on its image" [ "$(running_image vm1 vda)" = "$T/img/a.qcow2" ]
  settle
  check "active commit: no data lost" \
    bash -c "$(declare -f holds); holds $T/img/a.qcow2 0x11 0 && holds $T/img/a.qcow2 0x22 1 && holds $T/img/a.qcow2 0x33 2"
  check "active commit: no checkpoint, no overlay left" \
    [ "$(n_checkpoints vm1) $(find "$T/img" -name 'vm1-*' | wc -l) $(pending_ops)" = "0 0 0" ]
  # Offline: killed inside the merge, the rerun commits again from the intact top.
  three_states; stop_qemu
  set +e; STILLPOINT_TEST_CRASH_AT=merged:vda "$SP" -q checkpoint delete vm1 A 2>/dev/null; set -e
  "$SP" -q vm recover vm1 || fail "offline recovery"
  check "offline kill: no data lost" b_and_present_intact
  check "offline kill: store and files agree" store_consistent vm1
  ;;
subtree)
  start_qemu; register vm1
  write vda 0x11 0; create A
  write vda 0x22 1; create B
  write vda 0x33 2; create C
  write vda 0x44 3
  if "$SP" checkpoint delete vm1 nosuch 2>"$T/err"; then fail "deleted a missing checkpoint"; fi
  check "a missing checkpoint is named" grep -q "VM 'vm1' has no checkpoint 'nosuch'" "$T/err"
  "$SP" -q checkpoint delete vm1 B --subtree || fail "subtree delete"
  check "exactly B and C went; A stays" [ "$(list_json vm1 | jq -r '[.checkpoints[].name] | join(",")')" = A ]
  check "A is current" [ "$(cp_field vm1 A .current)" = true ]
  now=$(running_image vm1 vda); settle
  check "the present keeps every write" \
    bash -c "$(declare -f holds); holds $now 0x11 0 && holds $now 0x22 1 && holds $now 0x33 2 && holds $now 0x44 3"
  check "A still holds only its own" \
    bash -c "$(declare -f holds lacks); holds $T/img/a.qcow2 0x11 0 && lacks $T/img/a.qcow2 0x22 1"
  check "store and files agree" store_consistent vm1
  ;;
rename)
  start_qemu; register vm1; create A; create B
  name100=$(printf 'n%.0s' $(seq 100)); name101=$(printf 'n%.0s' $(seq 101))
  bad() { # what new-name expected-message
    if "$SP" checkpoint rename vm1 A "$2" 2>"$T/err"; then fail "$1 accepted"; fi
    check "$1 refused" grep -q "$3" "$T/err"
    check "$1: nothing changed" [ "$(list_json vm1 | jq -r '[.checkpoints[].name] | join(",")')" = A,B ]
  }
  bad "empty name" "" "1 to 100 characters (got 0)"
  bad "101 characters" "$name101" "1 to 100 characters (got 101)"
  bad "a duplicate" B "is already named 'B'"
  bad "a tab" "$(printf 'a\tb')" "control characters"
  bad "a newline" "$(printf 'a\nb')" "control characters"
  bad "an escape" "$(printf 'a\033b')" "control characters"
  "$SP" checkpoint rename vm1 A x || fail "1 character"
  check "1 character accepted" [ "$(list_json vm1 | jq -r '.checkpoints[0].name')" = x ]
  "$SP" checkpoint rename vm1 x "$name100" || fail "100 characters"
  check "100 characters accepted" [ "$(list_json vm1 | jq -r '.checkpoints[0].name')" = "$name100" ]
  "$SP" checkpoint rename vm1 '#1' "ünïcödé – 100 chars max" || fail "by id, unicode"
  check "renamed by id, unicode kept" [ "$(list_json vm1 | jq -r '.checkpoints[0].name')" = "ünïcödé – 100 chars max" ]
  # A hook VM's snapshots are opaque: renamed yes, copied or applied no; the hook deletes them
  # (e2e/host/qemu/hook).
  "$SP" -q vm add vm2 --driver hook --hook-command true || fail "hook VM"
  "$SP" -q checkpoint create vm2 --type crash --name H || fail "hook checkpoint"
  for op in "export vm2 H $T/hx" "apply vm2 H"; do
    # shellcheck disable=SC2086
    if "$SP" checkpoint $op 2>"$T/err"; then fail "$op on a hook VM"; fi
    check "hook VM: '${op%% *}' refused with a reason" grep -q "uses the hook driver" "$T/err"
  done
  "$SP" checkpoint rename vm2 H H2 || fail "rename on a hook VM"
  "$SP" checkpoint rename vm1 B B || fail "renaming to its own name"
  check "renaming to its own name is fine" [ "$(list_json vm1 | jq -r '.checkpoints[1].name')" = B ]
  ;;
export)
  start_qemu; register vm1
  write vda 0x11 0; write vdb 0x55 0; create A
  write vda 0x22 1
  settle
  "$SP" -q checkpoint export vm1 A "$T/out" || fail "export while running"
  check "manifest names both disks" \
    [ "$(jq -r '[.checkpoint, (.disks[] | .file)] | join(" ")' "$T/out/manifest.json")" = "A vm1-vda.qcow2 vm1-vdb.qcow2" ]
  for f in "$T/out/vm1-vda.qcow2" "$T/out/vm1-vdb.qcow2"; do
    check "$(basename "$f") has no backing file" \
      [ "$(qemu-img info --output=json "$f" | jq -r '."backing-filename" // "none"')" = none ]
    check "$(basename "$f") is clean" qemu-img check -q "$f"
  done
  check "the export holds A's data and nothing later" \
    bash -c "$(declare -f holds lacks); holds $T/out/vm1-vda.qcow2 0x11 0 && lacks $T/out/vm1-vda.qcow2 0x22 1 && holds $T/out/vm1-vdb.qcow2 0x55 0"
  if "$SP" checkpoint export vm1 A "$T/out" 2>"$T/err"; then fail "export over an existing one"; fi
  check "refuses to overwrite" grep -q "already exists" "$T/err"
  "$SP" -q checkpoint export vm1 A "$T/raw" --format raw || fail "raw export"
  check "raw export is raw and holds A" \
    bash -c "[ \"\$(qemu-img info --output=json $T/raw/vm1-vda.raw | jq -r .format)\" = raw ] && cmp -n 1048576 $T/raw/vm1-vda.raw <(head -c 1048576 /dev/zero | tr '\\0' '\\021')"
  set +e; STILLPOINT_TEST_CRASH_AT=exporting "$SP" -q checkpoint export vm1 A "$T/killed" 2>/dev/null; set -e
  "$SP" -q vm recover vm1 || fail "recovery of a killed export"
  check "a killed export is cleaned up" [ -z "$(ls -A "$T/killed")" ]
  check "journal closed" [ "$(pending_ops)" = 0 ]
  # Recovery removes files only through the export's own directory (device, inode, owner as
  # journaled), never through a path that names another one by now: here a symlink re-pointed,
  # as stillpointd's /proc/PID/fd/N path after its pid is reused (issue 16, item 2).
  mkdir "$T/real" "$T/other"; ln -s "$T/real" "$T/link"
  set +e; STILLPOINT_TEST_CRASH_AT=exporting "$SP" -q checkpoint export vm1 A "$T/link" 2>/dev/null; set -e
  check "the killed export left its partial copy" [ -e "$T/real/.vm1-vda.qcow2.partial" ]
  rm "$T/link"; ln -s "$T/other" "$T/link"
  for f in .vm1-vda.qcow2.partial vm1-vda.qcow2 vm1-vdb.qcow2 manifest.json; do echo keep >"$T/other/$f"; done
  "$SP" -q checkpoint list vm1 >/dev/null || fail "checkpoint list (recovers first)"
  check "recovery did not remove another directory's files through the re-pointed path" \
    [ "$(ls -A "$T/other" | wc -l)" = 4 ]
  check "it removed the export's own files, found by the directory's identity" [ -z "$(ls -A "$T/real")" ]
  check "journal closed" [ "$(pending_ops)" = 0 ]
  ;;
image-swap)
  # Issue 15 item 3: an image path that changes outside stillpoint between two commands is
  # refused, not followed: the file it now names is neither read nor written.
  start_qemu; register vm1; three_states
  # A lower layer of the running chain replaced by a copy: create refuses before it journals or
  # freezes anything (after the snapshot, the record could only fail again at every next run).
  mv "$T/img/a.qcow2" "$T/a.orig"; cp -p "$T/a.orig" "$T/img/a.qcow2"
  if "$SP" checkpoint create vm1 --type crash --name C 2>"$T/err"; then
    fail "create on a replaced lower layer"
  fi
  check "create: refused, the file was replaced" \
    grep -q "image path changed outside stillpoint: $T/img/a.qcow2 is no longer the file" "$T/err"
  check "create: nothing recorded or pending" [ "$(n_checkpoints vm1) $(pending_ops)" = "2 0" ]
  mv -f "$T/a.orig" "$T/img/a.qcow2"
  settle; stop_qemu
  qemu-img create -q -f qcow2 "$T/other.qcow2" 64M
  qemu-io -f qcow2 -c "write -P 0x77 0 1M" "$T/other.qcow2" >/dev/null
  chmod 0444 "$T/other.qcow2"
  other_state() { echo "$(sha256sum <"$T/other.qcow2") $(stat -c %a "$T/other.qcow2")"; }
  before=$(other_state)
  a_img=$T/img/a.qcow2
  mv "$a_img" "$T/a.saved"; ln -s "$T/other.qcow2" "$a_img"
  if "$SP" checkpoint delete vm1 A 2>"$T/err"; then fail "delete through a symlinked image"; fi
  check "delete: refused, the path is a symlink now" \
    grep -q "image path changed outside stillpoint: image $a_img is a symbolic link" "$T/err"
  check "delete: the other file is untouched (content and mode)" [ "$(other_state)" = "$before" ]
  check "delete: nothing recorded" [ "$(n_checkpoints vm1) $(pending_ops)" = "2 0" ]
  if "$SP" checkpoint export vm1 A "$T/out" 2>"$T/err"; then fail "export through a symlinked image"; fi
  check "export: refused" grep -q "image path changed outside stillpoint: image $a_img is a symbolic link" "$T/err"
  check "export: nothing exported" [ -z "$(ls -A "$T/out" 2>/dev/null)" ]
  check "export: the other file is untouched" [ "$(other_state)" = "$before" ]
  # A copy of the image is another file: stillpoint cannot know what else was changed.
  rm "$a_img"; cp -p "$T/a.saved" "$a_img"
  if "$SP" checkpoint delete vm1 A 2>"$T/err"; then fail "delete of a replaced image"; fi
  check "delete: refused, the file was replaced" \
    grep -q "image path changed outside stillpoint: $a_img is no longer the file stillpoint recorded" "$T/err"
  # The recorded file back in its place: everything works again.
  mv -f "$T/a.saved" "$a_img"
  "$SP" checkpoint delete vm1 A 2>"$T/err" || { cat "$T/err"; fail "delete once the image is back"; }
  check "the merge went into the recorded image" \
    bash -c "$(declare -f holds); holds $a_img 0x11 0 && holds $a_img 0x22 1"
  check "the other file is still untouched" [ "$(other_state)" = "$before" ]
  check "store and files agree" store_consistent vm1
  ;;
apply)
  start_qemu; register vm1; three_states
  write vdb 0x55 0
  if "$SP" checkpoint apply vm1 A 2>"$T/err"; then fail "applied to a running VM"; fi
  check "a running VM is refused without --force" grep -q "VM 'vm1' is running; shut it down first, or pass --force" "$T/err"
  b_image=$(cp_field vm1 B '.disks[0].image')
  # Hyper-V's "create checkpoint and apply": the running VM gets a checkpoint of its type first
  # (production; with no agent here it falls back to a standard one and says why), then stops.
  "$SP" checkpoint apply vm1 A --save-current S >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "apply --save-current"; }
  wait "$QEMU_PID" 2>/dev/null || true; QEMU_PID=
  check "--save-current stopped QEMU after keeping the present" \
    grep -q "stopping VM 'vm1' (QMP quit, its present is kept as a checkpoint)" "$T/err"
  check "S is a checkpoint of the VM's type made while it ran: production asked, standard made, and why" \
    [ "$(list_json vm1 | jq -r '.checkpoints[] | select(.name == "S") | "\(.requested) \(.type) \(.origin) \(.state != null)"')" \
      = "production standard apply true" ]
  check "S says why it fell back" \
    [ "$(cp_field vm1 S .reason | grep -c "could not quiesce the guest")" = 1 ]
  link=$T/vms/vm1/vda.qcow2
  check "the output names the stable paths" grep -q "vda: $link" "$T/out"
  check "the stable path is a link to A's new overlay" \
    [ "$(readlink "$link")" = "$(cp_field vm1 A '.disks[0].overlay')" ]
  check "A's new overlay sits on A's image" \
    [ "$(qemu-img info --output=json "$link" | jq -r '."backing-filename"')" = "$T/img/a.qcow2" ]
  check "the stable path shows exactly A's data" \
    bash -c "$(declare -f holds lacks); holds $link 0x11 0 && lacks $link 0x22 1 && lacks $link 0x33 2"
  check "--save-current kept the present as S, under B" \
    [ "$(list_json vm1 | jq -r '[.checkpoints[] | "\(.name)<\(.parent)"] | join(",")')" = "A<null,B<1,S<2" ]
  s_image=$(cp_field vm1 S '.disks[0].image')
  check "S holds the present's data" bash -c "$(declare -f holds); holds $s_image 0x33 2"
  check "B untouched" bash -c "$(declare -f holds lacks); holds $b_image 0x22 1 && lacks $b_image 0x33 2"
  check "A is current" [ "$(cp_field vm1 A .current)" = true ]
  IMG_A=$link IMG_B=$T/vms/vm1/vdb.qcow2 start_qemu keep
  check "QEMU started from the stable paths runs on A's new overlay" \
    [ "$(running_image vm1 vda)" = "$(readlink "$link")" ]
  write vda 0x66 4; create C
  check "a new checkpoint after apply is a child of A: a second branch" \
    [ "$(cp_field vm1 C .parent)" = "$(cp_field vm1 A .id)" ]
  settle
  c_image=$(cp_field vm1 C '.disks[0].image')
  check "C holds A's data and the write after apply" \
    bash -c "$(declare -f holds lacks); holds $c_image 0x11 0 && holds $c_image 0x66 4 && lacks $c_image 0x22 1"
  # QEMU opened A's image by the link's name, so it names C's overlay "json:{...}" now.
  write vda 0x77 8; create D
  check "a second checkpoint on a QEMU started from the stable paths" \
    [ "$(cp_field vm1 D .parent)" = "$(cp_field vm1 C .id)" ]
  if "$SP" checkpoint delete vm1 A 2>"$T/err"; then fail "deleted a branch point"; fi
  check "a root with two branches is not merged" grep -q "it is the root of 2 branches" "$T/err"
  "$SP" -q checkpoint delete vm1 B --subtree || fail "delete the old branch"
  check "the old branch is gone, A, C and D stay" \
    [ "$(list_json vm1 | jq -r '[.checkpoints[].name] | join(",")')" = "A,C,D" ]
  check "store and files agree" store_consistent vm1
  stop_qemu
  # Apply again, discarding the present; killed before and after the record.
  set +e; STILLPOINT_TEST_CRASH_AT=prepared "$SP" -q checkpoint apply vm1 A 2>/dev/null; set -e
  "$SP" -q vm recover vm1 || fail "recovery of an apply killed before its record"
  check "killed before the record: rolled back" \
    [ "$(readlink "$link") $(cp_field vm1 D .current)" = "$(cp_field vm1 D '.disks[0].overlay') true" ]
  check "killed before the record: store and files agree" store_consistent vm1
  set +e; STILLPOINT_TEST_CRASH_AT=recorded "$SP" -q checkpoint apply vm1 A 2>/dev/null; set -e
  "$SP" -q vm recover vm1 || fail "recovery of an apply killed after its record"
  check "killed after the record: finished, the link follows" \
    [ "$(readlink "$link") $(cp_field vm1 A .current)" = "$(cp_field vm1 A '.disks[0].overlay') true" ]
  check "killed after the record: the discarded present is gone, store and files agree" store_consistent vm1
  ;;
branch-delete)
  # R <- A <- B, then apply A: A has two branches (B, and the VM's present). Deleting A copies A's
  # data up into both (the present live, by block-stream; B's image offline, by a safe rebase),
  # here killed mid-copy and finished by the next command.
  start_qemu; register vm1
  write vda 0x10 5; create R
  write vda 0x11 0; create A
  write vda 0x22 1; create B
  write vda 0x33 2
  "$SP" -q checkpoint apply vm1 A --force || fail "apply A"
  wait "$QEMU_PID" 2>/dev/null || true; QEMU_PID=
  IMG_A=$T/vms/vm1/vda.qcow2 IMG_B=$T/vms/vm1/vdb.qcow2 start_qemu keep
  write vda 0x66 4
  a_image=$(cp_field vm1 A '.disks[0].image')
  b_image=$(cp_field vm1 B '.disks[0].image')
  now=$(running_image vm1 vda)
  before=$(chain_len "$now")
  # Killed once the live copy has started; the next command finishes it.
  set +e; STILLPOINT_TEST_CRASH_AT=streaming "$SP" checkpoint delete vm1 A 2>"$T/err"; rc=$?; set -e
  check "killed mid-copy" [ $rc = 137 ]
  "$SP" vm recover vm1 2>>"$T/err" || { cat "$T/err"; fail "recovery of a branch-point delete"; }
  check "the present got A's data live" grep -q "copying .* up into $now (live)" "$T/err"
  check "B's image got it offline" grep -q "copying .* up into $b_image (offline)" "$T/err"
  check "A is gone; B hangs under R; R is current" \
    [ "$(list_json vm1 | jq -r '[.checkpoints[] | "\(.name)<\(.parent)/\(.current)"] | join(",")')" = "R<null/true,B<1/false" ]
  settle
  check "the present shows what it showed" \
    bash -c "$(declare -f holds lacks); holds $now 0x10 5 && holds $now 0x11 0 && holds $now 0x66 4 && lacks $now 0x22 1"
  check "B shows what it showed" \
    bash -c "$(declare -f holds lacks); holds $b_image 0x10 5 && holds $b_image 0x11 0 && holds $b_image 0x22 1 && lacks $b_image 0x66 4"
  check "the present's chain is one link shorter" [ "$(chain_len "$now")" = $((before - 1)) ]
  check "A's image is gone" [ ! -e "$a_image" ]
  check "both now rest on R's image" \
    [ "$(qemu-img info -U --output=json "$b_image" | jq -r '."backing-filename"')" = "$(cp_field vm1 R '.disks[0].image')" ]
  check "R's overlay is the present" [ "$(cp_field vm1 R '.disks[0].overlay')" = "$now" ]
  check "store and files agree" store_consistent vm1
  check "images clean" clean "$b_image"
  ;;
standard)
  status() { mon '{"execute":"query-status"}' | jq -r .status; }
  start_qemu; register vm1   # no agent: a production request cannot quiesce
  mon '{"execute":"cont"}' >/dev/null
  write vda 0x11 0
  "$SP" checkpoint create vm1 --type standard --name S 2>"$T/err" || { cat "$T/err"; fail "create --type standard"; }
  check "the VM was stopped for it" grep -q "stopping the VM to save its memory" "$T/err"
  check "and runs again" [ "$(status)" = running ]
  state=$(cp_field vm1 S .state)
  check "its memory and device state were saved" [ -s "$state" ]
  check "recorded as standard" [ "$(cp_field vm1 S .type)" = standard ]
  write vda 0x22 1
  "$SP" checkpoint create vm1 --name F --on-quiesce-failure standard 2>"$T/err" || { cat "$T/err"; fail "fallback"; }
  check "--on-quiesce-failure standard falls back, and says so" grep -q "making a standard checkpoint" "$T/err"
  check "the fallback is recorded as standard, with its state" \
    [ "$(cp_field vm1 F .type)" = standard ] && [ -s "$(cp_field vm1 F .state)" ]
  f_state=$(cp_field vm1 F .state)
  "$SP" -q checkpoint delete vm1 F || fail "delete F"
  check "deleting a standard checkpoint removes its state file" [ ! -e "$f_state" ]
  check "the VM still runs" [ "$(status)" = running ]
  # Killed while the VM is stopped: recovery runs it again and keeps no half state.
  set +e; STILLPOINT_TEST_CRASH_AT=stopped "$SP" -q checkpoint create vm1 --type standard --name K 2>/dev/null; set -e
  check "killed while stopped: the VM is paused" [ "$(status)" = paused ]
  "$SP" -q vm recover vm1 || fail "recovery of a killed standard create"
  check "recovery ran the VM again" [ "$(status)" = running ]
  check "no record, no state file of the killed run" \
    [ "$(list_json vm1 | jq -r '[.checkpoints[].name] | join(",")') $(find "$T/img" -name '*.vmstate' | wc -l)" = "S 1" ]
  write vda 0x33 2
  "$SP" checkpoint apply vm1 S --force >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "apply S"; }
  wait "$QEMU_PID" 2>/dev/null || true; QEMU_PID=
  check "apply says how to resume" grep -q "start QEMU with the same options plus '-incoming defer'" "$T/out"
  if "$SP" checkpoint resume vm1 2>"$T/err"; then fail "resumed with no QEMU"; fi
  check "resume without QEMU explains" grep -q "start QEMU with '-incoming defer'" "$T/err"
  INCOMING=1 IMG_A=$T/vms/vm1/vda.qcow2 IMG_B=$T/vms/vm1/vdb.qcow2 start_qemu keep
  check "QEMU waits for the state" [ "$(status)" = inmigrate ]
  "$SP" checkpoint resume vm1 2>"$T/err" || { cat "$T/err"; fail "resume"; }
  check "the VM runs on from the saved state" [ "$(status)" = running ]
  settle
  check "its disk is S's: before S yes, after S no" \
    bash -c "$(declare -f holds lacks); holds $T/vms/vm1/vda.qcow2 0x11 0 && lacks $T/vms/vm1/vda.qcow2 0x22 1 && lacks $T/vms/vm1/vda.qcow2 0x33 2"
  check "store and files agree" store_consistent vm1
  ;;
legacy-formats)
  # Issue 15 item 1: a store from before image formats were recorded (schema 5) knows its
  # overlays, not the VM's own disk under the root checkpoint: export of the root says so
  # instead of guessing; the next checkpoint records what QEMU reports for the whole chain.
  start_qemu; register vm1; three_states
  sqlite3 "$STILLPOINT_STORE" "DROP TABLE image_formats; PRAGMA user_version = 5;"
  if "$SP" checkpoint export vm1 A "$T/exp1" 2>"$T/err"; then fail "export without a format"; fi
  check "export of the root refuses to guess" grep -q "no format recorded for it" "$T/err"
  check "B's image (an overlay) is known" \
    [ "$(sqlite3 "$STILLPOINT_STORE" "select format from image_formats where path='$(cp_field vm1 B '.disks[0].image')'")" = qcow2 ]
  create C
  check "the next checkpoint recorded QEMU's format of the disk under the chain" \
    [ "$(sqlite3 "$STILLPOINT_STORE" "select format from image_formats where path='$T/img/a.qcow2'")" = qcow2 ]
  "$SP" -q checkpoint export vm1 A "$T/exp2" 2>"$T/err" || { cat "$T/err"; fail "export of A"; }
  check "then the export works and holds A's data" \
    bash -c "$(declare -f holds lacks); holds $T/exp2/vm1-vda.qcow2 0x11 0 && lacks $T/exp2/vm1-vda.qcow2 0x22 1"
  ;;
deadlines)
  # Issue 15 item 2: a block job that never completes (throttled to 1 byte/s) and a qemu-img
  # blocked opening a FIFO backing file each end at their deadline, clearly; the VM lock is
  # released and the next command works.
  start_qemu; register vm1; three_states
  t0=$(date +%s)
  if STILLPOINT_TEST_COMMIT_SPEED=1 STILLPOINT_TEST_JOB_TIMEOUT_MS=3000 \
       "$SP" checkpoint delete vm1 A 2>"$T/err"; then
    fail "a merge throttled to 1 byte/s finished"
  fi
  t=$(( $(date +%s) - t0 ))
  check "the stuck merge fails clearly" grep -q "did not finish within its deadline of 3 s" "$T/err"
  check "within the deadline (${t} s)" [ "$t" -lt 30 ]
  check "its block job was cancelled, none left" \
    [ "$(mon '{"execute":"query-block-jobs"}' | jq length)" = 0 ]
  # A delete is finished, never rolled back: the next command's recovery merges at full speed.
  check "the lock is released: the next command works" "$SP" -q checkpoint list vm1
  check "and it finished the interrupted delete" [ "$(list_json vm1 | jq -r '[.checkpoints[].name] | join(",")')" = B ]
  check "B and the present hold every record they held" b_and_present_intact
  stop_qemu
  # B is the root now, its image a.qcow2: someone points it at a FIFO (-F raw). The chain check
  # refuses a backing file stillpoint did not record, before anything opens it.
  mkfifo "$T/img/fifo"
  qemu-img rebase -u -f qcow2 -b "$T/img/fifo" -F raw "$T/img/a.qcow2"
  if timeout 60 "$SP" checkpoint export vm1 B "$T/export" 2>"$T/err"; then
    fail "export through a FIFO finished"
  fi
  check "a backing file stillpoint did not record is refused" \
    grep -q "names $T/img/fifo as its backing file, which is not an image stillpoint recorded" "$T/err"
  qemu-img rebase -u -f qcow2 -b "" "$T/img/a.qcow2"
  # A qemu-img that never finishes (a hung mount; here one that sleeps) is killed at its deadline.
  mkdir -p "$T/bin"
  printf '#!/bin/sh\ncase " $* " in *" convert "*) exec sleep 600;; esac\nexec %s "$@"\n' \
    "$(command -v qemu-img)" >"$T/bin/qemu-img"
  chmod +x "$T/bin/qemu-img"
  t0=$(date +%s)
  if PATH="$T/bin:$PATH" STILLPOINT_TEST_QEMU_IMG_TIMEOUT_MS=2000 \
       "$SP" checkpoint export vm1 B "$T/export" 2>"$T/err"; then
    fail "a qemu-img that never finishes finished"
  fi
  t=$(( $(date +%s) - t0 ))
  check "the blocked qemu-img is killed with a clear error" \
    grep -q "did not finish within its deadline of 2 s and was killed (" "$T/err"
  check "within the deadline (${t} s)" [ "$t" -lt 30 ]
  check "no qemu-img left behind" bash -c "! pgrep -f '[s]leep 600' >/dev/null"
  check "the lock is released: the next command works" "$SP" -q checkpoint list vm1
  check "the export left no partial file" [ -z "$(ls -A "$T/export" 2>/dev/null)" ]
  ;;
*)
  fail "unknown case"
  ;;
esac
if ls "$T"/sanitizer.* >/dev/null 2>&1; then cat "$T"/sanitizer.* >&2; fail "sanitizer report"; fi
echo "PASS host/ops/$case_name"
