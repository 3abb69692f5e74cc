#!/usr/bin/python3
"""The guest tests: boot the test guest with an agent (stock qemu-ga or stillpoint-agent) and check
the standard guest-agent contract on a real VM. One test per run, named on the command line:

  test_guest.py --guest DIR --run-dir DIR --workload-bin BIN --agent NAME TEST
  TEST: boot-ping | fsinfo-serials | freeze-blocks-writes-loses-none   (any agent)
        leased-freeze-by-disk-is-consistent | lease-expiry-thaws-by-itself |
        vsock-loopback-is-refused | qemu-ga-beside (stillpoint-agent)

Each test prints its measurements (boot-to-ping, freeze/thaw times, the stall the workload saw)."""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from spguest import Disk, Guest, QgaError, check_image  # noqa: E402
from sptest import Failure, check, file_tail  # noqa: E402

BOOT_TO_PING_LIMIT_S = 30.0
FREEZE_HOLD_S = 2.0
WORKLOAD_INTERVAL_MS = 50
RECORD_FILE = "records"


def measure(name, value, unit="s"):
    print(f"measure: {name} = {value:.2f} {unit}" if isinstance(value, float) else
          f"measure: {name} = {value} {unit}", flush=True)


def test_boot_ping(a):
    """The guest boots and its agent answers guest-ping within the time limit."""
    with Guest(a.guest, a.run_dir, agent=a.agent, disks=[Disk("data0")], fresh=True,
               lifetime=120) as g:
        measure("boot-to-ping", g.boot_to_ping)
        check(g.boot_to_ping < BOOT_TO_PING_LIMIT_S,
               f"boot-to-ping took {g.boot_to_ping:.1f} s, over {BOOT_TO_PING_LIMIT_S:.0f} s")
        check(g.qga("guest-ping") == {}, "guest-ping did not return {}")
        info = g.qga("guest-info")
        names = {c["name"] for c in info["supported_commands"] if c.get("enabled", True)}
        for cmd in ("guest-sync-delimited", "guest-fsfreeze-freeze", "guest-fsfreeze-thaw",
                    "guest-fsfreeze-status", "guest-get-fsinfo"):
            check(cmd in names, f"guest-info does not list {cmd} as enabled: {sorted(names)}")
        print(f"agent version {info.get('version')}")


def test_fsinfo_serials(a):
    """guest-get-fsinfo shows each data disk, mounted at /mnt/SERIAL, with its serial."""
    disks = [Disk("data0", "ext4"), Disk("data1", "xfs")]
    with Guest(a.guest, a.run_dir, agent=a.agent, disks=disks, fresh=True, lifetime=120) as g:
        measure("boot-to-ping", g.boot_to_ping)
        fsinfo = g.qga("guest-get-fsinfo")
        for d in disks:
            mounts = [fs for fs in fsinfo if fs.get("mountpoint") == f"/mnt/{d.serial}"]
            check(len(mounts) == 1, f"/mnt/{d.serial} is not in guest-get-fsinfo: {fsinfo}")
            fs = mounts[0]
            check(fs.get("type") == d.fs, f"/mnt/{d.serial} has type {fs.get('type')}, not {d.fs}")
            serials = [disk.get("serial") for disk in fs.get("disk", [])]
            check(serials == [d.serial], f"/mnt/{d.serial} shows disk serials {serials}")
            check(fs["disk"][0].get("bus-type") == "virtio",
                   f"/mnt/{d.serial} is on bus {fs['disk'][0].get('bus-type')}, not virtio")
            print(f"{fs['mountpoint']}: {fs['type']} on {fs['disk'][0].get('dev')} serial {serials[0]}")


