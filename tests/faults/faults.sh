#!/usr/bin/env bash
# faults/* — fault injection against a real QEMU (paused q35, two virtio-blk disks on qcow2) and
# sp-fake-agent: the coordinator killed mid-job, the agent stopped or killed while frozen, QEMU
# stopped or killed mid-operation, the overlay directory full, the channel dropped, two
# coordinators racing. Each case ends with: the guest thawed, the store and the files agree, the
# chain QEMU runs on is the store's, qemu-img check clean, the data intact, a clear error.
# Cases that host-qemu.sh / host-ops.sh / backup.sh already cover are not repeated here.
#   faults.sh CASE
set -euo pipefail
case_name=${1:?usage: faults.sh CASE}
SP=${SP_STILLPOINT:?}
FAKE=${SP_FAKE_AGENT:?}
for tool in qemu-system-x86_64 qemu-img qemu-io jq sqlite3 python3; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing"; exit 77; }
done

T=$(mktemp -d /tmp/sp-faults.XXXXXX)
export STILLPOINT_STORE=$T/store.db
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer"
QEMU_PID='' AGENT_PID='' MOUNTED=''
cleanup() {
  [ -n "$AGENT_PID" ] && { kill -CONT "$AGENT_PID"; kill "$AGENT_PID"; } 2>/dev/null || true
  [ -n "$QEMU_PID" ] && { kill -CONT "$QEMU_PID"; kill "$QEMU_PID"; } 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null || true
  [ -n "${SP_KEEP:-}" ] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL ($case_name): $*" >&2; [ -f "$T/err" ] && sed 's/^/  stderr: /' "$T/err" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/qemu-test-lib.sh"
check() { local what=$1; shift; "$@" || fail "$what"; echo "ok - $what"; }

wait_for() { # SECONDS COMMAND...: until COMMAND succeeds
  local n=$(( $1 * 20 )); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done
  return 1
}

IMG_DIR=$T/img
start_qemu() { # [keep]; IMG_A / IMG_B override the images QEMU opens
  mkdir -p "$IMG_DIR"
  if [ "${1:-}" != keep ]; then
    qemu-img create -q -f qcow2 "$IMG_DIR/a.qcow2" 64M
    qemu-img create -q -f qcow2 "$IMG_DIR/b.qcow2" 32M
  fi
  rm -f "$T/qmp.sock" "$T/mon.sock"
  # qmp.sock is stillpoint's; mon.sock is the test's own monitor.
  qemu-system-x86_64 -machine q35 -accel tcg -S -nodefaults -display none \
    -qmp "unix:$T/qmp.sock,server=on,wait=off" -qmp "unix:$T/mon.sock,server=on,wait=off" \
    -blockdev "driver=qcow2,node-name=disk0,file.driver=file,file.filename=${IMG_A:-$IMG_DIR/a.qcow2}" \
    -device virtio-blk-pci,drive=disk0,id=vda,serial=SPDATA0 \
    -blockdev "driver=qcow2,node-name=disk1,file.driver=file,file.filename=${IMG_B:-$IMG_DIR/b.qcow2}" \
    -device virtio-blk-pci,drive=disk1,id=vdb,serial=SPDATA1 >"$T/qemu.out" 2>&1 &
  QEMU_PID=$!
  wait_socket "$T/qmp.sock"; wait_socket "$T/mon.sock"
}
kill_qemu() { kill -KILL "$QEMU_PID"; wait "$QEMU_PID" 2>/dev/null || true; QEMU_PID=; }
# QEMU again, on the images the store says the VM runs on (what a management layer would do).
restart_qemu_on_store() {
  IMG_A=$(cur_overlay vda) IMG_B=$(cur_overlay vdb) start_qemu keep
}

start_agent() { # [fake-agent options]
  stop_agent
  rm -f "$T/agent.sock"
  # SIGPIPE ignored, as the real agent does (a reply to a host that hung up must not kill it).
  (trap '' PIPE; exec "$FAKE" --socket "$T/agent.sock" --log "$T/agent.log" "$@") &
  AGENT_PID=$!
  wait_socket "$T/agent.sock"
}
stop_agent() {
  [ -n "$AGENT_PID" ] || return 0
  kill -CONT "$AGENT_PID" 2>/dev/null || true
  kill "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
}
agent_events() { grep -v '^cmd ' "$T/agent.log" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
last_agent_event() { agent_events | awk '{print $NF}'; }
# The guest is thawed: the fake answers guest-fsfreeze-status like the real agent.
guest_thawed() {
  python3 - "$T/agent.sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); f = s.makefile("rw")
f.write(json.dumps({"execute": "guest-fsfreeze-status"}) + "\n"); f.flush()
sys.exit(0 if json.loads(f.readline()).get("return") == "thawed" else 1)
PY
}

hmp_io() { # DEV QEMU-IO-COMMAND: the VM's block layer does it, as a guest would
  local out
  out=$(mon "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"qemu-io -d /machine/peripheral/$1/virtio-backend \\\"$2\\\"\"}}")
  [ "$out" = "\"\"" ] || fail "qemu-io $* in the VM: $out"
}
write() { hmp_io "$1" "write -P $2 ${3}M ${4:-1}M"; }  # DEV PATTERN OFFSET-MB [MB]
settle() { [ -n "$QEMU_PID" ] || return 0; hmp_io vda flush; hmp_io vdb flush; }
holds() { # FILE PATTERN OFFSET-MB [MB]: read through the file's backing chain
  local out
  out=$(qemu-io -r -U -f qcow2 -c "read -P $2 ${3}M ${4:-1}M" "$1" 2>&1)
  grep -q "^read " <<<"$out" && ! grep -q "failed" <<<"$out"
}
jobs_running() { [ "$(mon '{"execute":"query-block-jobs"}' | jq length)" != 0 ]; }
job_progressed() { mon '{"execute":"query-block-jobs"}' | jq -e '.[0].offset > 0' >/dev/null 2>&1; }

list_json() { "$SP" --json checkpoint list vm1 2>/dev/null; }
names() { list_json | jq -r '[.checkpoints[].name] | join(",")'; }
cp_field() { list_json | jq -r --arg n "$1" ".checkpoints[] | select(.name == \$n) | $2"; }
cur_overlay() { list_json | jq -r ".checkpoints[] | select(.current) | .disks[] | select(.disk == \"$1\") | .overlay"; }
running_image() { "$SP" --json vm disks vm1 | jq -r ".[] | select(.disk == \"$1\") | .image"; }
pending_ops() { sqlite3 "$STILLPOINT_STORE" "select count(*) from ops where state='intent'"; }
register() { "$SP" -q vm add vm1 --qmp "$T/qmp.sock" "$@"; }
create() { "$SP" -q checkpoint create vm1 --type crash --name "$1" >/dev/null || fail "create $1"; }

# The store and the files agree: every file a checkpoint names exists, every overlay file in the
# overlay directory belongs to a checkpoint, nothing is pending, every image checks clean, and
# QEMU (when it runs) runs on the current checkpoint's overlays.
consistent() {
  local json files f d
  json=$(list_json) || { echo "  list failed" >&2; return 1; }
  [ "$(jq '[.checkpoints[] | select(."missing-files")] | length' <<<"$json")" = 0 ] ||
    { echo "  missing files" >&2; return 1; }
  files=$(jq -r '.checkpoints[].disks[] | .image, .overlay' <<<"$json" | grep "/vm1-" | sort -u || true)
  [ "$files" = "$(find "${OVERLAY_DIR:-$IMG_DIR}" -name 'vm1-*.qcow2' | sort)" ] ||
    { echo "  files on disk differ from the store's" >&2; return 1; }
  [ "$(pending_ops)" = 0 ] || { echo "  an operation is pending" >&2; return 1; }
  for f in $(jq -r '.checkpoints[].disks[] | .image, .overlay' <<<"$json" | sort -u) \
           "$IMG_DIR/a.qcow2" "$IMG_DIR/b.qcow2"; do
    qemu-img check -U -q "$f" >/dev/null 2>&1 || { echo "  qemu-img check $f" >&2; return 1; }
  done
  if [ -n "$QEMU_PID" ] && [ "$(jq '.checkpoints | length' <<<"$json")" != 0 ]; then
    for d in vda vdb; do
      [ "$(running_image $d)" = "$(cur_overlay $d)" ] || { echo "  $d runs elsewhere" >&2; return 1; }
    done
  fi
}
no_job_left() { [ -z "$QEMU_PID" ] || ! jobs_running; }

# A, B and the present: 0x11 at 0M before A, 0x22 at 1M before B, 0x33 at 2M after B (vda);
# vdb: 0x55 before A.
three_states() {
  write vda 0x00 $(( 2 * ${1:-1} )) "${1:-1}" # a rerun starts without the last run's 0x33
  write vda 0x11 0 "${1:-1}"; write vdb 0x55 0; create A
  write vda 0x22 "${1:-1}" "${1:-1}"; create B
  write vda 0x33 $(( 2 * ${1:-1} )) "${1:-1}"
}
data_intact() { # [MB per state]: B's image and the present hold what they held
  local m=${1:-1} bimg now
  settle
  bimg=$(cp_field B '.disks[0].image'); now=$(cur_overlay vda)
  holds "$bimg" 0x11 0 "$m" && holds "$bimg" 0x22 "$m" "$m" && ! holds "$bimg" 0x33 $((2 * m)) "$m" &&
    holds "$now" 0x11 0 "$m" && holds "$now" 0x22 "$m" "$m" && holds "$now" 0x33 $((2 * m)) "$m" &&
    holds "$(cur_overlay vdb)" 0x55 0
}

case "$case_name" in
kill9-mid-merge)
  # The CLI is killed while QEMU's commit job copies (throttled, seen to progress): the job runs
  # on without it; the next run finishes the delete from the journal.
  start_qemu; register
  three_states 4
  STILLPOINT_TEST_COMMIT_SPEED=$((2 * 1024 * 1024)) "$SP" -q checkpoint delete vm1 A 2>"$T/err" & pid=$!
  wait_for 30 job_progressed || fail "no commit job seen"
  kill -KILL $pid; wait $pid 2>/dev/null || true
  check "killed mid-merge: the operation is pending" [ "$(pending_ops)" = 1 ]
  "$SP" vm recover vm1 2>"$T/err" || fail "recovery of a delete killed mid-merge"
  check "killed mid-merge: A is gone, B stays" [ "$(names)" = B ]
  check "killed mid-merge: no data lost" data_intact 4
  check "killed mid-merge: no job left in QEMU" no_job_left
  check "killed mid-merge: store, files and chain agree" consistent
  # Offline: the CLI is killed while its qemu-img commit runs; the orphaned qemu-img may still
  # hold the image, and the rerun must neither corrupt nor lose anything.
  create C; write vda 0x44 12 4
  settle; kill_qemu
  printf '#!/bin/sh\n[ "$1" = commit ] && touch %s/commit-started\nexec %s "$@"\n' "$T" "$(command -v qemu-img)" >"$T/qemu-img"
  chmod +x "$T/qemu-img"; mkdir -p "$T/bin"; mv "$T/qemu-img" "$T/bin/"
  PATH=$T/bin:$PATH "$SP" -q checkpoint delete vm1 B 2>"$T/err" & pid=$!
  wait_for 30 test -e "$T/commit-started" || fail "the offline commit never started"
  kill -KILL $pid; wait $pid 2>/dev/null || true
  "$SP" vm recover vm1 2>"$T/err" || fail "recovery of an offline delete killed mid-commit"
  check "offline kill: B is gone" [ "$(names)" = C ]
  check "offline kill: store and files agree" consistent
  now=$(cur_overlay vda)
  check "offline kill: no data lost" bash -c "$(declare -f holds); holds $now 0x11 0 4 && holds $now 0x22 4 4 && holds $now 0x33 8 4 && holds $now 0x44 12 4"
  restart_qemu_on_store
  check "offline kill: QEMU starts on the store's chain" consistent
  ;;
kill9-planned)
  # The first crash points of export, apply and backup begin (the later ones are in host-ops.sh
  # and backup.sh): killed right after the journal entry, the next run cleans up.
  start_qemu; start_agent; register --agent "$T/agent.sock"; three_states
  set +e; STILLPOINT_TEST_CRASH_AT=planned "$SP" -q checkpoint export vm1 A "$T/out" 2>/dev/null; rc=$?; set -e
  [ $rc = 137 ] || fail "export not killed at planned (rc $rc)"
  "$SP" -q vm recover vm1 2>"$T/err" || fail "recovery of an export killed at planned"
  check "export killed at planned: no partial export left" bash -c "[ ! -e $T/out ] || [ -z \"\$(ls -A $T/out)\" ]"
  check "export killed at planned: consistent" consistent
  "$SP" -q checkpoint export vm1 A "$T/out2" || fail "export after the kill"
  check "export after the kill holds A" holds "$T/out2/vm1-vda.qcow2" 0x11 0
  settle; kill_qemu
  set +e; STILLPOINT_TEST_CRASH_AT=planned "$SP" -q checkpoint apply vm1 A 2>/dev/null; rc=$?; set -e
  [ $rc = 137 ] || fail "apply not killed at planned (rc $rc)"
  "$SP" -q vm recover vm1 2>"$T/err" || fail "recovery of an apply killed at planned"
  check "apply killed at planned: B is still current" [ "$(cp_field B .current)" = true ]
  check "apply killed at planned: no data lost" data_intact
  check "apply killed at planned: consistent" consistent
  restart_qemu_on_store
  check "apply killed at planned: QEMU runs on the store's chain" consistent
  set +e; STILLPOINT_TEST_CRASH_AT=backup-planned "$SP" -q backup begin vm1 >/dev/null 2>&1; rc=$?; set -e
  [ $rc = 137 ] || fail "backup begin not killed at backup-planned (rc $rc)"
  "$SP" backup begin vm1 >/dev/null 2>"$T/err" || fail "backup begin after the kill"
  check "backup killed at backup-planned: the next begin says it cleaned up" grep -q "interrupted while beginning" "$T/err"
  check "backup: the guest is thawed" guest_thawed
  "$SP" -q backup end vm1 2>"$T/err" || fail "backup end"
  check "backup killed at backup-planned: the checkpoints are A and B again" [ "$(names)" = A,B ]
  check "backup killed at backup-planned: no export left" [ "$(mon '{"execute":"query-block-exports"}')" = "[]" ]
  check "backup killed at backup-planned: no data lost" data_intact
  check "backup killed at backup-planned: consistent" consistent
  ;;
