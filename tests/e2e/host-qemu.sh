#!/usr/bin/env bash
# e2e/host/qemu/* — the stillpoint CLI against a real QEMU (paused q35 with two virtio-blk disks on
# real qcow2 images, QMP) and sp-fake-agent, without booting a guest: sequencing, failure paths,
# the journal and recovery.   host-qemu.sh CASE
set -euo pipefail
case_name=${1:?usage: host-qemu.sh CASE}
SP=${SP_STILLPOINT:?}
FAKE=${SP_FAKE_AGENT:?}
command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null && command -v jq >/dev/null \
  || { echo "SKIP: qemu-system-x86_64, qemu-img or jq missing"; exit 77; }

T=$(mktemp -d /tmp/sp-host-qemu.XXXXXX)
export STILLPOINT_STORE=$T/store.db
# Sanitizer reports go to files, so that a leak on an expected-failure path is not mistaken for
# the expected failure; any report fails the test at the end.
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

start_qemu() { # [keep]: reuse the images
  # 0755 whatever the umask: stillpoint refuses image directories others can write (issue 15).
  mkdir -p -m 0755 "$T/img"
  if [ "${1:-}" != keep ]; then
    qemu-img create -q -f qcow2 "$T/img/a.qcow2" 64M
    qemu-img create -q -f qcow2 "$T/img/b.qcow2" 32M
  fi
  rm -f "$T/qmp.sock" "$T/mon.sock"
  # qmp.sock is stillpoint's; mon.sock is the test's own monitor. IMG_A/IMG_B: other images.
  qemu-system-x86_64 -machine q35 -accel tcg -S -nodefaults -display none \
    -qmp "unix:$T/qmp.sock,server=on,wait=off" -qmp "unix:$T/mon.sock,server=on,wait=off" \
    -blockdev "driver=qcow2,node-name=disk0,file.driver=file,file.filename=${IMG_A:-$T/img/a.qcow2}" \
    -device virtio-blk-pci,drive=disk0,id=vda,serial=SPDATA0 \
    -blockdev "driver=qcow2,node-name=disk1,file.driver=file,file.filename=${IMG_B:-$T/img/b.qcow2}" \
    -device virtio-blk-pci,drive=disk1,id=vdb,serial=SPDATA1 &
  QEMU_PID=$!
  wait_socket "$T/qmp.sock"; wait_socket "$T/mon.sock"
}

stop_qemu() {
  kill "$QEMU_PID"; wait "$QEMU_PID" 2>/dev/null || true; QEMU_PID=
}

# No write permission for anyone on any of the files.
read_only_files() { [ -z "$(find "$@" -perm /222)" ]; }
# QEMU's node for FILE is open read-only.
node_read_only() {
  mon '{"execute":"query-named-block-nodes","arguments":{"flat":true}}' |
    jq -e --arg f "$1" '[.[] | select(.file == $f and .drv == "qcow2")][0].ro' >/dev/null
}

start_agent() { # [fake-agent options]
  [ -n "$AGENT_PID" ] && { kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; }
  rm -f "$T/agent.sock"
  "$FAKE" --socket "$T/agent.sock" --log "$T/agent.log" "$@" &
  AGENT_PID=$!
  wait_socket "$T/agent.sock"
}


list_json() { "$SP" --json checkpoint list "$1" 2>/dev/null; }
n_checkpoints() { list_json "$1" | jq '.checkpoints | length'; }
n_images() { find "$T/img" -name '*.qcow2' | wc -l; }
top_nodes() { "$SP" --json vm disks "$1" | jq -r '[.[].node] | join(" ")'; }
agent_events() { grep -v '^cmd ' "$T/agent.log" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
log_has_order() { # the agent log has these lines in this order
  local pattern; pattern=$(printf '%s.*' "$@"); tr '\n' ' ' <"$T/agent.log" | grep -q -- "$pattern"
}

# Every checkpoint's files exist, every overlay file belongs to a checkpoint, nothing is pending.
store_consistent() {
  local vm=$1 json files
  json=$(list_json "$vm")
  [ "$(echo "$json" | jq '[.checkpoints[] | select(."missing-files")] | length')" = 0 ] || return 1
  files=$(echo "$json" | jq -r '.checkpoints[].disks[].overlay' | sort)
  [ "$files" = "$(find "$T/img" -name "$vm-*.qcow2" | sort)" ] || return 1
  [ "$(sqlite3 "$STILLPOINT_STORE" "select count(*) from ops where state='intent'")" = 0 ]
}

# The VM's disks run on the current checkpoint's overlays, each backed by its frozen image.
chain_matches_current() {
  local vm=$1 json
  json=$(list_json "$vm")
  [ "$(echo "$json" | jq -r '.checkpoints[] | select(.current) | [.disks[].overlay] | join(" ")')" \
    = "$("$SP" --json vm disks "$vm" | jq -r '[.[].image] | join(" ")')" ] || return 1
  for i in 0 1; do
    local overlay image
    overlay=$(echo "$json" | jq -r ".checkpoints[] | select(.current) | .disks[$i].overlay")
    image=$(echo "$json" | jq -r ".checkpoints[] | select(.current) | .disks[$i].image")
    qemu-img info -U --output=json "$overlay" | jq -e --arg b "$image" '."backing-filename" == $b' \
      >/dev/null || return 1
  done
}

# None of the files holds a raw control byte but newline: no ESC, CR, BEL, no C1 (U+0080..U+009F
# in UTF-8: C2 80..C2 9F).
no_raw_controls() {
  ! LC_ALL=C grep -qP '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$@"
}

register() { # name [vm add options]
  local name=$1; shift
  "$SP" -q vm add "$name" --qmp "$T/qmp.sock" "$@"
}

case "$case_name" in
two-disks)
  start_qemu; start_agent
  register vm1 --agent "$T/agent.sock"
  out=$("$SP" checkpoint create vm1 --name first 2>"$T/err") || { cat "$T/err"; fail "create"; }
  check "reported application-consistent" grep -q "application-consistent" <<<"$out"
  check "freeze then thaw, lease sized for two disks" \
    [ "$(agent_events)" = "freeze lease-ms 19000 thaw" ]
  check "one transaction in the window" grep -q "snapshotting 2 disk(s) in one transaction" "$T/err"
  check "both disks moved to the new overlays" chain_matches_current vm1
  "$SP" -q checkpoint create vm1 || fail "second create"
  json=$(list_json vm1)
  check "tree: second is a child of first" \
    [ "$(echo "$json" | jq '.checkpoints[1].parent == .checkpoints[0].id')" = true ]
  check "second is current and application-consistent" \
    [ "$(echo "$json" | jq -r '.checkpoints[1] | "\(.current) \(.consistency) \(.type)"')" \
      = "true application production" ]
  check "default name is 'VM (MM/DD/YYYY - hh:mm:ss)'" \
    grep -Eq '^vm1 \([0-9]{2}/[0-9]{2}/[0-9]{4} - [0-9]{2}:[0-9]{2}:[0-9]{2}\)$' \
    <<<"$(echo "$json" | jq -r '.checkpoints[1].name')"
  check "chain follows the current checkpoint" chain_matches_current vm1
  check "store and files agree" store_consistent vm1
  "$SP" checkpoint list vm1 >"$T/tree"
  check "tree output marks the current checkpoint" grep -q "<- now" "$T/tree"
  ;;
