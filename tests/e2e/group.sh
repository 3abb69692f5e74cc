#!/usr/bin/env bash
# e2e/group/* — consistency groups against two real QEMUs (paused q35, one qcow2 disk each) and two
# sp-fake-agents: every member frozen before any is snapshotted, freezes concurrent, and a member
# that cannot be frozen leaves all thawed with no checkpoint anywhere.   group.sh CASE
set -euo pipefail
case_name=${1:?usage: group.sh CASE}
SP=${SP_STILLPOINT:?}
FAKE=${SP_FAKE_AGENT:?}
command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null && command -v jq >/dev/null && command -v sqlite3 >/dev/null \
  || { echo "SKIP: qemu-system-x86_64, qemu-img, jq or sqlite3 missing"; exit 77; }

T=$(mktemp -d /tmp/sp-group.XXXXXX)
export STILLPOINT_STORE=$T/store.db
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL ($case_name): $*" >&2; exit 1; }
check() { local what=$1; shift; "$@" || fail "$what"; echo "ok - $what"; }

wait_socket() {
  for _ in $(seq 400); do [ -S "$1" ] && return 0; sleep 0.05; done
  fail "socket $1 never appeared"
}

start_vm() { # NAME [fake-agent options]: a paused QEMU with one disk, its agent, registered
  local n=$1; shift
  mkdir -p -m 0755 "$T/$n" # stillpoint refuses image directories others can write
  qemu-img create -q -f qcow2 "$T/$n/disk.qcow2" 16M
  qemu-system-x86_64 -machine q35 -accel tcg -S -nodefaults -display none \
    -qmp "unix:$T/$n/qmp.sock,server=on,wait=off" \
    -blockdev "driver=qcow2,node-name=disk0,file.driver=file,file.filename=$T/$n/disk.qcow2" \
    -device virtio-blk-pci,drive=disk0,id=vda >/dev/null &
  PIDS+=($!)
  "$FAKE" --socket "$T/$n/agent.sock" --log "$T/$n/agent.log" "$@" &
  PIDS+=($!)
  wait_socket "$T/$n/qmp.sock"; wait_socket "$T/$n/agent.sock"
  "$SP" -q vm add "$n" --qmp "$T/$n/qmp.sock" --agent "$T/$n/agent.sock"
}

n_checkpoints() { "$SP" --json checkpoint list "$1" 2>/dev/null | jq '.checkpoints | length'; }
n_overlays() { find "$T/$1" -name "$1-*.qcow2" | wc -l; }
events() { grep -v '^cmd ' "$T/$1/agent.log" | tr '\n' ' ' | sed 's/ $//'; }
no_sanitizer_reports() { ! ls "$T"/sanitizer* >/dev/null 2>&1; }

case "$case_name" in
together)
  # Each freeze takes 1.5 s: one after the other would take 3 s or more.
  start_vm db --freeze-delay-ms 1500; start_vm app --freeze-delay-ms 1500
  "$SP" -q group create shop db app || fail "group create"
  check "group list" [ "$("$SP" --json group list | jq -c .)" = '{"shop":["db","app"]}' ]
  check "a member must be a registered VM" \
    bash -c "! '$SP' -q group create bad db nosuchvm 2>/dev/null"
  start=$(date +%s%N)
  "$SP" --json checkpoint create --group shop --name "shop 1" >"$T/out.json" 2>"$T/err" \
    || { cat "$T/err"; fail "group checkpoint"; }
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  check "one checkpoint per member, both application-consistent" \
    [ "$(jq -r '[.[] | "\(.name)/\(.consistency)"] | join(" ")' "$T/out.json")" \
      = "shop 1/application shop 1/application" ]
  check "db: one checkpoint" [ "$(n_checkpoints db)" = 1 ]
  check "app: one checkpoint" [ "$(n_checkpoints app)" = 1 ]
  check "each guest frozen and thawed once" \
    [ "$(events db) | $(events app)" = "freeze lease-ms 19000 thaw | freeze lease-ms 19000 thaw" ]
  # Both frozen at once: every snapshot happened after both freezes and before either thaw.
  check "both frozen before the first snapshot, thawed after the last" \
    bash -c "tr '\n' ' ' <'$T/err' | grep -q 'freezing them all at once.*snapshotting.*snapshotting.*thawing 2'"
  check "freezes ran concurrently (took ${ms} ms for two 1.5 s freezes)" [ "$ms" -lt 2900 ]
  "$SP" -q group remove shop || fail "group remove"
  check "group removed, VMs and checkpoints stay" \
    [ "$("$SP" --json group list | jq -c .)/$(n_checkpoints db)" = "{}/1" ]
  check "no sanitizer report" no_sanitizer_reports
  ;;
one-fails)
  start_vm db; start_vm app --fail-freeze
  "$SP" -q group create shop db app || fail "group create"
  if "$SP" checkpoint create --group shop 2>"$T/err"; then fail "group checkpoint succeeded"; fi
  check "the error names the member that failed" grep -q "'app': .*refused to freeze" "$T/err"
  check "the error says no member got a checkpoint" grep -q "no member got a checkpoint" "$T/err"
  check "db was frozen and thawed" [ "$(events db)" = "freeze lease-ms 19000 thaw" ]
  check "app refused and is not frozen" [ "$(events app)" = "freeze-failed" ]
  check "no checkpoint on db" [ "$(n_checkpoints db)" = 0 ]
  check "no checkpoint on app" [ "$(n_checkpoints app)" = 0 ]
  check "no overlay left on either" [ "$(n_overlays db)$(n_overlays app)" = 00 ]
  check "nothing pending in the journal" \
    [ "$(sqlite3 "$STILLPOINT_STORE" "select count(*) from ops where state='intent'")" = 0 ]
  check "no sanitizer report" no_sanitizer_reports
  ;;
*) fail "unknown case" ;;
esac