agent-stopped)
  # The agent stops answering (SIGSTOP) while it freezes: the coordinator's deadline fires, it
  # records nothing, and the guest is thawed once the agent runs again (it sees the hang-up).
  start_qemu; start_agent --freeze-delay-ms 1000; register --agent "$T/agent.sock"
  # production-only: production would fall back to a standard checkpoint.
  STILLPOINT_AGENT_FREEZE_TIMEOUT_MS=1500 "$SP" checkpoint create vm1 --name S --type production-only >/dev/null 2>"$T/err" & pid=$!
  wait_for 20 grep -q "cmd stillpoint-freeze" "$T/agent.log" || fail "no freeze seen"
  kill -STOP "$AGENT_PID"
  start=$(date +%s)
  if wait $pid; then fail "create succeeded with a stopped agent"; fi
  echo "  (the CLI gave up after $(( $(date +%s) - start )) s)"
  check "the deadline fired in bounded time" [ $(( $(date +%s) - start )) -lt 45 ]
  check "the error says the agent timed out" grep -q "timed out" "$T/err"
  check "no checkpoint recorded" [ "$(names)" = "" ]
  kill -CONT "$AGENT_PID"
  check "the agent, running again, ends thawed" wait_for 10 guest_thawed
  check "it thawed on the coordinator's hang-up" [ "$(last_agent_event)" = hangup-thaw ]
  check "store and files agree, the VM on its images" consistent
  check "the VM still runs on its own images" [ "$(running_image vda)" = "$IMG_DIR/a.qcow2" ]
  "$SP" -q checkpoint create vm1 --name after >/dev/null || fail "create after the agent came back"
  check "the next create is application-consistent" [ "$(cp_field after .consistency)" = application ]
  check "consistent after the next create" consistent
  ;;
