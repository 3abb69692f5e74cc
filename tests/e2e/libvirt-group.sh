# e2e/libvirt/group, sourced by libvirt.sh once domains spweb and spdb run (sp-workload writing in
# both): a consistency group whose members are libvirt domains, each registered by its own URI —
# spdb through an explicit socket URI, as a member on another host is named by its own
# (qemu+ssh://host/system) — so the group goes through libvirt's remote protocol, no cluster
# layer of ours.
: "${SP_STILLPOINT:?}" "${SP_WORKLOAD:?}"
SPGUEST=$(dirname "$0")/../guest/spguest.py
SP() { "${AS[@]}" env STILLPOINT_STORE="$T/store.db" "$SP_STILLPOINT" "$@"; }
status() { V qemu-agent-command "$1" '{"execute":"guest-fsfreeze-status"}' | jq -r .return; }
snapshots() { V snapshot-list "$1" --name | sed '/^$/d' | wc -l; }
n_cps() { SP --json -q checkpoint list "$1" | jq '.checkpoints | length'; }
overlays() { ls "$T" | grep -c -- '-vda-.*\.qcow2$' || true; }
records_ok() { # IMAGE DISK: e2fsck-clean ext4 whose /records are whole, valid records
  local raw=$T/check.raw report
  qemu-img convert -U -O raw "$1" "$raw"
  e2fsck -fn "$raw" >/dev/null 2>&1 || { rm -f "$raw"; return 1; }
  rm -f "$raw"
  report=$(python3 "$SPGUEST" check-image "$1" --file /records --workload "$SP_WORKLOAD") ||
    return 1
  jq -e '.ok and .valid > 0' <<<"$report" >/dev/null
}

DB_URI="qemu+unix:///session?socket=$XDG_RUNTIME_DIR/libvirt/libvirt-sock"
SP -q vm add web --driver libvirt --domain spweb --uri "$URI" || fail "vm add web"
SP -q vm add db --driver libvirt --domain spdb --uri "$DB_URI" || fail "vm add db"
SP -q group create shop db web || fail "group create"
sleep 1 # records before the checkpoint

out=$(SP checkpoint create --group shop --name "shop 1" 2>&1) || fail "group checkpoint: $out"
check "one group checkpoint across two libvirt URIs" \
  [ "$(n_cps web)/$(n_cps db)" = "1/1" ]
check "both application-consistent" [ "$(SP --json -q checkpoint list web | jq -r '.checkpoints[0].consistency')/$(SP --json -q checkpoint list db | jq -r '.checkpoints[0].consistency')" = "application/application" ]
check "both guests thawed" [ "$(status spweb)/$(status spdb)" = "thawed/thawed" ]
check "libvirt lists one snapshot on each domain" [ "$(snapshots spweb)/$(snapshots spdb)" = "1/1" ]
check "web's frozen image is clean and holds whole records" records_ok "$T/web0.qcow2"
check "db's frozen image is clean and holds whole records" records_ok "$T/db0.qcow2"

# A member that cannot be frozen (its filesystems are frozen already, by someone else): the
# group stops, the other member is thawed, and nobody gets a checkpoint, file or libvirt entry.
V domfsfreeze spdb >/dev/null || fail "domfsfreeze spdb"
before=$(overlays)
out=$(SP checkpoint create --group shop --name "shop 2" 2>&1) && {
  V domfsthaw spdb >/dev/null; fail "the group checkpoint went ahead with a member it could not freeze"; }
V domfsthaw spdb >/dev/null || fail "domfsthaw spdb"
echo "# $(tail -1 <<<"$out")"
check "the failed member is named" grep -q "'db'" <<<"$out"
check "... web is thawed" [ "$(status spweb)" = thawed ]
check "... no member got a checkpoint" [ "$(n_cps web)/$(n_cps db)" = "1/1" ]
check "... no overlay left" [ "$(overlays)" = "$before" ]
check "... libvirt's lists unchanged" [ "$(snapshots spweb)/$(snapshots spdb)" = "1/1" ]

# The group's checkpoints are ordinary ones: each merges away through its own URI.
SP -q checkpoint delete web "shop 1" && SP -q checkpoint delete db "shop 1" || fail "delete"
check "deleted through both URIs: nothing left anywhere" \
  [ "$(n_cps web)/$(n_cps db)/$(snapshots spweb)/$(snapshots spdb)/$(overlays)" = "0/0/0/0/0" ]
echo "PASS e2e/libvirt/group"
