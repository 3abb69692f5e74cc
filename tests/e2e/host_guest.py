#!/usr/bin/python3
"""e2e/host/guest/* — the stillpoint CLI against the real test guest (tests/guest/spguest.py): a Linux
VM under QEMU TCG with qcow2 data disks, sp-workload writing numbered records to them, and
stillpoint-agent or stock qemu-ga on virtio-serial.

  host_guest.py --guest DIR --run-dir DIR --stillpoint BIN --workload-bin BIN --agent NAME CASE

CASE: consistent   production checkpoints while the workload writes to two disks
      failures    every failure path thaws, leaves no overlay and no record
      kill9       kill -9 at each step of create, then a rerun is consistent
      ops         delete (live, inner and active layer, the latter killed mid-merge and
                  finished by the next run) while the workload writes, export while
                  it runs, apply --force --save-current, then a second boot from the stable paths
      restart     issue #18 item 1: a checkpoint, then QEMU restarted on the checkpoint's image:
                  refused, --adopt-running, then a start from the stable path
      excluded    the agent excludes /mnt/data1 (its exclude-mountpoints): a checkpoint of both disks
                  is crash-consistent and says why; data0's image is still frozen clean
      standard    a standard checkpoint while the workload writes; apply it, start QEMU with
                  -incoming defer on the stable paths, resume: the same workload process runs on
                  from the saved point
Each case boots one VM (ctest's RESOURCE_LOCK vm keeps them from overlapping)."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
from spguest import Disk, Guest, check_image, test_arguments  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import Failure, ok, report  # noqa: E402

STEPS = ["planned", "prepared", "freezing", "frozen", "snapshotted", "thawed-consistent",
         "recorded"]


def check_sanitizers(c):
    reports = glob.glob(c.sanitizer_log + ".*")
    text = "".join(open(r).read() for r in reports)
    ok(not reports, "no sanitizer report from the CLI" + (f":\n{text}" if text else ""))


class Ctx:
    def __init__(self, a, guest):
        self.a, self.g = a, guest
        self.store = os.path.join(a.run_dir, "store.db")
        self.sanitizer_log = os.path.join(a.run_dir, "sanitizer")
        for f in glob.glob(self.store + "*"):
            os.unlink(f)

    def sp(self, *args, env=None, check=True):
        # QEMU serves one agent client at a time: let the CLI have the channel.
        self.g.qga_disconnect()
        e = dict(os.environ, STILLPOINT_STORE=self.store, **(env or {}))
        # Sanitizer reports go to files: a leak on an expected-failure path must not pass as
        # the expected failure. check_sanitizers() fails the case on any report.
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            e[var] = ":".join(filter(None, [e.get(var), f"log_path={self.sanitizer_log}"]))
        r = subprocess.run([self.a.stillpoint, *args], capture_output=True, text=True, env=e)
        if check and r.returncode != 0:
            raise Failure(f"stillpoint {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
        return r

    def add_vm(self, name, qmp=None, agent=None, extra=()):
        agent = self.g.qga_path if agent is None else agent
        self.sp("-q", "vm", "add", name, "--qmp", qmp or self.g.qmp_path, "--agent", agent, *extra)

    def checkpoints(self, vm):
        return json.loads(self.sp("--json", "-q", "checkpoint", "list", vm).stdout)["checkpoints"]

    def frozen(self):
        try:
            return self.g.qga("guest-fsfreeze-status", timeout=20) == "frozen"
        finally:
            self.g.qga_disconnect()

    def images(self):
        return sorted(glob.glob(os.path.join(self.g.run_dir, "*.qcow2")))

    def top_nodes(self):
        return [b["inserted"]["node-name"] for b in self.g.qmp("query-block") if "inserted" in b]

    def check_frozen_image(self, image, what):
        """The image as the checkpoint froze it: e2fsck -fn clean, records a prefix, no torn."""
        with tempfile.TemporaryDirectory(prefix="sp-e2e-") as tmp:
            raw = os.path.join(tmp, "disk.raw")
            subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", image, raw], check=True)
            fsck = subprocess.run(["e2fsck", "-fn", raw], capture_output=True, text=True)
            ok(fsck.returncode == 0, f"{what}: e2fsck -fn is clean (status {fsck.returncode})")
        report = check_image(image, "/records", self.a.workload_bin)
        ok(report["ok"] and report["torn"] == 0 and report["gaps"] == 0,
           f"{what}: records are a prefix with no torn record ({report})")
        return report

    def store_consistent(self, vm):
        cps = self.checkpoints(vm)
        ok(not any(c["missing-files"] for c in cps), f"{vm}: no checkpoint points at a missing file")
        overlays = sorted(d["overlay"] for c in cps for d in c["disks"])
        ours = sorted(glob.glob(os.path.join(self.g.run_dir, f"{vm}-*.qcow2")))
        ok(overlays == ours, f"{vm}: every overlay file belongs to a checkpoint")
        pending = subprocess.run(["sqlite3", self.store,
                                  "select count(*) from ops where state='intent'"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        ok(pending == "0", f"{vm}: no unfinished operation in the journal")
        current = [c for c in cps if c["current"]]
        if current:
            tops = [local_file(b["inserted"]["file"]) for b in self.g.qmp("query-block")
                    if "inserted" in b]
            ok(tops == [d["overlay"] for d in current[0]["disks"]],
               f"{vm}: the VM runs on the current checkpoint's overlays")


def local_file(name):
    """QEMU names an image "json:{...}" when its backing node was opened under another name
    (a launcher on the stable symlink): its own file is the "file" child's."""
    if not name.startswith("json:"):
        return name
    f = json.loads(name[5:])["file"]
    return f if isinstance(f, str) else f["filename"]