hostile-text)
  # #15 item 6: the guest's words never reach the terminal raw. The agent's error and its thaw
  # reason carry ESC, OSC, CR and a C1 CSI.
  start_qemu; start_agent --fail-freeze --hostile
  register vm1 --agent "$T/agent.sock"
  # production-only: the default (production) would fall back to a standard checkpoint.
  if "$SP" checkpoint create vm1 --type production-only 2>"$T/err"; then
    fail "create succeeded with a refused freeze"
  fi
  check "the agent's error is reported" grep -q "writer" "$T/err"
  check "stderr has no raw ESC, CR or C1 byte" no_raw_controls "$T/err"
  check "the escape shows as text" grep -qF '\x1b[2J' "$T/err"
  "$SP" checkpoint create vm1 --on-quiesce-failure crash >"$T/out" 2>"$T/err" \
    || fail "crash fallback"
  check "fallback: stdout and stderr have no raw ESC, CR or C1 byte" \
    no_raw_controls "$T/out" "$T/err"
  reason=$(list_json vm1 | jq -r '.checkpoints[0].reason')
  check "the stored reason is escaped" grep -qF '\x1b[2J' <<<"$reason"
  "$SP" checkpoint list vm1 >"$T/tree" 2>&1
  check "checkpoint list shows why, escaped" grep -q "why: could not quiesce" "$T/tree"
  check "checkpoint list has no raw ESC, CR or C1 byte" no_raw_controls "$T/tree"
  # A freeze that works, but whose thaw reason is hostile: the record and the output stay clean.
  start_agent --hostile
  "$SP" checkpoint create vm1 >"$T/out" 2>"$T/err" || fail "create with a hostile thaw reason"
  check "create output has no raw ESC, CR or C1 byte" no_raw_controls "$T/out" "$T/err"
  check "store consistent" store_consistent vm1
  ;;
fake-backend)
  # #15 item 5: a freeze by a fake backend is not application-consistent, and the record says why.
  start_qemu; start_agent --backend fake
  register vm1 --agent "$T/agent.sock"
  out=$("$SP" checkpoint create vm1 --name faked 2>"$T/err") || { cat "$T/err"; fail "create"; }
  check "reported crash-consistent" grep -q "crash-consistent" <<<"$out"
  check "frozen and thawed all the same" [ "$(agent_events)" = "freeze lease-ms 19000 thaw" ]
  check "recorded crash-consistent with the reason" \
    [ "$(list_json vm1 | jq -r '.checkpoints[0] | "\(.consistency) \(.reason)"')" \
      = "crash the guest agent's freeze backend is 'fake', not a real one (fifreeze or vss): it froze nothing" ]
  "$SP" checkpoint list vm1 >"$T/tree"
  check "checkpoint list shows why" grep -q "why: the guest agent's freeze backend is 'fake'" "$T/tree"
  start_agent
  "$SP" -q checkpoint create vm1 --name real || fail "create with the real backend"
  check "a real backend's checkpoint is application-consistent, without a reason" \
    [ "$(list_json vm1 | jq -r '.checkpoints[1] | "\(.consistency) \(.reason)"')" = "application null" ]
  check "store consistent" store_consistent vm1
  ;;