agent-killed-frozen)
  # The agent dies inside the frozen window (the hook driver's command kills it between freeze
  # and thaw): the snapshot is kept, but it is not recorded as application-consistent.
  start_agent
  "$SP" -q vm add vm1 --agent "$T/agent.sock" --driver hook \
    --hook-command "kill -KILL $AGENT_PID; echo snap >>'$T/snaps'"
  "$SP" checkpoint create vm1 --name K >/dev/null 2>"$T/err" && rc=0 || rc=$?
  wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
  check "the agent was frozen when it died, never thawed" grep -Eqx "freeze lease-ms [0-9]+" <<<"$(agent_events)"
  check "the thaw failure is reported" grep -qi "thaw" "$T/err"
  check "the snapshot the hook made is kept" [ $rc = 0 ] && [ "$(wc -l <"$T/snaps")" = 1 ]
  check "recorded, but not as application-consistent" [ "$(cp_field K .consistency)" = crash ]
  check "nothing pending" [ "$(pending_ops)" = 0 ]
  start_agent
  check "a restarted agent is thawed" guest_thawed
  "$SP" -q checkpoint create vm1 --name after >/dev/null 2>"$T/err" || fail "create after the agent restarted"
  check "the next create is application-consistent" [ "$(cp_field after .consistency)" = application ]
  ;;