def case_consistent(c):
    c.g.workload("wait 20 60000")
    c.add_vm("vm1")
    r = c.sp("checkpoint", "create", "vm1", "--name", "first")
    ok("application-consistent" in r.stdout, "first checkpoint is application-consistent")
    ok("snapshotting 2 disk(s) in one transaction" in r.stderr, "both disks in one transaction")
    ok(not c.frozen(), "guest thawed after the checkpoint")
    first = c.checkpoints("vm1")[0]
    reports = [c.check_frozen_image(d["image"], f"first/{d['disk']}") for d in first["disks"]]
    h = [rep["highest"] for rep in reports]
    # sp-workload writes record N to every file before N+1: one instant across both disks means
    # the two images differ by at most the one record in flight.
    ok(min(h) >= 20 and abs(h[0] - h[1]) <= 1, f"both disks frozen at the same instant ({h})")
    after = c.g.workload("report")["last"]
    c.g.workload(f"wait {after + 20} 60000")
    ok(c.g.workload("report")["last"] >= after + 20, "the VM goes on writing")
    for d in first["disks"]:
        m = json.loads(subprocess.run(["qemu-img", "map", "-U", "--output=json", d["overlay"]],
                                      capture_output=True, text=True, check=True).stdout)
        ok(any(e["data"] and e["depth"] == 0 for e in m),
           f"first/{d['disk']}: the writes since land in the new overlay")
    r = c.sp("checkpoint", "create", "vm1")
    cps = c.checkpoints("vm1")
    ok(len(cps) == 2 and cps[1]["parent"] == cps[0]["id"] and cps[1]["current"],
       "second checkpoint is the first's child and current")
    ok(cps[1]["consistency"] == "application", "second checkpoint is application-consistent")
    reports2 = [c.check_frozen_image(d["image"], f"second/{d['disk']}") for d in cps[1]["disks"]]
    ok(all(r2["highest"] > r1["highest"] for r1, r2 in zip(reports, reports2)),
       "the second checkpoint holds the records written after the first")
    # The first checkpoint's images are untouched by the VM's later writes.
    again = [check_image(d["image"], "/records", c.a.workload_bin)["highest"] for d in first["disks"]]
    ok(again == h, "the first checkpoint's images did not change")
    tree = c.sp("checkpoint", "list", "vm1").stdout
    ok("<- now" in tree and "first" in tree, "the tree marks the current checkpoint")
    c.store_consistent("vm1")