transaction-failure)
  start_qemu; start_agent
  register vm1 --agent "$T/agent.sock"
  before=$(top_nodes vm1)
  if STILLPOINT_TEST_FAIL_AT=transaction "$SP" checkpoint create vm1 2>"$T/err"; then
    fail "create succeeded despite a failed transaction"
  fi
  check "error names the transaction" grep -q "QMP command transaction failed" "$T/err"
  check "guest thawed after the failed transaction" [ "$(agent_events)" = "freeze lease-ms 19000 thaw" ]
  check "no stray overlay" [ "$(n_images)" = 2 ]
  check "no record" [ "$(n_checkpoints vm1)" = 0 ]
  check "disks still on their images" [ "$(top_nodes vm1)" = "$before" ]
  check "store consistent" store_consistent vm1
  "$SP" -q checkpoint create vm1 || fail "create after the failure"
  check "the next create works" [ "$(n_checkpoints vm1)" = 1 ]
  ;;
no-agent)
  start_qemu
  register vm1 --agent "$T/nobody-listens.sock"
  check "--version names the version" grep -Eqx "stillpoint [0-9]+\.[0-9]+\.[0-9]+" <("$SP" --version)
  # Hyper-V's Set-VM -CheckpointType: production-only never falls back.
  "$SP" -q vm set vm1 --checkpoint-type production-only || fail "vm set"
  check "vm list shows the type" [ "$("$SP" --json vm list | jq -r '.[0]["checkpoint-type"]')" = production-only ]
  if "$SP" vm set vm1 --checkpoint-type crash 2>"$T/err"; then fail "vm set crash"; fi
  check "a VM's type is production, production-only or standard" grep -q "production-only or standard" "$T/err"
  if "$SP" vm set nosuch --checkpoint-type standard 2>"$T/err"; then fail "vm set nosuch"; fi
  if "$SP" checkpoint create vm1 2>"$T/err"; then fail "create without agent succeeded"; fi
  check "clear error" grep -q "could not quiesce the guest, no checkpoint was made" "$T/err"
  check "no stray overlay" [ "$(n_images)" = 2 ]
  check "no record" [ "$(n_checkpoints vm1)" = 0 ]
  # production (the default) falls back to standard, saying why.
  "$SP" -q vm set vm1 --checkpoint-type production || fail "vm set production"
  "$SP" -q checkpoint create vm1 --name fell-back || fail "production falls back to standard"
  fell=$(list_json vm1 | jq -c '.checkpoints[] | select(.name == "fell-back")')
  check "fallback recorded: standard, asked production, with the reason" \
    [ "$(echo "$fell" | jq -r '"\(.type) \(.requested) \(.reason != null) \(.origin)"')" = "standard production true user" ]
  "$SP" checkpoint show vm1 fell-back >"$T/show"
  check "show: the type and what was asked" grep -q "type: *standard (asked: production)" "$T/show"
  check "show: the reason" grep -q "reason: .*quiesce" "$T/show"
  check "show: the disks with sizes" grep -Eq "image +$T/img/a.qcow2 \(" "$T/show"
  check "show: who made it" grep -q "made by: *root (uid 0), asked by user" "$T/show"
  "$SP" -q checkpoint create vm1 --on-quiesce-failure crash --name crash-fallback || fail "crash fallback"
  check "fallback recorded as crash-consistent" \
    [ "$(list_json vm1 | jq -r '.checkpoints[] | select(.name == "crash-fallback") | .consistency')" = crash ]
  "$SP" -q checkpoint create vm1 --type crash --name "crash type" || fail "--type crash"
  check "--type crash recorded" \
    [ "$(list_json vm1 | jq -r '.checkpoints[] | select(.name == "crash type") | "\(.type) \(.consistency)"')" = "crash crash" ]
  check "show: parent and children" \
    [ "$("$SP" --json checkpoint show vm1 crash-fallback | jq -r '"\(.["parent-checkpoint"].name) \([.children[].name] | join(","))"')" = "fell-back crash type" ]
  if "$SP" checkpoint show vm1 nosuch 2>"$T/err"; then fail "show nosuch"; fi
  check "store consistent" store_consistent vm1
  if "$SP" checkpoint create vm1 --name "$(printf 'a%.0s' $(seq 101))" 2>"$T/err"; then
    fail "101-character name accepted"
  fi
  check "name limit enforced" grep -q "1 to 100 characters" "$T/err"
  if "$SP" checkpoint create vm1 --name "$(printf 'a\tb')" 2>"$T/err"; then
    fail "control character accepted"
  fi
  check "no control characters" grep -q "control characters" "$T/err"
  ;;
agent-timeout)
  start_qemu; start_agent --freeze-delay-ms 2500
  register vm1 --agent "$T/agent.sock"
  # production-only: no fallback to a standard checkpoint (production's default), so it fails.
  if STILLPOINT_AGENT_FREEZE_TIMEOUT_MS=800 "$SP" checkpoint create vm1 --type production-only 2>"$T/err"; then
    fail "create succeeded with a timed-out freeze"
  fi
  check "error says the agent timed out" grep -q "timed out" "$T/err"
  check "the late freeze was thawed" log_has_order freeze thaw
  check "guest not frozen at the end" [ "$(agent_events | awk '{print $NF}')" = thaw ]
  check "no stray overlay" [ "$(n_images)" = 2 ]
  check "no record" [ "$(n_checkpoints vm1)" = 0 ]
  # production (the default) falls back to a standard checkpoint: the late freeze of a stock
  # qemu-ga (no lease) must be thawed before the VM's state is saved, or it stays frozen.
  rm -f "$T/agent.log"
  start_agent --qga --freeze-delay-ms 2500
  STILLPOINT_AGENT_FREEZE_TIMEOUT_MS=800 "$SP" checkpoint create vm1 >"$T/out" 2>"$T/err" \
    || { cat "$T/err"; fail "production falls back to standard"; }
  check "fell back to a standard checkpoint" \
    [ "$(list_json vm1 | jq -r '.checkpoints[0].type')" = standard ]
  sleep 3  # the agent's late freeze has landed by now
  check "the late freeze was thawed before the fallback" log_has_order freeze thaw
  check "guest not frozen after the fallback" [ "$(agent_events | awk '{print $NF}')" = thaw ]
  ;;
