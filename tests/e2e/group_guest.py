#!/usr/bin/python3
"""e2e/group/guests — a consistency group of two real test guests (tests/guest/spguest.py), each with
stillpoint-agent and sp-workload writing numbered records to its own ext4 data disk.

  group_guest.py --guest DIR --run-dir DIR --stillpoint BIN --workload-bin BIN

together   `checkpoint create --group` freezes both guests at once. Each VM gets exactly one
           checkpoint, whose frozen image passes e2fsck -fn and holds a prefix of the records; the
           first record missing from it is the write the freeze held, which must have stalled
           (from the last write completed before it to its completion, more than two write
           intervals), and the two guests' stalls must overlap in time by more than two write
           intervals, with the clocks' uncertainty counted against the overlap. Then a control, so that the check can be seen to fail:
           the same guests frozen one right after the other through their agents (freeze, 20 ms,
           thaw; then the other, no pause) must not pass it.
one-fails  the second guest rebooted with a freeze hook (on its data disk) that exits 3: the group
           run fails naming that member, both guests report "thawed", neither VM gets a
           checkpoint, no overlay file is left and nothing is pending in the journal.

The clocks: the agent has no guest-set-time, so each workload's own clock (CLOCK_MONOTONIC since
its start, in which its write log is kept) is placed on the host's monotonic clock by `report`
round trips over its control port: each one bounds the workload's start to [t1 - r - 1, t2 - r]
(r its running_ms, read between the host's t1 and t2). The intersection of the bounds from 20
round trips before and 20 after the checkpoint is the residual offset uncertainty (printed, and
counted against the overlap); an empty intersection (a clock that drifted) fails the test."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from spguest import Disk, Guest, test_arguments  # noqa: E402
from host_guest import Ctx, check_sanitizers  # noqa: E402
from sptest import Failure, ok, report  # noqa: E402

INTERVAL_MS = 10
# Frozen back to back (the control), two guests' stall intervals still come close: each begins up
# to a write interval before its freeze and ends a write after its thaw. Measured here: 40 such
# pairs overlapped by -75 to -0.8 ms, 25 group checkpoints by 44 to 65 ms. "Frozen at once" is an
# overlap beyond two write intervals.
AT_ONCE_MS = 2 * INTERVAL_MS
WORKLOAD = ["--interval-ms", str(INTERVAL_MS), "/mnt/data0/records"]
HOOK = """#!/bin/sh
# group_guest.py: this guest refuses every freeze.
if [ "$1" = freeze ]; then echo "this guest refuses to freeze (test hook)" >&2; exit 3; fi
exit 0
"""
AGENT_CONF = """[hooks]
fsfreeze-hook=/mnt/data0/sp/fsfreeze-hook
fsfreeze-hook-dir=/mnt/data0/sp/fsfreeze-hook.d
"""


def now_ms():
    return time.monotonic_ns() / 1e6


class HookDisk(Disk):
    """data0 with /sp/agent.conf and /sp/fsfreeze-hook in it (root-owned, 0755: the agent refuses
    hooks others could change), made with mkfs.ext4 -d."""

    def create(self, image):
        with tempfile.TemporaryDirectory(prefix="sp-group-hook-") as src:
            os.chmod(src, 0o755)
            os.mkdir(os.path.join(src, "sp"), 0o755)
            with open(os.path.join(src, "sp", "agent.conf"), "w") as f:
                f.write(AGENT_CONF)
            hook = os.path.join(src, "sp", "fsfreeze-hook")
            with open(hook, "w") as f:
                f.write(HOOK)
            os.chmod(hook, 0o755)
            raw = image + ".raw"
            try:
                subprocess.run(["truncate", "-s", self.size, raw], check=True)
                subprocess.run(["mkfs.ext4", "-q", "-F", "-L", self.serial, "-d", src, "-E",
                                "lazy_itable_init=0,lazy_journal_init=0", raw], check=True)
                subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, image],
                               check=True)
            finally:
                if os.path.exists(raw):
                    os.unlink(raw)


class Vm:
    """One guest in the group: its Guest, its workload clock on the host's clock."""

    def __init__(self, name, guest):
        self.name, self.g = name, guest
        self.bounds = []  # (lo, hi) of the workload's start on the host monotonic clock, in ms

    def sync(self, n=20):
        for _ in range(n):
            t1 = now_ms()
            r = self.g.workload("report")["running_ms"]
            t2 = now_ms()
            self.bounds.append((t1 - r - 1, t2 - r))

    def t0(self):
        """(lo, hi): where the workload's clock starts on the host's, from every sync so far."""
        lo = max(b[0] for b in self.bounds)
        hi = min(b[1] for b in self.bounds)
        if lo > hi:
            raise Failure(f"{self.name}: the workload's clock does not keep pace with the host's "
                       f"(its start bounds cross by {lo - hi:.1f} ms: it drifted or stepped)")
        return lo, hi

    def writes(self):
        """Every write as (record, start, end) in ms on the workload's clock."""
        lat = self.g.workload("latencies", timeout=30)
        return [(lat["first"] + i, s, s + us / 1000) for i, (s, us) in enumerate(lat["samples"])]

    def stall(self, window, record=None):
        """The longest write that overlaps the host window (lo, hi), or the write of record
        when given: {"record": K, "ms": its latency, "p99": the other writes' nearby, "start":
        (lo, hi), "end": (lo, hi)}, start and end being host-clock bounds of the stall interval,
        from the completion of write K-1 to that of write K."""
        t0_lo, t0_hi = self.t0()
        mid = (t0_lo + t0_hi) / 2
        ws = self.writes()
        cands = [i for i, (rec, s, e) in enumerate(ws)
                 if i > 0 and mid + s <= window[1] and mid + e >= window[0]
                 and (record is None or rec == record)]
        ok(cands, f"{self.name}: the workload wrote during the checkpoint"
                  + ("" if record is None else f" (record {record})"))
        i = max(cands, key=lambda j: ws[j][2] - ws[j][1])
        rec, s, e = ws[i]
        prev_end = ws[i - 1][2]
        # What a write takes around it when nothing is frozen.
        near = sorted(e2 - s2 for j, (_, s2, e2) in enumerate(ws) if j != i and abs(s2 - s) < 5000)
        # start_ms is truncated to the ms: a time lies in [t0 + s, t0 + s + 1).
        return {"record": rec, "ms": e - s, "p99": near[len(near) * 99 // 100],
                "start": (t0_lo + prev_end, t0_hi + prev_end + 1),
                "end": (t0_lo + e, t0_hi + e + 1)}


def overlap(a, b):
    """(worst case, best case) overlap of two stall intervals in ms; negative = a gap."""
    worst = min(a["end"][0], b["end"][0]) - max(a["start"][1], b["start"][1])
    best = min(a["end"][1], b["end"][1]) - max(a["start"][0], b["start"][0])
    return worst, best


def describe(v, st, origin):
    return (f"{v.name}: record {st['record']} stalled {st['ms']:.0f} ms; interval "
            f"[{st['start'][0] - origin:.1f}, {st['end'][1] - origin:.1f}] ms")


class GroupCtx(Ctx):
    """host_guest's Ctx over several guests sharing one store."""

    def __init__(self, a):
        super().__init__(a, None)
        self.vms = {}

    def sp(self, *args, **kwargs):
        for v in self.vms.values():
            v.g.qga_disconnect()  # QEMU serves one agent client at a time: the CLI's turn
        return super().sp(*args, **kwargs)

    def on(self, vm):
        self.g = self.vms[vm].g
        return self

    def add(self, v):
        self.vms[v.name] = v
        self.on(v.name).add_vm(v.name)

    def status(self, vm):
        g = self.vms[vm].g
        try:
            return g.qga("guest-fsfreeze-status", timeout=20)
        finally:
            g.qga_disconnect()

    def overlays(self, vm):
        return sorted(glob.glob(os.path.join(self.vms[vm].g.run_dir, f"{vm}-*.qcow2")))


def boot(a, specs):
    """Boots the guests at once (their boots overlap on the two cores); returns them running."""
    guests = []
    try:
        for name, disk, agent_args in specs:
            g = Guest(a.guest, os.path.join(a.run_dir, name), agent="stillpoint", disks=[disk],
                      workload=WORKLOAD, agent_args=agent_args, lifetime=600, fresh=True)
            guests.append(g)
            g.launch()
        for g in guests:
            g.wait_ready(90)
            g.workload("wait 20 60000")
    except BaseException:
        for g in guests:
            g.stop()
        raise
    return guests


def timed_sp(c, *args, check=True):
    t1 = now_ms()
    r = c.sp(*args, check=check)
    return r, (t1, now_ms())


def quiet_host():
    """Writes the host's dirty pages out: the guests' fsyncs (QEMU flushes) would otherwise wait
    on the host's writeback of earlier test files together, a stall common to both guests."""
    os.sync()


def case_together(c, db, app):
    for v in (db, app):
        c.add(v)
    c.sp("-q", "group", "create", "shop", "db", "app")
    quiet_host()
    for v in (db, app):
        v.sync()
    r, window = timed_sp(c, "--json", "checkpoint", "create", "--group", "shop", "--name", "g1")
    for v in (db, app):
        v.sync()
    out = json.loads(r.stdout)
    ok([(cp["name"], cp["consistency"]) for cp in out] == [("g1", "application")] * 2,
       f"one application-consistent checkpoint per member ({window[1] - window[0]:.0f} ms)")
    for v in (db, app):
        lo, hi = v.t0()
        print(f"   {v.name}: workload clock placed on the host's within {hi - lo:.1f} ms "
              f"({len(v.bounds)} round trips)", flush=True)
    # The write each freeze held is the first record missing from its checkpoint's image (the
    # longest stall in the window may be another one: the flush before the freeze also stalls).
    images = {}
    for v in (db, app):
        cps = c.checkpoints(v.name)
        ok(len(cps) == 1 and cps[0]["name"] == "g1", f"{v.name}: exactly one checkpoint")
        images[v.name] = c.check_frozen_image(cps[0]["disks"][0]["image"], f"{v.name}: frozen image")
    stalls = {v.name: v.stall(window, record=images[v.name]["highest"] + 1) for v in (db, app)}
    for v in (db, app):
        print("   " + describe(v, stalls[v.name], window[0]), flush=True)
        st = stalls[v.name]
        ok(st["ms"] > AT_ONCE_MS,
           f"{v.name}: the write after the image's last record (record {st['record']}) was held "
           f"by the freeze ({st['ms']:.0f} ms, more than {AT_ONCE_MS} ms)")
    worst, best = overlap(stalls["db"], stalls["app"])
    ok(worst > AT_ONCE_MS,
       f"both guests frozen at once: the stalls overlap by {worst:.1f} ms at least (at most "
       f"{best:.1f} ms; clocks placed within {max(v.t0()[1] - v.t0()[0] for v in (db, app)):.1f} "
       f"ms), more than the {AT_ONCE_MS} ms freezes back to back can give")

    # The control: the same guests frozen one right after the other through their agents, each
    # held about as long as the group held them, nothing in between: the check must fail. Each
    # stall is looked for while its own guest was frozen.
    quiet_host()
    for v in (db, app):
        v.sync()
        v.g.qga("guest-ping")  # both agent connections open before the first freeze
    windows = {}
    for v in (db, app):
        t1 = now_ms()
        v.g.qga("guest-fsfreeze-freeze")
        time.sleep(0.02)
        v.g.qga("guest-fsfreeze-thaw")
        windows[v.name] = (t1, now_ms())
    print(f"   control: app's freeze sent {windows['app'][0] - windows['db'][1]:.1f} ms after "
          f"db's thaw answered", flush=True)
    time.sleep(0.2)  # the write app's freeze blocked completes
    for v in (db, app):
        v.g.qga_disconnect()
        v.sync()
    seq = {v.name: v.stall(windows[v.name]) for v in (db, app)}
    for v in (db, app):
        print("   control " + describe(v, seq[v.name], windows["db"][0]), flush=True)
    cworst, cbest = overlap(seq["db"], seq["app"])
    ok(cworst <= AT_ONCE_MS,
       f"control: frozen one after the other, the same check fails (the stalls overlap by "
       f"{cworst:.1f} ms at least, {cbest:.1f} ms at most; not more than {AT_ONCE_MS} ms)")

    for v in (db, app):
        c.on(v.name).store_consistent(v.name)
        ok(c.status(v.name) == "thawed", f"{v.name}: guest-fsfreeze-status says thawed")


def case_one_fails(c, db, hooked):
    c.add(hooked)
    c.sp("-q", "group", "create", "shop2", "db", "hooked")
    before = {n: (len(c.checkpoints(n)), c.overlays(n)) for n in ("db", "hooked")}
    db.sync(5)
    r, window = timed_sp(c, "checkpoint", "create", "--group", "shop2", check=False)
    db.sync(5)
    err = r.stderr.strip()
    ok(r.returncode != 0, f"the group run fails (exit {r.returncode})")
    ok("'hooked': " in err and "freeze hook failed" in err,
       f"the error names the member and its hook ({err.splitlines()[-1] if err else ''})")
    ok("no member got a checkpoint" in err, "the error says no member got a checkpoint")
    st = db.stall(window)
    print(f"   db's longest write during the failed run: {st['ms']:.0f} ms (record {st['record']}; "
          f"p99 {st['p99']:.1f} ms)", flush=True)
    for n in ("db", "hooked"):
        ok(c.status(n) == "thawed", f"{n}: guest-fsfreeze-status says thawed")
        ok(len(c.checkpoints(n)) == before[n][0], f"{n}: no checkpoint recorded")
        ok(c.overlays(n) == before[n][1], f"{n}: no overlay file left")
        c.on(n).store_consistent(n)
    # Both workloads write on.
    for v in (db, hooked):
        last = v.g.workload("report")["last"]
        ok("error" not in v.g.workload(f"wait {last + 10} 30000"), f"{v.name}: the workload writes on")


def main():
    p = test_arguments(__doc__)
    a = p.parse_args()
    a.run_dir = os.path.abspath(a.run_dir)
    shutil.rmtree(a.run_dir, ignore_errors=True)
    os.makedirs(a.run_dir)
    t_start = time.monotonic()
    guests = []

    def body():
        guests.extend(boot(a, [("db", Disk("data0"), ()), ("app", Disk("data0"), ())]))
        db, app = Vm("db", guests[0]), Vm("app", guests[1])
        print(f"   booted two guests in {time.monotonic() - t_start:.1f} s", flush=True)
        c = GroupCtx(a)
        case_together(c, db, app)
        guests[1].stop()
        guests.extend(boot(a, [("hooked", HookDisk("data0"),
                                ("--config", "/mnt/data0/sp/agent.conf"))]))
        case_one_fails(c, db, Vm("hooked", guests[2]))
        check_sanitizers(c)
        print(f"   {time.monotonic() - t_start:.0f} s", flush=True)

    def consoles():
        return "\n".join(f"--- {g.run_dir} console:\n{g.console_tail()}" for g in guests)
    try:
        return report("e2e/group/guests", body, consoles)
    finally:
        for g in guests:
            g.stop()


if __name__ == "__main__":
    sys.exit(main())