def case_excluded(c):
    """#15 item 4: a disk whose only filesystem the agent did not freeze makes the checkpoint
    crash-consistent, with the reason stored and shown."""
    c.g.workload("wait 20 60000")
    c.add_vm("vm1")
    r = c.sp("checkpoint", "create", "vm1", "--name", "partly")
    ok("crash-consistent" in r.stdout, f"reported crash-consistent: {r.stdout.strip()}")
    ok("filesystem /mnt/data1 (ext4) on disk" in r.stderr and "excluded" in r.stderr,
       "the warning names the filesystem left unfrozen and why")
    ok(not c.frozen(), "guest thawed after the checkpoint")
    cp = c.checkpoints("vm1")[0]
    ok(cp["consistency"] == "crash" and cp["type"] == "production", "recorded crash-consistent")
    ok(cp["reason"] is not None and "/mnt/data1 (ext4) on disk vd-data1 was not frozen: excluded"
       in cp["reason"], f"the record says why: {cp['reason']}")
    tree = c.sp("checkpoint", "list", "vm1").stdout
    ok("why: filesystem /mnt/data1" in tree, "checkpoint list shows why")
    data0 = [d for d in cp["disks"] if d["disk"] == "vd-data0"][0]
    c.check_frozen_image(data0["image"], "partly/vd-data0 (frozen)")
    c.store_consistent("vm1")


def case_failures(c):
    c.g.workload("wait 10 60000")
    base = c.images()
    nodes = c.top_nodes()

    def no_trace(vm, what):
        ok(not c.frozen(), f"{what}: guest not frozen")
        ok(c.images() == base, f"{what}: no stray overlay")
        ok(c.checkpoints(vm) == [], f"{what}: no record")
        ok(c.top_nodes() == nodes, f"{what}: disks still on their images")

    blocker = os.path.join(c.a.run_dir, "not-a-directory")
    os.mkdir(blocker)
    c.add_vm("baddir", extra=("--overlay-dir", blocker))
    os.rmdir(blocker)
    open(blocker, "w").close()   # gone after vm add: caught at create, before the freeze
    r = c.sp("checkpoint", "create", "baddir", check=False)
    ok(r.returncode != 0 and f"image directory {blocker}: {blocker} is not a directory" in r.stderr,
       f"overlay dir not writable: clear error ({r.stderr.strip().splitlines()[-1]})")
    ok("freezing" not in r.stderr, "overlay dir not writable: caught before the freeze")
    no_trace("baddir", "overlay dir not writable")

    c.add_vm("vm1")
    r = c.sp("checkpoint", "create", "vm1", env={"STILLPOINT_TEST_FAIL_AT": "transaction"},
             check=False)
    ok(r.returncode != 0 and "QMP command transaction failed" in r.stderr,
       "transaction fails: clear error")
    ok("thawing" in r.stderr or "thawed" in r.stderr, "transaction fails: thaw was sent")
    no_trace("vm1", "transaction fails")

    # production-only: production's fallback to a standard checkpoint would succeed.
    r = c.sp("checkpoint", "create", "vm1", "--type", "production-only",
             env={"STILLPOINT_AGENT_FREEZE_TIMEOUT_MS": "1"}, check=False)
    ok(r.returncode != 0 and "timed out" in r.stderr, "agent times out: clear error")
    no_trace("vm1", "agent times out")

    c.add_vm("noagent", agent=os.path.join(c.a.run_dir, "no-agent-here.sock"))
    r = c.sp("checkpoint", "create", "noagent", "--type", "production-only", check=False)
    ok(r.returncode != 0 and "could not quiesce the guest" in r.stderr,
       "agent not present: clear error")
    no_trace("noagent", "agent not present")

    c.add_vm("noqmp", qmp=os.path.join(c.a.run_dir, "qmp-gone.sock"))
    r = c.sp("checkpoint", "create", "noqmp", check=False)
    ok(r.returncode != 0 and "QMP socket" in r.stderr, "QMP socket gone: clear error")
    no_trace("noqmp", "QMP socket gone")

    r = c.sp("checkpoint", "create", "vm1")
    ok("application-consistent" in r.stdout, "after all that, a checkpoint works")
    c.check_frozen_image(c.checkpoints("vm1")[0]["disks"][0]["image"], "after failures")
    c.store_consistent("vm1")