def test_freeze_blocks_writes_loses_none(a):
    """guest-fsfreeze-freeze blocks the workload's writes on both data disks until the thaw, and
    every record written before the stop is on the disks afterwards, in the guest and in the
    image read on the host."""
    disks = [Disk("data0", "ext4"), Disk("data1", "xfs")]
    files = [f"/mnt/{d.serial}/{RECORD_FILE}" for d in disks]
    workload = ["--interval-ms", str(WORKLOAD_INTERVAL_MS)] + files
    with Guest(a.guest, a.run_dir, agent=a.agent, disks=disks, workload=workload, fresh=True,
               lifetime=150) as g:
        measure("boot-to-ping", g.boot_to_ping)
        report = g.workload("wait 20")
        check("error" not in report, f"the workload did not reach record 20: {report}")
        check(g.qga("guest-fsfreeze-status") == "thawed", "the guest starts frozen")

        t = time.monotonic()
        frozen = g.qga("guest-fsfreeze-freeze")
        measure("freeze call", time.monotonic() - t)
        try:
            check(frozen == len(disks), f"froze {frozen} filesystems, expected {len(disks)}")
            check(g.qga("guest-fsfreeze-status") == "frozen", "status is not frozen after freeze")
            # While frozen, the agent refuses what could touch a disk (qemu-ga's rule).
            try:
                g.qga("guest-get-fsinfo")
                raise Failure("guest-get-fsinfo was allowed while frozen")
            except QgaError as e:
                check(e.cls == "CommandNotFound", f"frozen refusal has class {e.cls}: {e.desc}")
            before = g.workload("report")
            time.sleep(FREEZE_HOLD_S)  # the frozen window the workload has to feel
            during = g.workload("report")
        finally:
            t = time.monotonic()
            thawed = g.qga("guest-fsfreeze-thaw")
            measure("thaw call", time.monotonic() - t)
        check(thawed == len(disks), f"thawed {thawed} filesystems, expected {len(disks)}")
        check(g.qga("guest-fsfreeze-status") == "thawed", "status is not thawed after thaw")

        check(during["last"] == before["last"],
               f"records {before['last'] + 1}..{during['last']} were written while frozen")
        blocked = during["inflight_record"]
        check(blocked == before["last"] + 1 and during["inflight_ms"] >= FREEZE_HOLD_S * 1000 * 0.9,
               f"no write was blocked through the freeze: {during}")
        resumed = g.workload(f"wait {during['last'] + 20}")
        check("error" not in resumed, f"writes did not resume after the thaw: {resumed}")

        samples = g.workload("latencies")["samples"]
        check(len(samples) >= resumed["writes"], f"{len(samples)} latencies for {resumed['writes']} writes")
        final = g.workload("stop")
        stalls = {s["record"]: s["ms"] for s in final["stalls"]}
        check(blocked in stalls and stalls[blocked] >= FREEZE_HOLD_S * 1000 * 0.9,
               f"record {blocked} does not show the freeze as a stall: {final['stalls']}")
        measure("write blocked by the freeze", stalls[blocked], "ms")
        measure("write latency p50", final["latency_us"]["p50"], "us")
        last = final["last"]
        for c in g.workload("check")["files"]:
            check(c["ok"] and c["highest"] == last,
                   f"in the guest, {c['file']} does not hold records 1..{last} intact: {c}")
    # The VM is down; QMP quit (status 0, not a kill) flushed the images: read ext4 on the host.
    check(g.proc.returncode == 0, f"QEMU did not quit cleanly: status {g.proc.returncode}")
    c = check_image(g.image("data0"), "/" + RECORD_FILE, a.workload_bin, expect=last)
    check(c["ok"], f"the data0 image does not hold records 1..{last} intact: {c}")
    print(f"records 1..{last} intact in the guest (ext4, xfs) and in the data0 image")


def _boot_with_workload(a, lifetime=150):
    disks = [Disk("data0", "ext4"), Disk("data1", "xfs")]
    files = [f"/mnt/{d.serial}/{RECORD_FILE}" for d in disks]
    workload = ["--interval-ms", str(WORKLOAD_INTERVAL_MS)] + files
    return Guest(a.guest, a.run_dir, agent=a.agent, disks=disks, workload=workload, fresh=True,
                 lifetime=lifetime)


def _stop_and_check(g):
    final = g.workload("stop")
    for c in g.workload("check")["files"]:
        check(c["ok"] and c["highest"] == final["last"],
               f"{c['file']} does not hold records 1..{final['last']} intact: {c}")
    return final