qga)
  start_qemu; start_agent --qga
  register vm1 --agent "$T/agent.sock"
  "$SP" checkpoint create vm1 2>"$T/err" || { cat "$T/err"; fail "create with qemu-ga"; }
  check "detected a stock qemu-ga" grep -q "qemu-ga (standard fsfreeze)" "$T/err"
  check "standard commands used" \
    log_has_order "cmd guest-fsfreeze-freeze" "cmd guest-fsfreeze-status" "cmd guest-fsfreeze-thaw"
  check "application-consistent" [ "$(list_json vm1 | jq -r '.checkpoints[0].consistency')" = application ]
  ;;
lock)
  start_qemu; start_agent --freeze-delay-ms 2000
  register vm1 --agent "$T/agent.sock"
  "$SP" -q checkpoint create vm1 --name slow & slow=$!
  until grep -q "cmd stillpoint-freeze" "$T/agent.log" 2>/dev/null; do sleep 0.05; done
  if "$SP" checkpoint create vm1 --name second 2>"$T/err"; then fail "second process got in"; fi
  check "second process told the VM is busy" grep -q "VM 'vm1' is busy: another stillpoint process (pid $slow)" "$T/err"
  "$SP" checkpoint list vm1 >/dev/null 2>"$T/err" || fail "list while busy"
  check "list works meanwhile, leaving the operation in progress alone" grep -q "note: VM 'vm1' is busy" "$T/err"
  wait $slow || fail "first create"
  check "only the first checkpoint exists" [ "$(list_json vm1 | jq -r '.checkpoints[].name')" = slow ]
  ;;
crash-recovery)
  start_qemu; start_agent
  register vm1 --agent "$T/agent.sock"
  for step in planned prepared freezing frozen snapshotted thawed-consistent recorded; do
    set +e; STILLPOINT_TEST_CRASH_AT=$step "$SP" -q checkpoint create vm1 --name "killed at $step" 2>/dev/null
    rc=$?; set -e
    [ $rc = 137 ] || fail "not killed at $step (rc $rc)"
    "$SP" -q vm recover vm1 || fail "recovery after $step"
    check "after a kill at $step: store and files agree" store_consistent vm1
    "$SP" -q checkpoint create vm1 --name "after $step" || fail "create after a kill at $step"
    check "after a kill at $step: the rerun is consistent" \
      [ "$(list_json vm1 | jq -r '.checkpoints[-1].consistency')" = application ]
    check "after a kill at $step: chain follows the tree" chain_matches_current vm1
  done
  names=$(list_json vm1 | jq -r '[.checkpoints[].name] | join(",")')
  # A kill after the transaction keeps the checkpoint (the VM runs on it), recorded as
  # crash-consistent unless the thaw verdict was journaled; a kill before it leaves nothing.
  check "kills before the transaction left no checkpoint" \
    bash -c "! grep -Eq 'killed at (planned|prepared|freezing|frozen)' <<<'$names'"
  check "kills after the transaction were recorded" \
    [ "$(list_json vm1 | jq -r '[.checkpoints[] | select(.name | startswith("killed")) | "\(.name)=\(.consistency)"] | join(",")')" \
      = "killed at snapshotted=crash,killed at thawed-consistent=application,killed at recorded=application" ]
  # qemu-ga does not thaw when the host dies: recovery must.
  start_agent --qga
  set +e; STILLPOINT_TEST_CRASH_AT=frozen "$SP" -q checkpoint create vm1 2>/dev/null; set -e
  check "qemu-ga left frozen by the kill" [ "$(agent_events | awk '{print $NF}')" = freeze ]
  "$SP" -q checkpoint list vm1 >/dev/null
  check "recovery thawed the qemu-ga guest" [ "$(agent_events | awk '{print $NF}')" = thaw ]
  check "store consistent" store_consistent vm1
  ;;
qmp-gone)
  # QEMU dies while the guest is frozen (before the transaction): thaw anyway, record nothing;
  # its overlays stay in the journal until QEMU is back and recovery can tell they are unused.
  start_qemu; start_agent --qga --freeze-delay-ms 1500
  register vm1 --agent "$T/agent.sock"
  "$SP" checkpoint create vm1 2>"$T/err" & pid=$!
  until grep -q "cmd guest-fsfreeze-freeze" "$T/agent.log" 2>/dev/null; do sleep 0.05; done
  kill -KILL "$QEMU_PID"; wait "$QEMU_PID" 2>/dev/null || true
  if wait $pid; then fail "create succeeded without QEMU"; fi
  check "clear error names QMP" grep -q "QMP command transaction: QMP socket .*: the peer closed the connection" "$T/err"
  check "the guest was thawed" [ "$(agent_events)" = "freeze thaw" ]
  check "no record" [ "$(n_checkpoints vm1)" = 0 ]
  start_qemu keep
  "$SP" -q vm recover vm1 || fail "recovery with QEMU back"
  check "recovery removed the unused overlays" [ "$(n_images)" = 2 ]
  check "store consistent" store_consistent vm1
  ;;