def case_kill9(c):
    c.g.workload("wait 10 60000")
    c.add_vm("vm1")
    for step in STEPS:
        r = c.sp("checkpoint", "create", "vm1", "--name", f"killed at {step}",
                 env={"STILLPOINT_TEST_CRASH_AT": step}, check=False)
        ok(r.returncode == -9, f"killed at {step}")
        r = c.sp("checkpoint", "create", "vm1", "--name", f"after {step}")
        ok("application-consistent" in r.stdout, f"after a kill at {step}: the rerun is consistent")
        ok(not c.frozen(), f"after a kill at {step}: guest not frozen")
        c.store_consistent("vm1")
    last = c.checkpoints("vm1")[-1]
    c.check_frozen_image(last["disks"][0]["image"], "last checkpoint after the kills")


def case_qga(c):
    c.g.workload("wait 10 60000")
    c.add_vm("vm1")
    r = c.sp("checkpoint", "create", "vm1")
    ok("qemu-ga (standard fsfreeze)" in r.stderr, "stock qemu-ga detected")
    ok("application-consistent" in r.stdout, "application-consistent through the standard commands")
    ok(not c.frozen(), "guest thawed")
    c.check_frozen_image(c.checkpoints("vm1")[0]["disks"][0]["image"], "qemu-ga checkpoint")
    c.store_consistent("vm1")


def records(c, image, what):
    return c.check_frozen_image(image, what)["highest"]


