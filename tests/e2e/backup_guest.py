#!/usr/bin/python3
"""e2e/backup/guest — backup sessions against the real test guest (tests/guest/spguest.py) with
stillpoint-agent and sp-workload writing numbered records to an ext4 data disk.

  backup_guest.py --guest DIR --run-dir DIR --stillpoint BIN --workload-bin BIN

While the workload writes: a full backup read over NBD (qemu-img convert from the nbd+unix URI,
as a backup tool reads) passes e2fsck -fn and holds a prefix of the records; after `end` the
chain is as long as before and the workload went on. Then an incremental: the previous full copy
patched with only the changed extents listed by `begin --incremental` equals a full copy of the
new point in time, so the extents cover every changed block (and they are few)."""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from spguest import Disk, Guest, test_arguments  # noqa: E402
from host_guest import Ctx, check_sanitizers  # noqa: E402
from sptest import ok, report  # noqa: E402


def copy_over_nbd(uri, out):
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri, out], check=True)


def chain_len(c):
    top = [b["inserted"]["file"] for b in c.g.qmp("query-block") if "inserted" in b][0]
    out = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output=json", top],
                         capture_output=True, text=True, check=True).stdout
    return len(json.loads(out))


def case_backup(c):
    wl = c.g.workload
    wl("wait 20 60000")
    c.add_vm("vm1")
    before = chain_len(c)
    s = json.loads(c.sp("--json", "backup", "begin", "vm1").stdout)
    ok(s["consistency"] == "application" and not s["incremental"],
       "full backup session, application-consistent")
    d = s["disks"][0]
    full1 = os.path.join(c.a.run_dir, "full1.raw")
    copy_over_nbd(d["nbd-uri"], full1)
    rep = c.check_frozen_image(full1, "full backup read over NBD")
    frozen = c.check_frozen_image(d["image"], "the frozen image")
    ok(rep["highest"] == frozen["highest"],
       f"NBD and the frozen image hold the same records ({rep['highest']})")
    last = wl("report")["last"]
    wl(f"wait {last + 10} 60000")
    ok(wl("report")["last"] > rep["highest"], "the guest ran on during the session")
    c.sp("backup", "end", "vm1")
    ok(chain_len(c) == before, f"after end the chain is back to {before} image(s)")
    ok(c.checkpoints("vm1") == [], "no checkpoint left")
    last = wl("report")["last"]
    wl(f"wait {last + 20} 60000")
    ok(wl("report")["last"] >= last + 20, "the workload goes on after the merge")

    s = json.loads(c.sp("--json", "backup", "begin", "vm1", "--incremental").stdout)
    d = s["disks"][0]
    ok(s["incremental"] and d["dirty-bitmap"].startswith("qemu:dirty-bitmap:"),
       "incremental session with its bitmap on the export")
    full2 = os.path.join(c.a.run_dir, "full2.raw")
    copy_over_nbd(d["nbd-uri"], full2)
    changed = d["changed"]
    ok(0 < d["changed-bytes"] < d["size"] // 4,
       f"a few changed extents ({len(changed)}, {d['changed-bytes']} bytes)")
    # Restore the incremental onto the previous full copy, as a backup tool would.
    with open(full1, "r+b") as dst, open(full2, "rb") as src:
        for e in changed:
            src.seek(e["offset"])
            dst.seek(e["offset"])
            dst.write(src.read(e["length"]))
    same = subprocess.run(["cmp", "-s", full1, full2]).returncode == 0
    ok(same, "full copy + changed extents == new full copy (the extents cover every change)")
    rep2 = c.check_frozen_image(full1, "restored incremental")
    ok(rep2["highest"] > rep["highest"], "the incremental holds the newer records")
    c.sp("backup", "end", "vm1")
    ok(chain_len(c) == before, "after the incremental the chain is back too")
    c.store_consistent("vm1")


def main():
    p = test_arguments(__doc__)
    a = p.parse_args()
    a.agent = "stillpoint"
    shutil.rmtree(a.run_dir, ignore_errors=True)
    os.makedirs(a.run_dir)
    with Guest(a.guest, a.run_dir, agent="stillpoint", disks=[Disk("data0")],
               workload=["--interval-ms", "20", "/mnt/data0/records"], lifetime=600,
               fresh=True) as g:
        def body():
            ctx = Ctx(a, g)
            case_backup(ctx)
            check_sanitizers(ctx)
        return report("e2e/backup/guest", body, g.console_tail)


if __name__ == "__main__":
    sys.exit(main())
