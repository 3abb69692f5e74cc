#!/usr/bin/env bash
# e2e/libvirt/* — the test guest (tests/guest) runs as a libvirt QEMU TCG domain on a private session
# daemon (its own XDG directories, started by this script), with stillpoint-agent on libvirt's
# own org.qemu.guest_agent.0 channel.
#   agent-interop  libvirt talking to our agent: virsh domfsfreeze/domfsthaw/domfsinfo and a
#                  disk-only snapshot with --quiesce work unchanged.
#   driver         stillpoint's libvirt driver (vm add --driver libvirt): production checkpoints
#                  through libvirt while sp-workload writes, libvirt's snapshot list and chain in
#                  step, delete = live block commit (inner and active layer), a failed snapshot
#                  rolled back, kill -9 recovered, a backup over NBD, apply (redefined); the
#                  data checked in the images.
#   driver-qga     the libvirt driver with stock qemu-ga in the guest: the standard freeze
#                  through libvirt, the checkpoint application-consistent, merged away again.
#   group          a consistency group of two libvirt domains, each registered by its own URI
#                  (as members on other hosts would be): one instant, or none of them.
#   standard       standard checkpoints (memory state) through libvirt's snapshot API: applied
#                  and resumed with libvirt's restore, the same workload process going on.
#   incremental    backup sessions through libvirt's checkpoint/backup API: full, incremental
#                  (extents checked against the real changes), failed, killed; virsh and
#                  virtnbdbackup see stillpoint's checkpoints.
#   libvirt.sh GUEST_DIR [agent-interop|driver|driver-qga|group|standard|incremental]
#   (all but agent-interop need $SP_STILLPOINT and $SP_WORKLOAD)
set -euo pipefail
GUEST=${1:?usage: libvirt.sh GUEST_DIR [agent-interop|driver|driver-qga|group|standard|incremental]}
CASE=${2:-agent-interop}
command -v virsh >/dev/null && command -v libvirtd >/dev/null && command -v qemu-img >/dev/null \
  || { echo "SKIP: virsh or libvirtd missing (libvirt-clients, libvirt-daemon-driver-qemu)"; exit 77; }
[ -f "$GUEST/initrd.img" ] || { echo "SKIP: no test guest in $GUEST"; exit 77; }
. "$GUEST/guest.env"