sigterm)
  # SIGTERM while the guest is frozen: a qemu-ga guest would stay frozen if the CLI died there.
  start_qemu; start_agent --qga --freeze-delay-ms 1500
  register vm1 --agent "$T/agent.sock"
  "$SP" checkpoint create vm1 2>"$T/err" & pid=$!
  until grep -q "cmd guest-fsfreeze-freeze" "$T/agent.log" 2>/dev/null; do sleep 0.05; done
  kill -TERM $pid
  wait $pid || fail "create did not finish after SIGTERM"
  check "says it finished first" grep -q "interrupted (signal 15): finished the operation first" "$T/err"
  check "the guest was thawed" [ "$(agent_events)" = "freeze thaw" ]
  check "the checkpoint was recorded" [ "$(n_checkpoints vm1)" = 1 ]
  ;;
restarted)
  # The transaction happened, then the CLI died and QEMU was restarted on the old images: the
  # overlays may hold writes, so recovery keeps them and says so instead of guessing.
  start_qemu; start_agent
  register vm1 --agent "$T/agent.sock"
  set +e; STILLPOINT_TEST_CRASH_AT=snapshotted "$SP" -q checkpoint create vm1 2>/dev/null; set -e
  kill "$QEMU_PID"; wait "$QEMU_PID" 2>/dev/null || true
  start_qemu keep
  if "$SP" vm recover vm1 2>"$T/err"; then fail "recovery guessed"; fi
  check "recovery explains" grep -q "the VM no longer runs on its overlays" "$T/err"
  check "overlays kept" [ "$(n_images)" = 4 ]
  check "operation kept in the journal" \
    [ "$(sqlite3 "$STILLPOINT_STORE" "select count(*) from ops where state='intent'")" = 1 ]
  ;;