qemu-stopped)
  # QEMU stops answering (SIGSTOP) while the guest is frozen, before the transaction: the QMP
  # deadline fires, the guest is thawed, nothing is recorded; once QEMU runs again the next run
  # leaves it on its own images with no stray overlay.
  start_qemu; start_agent --freeze-delay-ms 1000; register --agent "$T/agent.sock"
  "$SP" checkpoint create vm1 --name S >/dev/null 2>"$T/err" & pid=$!
  wait_for 20 grep -q "cmd stillpoint-freeze" "$T/agent.log" || fail "no freeze seen"
  kill -STOP "$QEMU_PID"; start=$(date +%s)
  if wait $pid; then fail "create succeeded with a stopped QEMU"; fi
  # The transaction's deadline (lease - 3 s) fires, the guest is thawed inside its lease, then the
  # cleanup's QMP commands time out too and the journal keeps the operation for the next run.
  check "the CLI gave up in bounded time ($(( $(date +%s) - start )) s)" [ $(( $(date +%s) - start )) -lt 60 ]
  check "the cleanup left the operation to the next run" grep -q "the journal keeps operation" "$T/err"
  check "the error names QMP" grep -q "QMP" "$T/err"
  check "the guest was thawed" [ "$(last_agent_event)" = thaw ] && guest_thawed
  check "no checkpoint recorded" [ "$(names)" = "" ]
  kill -CONT "$QEMU_PID"
  sleep 1 # QEMU reads what was queued on the closed connection, if anything
  "$SP" vm recover vm1 2>"$T/err" || fail "recovery with QEMU running again"
  check "the VM runs on its own images" [ "$(running_image vda) $(running_image vdb)" = "$IMG_DIR/a.qcow2 $IMG_DIR/b.qcow2" ]
  check "store and files agree, no stray overlay" consistent
  check "no overlay file left" [ "$(find "$IMG_DIR" -name 'vm1-*' | wc -l)" = 0 ]
  ;;