def case_ops(c):
    wl = c.g.workload
    wl("wait 20 60000")
    c.add_vm("vm1")
    c.sp("checkpoint", "create", "vm1", "--name", "A")
    cp_a = c.checkpoints("vm1")[0]
    h_a = records(c, cp_a["disks"][0]["image"], "A")
    wl(f"wait {wl('report')['last'] + 20} 60000")
    c.sp("checkpoint", "create", "vm1", "--name", "B")
    h_b = records(c, c.checkpoints("vm1")[1]["disks"][0]["image"], "B")
    ok(h_b > h_a, f"B holds more records than A ({h_a} < {h_b})")
    wl(f"wait {wl('report')['last'] + 20} 60000")

    # Export while the VM writes: standalone, clean, exactly B's records.
    out = os.path.join(c.a.run_dir, "export")
    c.sp("checkpoint", "export", "vm1", "B", out)
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    exported = os.path.join(out, manifest["disks"][0]["file"])
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", exported],
                                     capture_output=True, text=True, check=True).stdout)
    ok("backing-filename" not in info, "the export has no backing file")
    ok(records(c, exported, "export of B") == h_b, "the export holds exactly B's records")

    # Delete A live (an inner commit) while the workload writes.
    def chain_len():
        top = [b["inserted"]["file"] for b in c.g.qmp("query-block") if "inserted" in b][0]
        return len(json.loads(subprocess.run(
            ["qemu-img", "info", "-U", "--backing-chain", "--output=json", top],
            capture_output=True, text=True, check=True).stdout))
    links_before = chain_len()
    before = wl("report")["last"]
    c.sp("checkpoint", "delete", "vm1", "A")
    cps = c.checkpoints("vm1")
    ok([x["name"] for x in cps] == ["B"], "A is gone, B stays")
    ok(chain_len() == links_before - 1, f"the chain is one link shorter ({links_before} before)")
    chk = subprocess.run(["qemu-img", "check", "-U", cps[0]["disks"][0]["image"]],
                         capture_output=True, text=True)
    ok(chk.returncode == 0, f"qemu-img check of the merged image is clean ({chk.stdout.strip()})")
    ok(records(c, cps[0]["disks"][0]["image"], "B after deleting A") == h_b,
       "B holds exactly the records it held")
    wl(f"wait {before + 20} 60000")
    ok(wl("report")["stopped"] is False, "the workload ran on through the merge")

    # Delete the active layer (C, current) while the workload writes, then check with a fresh
    # consistent checkpoint D that every record is there, without a gap.
    c.sp("checkpoint", "create", "vm1", "--name", "C")
    wl(f"wait {wl('report')['last'] + 20} 60000")
    during = wl("report")["last"]
    # Killed right after starting the merge: QEMU's job goes on (and waits, ready, for its
    # pivot) while the workload writes; the next command completes it.
    r = c.sp("checkpoint", "delete", "vm1", "C", env={"STILLPOINT_TEST_CRASH_AT": "committing"},
             check=False)
    ok(r.returncode == -9, f"the delete was killed mid-merge (status {r.returncode})")
    c.sp("vm", "recover", "vm1")
    wl(f"wait {during + 20} 60000")
    c.sp("checkpoint", "create", "vm1", "--name", "D")
    cps = c.checkpoints("vm1")
    ok([x["name"] for x in cps] == ["B", "D"], "C is gone; D follows B")
    h_d = records(c, cps[1]["disks"][0]["image"], "D")
    ok(h_d >= during + 20, f"D holds every record written during and after the merge ({h_d})")
    c.store_consistent("vm1")

    # Apply B: QEMU is stopped (--force), the present kept as NOW, the stable path re-pointed.
    r = c.sp("checkpoint", "apply", "vm1", "B", "--force", "--save-current", "NOW")
    links = {}
    for line in r.stdout.splitlines():
        if line.startswith("  ") and ": " in line:
            disk, link = line.strip().split(": ", 1)
            links[disk] = link
    ok(len(links) == 1, f"apply names the stable path ({links})")
    link = next(iter(links.values()))
    ok(records(c, link, "the stable path after apply") == h_b,
       "the stable path holds exactly B's records")
    ok([x["name"] for x in c.checkpoints("vm1")] == ["B", "D", "NOW"], "the present was kept")
    # Hyper-V's "create checkpoint and apply": the running VM got a production checkpoint (its
    # type) before it was stopped, not a crash-consistent record of a pulled plug.
    kept = c.checkpoints("vm1")[2]
    ok(kept["type"] == "production" and kept["consistency"] == "application" and
       kept["origin"] == "apply" and "freezing the guest" in r.stderr,
       f"the present was kept as a production checkpoint of the running VM ({kept['type']}, "
       f"{kept['consistency']})")
    c.check_frozen_image(kept["disks"][0]["image"], "NOW")
    c.g.stop()

    # Boot from the stable path: the workload resumes right after B's last record.
    run2 = os.path.join(c.a.run_dir, "after-apply")
    os.makedirs(run2, exist_ok=True)
    serial = c.g.disks[0].serial
    os.symlink(link, os.path.join(run2, f"{serial}.qcow2"))
    with Guest(c.a.guest, run2, agent=c.a.agent, disks=[Disk(serial)],
               workload=["--resume", "--interval-ms", "20", f"/mnt/{serial}/records"],
               lifetime=300) as g2:
        first = g2.workload("report")["first"]
        ok(first == h_b + 1, f"the booted guest saw exactly B's {h_b} records (resumed at {first})")
        g2.workload(f"wait {first + 10} 60000")
        top = [b["inserted"]["file"] for b in g2.qmp("query-block") if "inserted" in b][0]
        ok(os.path.realpath(top) == os.path.realpath(link), "it runs on the new overlay")
    ok(records(c, link, "after the second boot") >= h_b + 10, "its writes went to the new overlay")
    ok(records(c, c.checkpoints("vm1")[0]["disks"][0]["image"], "B after all") == h_b,
       "B itself is unchanged")


class LinkedGuest(Guest):
    """The VM started again on other image paths (the stable paths), with the first guest's
    socket paths (the VM is registered by them)."""

    def __init__(self, *args, links, like, **kwargs):
        super().__init__(*args, **kwargs)
        self.links = links
        self.qmp_path, self.qga_path, self.workload_path = like.qmp_path, like.qga_path, \
            like.workload_path

    def image(self, serial):
        return self.links.get(serial) or super().image(serial)