T=$(mktemp -d /tmp/sp-libvirt.XXXXXX)
# Root's libvirtd is always the privileged (system) daemon, configured in /etc/libvirt; an
# unprivileged user gets a session daemon that lives in the XDG directories below. So as root,
# the daemon and virsh run as nobody.
AS=()
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null || { echo "SKIP: setpriv missing"; exit 77; }
  AS=(setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$T")
  chown 65534:65534 "$T"
fi
export XDG_CONFIG_HOME=$T/config XDG_CACHE_HOME=$T/cache XDG_RUNTIME_DIR=$T/run \
  XDG_DATA_HOME=$T/data
"${AS[@]}" mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR" "$XDG_DATA_HOME"
chmod 700 "$XDG_RUNTIME_DIR"
URI=qemu:///session
DAEMON_PID=
V() { "${AS[@]}" virsh -q -c "$URI" "$@"; }
DOMAINS=()
cleanup() {
  for d in "${DOMAINS[@]}"; do
    V destroy "$d" >/dev/null 2>&1 || true
    V undefine "$d" --snapshots-metadata --checkpoints-metadata >/dev/null 2>&1 || true
  done
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL (libvirt): $*" >&2
  for log in "$T"/*-console.log; do [ -f "$log" ] && { echo "== $log" >&2; tail -20 "$log" >&2; }; done
  exit 1
}
check() { local what=$1; shift; "$@" || fail "$what"; echo "ok - $what"; }

# The session daemon, ours alone: started here, not autostarted, so its lifetime is the test's.
"${AS[@]}" libvirtd --timeout 600 >"$T/libvirtd.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 200); do V version >/dev/null 2>&1 && break; sleep 0.05; done
V version >/dev/null 2>&1 || { cat "$T/libvirtd.log" >&2; fail "libvirtd did not answer"; }

mkfs_disk() { # DISK: an ext4 data disk $T/DISK.qcow2, as the guest's init mounts disks by serial
  "${AS[@]}" qemu-img create -q -f raw "$T/$1.raw" 64M
  "${AS[@]}" mkfs.ext4 -q -F "$T/$1.raw"
  "${AS[@]}" qemu-img convert -O qcow2 "$T/$1.raw" "$T/$1.qcow2"; rm "$T/$1.raw"
}

# start_domain NAME DISK [workload]: defines and starts a persistent domain (as a user's would
# be: libvirt keeps snapshot metadata and the disk chain in its definition) on a fresh data disk
# $T/DISK.qcow2, with sp-workload writing records to it when asked.
start_domain() {
  local name=$1 disk=$2 wl= agent=${AGENT:-stillpoint}
  mkfs_disk "$disk"
  [ "${3:-}" = workload ] &&
    wl=",org.stillpoint.workload.0 sp.workload=--interval-ms,5,/mnt/$disk/records"
  cat >"$T/$name.xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$GUEST/$KERNEL</kernel>
    <initrd>$GUEST/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1 loglevel=4 cryptomgr.notests mitigations=off sp.agent=$agent sp.ports=org.qemu.guest_agent.0$wl sp.disks=$disk</cmdline>
  </os>
  <on_reboot>destroy</on_reboot>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$T/$disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <serial>$disk</serial>
    </disk>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <channel type='unix'>
      <source mode='bind' path='$T/$name-workload.sock'/>
      <target type='virtio' name='org.stillpoint.workload.0'/>
    </channel>
    <serial type='file'><source path='$T/$name-console.log'/></serial>
  </devices>
</domain>
EOF
  DOMAINS+=("$name")
  V define "$T/$name.xml" >/dev/null || fail "virsh define $name"
  V start "$name" >/dev/null || fail "virsh start $name"
}

wait_agent() { # NAME: until the agent answers through libvirt's channel
  for _ in $(seq 600); do
    V qemu-agent-command "$1" '{"execute":"guest-ping"}' >/dev/null 2>&1 && return 0; sleep 0.2
  done
  return 1
}

if [ "$CASE" = driver-qga ]; then
  AGENT=qemu-ga start_domain spqga data0 workload
  check "libvirt reaches qemu-ga" wait_agent spqga
  . "$(dirname "$0")/libvirt-driver-qga.sh"
  exit 0
fi
if [ "$CASE" = group ]; then
  start_domain spweb web0 workload
  start_domain spdb db0 workload
  check "libvirt reaches both domains' agents" wait_agent spweb
  wait_agent spdb || fail "spdb's agent does not answer"
  . "$(dirname "$0")/libvirt-group.sh"
  exit 0
fi
start_domain sptest data0 "$(case $CASE in driver|standard|incremental) echo workload ;; esac)"
check "libvirt reaches stillpoint-agent (guest-ping)" wait_agent sptest
check "the agent says it is stillpoint-agent" \
  bash -c "${AS[*]} virsh -q -c $URI qemu-agent-command sptest '{\"execute\":\"stillpoint-capabilities\"}' | grep -q stillpoint"
[ "$CASE" = driver ] && { . "$(dirname "$0")/libvirt-driver.sh"; exit 0; }
[ "$CASE" = standard ] && { . "$(dirname "$0")/libvirt-standard.sh"; exit 0; }
[ "$CASE" = incremental ] && { . "$(dirname "$0")/libvirt-incremental.sh"; exit 0; }
check "virsh domfsinfo lists the data disk's filesystem" bash -c "${AS[*]} virsh -q -c $URI domfsinfo sptest | grep -q '/mnt/data0'"
out=$("${AS[@]}" virsh -c "$URI" domfsfreeze sptest) || fail "domfsfreeze"
check "virsh domfsfreeze froze filesystems ($out)" grep -q "Froze [1-9]" <<<"$out"
check "status is frozen" bash -c "${AS[*]} virsh -q -c $URI qemu-agent-command sptest '{\"execute\":\"guest-fsfreeze-status\"}' | grep -q frozen"
out=$("${AS[@]}" virsh -c "$URI" domfsthaw sptest) || fail "domfsthaw"
check "virsh domfsthaw thawed them ($out)" grep -q "Thawed [1-9]" <<<"$out"
check "status is thawed" bash -c "${AS[*]} virsh -q -c $URI qemu-agent-command sptest '{\"execute\":\"guest-fsfreeze-status\"}' | grep -q thawed"
V snapshot-create-as sptest snap1 --disk-only --quiesce --atomic --no-metadata \
  --diskspec "vda,file=$T/data0-snap1.qcow2" >/dev/null || fail "snapshot-create-as --quiesce"
check "libvirt's --quiesce snapshot went through the agent and created the overlay" [ -f "$T/data0-snap1.qcow2" ]
check "the guest is thawed after libvirt's quiesced snapshot" \
  bash -c "${AS[*]} virsh -q -c $URI qemu-agent-command sptest '{\"execute\":\"guest-fsfreeze-status\"}' | grep -q thawed"
qemu-img convert -U -O raw "$T/data0.qcow2" "$T/check.raw"
check "the image libvirt froze through our agent is a clean ext4 (e2fsck -fn)" \
  bash -c "e2fsck -fn '$T/check.raw' >/dev/null 2>&1"
echo "PASS e2e/libvirt/agent-interop"
