#!/usr/bin/python3
"""e2e/host/guest/hostile-format — issue 15 item 1 against the real test guest: a VM with a RAW data
disk, and the guest itself writes a qcow2 header onto that disk's sector 0 naming a host file as
its backing file (a temporary file full of a marker, standing in for /etc/shadow). Then export,
a backup session read over NBD, delete (a live merge, then an offline one) and apply: the marker
never appears in any image or export the host writes, and the disk stays a raw disk.

  hostile_format_guest.py --guest DIR --run-dir DIR --stillpoint BIN --workload-bin BIN

The first check proves the trap is armed: qemu-img without -f (what stillpoint ran before)
reads the host file through the guest's header."""
import base64
import glob
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from spguest import Disk, Guest, test_arguments  # noqa: E402
from host_guest import Ctx, check_sanitizers  # noqa: E402
from sptest import ok, report  # noqa: E402

MARKER = b"SP-HOST-SECRET-MARKER"
SERIAL = "evil"


def has_marker(path):
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                return False
            if MARKER in block:
                return True


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def guest_writes_header(c, header):
    """The guest's own process (qemu-ga's guest-exec: a shell, dd) writes to its raw disk."""
    script = ("for d in /sys/block/vd*; do [ \"$(cat $d/serial)\" = " + SERIAL + " ] && "
              "exec dd of=/dev/${d##*/} bs=512 conv=notrunc,fsync 2>/dev/null; done; exit 9")
    with open(header, "rb") as f:
        data = base64.b64encode(f.read()).decode()
    pid = c.g.qga("guest-exec", {"path": "/bin/sh", "arg": ["-c", script],
                                 "input-data": data})["pid"]
    for _ in range(200):
        st = c.g.qga("guest-exec-status", {"pid": pid})
        if st["exited"]:
            break
        time.sleep(0.1)
    c.g.qga_disconnect()
    ok(st.get("exited") and st.get("exitcode") == 0, f"the guest wrote the header ({st})")


def no_marker_anywhere(c, what):
    files = [f for f in glob.glob(os.path.join(c.a.run_dir, "**"), recursive=True)
             if os.path.isfile(f) and not os.path.samefile(f, c.secret)
             and not f.endswith(("probed.raw", ".log")) and "sanitizer" not in f
             and not f.startswith(c.store)]
    leaked = [f for f in files if has_marker(f)]
    ok(not leaked, f"{what}: the host file's marker is in no image or export ({leaked})")


def flat(c, image, fmt):
    """What an image shows, read with its real format (the test's own reading, not stillpoint's)."""
    out = os.path.join(c.a.run_dir, "check", os.path.basename(image) + ".flat")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    run("qemu-img", "convert", "-U", "-f", fmt, "-O", "raw", image, out)
    return out


def same_bytes(a, b, n):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read(n) == fb.read(n)


def evil(disks):
    """The raw disk's entry among a checkpoint's disks (data0 is there to be frozen)."""
    return next(d for d in disks if SERIAL in d["disk"])