def test_leased_freeze_by_disk_is_consistent(a):
    """stillpoint-freeze of one disk (by serial) freezes just its filesystem, holds the writes,
    and stillpoint-thaw within the lease reports a consistent freeze held as long as it was."""
    with _boot_with_workload(a) as g:
        measure("boot-to-ping", g.boot_to_ping)
        check("error" not in g.workload("wait 20"), "the workload did not reach record 20")
        freeze = g.qga("stillpoint-freeze", {"disks": ["data1"], "lease-ms": 30000})
        try:
            mounts = [f["mountpoint"] for f in freeze["frozen"]]
            check(mounts == ["/mnt/data1"], f"froze {mounts}, expected only /mnt/data1")
            status = g.qga("stillpoint-status")
            check(status["status"] == "frozen" and status["epoch"] == freeze["epoch"], f"{status}")
            before = g.workload("report")
            time.sleep(FREEZE_HOLD_S)  # the frozen window
            during = g.workload("report")
        finally:
            thaw = g.qga("stillpoint-thaw", {"epoch": freeze["epoch"]})
        check(thaw["consistent"] is True and thaw["reason"] == "requested" and thaw["thawed"] == 1,
               f"thaw: {thaw}")
        check(thaw["held-ms"] >= FREEZE_HOLD_S * 1000, f"held only {thaw['held-ms']} ms: {thaw}")
        measure("held", thaw["held-ms"], "ms")
        check(during["last"] == before["last"], "records were written while /mnt/data1 was frozen")
        check("error" not in g.workload(f"wait {during['last'] + 10}"), "writes did not resume")
        _stop_and_check(g)


def test_lease_expiry_thaws_by_itself(a):
    """A stillpoint-freeze nobody thaws ends when its lease runs out: the workload's writes
    resume by themselves, and the late thaw reports the freeze as not consistent."""
    lease_ms = 1500
    with _boot_with_workload(a) as g:
        measure("boot-to-ping", g.boot_to_ping)
        check("error" not in g.workload("wait 20"), "the workload did not reach record 20")
        freeze = g.qga("stillpoint-freeze", {"lease-ms": lease_ms})
        check(len(freeze["frozen"]) == 2, f"froze {freeze['frozen']}, expected both data disks")
        frozen_at = g.workload("report")["last"]
        resumed = g.workload(f"wait {frozen_at + 10} 30000")  # no thaw from us
        check("error" not in resumed, f"writes did not resume after the lease: {resumed}")
        thaw = g.qga("stillpoint-thaw", {"epoch": freeze["epoch"]})
        check(thaw["consistent"] is False and thaw["reason"] == "lease-expired" and thaw["thawed"] == 0,
               f"late thaw: {thaw}")
        check(lease_ms <= thaw["held-ms"] < lease_ms + 5000, f"held {thaw['held-ms']} ms: {thaw}")
        measure("held until the lease ran out", thaw["held-ms"], "ms")
        final = _stop_and_check(g)
        longest = max(s["ms"] for s in final["stalls"]) if final["stalls"] else 0
        check(longest >= lease_ms * 0.9, f"no write was blocked for the lease: {final['stalls']}")
        measure("write blocked by the leased freeze", longest, "ms")


VSOCK_PROBE_PORT = 5000