qemu-killed-mid-commit)
  # QEMU dies while a live merge's commit job copies: the CLI fails clearly and the delete stays
  # pending. (1) QEMU is restarted on the store's chain and the next run finishes the merge live;
  # (2) the next run comes while QEMU is still down and finishes it offline, re-pointing the
  # overlay QEMU ran on (QEMU had that one in its chain), so QEMU starts on the store's chain.
  start_qemu; register
  for how in restarted down; do
    three_states 4
    settle
    img_a=$(cur_overlay vda) img_b=$(cur_overlay vdb)
    STILLPOINT_TEST_COMMIT_SPEED=$((2 * 1024 * 1024)) "$SP" checkpoint delete vm1 A 2>"$T/err" & pid=$!
    wait_for 30 job_progressed || fail "no commit job seen"
    kill_qemu
    if wait $pid; then fail "delete succeeded without QEMU"; fi
    check "$how: the error names the lost QMP connection" grep -q "QMP .*the peer closed the connection" "$T/err"
    check "$how: the delete is pending" [ "$(pending_ops)" = 1 ]
    [ $how = restarted ] && IMG_A=$img_a IMG_B=$img_b start_qemu keep
    "$SP" vm recover vm1 2>"$T/err" || fail "$how: recovery"
    [ $how = down ] && check "down: finished offline" grep -q "(offline)" "$T/err"
    [ $how = down ] && restart_qemu_on_store
    check "$how: A is gone, B stays" [ "$(names)" = B ]
    check "$how: QEMU runs and reads the present" [ "$(running_image vda)" = "$(cur_overlay vda)" ]
    check "$how: no data lost" data_intact 4
    check "$how: no job left" no_job_left
    check "$how: store, files and chain agree" consistent
    "$SP" -q checkpoint delete vm1 B || fail "$how: delete B"
    check "$how: back on the base images" [ "$(running_image vda)" = "$IMG_DIR/a.qcow2" ]
  done
  ;;
