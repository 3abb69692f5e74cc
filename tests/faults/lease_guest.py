#!/usr/bin/python3
"""faults/guest-lease — the coordinator stops answering while the real guest is frozen.

The real test guest (tests/guest/spguest.py) with stillpoint-agent and sp-workload writing
records every 20 ms. A hook-driver checkpoint's hook (run inside the frozen window) sends
SIGSTOP to the stillpoint CLI itself: the host side of the channel stays open but silent. The
agent's lease must thaw the guest on its own (the workload writes again while the CLI is still
stopped); once the CLI runs again its thaw learns the freeze did not hold, so the checkpoint is
not recorded as application-consistent; no operation is left pending, the next checkpoint is
application-consistent, and no record written by the workload is lost or torn.

  lease_guest.py --guest DIR --run-dir DIR --stillpoint BIN --workload-bin BIN"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
from spguest import Disk, Guest, test_arguments  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import Failure, ok, report  # noqa: E402


def run(a, g):
    store = os.path.join(a.run_dir, "store.db")
    san = os.path.join(a.run_dir, "sanitizer")
    env = dict(os.environ, STILLPOINT_STORE=store)
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        env[var] = ":".join(filter(None, [env.get(var), f"log_path={san}"]))

    def sp(*args, check=True):
        g.qga_disconnect()  # QEMU serves one agent client at a time
        r = subprocess.run([a.stillpoint, *args], capture_output=True, text=True, env=env)
        if check and r.returncode != 0:
            raise Failure(f"stillpoint {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
        return r

    def checkpoints():
        return json.loads(sp("--json", "-q", "checkpoint", "list", "vm1").stdout)["checkpoints"]

    def last():
        return g.workload("report")["last"]

    g.workload("wait 10 60000")
    stopped_mark = os.path.join(a.run_dir, "cli-stopped")
    # The hook runs inside the frozen window, as a child of the CLI: it stops its parent (the
    # first time only; the next checkpoint runs normally). The lease asked covers the hook's
    # deadline: 20 s + 15 s.
    sp("-q", "vm", "add", "vm1", "--agent", g.qga_path, "--driver", "hook",
       "--hook-command", f"[ -e {stopped_mark} ] || {{ touch {stopped_mark}; kill -STOP $PPID; }}",
       "--hook-timeout", "20")
    g.qga_disconnect()
    cli = subprocess.Popen([a.stillpoint, "checkpoint", "create", "vm1", "--name", "L"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(stopped_mark):
            if cli.poll() is not None or time.monotonic() > deadline:
                raise Failure(f"the hook never ran: {cli.communicate()[1] if cli.poll() is not None else 'timeout'}")
            time.sleep(0.05)
        stopped_at = time.monotonic()
        time.sleep(0.5)
        with open(f"/proc/{cli.pid}/stat") as f:
            ok(f.read().split(") ")[1][0] == "T", "the CLI is stopped inside the frozen window")
        v0 = last()
        time.sleep(2)
        ok(last() <= v0 + 1, "the guest is frozen: the workload's writes wait")
        while last() <= v0 + 2:
            if time.monotonic() - stopped_at > 90:
                raise Failure("the guest stayed frozen 90 s with the host side silent")
            time.sleep(0.1)
        thawed_after = time.monotonic() - stopped_at
        ok(cli.poll() is None, "the CLI is still stopped when the guest writes again")
        ok(5 < thawed_after < 60, f"the lease thawed the guest on its own after {thawed_after:.1f} s")
    finally:
        cli.send_signal(signal.SIGCONT)
    out, err = cli.communicate(timeout=120)
    print(err, end="", file=sys.stderr)
    cps = checkpoints()
    ok(cli.returncode != 0 or (len(cps) == 1 and cps[0]["consistency"] != "application"),
       f"not recorded as application-consistent (exit {cli.returncode}, {[(c['name'], c['consistency']) for c in cps]})")
    ok("the freeze did not hold until the thaw (lease-expired)" in err,
       "the CLI says the freeze did not hold, and why")
    ok(g.qga("guest-fsfreeze-status", timeout=20) == "thawed", "guest-fsfreeze-status: thawed")
    g.qga_disconnect()
    pending = subprocess.run(["sqlite3", store, "select count(*) from ops where state='intent'"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ok(pending == "0", "no operation left pending")
    r = sp("checkpoint", "create", "vm1", "--name", "after")
    ok("application-consistent" in r.stdout, "the next checkpoint is application-consistent")
    before = last()
    g.workload(f"wait {before + 10} 60000")
    g.workload("stop")
    rep = g.workload("check")["files"][0]
    ok(rep.get("ok") and rep.get("torn", 1) == 0 and rep.get("gaps", 1) == 0,
       f"every record the workload wrote is intact ({rep})")
    reports = glob.glob(san + ".*")
    ok(not reports, "no sanitizer report" + "".join(open(x).read() for x in reports))


def main():
    p = test_arguments(__doc__)
    a = p.parse_args()
    shutil.rmtree(a.run_dir, ignore_errors=True)
    os.makedirs(a.run_dir)
    with Guest(a.guest, a.run_dir, agent="stillpoint", disks=[Disk("data0")],
               workload=["--interval-ms", "20", "/mnt/data0/records"], lifetime=600,
               fresh=True) as g:
        return report("faults/guest-lease", lambda: run(a, g), g.console_tail)


if __name__ == "__main__":
    sys.exit(main())
