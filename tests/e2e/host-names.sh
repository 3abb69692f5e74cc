#!/usr/bin/env bash
# e2e/host/names — names and values that reach hook environments and generated unit files (issue 16,
# item 6): a checkpoint name that looks like an option or holds a line break, and an
# --on-calendar that would add lines to the timer unit, are refused and write nothing; what
# systemd accepts is written as one OnCalendar= line. No QEMU: nothing here reaches a VM.
set -euo pipefail
SP=${SP_STILLPOINT:?}
T=$(mktemp -d /tmp/sp-names.XXXXXX)
trap 'rm -rf "$T"' EXIT
export STILLPOINT_STORE=$T/store.db
fail() { echo "FAIL (e2e/host/names): $*" >&2; exit 1; }
check() { local what=$1; shift; "$@" || fail "$what"; echo "ok - $what"; }
refused() {   # refused WHAT PATTERN ARGS...: exit status 1, the reason on stderr
  local what=$1 pattern=$2; shift 2
  set +e; "$SP" "$@" >"$T/out" 2>"$T/err"; local rc=$?; set -e
  [ "$rc" = 1 ] && grep -q -- "$pattern" "$T/err" || fail "$what (exit $rc: $(cat "$T/err"))"
  echo "ok - $what"
}

"$SP" -q vm add vm1 --qmp "$T/qmp.sock" >/dev/null 2>&1 || fail "vm add"
refused "a VM name with a newline is refused" "only letters" vm add "$(printf 'vm\nx')" --qmp "$T/q"

# Checkpoint names: refused before anything reaches the VM (there is none here to reach).
refused "a checkpoint name starting with '-' is refused" "must not start with '-'" \
  checkpoint create vm1 --name=-rf
refused "a checkpoint name starting with '#' (an id's form) is refused" "must not start with '#'" \
  checkpoint create vm1 --name '#0'
refused "a checkpoint name with a newline is refused" "line breaks" \
  checkpoint create vm1 --name "$(printf 'a\nb')"
refused "a checkpoint name with U+2028 is refused" "line breaks" \
  checkpoint create vm1 --name "$(printf 'a\xe2\x80\xa8b')"

# --on-calendar: one line of the timer, nothing else.
units=$T/units
refused "--on-calendar with a newline is refused" "not part of a calendar expression" \
  schedule create vm1 --unit-dir "$units" --on-calendar "$(printf 'daily\nOnBootSec=1')"
refused "--on-calendar with a control character is refused" "not part of a calendar expression" \
  schedule create vm1 --unit-dir "$units" --on-calendar "$(printf 'daily\r')"
refused "--on-calendar with a specifier is refused" "not part of a calendar expression" \
  schedule create vm1 --unit-dir "$units" --on-calendar "daily %n"
check "no unit was written" [ ! -e "$units" ]
if command -v systemd-analyze >/dev/null && systemd-analyze calendar daily >/dev/null 2>&1; then
  refused "--on-calendar systemd does not accept is refused" "systemd does not accept" \
    schedule create vm1 --unit-dir "$units" --on-calendar "Mon..Frix 25:00"
  check "... and no unit was written" [ ! -e "$units" ]
else
  echo "systemd-analyze cannot check calendar expressions here: the character set decides"
fi
"$SP" schedule create vm1 --unit-dir "$units" --on-calendar "Mon..Fri *-*-* 02:30:00 UTC" \
  >/dev/null || fail "a valid --on-calendar"
timer=$units/stillpoint-checkpoint-vm1.timer
check "a valid --on-calendar is one OnCalendar= line" \
  [ "$(grep -c '^OnCalendar=' "$timer")" = 1 ]
check "... with the spec as given" grep -qx 'OnCalendar=Mon..Fri \*-\*-\* 02:30:00 UTC' "$timer"
check "... and the timer has its 10 lines, no more" [ "$(wc -l <"$timer")" = 10 ]
echo "ok: e2e/host/names"