enospc)
  # The overlay directory is a 32 MiB tmpfs holding the base images too. Full during create: the
  # overlays are made before the freeze, so the guest is never frozen and nothing is left. Full
  # during a merge: the error says so, no checkpoint's data is lost, and once there is room the
  # next run finishes the delete.
  mkdir -p "$IMG_DIR"
  mount -t tmpfs -o size=32M,mode=0755 sp-faults "$IMG_DIR" 2>/dev/null || { echo "SKIP: cannot mount a tmpfs (not root?)"; exit 77; }
  MOUNTED=$IMG_DIR
  start_qemu; start_agent; register --agent "$T/agent.sock"
  fill() { dd if=/dev/zero of="$IMG_DIR/filler" bs=64k 2>/dev/null || true; sync; }
  three_states 2
  fill
  : >"$T/agent.log"
  if "$SP" checkpoint create vm1 --name full >/dev/null 2>"$T/err"; then fail "create on a full overlay dir"; fi
  check "create: the error says the disk is full" grep -q "No space left on device" "$T/err"
  check "create: the guest was never frozen" [ "$(agent_events)" = "" ] && guest_thawed
  check "create: no record" [ "$(names)" = A,B ]
  check "create: store and files agree" consistent
  m=2
  for mode in live offline; do
    [ $mode = offline ] && { rm -f "$IMG_DIR/filler"; settle; kill_qemu; fill; }
    if "$SP" checkpoint delete vm1 A 2>"$T/err"; then fail "$mode merge on a full disk succeeded"; fi
    check "$mode merge: the error says the disk is full" grep -q "No space left on device" "$T/err"
    # A's image may hold part of B's data now: the delete stays pending, never rolled back.
    check "$mode merge: the delete stays pending, A still listed" [ "$(pending_ops) $(names)" = "1 A,B" ]
    check "$mode merge: B and the present keep their data" data_intact $m
    rm -f "$IMG_DIR/filler"
    "$SP" vm recover vm1 2>"$T/err" || fail "$mode merge: recovery with room again"
    check "$mode merge: with room again, A is merged away" [ "$(names)" = B ]
    check "$mode merge: no data lost" data_intact $m
    check "$mode merge: store, files and chain agree" consistent
    if [ $mode = live ]; then
      check "live merge: the guest is thawed" guest_thawed
      "$SP" -q checkpoint delete vm1 B >/dev/null || fail "delete B"
      # 4 MiB states: B's data lands where a.qcow2 has no cluster yet, so the merge needs room.
      m=4; three_states $m
    fi
  done
  ;;
