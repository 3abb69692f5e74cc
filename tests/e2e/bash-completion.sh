#!/usr/bin/env bash
# e2e/host/cli/bash-completion — the installed completion script against the real CLI and a real
# store: commands, options (each command's --help options are offered), VM and checkpoint names.
set -euo pipefail
SP=${SP_STILLPOINT:?}
COMPLETION=${SP_COMPLETION:?}
T=$(mktemp -d /tmp/sp-completion.XXXXXX)
trap 'rm -rf "$T"' EXIT
export STILLPOINT_STORE=$T/store.db
PATH=$(dirname "$SP"):$PATH
fail() { echo "FAIL: $*" >&2; exit 1; }
check() { local what=$1; shift; "$@" || fail "$what"; echo "ok - $what"; }

truncate -s 8M "$T/root.img"
stillpoint -q vm add web --driver hook --hook-command true --disk "root=$T/root.img,format=raw" >/dev/null
stillpoint -q vm add db --driver hook --hook-command true --disk "root=$T/root.img,format=raw" >/dev/null
stillpoint -q checkpoint create web --type crash --name "before upgrade" >/dev/null
stillpoint -q checkpoint create web --type crash --name nightly >/dev/null

# shellcheck source=/dev/null
source "$COMPLETION"
# complete LINE: what bash offers for the last word of LINE (a trailing space: a new word).
complete_line() {
  read -r -a COMP_WORDS <<<"$1"
  [[ $1 == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  _stillpoint
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() { # LINE EXPECTED
  local got; got=$(complete_line "$1")
  [ "$got" = "$2" ] || fail "'$1' completes to '$got', expected '$2'"
  echo "ok - '$1' -> '$2'"
}

expect "stillpoint ch" "checkpoint"
expect "stillpoint checkpoint s" "show"
expect "stillpoint vm " "add disks list recover remove set"
expect "stillpoint checkpoint show " "db web"
expect "stillpoint --store $STILLPOINT_STORE checkpoint delete w" "web"
expect "stillpoint checkpoint show web " 'before\ upgrade nightly'
expect "stillpoint checkpoint apply web n" "nightly"
expect "stillpoint vm set web --checkpoint-type production" "production production-only"
expect "stillpoint checkpoint create web --type " "crash production production-only standard"
expect "stillpoint vm add new " ""
expect "stillpoint schedule " "create list remove"
stillpoint -q schedule create db --unit-dir "$T/units" >/dev/null
expect "stillpoint schedule remove --unit-dir $T/units " "db"
expect "stillpoint schedule list --unit-dir $T/units d" "db"

# Every option a command's --help names is offered for it.
while read -r group command; do
  offered=$(complete_line "stillpoint $group $command --")
  for opt in $("$SP" "$group" "$command" --help | grep -oE -- '^ +(-[a-z], )?--[a-z][a-z-]*' |
                grep -o -- '--[a-z-]*' | grep -vx -- '--help-all' | sort -u); do
    case " $offered " in *" $opt "*) ;; *) fail "'$group $command' offers no $opt" ;; esac
  done
done <<'LIST'
vm add
vm set
vm remove
vm recover
checkpoint create
checkpoint delete
checkpoint export
checkpoint apply
checkpoint show
backup begin
backup end
schedule create
schedule list
schedule remove
checkpoint retention
LIST
echo "ok - every command's --help options are offered"