def wait_console_line(g, prefix, timeout):
    """The first console line that starts with prefix, waiting for it to appear."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(g.console, errors="replace") as f:
            for line in f.read().splitlines():
                if line.startswith(prefix):
                    return line
        time.sleep(0.2)
    raise Failure(f"no console line starting {prefix!r} within {timeout} s\n{g.console_tail()}")


def test_vsock_loopback_is_refused(a):
    """A process in the guest reaches the agent's vsock port through vsock_loopback (CID 1), as an
    unprivileged guest user could; the agent closes the connection without an answer (only the
    host, CID 2, may talk to it) and goes on serving the host on virtio-serial."""
    with Guest(a.guest, a.run_dir, agent=a.agent, disks=[Disk("data0")], fresh=True,
               agent_args=["--vsock", str(VSOCK_PROBE_PORT)],
               append=f"sp.vsock_probe={VSOCK_PROBE_PORT}", lifetime=120) as g:
        line = wait_console_line(g, "sp-vsock-probe: ", 60)
        print(line)
        check(line == "sp-vsock-probe: closed without an answer",
               f"a guest process talked to the agent over vsock: {line}")
        with open(g.console, errors="replace") as f:
            console = f.read()
        check("refusing a connection from CID 1" in console,
               "the agent did not say it refused CID 1:\n" + g.console_tail())
        check(g.qga("guest-ping") == {}, "the host's channel stopped answering")
        check(g.qga("stillpoint-status")["status"] == "thawed", "status")


def test_qemu_ga_beside(a):
    """#17 item 2, libvirt-free: the commands hosts use qemu-ga for answer through
    stillpoint-agent on the virtio port, from the stock qemu-ga running beside it on its private
    socket (as the package's drop-in runs it); guest-exec stays off; guest-shutdown powers the
    VM off, answering nothing, as with qemu-ga (virsh shutdown --mode agent)."""
    with Guest(a.guest, a.run_dir, agent=a.agent, disks=[Disk("data0")], fresh=True,
               lifetime=180) as g:
        ifaces = g.qga("guest-network-get-interfaces")
        check(any(i.get("name") == "lo" for i in ifaces), f"interfaces: {ifaces}")
        t = g.qga("guest-get-time")
        check(abs(t - time.time_ns()) < 120e9, f"guest-get-time: {t} (host {time.time_ns()})")
        osinfo = g.qga("guest-get-osinfo")
        check(osinfo.get("kernel-release", "").endswith("-amd64"), f"osinfo: {osinfo}")
        check("host-name" in g.qga("guest-get-host-name"), "guest-get-host-name")
        print(f"through stillpoint-agent: {len(ifaces)} interface(s), kernel "
              f"{osinfo.get('kernel-release')}")
        try:
            g.qga("guest-exec", {"path": "/bin/true"})
            raise Failure("guest-exec was forwarded without allow-exec")
        except QgaError as e:
            check(e.cls == "CommandNotFound" and "allow-exec=true" in e.desc, str(e))
        check(g.qga("stillpoint-capabilities")["freeze"]["backend"] == "fifreeze", "backend")
        t0 = time.monotonic()
        try:
            g.qga("guest-shutdown", timeout=10)
            raise Failure("guest-shutdown answered, qemu-ga answers nothing on success")
        except QgaError as e:
            raise Failure(f"guest-shutdown failed: {e}") from None
        except (TimeoutError, OSError):
            pass  # no answer, or the VM already went
        try:
            g.proc.wait(timeout=90)
        except Exception:
            raise Failure("the VM did not power off after guest-shutdown\n" + g.console_tail())
        measure("guest-shutdown to power-off", time.monotonic() - t0)
        check(g.proc.returncode == 0, f"QEMU exited with {g.proc.returncode}")


# What must never appear on the guest's console: a sanitizer report or a crash of the agent
# (abort_on_error makes ASan end it), a kernel oops or warning.
CONSOLE_ALARMS = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
                  "exited with status", "Kernel panic", "BUG:", "WARNING:", "Call Trace")


def check_console(run_dir):
    with open(os.path.join(run_dir, "console.log"), errors="replace") as f:
        lines = f.read().splitlines()
    bad = [line for line in lines if any(alarm in line for alarm in CONSOLE_ALARMS)]
    check(not bad, "the guest console reports trouble:\n" + "\n".join(bad[:20]))


TESTS = {
    "boot-ping": test_boot_ping,
    "fsinfo-serials": test_fsinfo_serials,
    "freeze-blocks-writes-loses-none": test_freeze_blocks_writes_loses_none,
    # stillpoint-agent's extensions (protocol/PROTOCOL.md)
    "leased-freeze-by-disk-is-consistent": test_leased_freeze_by_disk_is_consistent,
    "lease-expiry-thaws-by-itself": test_lease_expiry_thaws_by_itself,
    "vsock-loopback-is-refused": test_vsock_loopback_is_refused,
    "qemu-ga-beside": test_qemu_ga_beside,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--guest", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--workload-bin", required=True)
    p.add_argument("--agent", default="qemu-ga")
    p.add_argument("test", choices=sorted(TESTS))
    a = p.parse_args()
    # ctest's timeout or a Ctrl-C: leave through the with-blocks, which shut the VM down.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    t = time.monotonic()
    try:
        TESTS[a.test](a)
        check_console(a.run_dir)
    except (Failure, QgaError) as e:
        print(f"FAIL {a.agent}/{a.test}: {e}", file=sys.stderr)
        print(file_tail(os.path.join(a.run_dir, "console.log"), 30), file=sys.stderr)
        return 1
    measure("test", time.monotonic() - t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