hook)
  start_qemu; start_agent
  register vm1 --agent "$T/agent.sock" --driver hook \
    --hook-command "env | grep ^STILLPOINT_ | sort > '$T/hook.env'; echo hook >> '$T/agent.log'"
  "$SP" -q checkpoint create vm1 --name "hooked" || fail "hook create"
  # The lease covers the hook's deadline (30 s by default) and the thaw's margin.
  check "hook ran inside the frozen window" [ "$(agent_events)" = "freeze lease-ms 45000 hook thaw" ]
  check "hook saw the VM" grep -qx "STILLPOINT_VM=vm1" "$T/hook.env"
  check "hook saw the checkpoint" grep -qx "STILLPOINT_CHECKPOINT=hooked" "$T/hook.env"
  check "hook saw the disks" grep -qx "STILLPOINT_DISKS=vda vdb" "$T/hook.env"
  check "hook saw disk images" grep -qx "STILLPOINT_DISK_1_IMAGE=$T/img/b.qcow2" "$T/hook.env"
  check "recorded application-consistent" [ "$(list_json vm1 | jq -r '.checkpoints[0].consistency')" = application ]
  # The hook's storage is opaque: after a kill, the journal decides whether its snapshot was made.
  set +e; STILLPOINT_TEST_CRASH_AT=frozen "$SP" -q checkpoint create vm1 --name "killed before" 2>/dev/null
  STILLPOINT_TEST_CRASH_AT=snapshotted "$SP" -q checkpoint create vm1 --name "killed after" 2>/dev/null
  set -e
  "$SP" -q vm recover vm1 || fail "hook recovery"
  check "hook: a run killed after its snapshot is recorded, crash-consistent; one killed before is not" \
    [ "$(list_json vm1 | jq -r '[.checkpoints[] | "\(.name)=\(.consistency)"] | join(",")')" \
      = "hooked=application,killed after=crash" ]
  register vm2 --agent "$T/agent.sock" --driver hook --hook-command "exit 3"
  : >"$T/agent.log"
  if "$SP" checkpoint create vm2 2>"$T/err"; then fail "failing hook accepted"; fi
  check "failing hook: clear error" grep -q "hook command failed (exit status 3)" "$T/err"
  check "failing hook: thawed" [ "$(agent_events)" = "freeze lease-ms 45000 thaw" ]
  check "failing hook: no record" [ "$(n_checkpoints vm2)" = 0 ]
  register vm3 --agent "$T/agent.sock" --driver hook --hook-command "sleep 30" --hook-timeout 1
  : >"$T/agent.log"
  start=$(date +%s)
  if "$SP" checkpoint create vm3 2>"$T/err"; then fail "stuck hook accepted"; fi
  check "stuck hook killed at its deadline" grep -q "did not finish within 1000 ms" "$T/err"
  check "stuck hook: quickly" [ $(( $(date +%s) - start )) -lt 10 ]
  check "stuck hook: thawed" [ "$(agent_events)" = "freeze lease-ms 16000 thaw" ]
  check "stuck hook: no record" [ "$(n_checkpoints vm3)" = 0 ]
  # An agent that grants a shorter lease than the hook's own deadline: the hook is killed before
  # the lease runs out (its deadline ends 3 s before it), not after the guest thawed by itself.
  start_agent --max-lease-ms 6000
  register vm4 --agent "$T/agent.sock" --driver hook --hook-command "sleep 30" --hook-timeout 20
  : >"$T/agent.log"
  start=$(date +%s)
  if "$SP" checkpoint create vm4 2>"$T/err"; then fail "hook past the lease accepted"; fi
  check "hook killed inside the granted lease" grep -q "did not finish within 3000 ms.*lease" "$T/err"
  check "hook inside the lease: quickly" [ $(( $(date +%s) - start )) -lt 10 ]
  check "hook inside the lease: thawed by the host" [ "$(agent_events)" = "freeze lease-ms 6000 thaw" ]
  check "hook inside the lease: no record" [ "$(n_checkpoints vm4)" = 0 ]
  # Delete: the hook is asked (STILLPOINT_ACTION=delete) with the operation that made the
  # snapshot, then the record goes; a hook that fails keeps it. Its stdout stays off ours.
  start_agent
  register vm5 --agent "$T/agent.sock" --driver hook --hook-command \
    "echo \"\$STILLPOINT_ACTION \$STILLPOINT_CHECKPOINT \$STILLPOINT_OPERATION \$STILLPOINT_DISKS\" >> '$T/actions'
     echo hook-chatter-on-stdout
     [ \"\$STILLPOINT_ACTION\" = create ] || [ ! -e '$T/refuse' ]"
  "$SP" --json checkpoint create vm5 --name one >"$T/out" 2>"$T/err" || fail "hook create (json)"
  check "hook stdout: not in --json output" jq -e '.name == "one"' "$T/out"
  check "hook stdout: on stderr" grep -qx hook-chatter-on-stdout "$T/err"
  "$SP" -q checkpoint create vm5 --name two || fail "hook create two"
  op_one=$(sed -n 1p "$T/actions" | cut -d' ' -f3)
  check "create: the hook got an operation" [ -n "$op_one" ]
  touch "$T/refuse"
  if "$SP" checkpoint delete vm5 one 2>"$T/err"; then fail "failing delete hook accepted"; fi
  check "failing delete: clear error" grep -q "checkpoint 'one' is kept: .*hook command failed (exit status 1) on delete" "$T/err"
  check "failing delete: record kept" [ "$(n_checkpoints vm5)" = 2 ]
  rm "$T/refuse"
  "$SP" -q checkpoint delete vm5 one || fail "hook delete"
  check "delete: the hook was asked with create's operation" \
    [ "$(tail -n 1 "$T/actions")" = "delete one $op_one vda vdb" ]
  check "delete: the record is gone, the other kept" \
    [ "$(list_json vm5 | jq -r '[.checkpoints[].name] | join(",")')" = two ]
  # Retention of a hook VM goes through the same hook.
  "$SP" -q checkpoint create vm5 --name three || fail "hook create three"
  "$SP" -q checkpoint retention vm5 --keep 1 --all || fail "hook retention"
  check "retention: the hook deleted the oldest" [ "$(tail -n 1 "$T/actions" | cut -d' ' -f1,2)" = "delete two" ]
  check "retention: one kept" [ "$(list_json vm5 | jq -r '[.checkpoints[].name] | join(",")')" = three ]
  ;;
hook-disks)
  # A hook VM without QMP: its disks are given at vm add, and passed to the hook.
  start_agent
  "$SP" -q vm add lvm --driver hook --agent "$T/agent.sock" --hook-timeout 5 \
    --disk root=/dev/vg0/lvm-root,serial=ROOT0 --disk 'data=/dev/vg0/lvm,,data,format=qcow2' \
    --hook-command "env | grep ^STILLPOINT_ | sort > '$T/hook.env'" || fail "vm add --disk"
  check "vm disks lists the given disks" [ "$("$SP" --json vm disks lvm | jq -r \
    '[.[] | "\(.disk)=\(.image),\(.serial),\(.format)"] | join(" ")')" \
    = "root=/dev/vg0/lvm-root,ROOT0,raw data=/dev/vg0/lvm,data,null,qcow2" ]
  check "vm list shows them" [ "$("$SP" --json vm list | jq -r '.[0].disks | length')" = 2 ]
  "$SP" -q checkpoint create lvm --name "on lvm" || fail "create without QMP"
  check "the lease covers the 5 s hook" [ "$(agent_events)" = "freeze lease-ms 20000 thaw" ]
  check "hook saw the disks" grep -qx "STILLPOINT_DISKS=root data" "$T/hook.env"
  check "hook saw a device" grep -qx "STILLPOINT_DISK_0_IMAGE=/dev/vg0/lvm-root" "$T/hook.env"
  check "hook saw a serial" grep -qx "STILLPOINT_DISK_0_SERIAL=ROOT0" "$T/hook.env"
  check "hook saw a path with a comma" grep -qx "STILLPOINT_DISK_1_IMAGE=/dev/vg0/lvm,data" "$T/hook.env"
  check "hook saw a format" grep -qx "STILLPOINT_DISK_1_FORMAT=qcow2" "$T/hook.env"
  check "the checkpoint records both disks" [ "$(list_json lvm | jq -r \
    '[.checkpoints[0].disks[] | "\(.disk)=\(.image)"] | join(" ")')" \
    = "root=/dev/vg0/lvm-root data=/dev/vg0/lvm,data" ]
  if "$SP" vm add bad --qmp "$T/qmp.sock" --disk root=/dev/x 2>"$T/err"; then fail "--disk for qemu"; fi
  check "--disk is the hook driver's" grep -q "for the hook driver only" "$T/err"
  if "$SP" vm add bad --driver hook --hook-command true --disk root=/dev/x,serial=A \
      --disk data=/dev/y,serial=A 2>"$T/err"; then fail "two disks, one serial"; fi
  check "one serial twice is refused" grep -q "disks 'root' and 'data' have the same serial" "$T/err"
  if "$SP" vm add bad --driver hook --hook-command true --disk root 2>"$T/err"; then fail "bad spec"; fi
  check "a bad spec names itself" grep -q "disk 'root': expected NAME=PATH" "$T/err"
  check "nothing registered" [ "$("$SP" --json vm list | jq length)" = 1 ]
  ;;