def case_restart(c):
    """Issue #18 item 1, exactly: checkpoint 'one', stop QEMU, start it again with the same
    command line (-drive file=data0.qcow2, one's image), then 'checkpoint create two'."""
    c.g.workload("wait 20 60000")
    c.add_vm("vm1")
    c.sp("checkpoint", "create", "vm1", "--name", "one")
    one = c.checkpoints("vm1")[0]
    image, overlay = one["disks"][0]["image"], one["disks"][0]["overlay"]
    link = os.path.join(os.path.dirname(c.store), "vms", "vm1", "vd-data0.qcow2")
    ok(image == c.g.image("data0") and os.readlink(link) == overlay,
       "after the checkpoint the stable path names the present")
    ok(os.stat(image).st_mode & 0o222 == 0, "one's image is a read-only file")
    ok(any(n["drv"] == "qcow2" and n["file"] == image and n["ro"]
           for n in c.g.qmp("query-named-block-nodes", {"flat": True})),
       "QEMU holds one's image read-only")
    h_one = records(c, image, "one")
    files = c.images()
    c.g.stop()
    resume = ["--resume", "--interval-ms", "20", "/mnt/data0/records"]
    # The launcher's old command line: QEMU (root) opens one's image read-write and boots on it.
    with LinkedGuest(c.a.guest, c.a.run_dir, agent=c.a.agent, disks=[Disk("data0")],
                     workload=resume, lifetime=300, links={}, like=c.g) as g2:
        c.g = g2
        first = g2.workload("report")["first"]
        ok(first == h_one + 1, f"restarted on one's image, the guest sees one's {h_one} records")
        g2.workload(f"wait {first + 10} 60000")
        r = c.sp("checkpoint", "create", "vm1", "--name", "two", check=False)
        ok(r.returncode == 1 and "the frozen image of checkpoint 'one'" in r.stderr and
           f"instead of the stable path {link}" in r.stderr and "--adopt-running" in r.stderr,
           "create refuses, says what happened and how to recover")
        ok(not c.frozen() and c.images() == files and len(c.checkpoints("vm1")) == 1,
           "nothing was frozen, made or recorded")
        ok(check_image(image, "/records", c.a.workload_bin)["highest"] > h_one,
           "the guest's writes did go into one's image (what stillpoint refused to build on)")
        r = c.sp("vm", "recover", "vm1", "--adopt-running")
        ok("forgot checkpoint 'one'" in r.stderr and f"kept {overlay}" in r.stderr,
           "--adopt-running forgets one and keeps its files")
        ok(c.checkpoints("vm1") == [] and os.path.exists(overlay), "no record left, no file lost")
        os.unlink(overlay)  # the user's to remove, once looked at
        g2.workload(f"wait {g2.workload('report')['last'] + 10} 60000")
        c.sp("checkpoint", "create", "vm1", "--name", "two")
        two = c.checkpoints("vm1")[0]
        ok(two["consistency"] == "application" and two["disks"][0]["image"] == image,
           "then a consistent checkpoint of what the guest runs on")
        h_two = records(c, image, "two")
        ok(os.readlink(link) == two["disks"][0]["overlay"], "the stable path follows it")
    # From the stable path: the VM runs on two's present (what it wrote until it stopped), and
    # two's image stays as it was.
    h_present = check_image(link, "/records", c.a.workload_bin)["highest"]
    ok(h_present > h_two, f"the present holds the records written after two ({h_present})")
    with LinkedGuest(c.a.guest, c.a.run_dir, agent=c.a.agent, disks=[Disk("data0")],
                     workload=resume, lifetime=300, links={"data0": link}, like=g2) as g3:
        c.g = g3
        first = g3.workload("report")["first"]
        ok(first == h_present + 1,
           f"started from the stable path, the guest goes on from its present ({first})")
        g3.workload(f"wait {first + 10} 60000")
        c.sp("checkpoint", "create", "vm1", "--name", "three")
        ok([x["name"] for x in c.checkpoints("vm1")] == ["two", "three"], "three follows two")
        c.store_consistent("vm1")
    ok(records(c, image, "two after all") == h_two, "two's image did not change")