race)
  # Four coordinators start one create at once: exactly one wins, the others are told the VM is
  # busy and leave nothing behind. Then every other operation is refused while a merge runs.
  start_qemu; start_agent --freeze-delay-ms 1500; register --agent "$T/agent.sock"
  pids=
  for i in 1 2 3 4; do "$SP" checkpoint create vm1 --name "r$i" >/dev/null 2>"$T/err.$i" & pids="$pids $!"; done
  won=0 busy=0
  for p in $pids; do if wait "$p"; then won=$((won + 1)); fi; done
  for i in 1 2 3 4; do grep -q "VM 'vm1' is busy: another stillpoint process" "$T/err.$i" && busy=$((busy + 1)); done
  check "exactly one create won" [ $won = 1 ]
  check "the three others got the lock error" [ $busy = 3 ]
  check "one checkpoint, application-consistent" \
    [ "$(list_json | jq -r '[.checkpoints[] | .consistency] | join(",")')" = application ]
  check "one freeze, then a thaw" [ "$(agent_events | tr ' ' '\n' | grep -c '^freeze$')" = 1 ] && guest_thawed
  check "store and files agree" consistent
  start_agent
  write vda 0x22 0 4; "$SP" -q checkpoint create vm1 --name B >/dev/null || fail "create B"
  write vda 0x33 4 4
  first=$(list_json | jq -r '.checkpoints[0].name')
  STILLPOINT_TEST_COMMIT_SPEED=$((1024 * 1024)) "$SP" -q checkpoint delete vm1 "$first" 2>"$T/err" & pid=$!
  wait_for 30 jobs_running || fail "no merge job seen"
  for op in "checkpoint create vm1 --name X" "checkpoint delete vm1 B" "checkpoint rename vm1 B Y" \
            "checkpoint apply vm1 B --force" "checkpoint export vm1 B $T/exp" "backup begin vm1"; do
    # shellcheck disable=SC2086
    if "$SP" $op >/dev/null 2>"$T/err.op"; then fail "'$op' ran during a merge"; fi
    check "'${op% vm1*}' during a merge: the lock error" grep -q "VM 'vm1' is busy: another stillpoint process (pid $pid)" "$T/err.op"
  done
  wait $pid || fail "the merge"
  check "after the race: exactly the merge happened" [ "$(names)" = B ]
  check "after the race: no export was started" [ ! -e "$T/exp" ]
  check "after the race: store, files and chain agree" consistent
  settle; now=$(cur_overlay vda)
  check "after the race: no data lost" bash -c "$(declare -f holds); holds $now 0x22 0 4 && holds $now 0x33 4 4"
  ;;
channel-drop)
  # The channel drops while the agent freezes (the agent dies before answering): a clear error,
  # nothing recorded; the next create connects anew and works.
  start_qemu; start_agent --freeze-delay-ms 1000; register --agent "$T/agent.sock"
  "$SP" checkpoint create vm1 --name D --type production-only >/dev/null 2>"$T/err" & pid=$!
  wait_for 20 grep -q "cmd stillpoint-freeze" "$T/agent.log" || fail "no freeze seen"
  kill -KILL "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
  if wait $pid; then fail "create succeeded with the channel gone"; fi
  check "the error says the agent went away" grep -q "the peer closed the connection" "$T/err"
  check "nothing recorded, no overlay left" [ "$(names)" = "" ] && consistent
  start_agent
  "$SP" -q checkpoint create vm1 --name after >/dev/null 2>"$T/err" || fail "create after the drop"
  check "reconnected: application-consistent" [ "$(cp_field after .consistency)" = application ]
  # The channel drops inside the frozen window and the agent is back at once (as systemd
  # restarts it): the coordinator's thaw reconnects, finds the guest thawed, and does not call
  # the checkpoint application-consistent (the freeze did not hold to the end).
  stop_agent
  cat >"$T/restart-agent" <<SH
#!/bin/bash
kill -KILL \$(cat "$T/agent.pid"); rm -f "$T/agent.sock"
(trap '' PIPE; exec "$FAKE" --socket "$T/agent.sock" --log "$T/agent.log") >/dev/null 2>&1 &
echo \$! >"$T/agent.pid"
for _ in \$(seq 100); do [ -S "$T/agent.sock" ] && exit 0; sleep 0.05; done
exit 1
SH
  chmod +x "$T/restart-agent"
  rm -f "$T/agent.sock"
  (trap '' PIPE; exec "$FAKE" --socket "$T/agent.sock" --log "$T/agent.log") & echo $! >"$T/agent.pid"
  wait_socket "$T/agent.sock"
  "$SP" -q vm add vm2 --agent "$T/agent.sock" --driver hook --hook-command "$T/restart-agent"
  : >"$T/agent.log"
  "$SP" checkpoint create vm2 --name R >/dev/null 2>"$T/err" || fail "create across a reconnect"
  AGENT_PID=$(cat "$T/agent.pid")
  check "the thaw went over a new connection" grep -q "trying again on a new connection" "$T/err"
  check "recorded, not as application-consistent" \
    [ "$("$SP" --json checkpoint list vm2 | jq -r '.checkpoints[0].consistency')" = crash ]
  check "the restarted agent is thawed" guest_thawed
  ;;
*)
  fail "unknown case"
  ;;
esac
if ls "$T"/sanitizer.* >/dev/null 2>&1; then cat "$T"/sanitizer.* >&2; fail "sanitizer report"; fi
echo "PASS faults/$case_name"
