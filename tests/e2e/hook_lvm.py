#!/usr/bin/python3
"""e2e/hook/lvm-thin — the hook driver with its LVM thin example (host/data/examples/hook-lvm-thin)
against real LVM thin volumes, the test guest frozen by stillpoint-agent while the hook snapshots.

This machine's kernel has no device-mapper and cannot load modules, so LVM runs in a second VM,
the storage host (build-guest --storage: the test guest's Debian kernel with dm-thin-pool, and
Debian's lvm2, thin-provisioning-tools, e2fsprogs and qemu-nbd). On it: a volume group on a
virtio disk backed by a file here, a thin pool, and a thin volume with ext4, exported over NBD.
The test guest boots with that volume as its data disk (serial data0, QEMU's NBD client through
the storage VM's user-network forward) and sp-workload writes numbered records to it. stillpoint
(hook driver, no --qmp, the disk given with --disk) freezes the test guest and runs the example
hook on the storage host through its qemu-ga (guest-exec: `hook_lvm.py exec`, as an administrator
would through ssh). Checked: the snapshot is a thin snapshot tagged for the VM and checkpoint,
e2fsck -fn clean without replaying a journal, holding whole records up to the freeze and none
after; a second checkpoint holds more while the first stays as it was; a failing snapshot
(a second disk that is no thin volume) leaves no snapshot and no record; the guest is thawed
every time; with --json the hook's output stays off stdout; `checkpoint delete` has the hook
remove the checkpoint's snapshot and no other, and succeeds when it is already gone.

  hook_lvm.py --guest DIR --storage-guest DIR --run-dir DIR --stillpoint BIN --workload-bin BIN
              --example PATH
  hook_lvm.py exec --qga SOCKET SCRIPT   run SCRIPT with sh on the storage VM, with this process's
                                         STILLPOINT_* environment; its output and exit status"""
import base64
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
from spguest import GUEST_IP, Disk, Guest, GuestError, QgaClient, check_image, test_arguments  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import Failure, ok, report  # noqa: E402

NBD_PORT, SNAP_NBD_PORT = 10809, 10810
EXEC_POLL_S = 0.1


# -- running commands on the storage VM (qemu-ga guest-exec) -------------------------------------