class IncomingGuest(Guest):
    """The same VM started again on the stable disk paths, waiting for its state (-incoming)."""

    def __init__(self, *args, links, **kwargs):
        super().__init__(*args, **kwargs)
        self.links = links

    def image(self, serial):
        return self.links[serial]

    def qemu_command(self):
        return super().qemu_command() + ["-incoming", "defer"]


def case_standard(c):
    wl = c.g.workload
    wl("wait 20 60000")
    c.add_vm("vm1")
    first = wl("report")["first"]
    before = wl("report")["last"]
    r = c.sp("checkpoint", "create", "vm1", "--type", "standard", "--name", "S")
    at_s = wl("report")["last"]
    cp = c.checkpoints("vm1")[0]
    ok(cp["type"] == "standard" and cp["state"] and os.path.getsize(cp["state"]) > 0,
       "a standard checkpoint with its saved state")
    ok("stopping the VM to save its memory" in r.stderr, "the VM was stopped for it")
    wl(f"wait {at_s + 40} 60000")
    later = wl("report")["last"]
    ok(later >= at_s + 40, "the VM runs on after the checkpoint")
    r = c.sp("checkpoint", "apply", "vm1", "S", "--force")
    ok("-incoming defer" in r.stdout, "apply says how to resume")
    serial = c.g.disks[0].serial
    link = os.path.join(os.path.dirname(c.store), "vms", "vm1", f"vd-{serial}.qcow2")
    g2 = IncomingGuest(c.a.guest, c.a.run_dir, agent=c.a.agent, disks=[Disk(serial)],
                       workload=c.g.workload_args, lifetime=300, links={serial: link})
    g2.qmp_path, g2.qga_path, g2.workload_path = c.g.qmp_path, c.g.qga_path, c.g.workload_path
    try:
        g2.launch()
        deadline = time.monotonic() + 30
        while not os.path.exists(g2.qmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        c.sp("checkpoint", "resume", "vm1")
        ok(g2.qmp("query-status")["status"] == "running", "the VM runs from the saved state")
        rep = g2.workload("report")
        ok(rep["first"] == first, "it is the same workload process, not a new boot")
        ok(before <= rep["last"] < later,
           f"its counter went back to the saved point and continues ({before} <= {rep['last']} "
           f"< {later})")
        g2.workload(f"wait {rep['last'] + 20} 60000")
        ok(g2.workload("report")["last"] >= rep["last"] + 20, "and it keeps writing")
    finally:
        g2.stop()


CASES = {"consistent": (case_consistent, ["data0", "data1"]),
         "excluded": (case_excluded, ["data0", "data1"], "sp.agent_exclude=/mnt/data1"),
         "failures": (case_failures, ["data0"]),
         "kill9": (case_kill9, ["data0"]),
         "qga": (case_qga, ["data0"]),
         "ops": (case_ops, ["data0"]),
         "standard": (case_standard, ["data0"]),
         "restart": (case_restart, ["data0"])}


def main():
    p = test_arguments(__doc__)
    p.add_argument("--agent", default="stillpoint")
    p.add_argument("case", choices=sorted(CASES))
    a = p.parse_args()
    fn, serials, *append = CASES[a.case]
    shutil.rmtree(a.run_dir, ignore_errors=True)
    os.makedirs(a.run_dir)
    files = [f"/mnt/{s}/records" for s in serials]
    with Guest(a.guest, a.run_dir, agent=a.agent, disks=[Disk(s) for s in serials],
               workload=["--interval-ms", "20"] + files, lifetime=600, fresh=True,
               append=" ".join(append)) as g:
        def body():
            ctx = Ctx(a, g)
            fn(ctx)
            check_sanitizers(ctx)
        return report(f"e2e/host/guest/{a.agent}/{a.case}", body, g.console_tail)


if __name__ == "__main__":
    sys.exit(main())