overlay-dir)
  start_qemu; start_agent
  touch "$T/not-a-dir"
  if register vm0 --overlay-dir "$T/not-a-dir/overlays" 2>"$T/err"; then fail "vm add with a bad overlay dir"; fi
  check "vm add names the overlay dir" grep -q "overlay directory $T/not-a-dir/overlays does not exist" "$T/err"
  if register vm0 --overlay-dir relative/dir 2>"$T/err"; then fail "vm add with a missing relative overlay dir"; fi
  check "a relative overlay dir is made absolute" grep -q "overlay directory $PWD/relative/dir does not exist" "$T/err"
  check "nothing registered" [ "$("$SP" --json vm list | jq length)" = 0 ]
  # The directory is gone after vm add: create fails before the freeze.
  mkdir "$T/gone"
  register vm1 --agent "$T/agent.sock" --overlay-dir "$T/gone"
  rmdir "$T/gone"; touch "$T/gone"
  if "$SP" checkpoint create vm1 2>"$T/err"; then fail "create into an unusable overlay dir"; fi
  check "error names the overlay dir" grep -q "image directory $T/gone: $T/gone is not a directory" "$T/err"
  check "overlays are made before the freeze: the guest was never frozen" [ "$(agent_events)" = "" ]
  check "no stray overlay" [ "$(n_images)" = 2 ]
  check "no record" [ "$(n_checkpoints vm1)" = 0 ]
  check "refused before the journal: no operation open" \
    [ "$(sqlite3 "$STILLPOINT_STORE" "select count(*) from ops where state='intent'")" = 0 ]
  mkdir "$T/overlays"
  register vm2 --agent "$T/agent.sock" --overlay-dir "$T/overlays"
  "$SP" -q checkpoint create vm2 || fail "create with an overlay dir"
  check "overlays went to the overlay dir" [ "$(find "$T/overlays" -name 'vm2-*.qcow2' | wc -l)" = 2 ]
  ;;
image-dir)
  # Issue 15 item 3: overlays are written only into directories nobody but root (or the user
  # stillpoint runs as) can change; refused with the chmod/chown that fixes it, nothing written.
  start_qemu; start_agent
  mkdir -m 0775 "$T/shared"; chmod 0775 "$T/shared" # group-writable, whatever the umask
  if register vm0 --agent "$T/agent.sock" --overlay-dir "$T/shared" 2>"$T/err"; then
    fail "vm add with a group-writable overlay dir"
  fi
  check "vm add: says the overlay dir is group-writable, and the fix" \
    grep -q "image directory $T/shared is not safe: $T/shared is writable by its group (mode 0775).*(chmod go-w $T/shared)" "$T/err"
  check "vm add: nothing registered" [ "$("$SP" --json vm list | jq length)" = 0 ]
  chmod 0755 "$T/shared"
  register vm1 --agent "$T/agent.sock" --overlay-dir "$T/shared"
  chmod g+w "$T/shared" # made unsafe after vm add: checked again before every write
  if "$SP" checkpoint create vm1 2>"$T/err"; then fail "create into a group-writable overlay dir"; fi
  check "create: refused, naming the VM, the disk and the fix" \
    grep -q "VM 'vm1', disk vda: image directory $T/shared is not safe: .*(chmod go-w $T/shared)" "$T/err"
  check "create: refused before the freeze" [ "$(agent_events)" = "" ]
  check "create: nothing written in the overlay dir" [ -z "$(ls -A "$T/shared")" ]
  check "create: no record, journal closed" \
    [ "$(n_checkpoints vm1) $(sqlite3 "$STILLPOINT_STORE" "select count(*) from ops where state='intent'")" = "0 0" ]
  # Next to the images (no overlay dir): sticky does not make a world-writable directory safe.
  register vm2 --agent "$T/agent.sock"
  chmod 1777 "$T/img"
  if "$SP" checkpoint create vm2 2>"$T/err"; then fail "create next to images in a world-writable dir"; fi
  check "create: the image directory is world-writable" \
    grep -q "image directory $T/img is not safe: $T/img is writable by everyone (mode 1777).*(chmod go-w $T/img)" "$T/err"
  check "create: no new image" [ "$(n_images)" = 2 ]
  chmod 0755 "$T/img"
  # An ancestor that others can write lets them rename the image directory away.
  chmod 0777 "$T"
  if "$SP" checkpoint create vm2 2>"$T/err"; then fail "create under a world-writable ancestor"; fi
  check "create: the ancestor is named" grep -q "image directory $T/img is not safe: $T is writable by everyone (mode 0777)" "$T/err"
  chmod 0700 "$T"
  # Owned by someone else: they could replace what is in it.
  if [ "$(id -u)" = 0 ]; then
    chown 65534 "$T/img"
    if "$SP" checkpoint create vm2 2>"$T/err"; then fail "create next to images of another owner"; fi
    check "create: the owner is named, and the fix" grep -q "$T/img is owned by uid 65534.*(chown root $T/img)" "$T/err"
    chown 0 "$T/img"
  fi
  check "no new image, no record" [ "$(n_images) $(n_checkpoints vm2)" = "2 0" ]
  "$SP" -q checkpoint create vm2 || fail "create once the directory is safe"
  check "the overlays are created owner-only (O_EXCL, mode 0600)" \
    [ "$(find "$T/img" -name 'vm2-*.qcow2' -perm 0600 | wc -l)" = 2 ]
  check "store and files agree" store_consistent vm2
  ;;