def guest_exec(execute, script, env=(), timeout=120.0):
    """Runs script with /bin/sh on the storage VM through execute (an agent client's); returns
    (status, stdout, stderr)."""
    pid = execute("guest-exec", {
        "path": "/bin/sh", "arg": ["-s"], "env": list(env), "capture-output": True,
        "input-data": base64.b64encode(script.encode()).decode()})["pid"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = execute("guest-exec-status", {"pid": pid})
        if st["exited"]:
            dec = lambda k: base64.b64decode(st.get(k, "")).decode(errors="replace")  # noqa: E731
            return st.get("exitcode", -1), dec("out-data"), dec("err-data")
        time.sleep(EXEC_POLL_S)
    raise TimeoutError(f"the storage VM's command did not finish within {timeout:.0f} s")


def cmd_exec(argv):
    """The hook command: the example runs where LVM is, with the hook driver's environment."""
    qga_path, script = argv
    with open(script) as f:
        text = f.read()
    env = [f"{k}={v}" for k, v in os.environ.items() if k.startswith("STILLPOINT_")]
    qga = QgaClient(qga_path, timeout=10)
    try:
        if not qga.sync(timeout=10):
            print("hook_lvm exec: the storage VM's agent does not answer", file=sys.stderr)
            return 125
        status, out, err = guest_exec(qga.execute, text, env)
    finally:
        qga.close()
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status


# -- the test ------------------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Ctx:
    def __init__(self, a, storage, guest, ports):
        self.a, self.s, self.g, self.ports = a, storage, guest, ports
        self.store = os.path.join(a.run_dir, "store.db")
        self.sanitizer_log = os.path.join(a.run_dir, "sanitizer")

    def on_storage(self, script, what, expect_ok=True):
        try:
            status, out, err = guest_exec(self.s.qga, "set -e\n" + script)
        finally:
            self.s.qga_disconnect()  # the hook's own connection needs the port
        if expect_ok and status != 0:
            raise Failure(f"storage VM: {what}: exit {status}\n{out}{err}")
        return status, out, err

    def sp(self, *args, check=True):
        self.g.qga_disconnect()  # QEMU serves one agent client at a time: the CLI's turn
        e = dict(os.environ, STILLPOINT_STORE=self.store)
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            e[var] = ":".join(filter(None, [e.get(var), f"log_path={self.sanitizer_log}"]))
        r = subprocess.run([self.a.stillpoint, *args], capture_output=True, text=True, env=e)
        if check and r.returncode != 0:
            raise Failure(f"stillpoint {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
        return r

    def checkpoints(self, vm):
        return json.loads(self.sp("--json", "-q", "checkpoint", "list", vm).stdout)["checkpoints"]

    def thawed(self):
        try:
            return self.g.qga("guest-fsfreeze-status", timeout=20) == "thawed"
        finally:
            self.g.qga_disconnect()

    def snapshots(self):
        """The storage VM's LVs tagged by the example hook: {name: [tags]}."""
        _, out, _ = self.on_storage("lvm lvs --noheadings --separator '|' -o lv_name,lv_tags,"
                                    "segtype,origin @stillpoint", "lvs")
        rows = [line.strip().split("|") for line in out.splitlines() if line.strip()]
        return {r[0]: {"tags": r[1].split(","), "segtype": r[2], "origin": r[3]} for r in rows}

    def check_snapshot(self, lv, what):
        """fsck and records of a snapshot, read where it lives and over NBD here."""
        _, out, _ = self.on_storage(
            f"lvm lvchange -ay -K spvg/{lv}\n"
            f"e2fsck -fn /dev/spvg/{lv} >/run/fsck.out 2>&1 && echo clean || echo status=$?\n"
            f"qemu-nbd --fork -r -f raw --pid-file=/run/snap-nbd.pid -b {GUEST_IP} "
            f"-p {SNAP_NBD_PORT} -x snap /dev/spvg/{lv}", f"export {lv}")
        ok(out.strip() == "clean",
           f"{what}: e2fsck -fn of the snapshot is clean, no journal to replay ({out.strip()})")
        try:
            report = check_image(f"nbd://127.0.0.1:{self.ports[1]}/snap", "/records",
                                 self.a.workload_bin)
        finally:
            # qemu-nbd without --persistent ends with its first client: it may be gone.
            self.on_storage("pid=$(cat /run/snap-nbd.pid); kill $pid 2>/dev/null || true\n"
                            "while kill -0 $pid 2>/dev/null; do sleep 0.1; done\n"
                            f"lvm lvchange -an spvg/{lv}", f"unexport {lv}")
        ok(report["ok"] and report["torn"] == 0 and report["gaps"] == 0,
           f"{what}: the records are whole, none torn, none missing ({report})")
        return report


def setup_storage(c):
    """A thin pool and a thin volume with ext4 on the storage VM's disk, exported over NBD."""
    c.on_storage(
        "dev=$(for d in /sys/block/vd*; do [ \"$(cat $d/serial)\" = pv0 ] && echo /dev/${d##*/}; "
        "done)\n"
        "lvm pvcreate -qq $dev\nlvm vgcreate -qq spvg $dev\n"
        "lvm lvcreate -qq --type thin-pool -L 256M -n pool spvg\n"
        "lvm lvcreate -qq -V 128M -T spvg/pool -n vm1\n"
        "mkfs.ext4 -q -L data0 -E lazy_itable_init=0,lazy_journal_init=0 /dev/spvg/vm1\n"
        "lvm lvcreate -qq -L 8M -n plain spvg\n"
        f"qemu-nbd --fork --persistent --shared=4 -f raw --cache=none --aio=native "
        f"-b {GUEST_IP} -p {NBD_PORT} -x vm1 /dev/spvg/vm1", "LVM setup")
    ok(True, "storage VM: thin pool spvg/pool, thin volume spvg/vm1 (ext4) exported over NBD")


def case_lvm_thin(c):
    hook = f"{sys.executable} {os.path.abspath(__file__)} exec {c.s.qga_path} {c.a.example}"
    c.sp("-q", "vm", "add", "web", "--driver", "hook", "--agent", c.g.qga_path,
         "--disk", "data=/dev/spvg/vm1,serial=data0", "--hook-command", hook)
    c.g.workload("wait 20 60000")
    before = c.g.workload("report")["last"]
    r = c.sp("checkpoint", "create", "web", "--name", "first")
    after = c.g.workload("report")["last"]
    ok("application-consistent" in r.stdout, "first checkpoint is application-consistent")
    ok(c.thawed(), "guest thawed after the checkpoint")
    cp = c.checkpoints("web")[0]
    ok([(d["disk"], d["image"]) for d in cp["disks"]] == [("data", "/dev/spvg/vm1")],
       "the checkpoint records the disk given at vm add")
    snaps = c.snapshots()
    ok(len(snaps) == 1, f"the hook made one snapshot ({snaps})")
    name, snap = next(iter(snaps.items()))
    ok(snap["segtype"] == "thin" and snap["origin"] == "vm1" and "stillpoint-vm:web" in snap["tags"],
       f"{name}: a thin snapshot of vm1 tagged for VM web ({snap})")
    first = c.check_snapshot(name, "first")
    ok(before <= first["highest"] <= after,
       f"first: the snapshot ends inside the frozen window (records {before} <= "
       f"{first['highest']} <= {after})")

    c.g.workload(f"wait {after + 20} 60000")
    r = c.sp("--json", "checkpoint", "create", "web", "--name", "second")
    ok(json.loads(r.stdout)["name"] == "second" and "hook-lvm-thin: disk data:" in r.stderr,
       "with --json the hook's own output goes to stderr, the document stays whole")
    ok(c.thawed(), "guest thawed after the second checkpoint")
    snaps2 = c.snapshots()
    ok(len(snaps2) == 2 and name in snaps2, "a second snapshot, the first kept")
    second = c.check_snapshot(next(n for n in snaps2 if n != name), "second")
    ok(second["highest"] > first["highest"], "the second snapshot holds the records written since")
    ok(c.check_snapshot(name, "first again")["highest"] == first["highest"],
       "the first snapshot did not change")
    cps = c.checkpoints("web")
    ok([(x["name"], x["consistency"]) for x in cps] == [("first", "application"),
                                                       ("second", "application")],
       "two application-consistent checkpoints, in order")

    # A second disk that is no thin volume: the hook snapshots the first, fails on the second,
    # removes the first's; stillpoint thaws and records nothing.
    c.sp("-q", "vm", "add", "two", "--driver", "hook", "--agent", c.g.qga_path,
         "--disk", "data=/dev/spvg/vm1,serial=data0", "--disk", "plain=/dev/spvg/plain",
         "--hook-command", hook)
    r = c.sp("checkpoint", "create", "two", check=False)
    ok(r.returncode != 0 and "hook command failed" in r.stderr,
       "a failing snapshot fails the checkpoint with the hook's error")
    ok("spvg/plain is a 'linear' volume, not a thin one" in r.stderr,
       "the hook's reason reaches the user")
    ok(c.thawed(), "guest thawed after the failed hook")
    ok(sorted(c.snapshots()) == sorted(snaps2), "the failed run left no snapshot behind")
    ok(c.checkpoints("two") == [], "the failed run recorded nothing")
    ok(c.g.workload("report")["last"] > after, "the workload wrote on throughout")

    # Delete: the hook removes the checkpoint's snapshot (found by its tags), then the record
    # goes; the other checkpoint's snapshot stays.
    second_lv = next(n for n in snaps2 if n != name)
    r = c.sp("checkpoint", "delete", "web", "first")
    ok(f"hook-lvm-thin: removed spvg/{name}" in r.stderr, f"delete: the hook removed {name}")
    ok(sorted(c.snapshots()) == [second_lv], "delete: the first snapshot is gone, the second kept")
    ok([x["name"] for x in c.checkpoints("web")] == ["second"], "delete: the record is gone")
    # Asked again after its snapshot went by hand (an interrupted delete): gone is success.
    c.on_storage(f"lvm lvremove -qq -f -y spvg/{second_lv}", "remove the second by hand")
    c.sp("checkpoint", "delete", "web", "second")
    ok(c.checkpoints("web") == [], "delete of a snapshot already gone succeeds, the record goes")


def boot_storage(a):
    """The storage VM, on two free local ports (tried again if another process took one)."""
    for attempt in range(3):
        ports = (free_port(), free_port())
        g = Guest(a.storage_guest, os.path.join(a.run_dir, "storage"), agent="qemu-ga",
                  disks=[Disk("pv0", fs="none", size="512M")], fresh=True, lifetime=900,
                  forwards=[(ports[0], NBD_PORT), (ports[1], SNAP_NBD_PORT)])
        try:
            g.start(boot_timeout=180)
            return g, ports
        except GuestError as e:
            if "forward" not in str(e) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def check_sanitizers(c):
    reports = glob.glob(c.sanitizer_log + ".*")
    text = "".join(open(r).read() for r in reports)
    ok(not reports, "no sanitizer report from the CLI" + (f":\n{text}" if text else ""))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "exec":
        return cmd_exec(sys.argv[2:])
    p = test_arguments(__doc__)
    p.add_argument("--storage-guest", required=True)
    p.add_argument("--example", required=True)
    a = p.parse_args()
    shutil.rmtree(a.run_dir, ignore_errors=True)
    os.makedirs(a.run_dir)
    storage, ports = boot_storage(a)
    c = Ctx(a, storage, None, ports)

    def body():
        setup_storage(c)
        c.g = Guest(a.guest, os.path.join(a.run_dir, "guest"), agent="stillpoint",
                    disks=[Disk("data0", nbd=("127.0.0.1", ports[0], "vm1"))],
                    workload=["--interval-ms", "20", "/mnt/data0/records"], lifetime=900)
        c.g.start(boot_timeout=180)
        case_lvm_thin(c)
        check_sanitizers(c)

    def consoles():
        return "\n".join(f"== {what} console:\n{g.console_tail()}"
                         for g, what in ((c.g, "test guest"), (storage, "storage VM"))
                         if g is not None)
    try:
        return report("e2e/hook/lvm-thin", body, consoles,
                      failures=(Failure, GuestError, TimeoutError))
    finally:
        if c.g is not None:
            c.g.stop()
        storage.stop()


if __name__ == "__main__":
    sys.exit(main())