def case(c):
    disk = c.g.image(SERIAL)
    c.secret = os.path.join(c.a.run_dir, "host-secret")
    with open(c.secret, "wb") as f:
        f.write((MARKER + b"\n") * (1 << 16))
    header = os.path.join(c.a.run_dir, "header.qcow2")
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "-b", c.secret,
        "-F", "raw", header, "32M")
    guest_writes_header(c, header)
    with open(disk, "rb") as f:
        ok(f.read(4) == b"QFI\xfb", "the raw disk now starts with a qcow2 header")
    probed = os.path.join(c.a.run_dir, "probed.raw")
    run("qemu-img", "convert", "-U", "-O", "raw", disk, probed)
    ok(has_marker(probed), "the trap is armed: qemu-img without -f reads the host file")
    os.unlink(probed)
    # The guest's disk as the guest wrote it, raw: what every copy must equal.
    original = flat(c, disk, "raw")

    c.add_vm("vm1")
    c.sp("checkpoint", "create", "vm1", "--name", "c1")
    cps = c.checkpoints("vm1")
    ok(evil(cps[0]["disks"])["image"] == os.path.realpath(disk), "c1 froze the raw disk")
    fmt = run("sqlite3", c.store, f"select format from image_formats where path='{os.path.realpath(disk)}'").strip()
    ok(fmt == "raw", f"the store recorded QEMU's format for the disk ({fmt})")

    # export
    for f in ("raw", "qcow2"):
        out_dir = os.path.join(c.a.run_dir, f"export-{f}")
        c.sp("checkpoint", "export", "vm1", "c1", out_dir, "--format", f)
        exported = glob.glob(os.path.join(out_dir, f"*{SERIAL}*.{f}"))
        ok(len(exported) == 1, f"export --format {f} wrote one disk")
        ok(not has_marker(exported[0]), f"export --format {f}: no marker")
        ok(same_bytes(flat(c, exported[0], f), original, 32 << 20),
           f"export --format {f} is the raw disk byte for byte")

    # a backup session read over NBD, as a backup tool reads it
    r = c.sp("--json", "backup", "begin", "vm1", check=False)
    if r.returncode == 0:
        s = json.loads(r.stdout)
        out = os.path.join(c.a.run_dir, "backup.raw")
        d = evil(s["disks"])
        run("qemu-img", "convert", "-f", "raw", "-O", "raw", d["nbd-uri"], out)
        ok(not has_marker(out), "backup over NBD: no marker")
        ok(same_bytes(out, original, 32 << 20), "backup over NBD is the raw disk as written")
        c.sp("backup", "end", "vm1")
        print("ok - backup session on a raw disk works, reading it as raw", flush=True)
    else:
        ok("raw" in r.stderr or "bitmap" in r.stderr,
           f"backup begin on a raw disk fails clearly: {r.stderr.strip()}")

    # delete: c2 on top, then c1 merged away live (c2's image commits into the raw disk)
    c.sp("checkpoint", "create", "vm1", "--name", "c2")
    c.sp("checkpoint", "delete", "vm1", "c1")
    cps = c.checkpoints("vm1")
    ok([x["name"] for x in cps] == ["c2"] and evil(cps[0]["disks"])["image"] == os.path.realpath(disk),
       "after the live merge c2's image is the raw disk")
    no_marker_anywhere(c, "after delete (live)")

    # apply: the VM stops, a new overlay on the raw disk, its backing format from the store
    c.sp("checkpoint", "create", "vm1", "--name", "c3")
    c.sp("checkpoint", "apply", "vm1", "c2", "--force")
    cps = {x["name"]: x for x in c.checkpoints("vm1")}
    overlay = evil(cps["c2"]["disks"])["overlay"]
    info = json.loads(run("qemu-img", "info", "-U", "-f", "qcow2", "--output=json", overlay))
    ok(info.get("backing-filename-format") == "raw",
       f"apply's overlay records its backing as raw ({info.get('backing-filename-format')})")
    ok(same_bytes(flat(c, overlay, "qcow2"), original, 32 << 20),
       "the applied overlay shows the raw disk as written")
    no_marker_anywhere(c, "after apply")

    # delete offline (the VM is off now): c3 goes (unlink), then c2 itself, whose present
    # overlay commits into the raw disk with qemu-img
    c.sp("checkpoint", "delete", "vm1", "c3")
    c.sp("checkpoint", "delete", "vm1", "c2")
    ok(c.checkpoints("vm1") == [], "offline merges done")
    ok(same_bytes(flat(c, disk, "raw"), original, 32 << 20), "the raw disk holds what it held")
    no_marker_anywhere(c, "after delete (offline)")


def main():
    p = test_arguments(__doc__)
    a = p.parse_args()
    a.agent = "qemu-ga"
    shutil.rmtree(a.run_dir, ignore_errors=True)
    os.makedirs(a.run_dir)
    with Guest(a.guest, a.run_dir, agent="qemu-ga",
               disks=[Disk("data0"), Disk(SERIAL, fs="none", size="32M", fmt="raw")],
               lifetime=600, fresh=True) as g:
        def body():
            ctx = Ctx(a, g)
            case(ctx)
            check_sanitizers(ctx)
        return report("e2e/host/guest/hostile-format", body, g.console_tail)


if __name__ == "__main__":
    sys.exit(main())