restart-on-image)
  # Issue #18 item 1: after a checkpoint, QEMU is started again with the same command line, so
  # on the image the checkpoint froze. Every command refuses to build on it and says what
  # happened and how to recover; started from the stable paths instead, all is well.
  start_qemu; start_agent
  register vm1 --agent "$T/agent.sock"
  "$SP" -q checkpoint create vm1 --name one || fail "create one"
  json=$(list_json vm1)
  link=$T/vms/vm1/vda.qcow2
  check "the stable path of each disk follows the present" \
    [ "$(readlink "$link") $(readlink "$T/vms/vm1/vdb.qcow2")" \
      = "$(echo "$json" | jq -r '[.checkpoints[0].disks[].overlay] | join(" ")')" ]
  check "the checkpoint's images are read-only files" read_only_files "$T/img/a.qcow2" "$T/img/b.qcow2"
  check "QEMU holds them read-only" node_read_only "$T/img/a.qcow2"
  check "the present is writable" [ -n "$(find "$(readlink "$link")" -perm -200)" ]
  stop_qemu; start_qemu keep
  : >"$T/agent.log"
  if "$SP" checkpoint create vm1 --name two 2>"$T/err"; then fail "built on a checkpoint's image"; fi
  check "refused: says QEMU runs on checkpoint one's image" \
    grep -q "QEMU runs disk vda (node disk0) on $T/img/a.qcow2, the frozen image of checkpoint 'one'" "$T/err"
  check "refused: names the stable path to start from" grep -q "instead of the stable path $link" "$T/err"
  check "refused: says how to recover" grep -q "vm recover vm1 --adopt-running" "$T/err"
  check "refused before the freeze" [ "$(agent_events)" = "" ]
  check "no new overlay, no new record" [ "$(n_images) $(n_checkpoints vm1)" = "4 1" ]
  "$SP" checkpoint list vm1 >"$T/tree" 2>"$T/err" || fail "list must still work"
  check "list warns" grep -q "WARNING: VM 'vm1': QEMU runs disk vda .* frozen image of checkpoint 'one'" "$T/err"
  for cmd in "checkpoint delete vm1 one" "checkpoint export vm1 one $T/export" \
             "checkpoint apply vm1 one --force" "vm recover vm1"; do
    # shellcheck disable=SC2086
    if "$SP" $cmd 2>"$T/err"; then fail "$cmd went ahead"; fi
    check "$cmd refuses" grep -q "frozen image of checkpoint 'one'" "$T/err"
  done
  check "nothing changed" [ "$(n_images) $(n_checkpoints vm1)" = "4 1" ]
  overlays=$(list_json vm1 | jq -r '[.checkpoints[0].disks[].overlay] | join(" ")')
  # Started from the stable paths instead, all is well: a second checkpoint follows one.
  stop_qemu
  IMG_A=$link IMG_B=$T/vms/vm1/vdb.qcow2 start_qemu keep
  "$SP" -q checkpoint create vm1 --name two || fail "create two on QEMU started from the stable paths"
  check "started from the stable paths, the next checkpoint follows one" \
    [ "$(list_json vm1 | jq -r '[.checkpoints[] | "\(.name):\(.parent)"] | join(",")')" = "one:null,two:1" ]
  check "two's images are read-only too" \
    read_only_files $(list_json vm1 | jq -r '.checkpoints[1].disks[].image')
  check "store consistent" store_consistent vm1
  # The recovery: QEMU on one's images again (the launcher's old command line); keep what it
  # runs on, forget one and two (they no longer hold their content), keep their files.
  stop_qemu; start_qemu keep
  "$SP" vm recover vm1 --adopt-running 2>"$T/err" || { cat "$T/err"; fail "--adopt-running"; }
  check "adopt: says what it forgot" grep -q "forgot checkpoint 'one'" "$T/err"
  check "adopt: names the files it kept" grep -q "kept $(echo "$overlays" | cut -d' ' -f1)" "$T/err"
  check "adopt: no checkpoint left, none current" \
    [ "$(list_json vm1 | jq -c '[.current, (.checkpoints | length)]')" = "[null,0]" ]
  check "adopt: no file deleted" [ "$(n_images)" = 6 ]
  check "adopt: the running images are the present: writable, the stable paths name them" \
    [ -n "$(find "$T/img/a.qcow2" -perm -200)" -a "$(readlink "$link")" = "$T/img/a.qcow2" ]
  "$SP" -q checkpoint create vm1 --name three || fail "create after --adopt-running"
  check "adopt: the next checkpoint is a root on the running images" \
    [ "$(list_json vm1 | jq -r '.checkpoints[0] | "\(.name) \(.parent) \(.disks[0].image)"')" \
      = "three null $T/img/a.qcow2" ]
  ;;
*)
  fail "unknown case"
  ;;
esac
if ls "$T"/sanitizer.* >/dev/null 2>&1; then cat "$T"/sanitizer.* >&2; fail "sanitizer report"; fi
echo "PASS host/qemu/$case_name"
