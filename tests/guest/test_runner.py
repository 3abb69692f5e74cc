#!/usr/bin/python3
"""The runner never leaves a QEMU behind: `start`/`stop` from the command line, a supervisor whose
VM lifetime runs out during boot, and a test process killed with SIGKILL.

  test_runner.py --guest DIR --run-dir DIR"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SPGUEST = os.path.join(HERE, "spguest.py")
sys.path.insert(0, os.path.join(HERE, ".."))
from sptest import run_functions  # noqa: E402


def gone(pid, timeout=15.0):
    """True once pid has exited (zombies count as gone), False after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def qemus_using(run_dir):
    """PIDs of QEMU processes whose command line names run_dir."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and any(run_dir.encode() in a for a in argv):
            pids.append(int(pid))
    return pids


def spguest(*args, check=True):
    r = subprocess.run([sys.executable, SPGUEST, *args], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"spguest.py {' '.join(args)}: status {r.returncode}\n{r.stderr}")
    return r


def test_start_stop_leaves_no_qemu(a):
    d = os.path.join(a.run_dir, "start-stop")
    info = json.loads(spguest("start", "--guest", a.guest, "--dir", d, "--disk", "data0",
                              "--fresh").stdout)
    print(f"measure: boot-to-ping (start) = {info['boot_to_ping_s']} s")
    assert not gone(info["pid"], 0), "QEMU is not running after start"
    assert json.loads(spguest("qga", "--dir", d, "guest-ping").stdout) == {}
    spguest("stop", "--dir", d)
    assert gone(info["pid"]) and gone(info["supervisor"]), "QEMU or its supervisor survived stop"
    assert not qemus_using(d), f"QEMU left behind: {qemus_using(d)}"


def test_lifetime_kills_vm_during_boot(a):
    d = os.path.join(a.run_dir, "lifetime")
    r = spguest("start", "--guest", a.guest, "--dir", d, "--lifetime", "1", check=False)
    assert r.returncode == 1 and "stopped while booting" in r.stderr, r.stderr
    deadline = time.monotonic() + 15
    while qemus_using(d) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not qemus_using(d), f"QEMU left behind: {qemus_using(d)}"


def test_killed_test_process_takes_qemu_along(a):
    d = os.path.join(a.run_dir, "sigkill")
    code = (f"import sys, time; sys.path.insert(0, {HERE!r}); from spguest import Guest\n"
            f"g = Guest({a.guest!r}, {d!r}, agent='none'); g.launch()\n"
            "print(g.proc.pid, flush=True); time.sleep(600)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    qemu = int(p.stdout.readline())
    assert not gone(qemu, 0), "QEMU did not start"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert gone(qemu), f"QEMU {qemu} survived the SIGKILL of the process that started it"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--guest", required=True)
    p.add_argument("--run-dir", required=True)
    a = p.parse_args()
    a.run_dir = os.path.abspath(a.run_dir)
    return run_functions(globals(), a)


if __name__ == "__main__":
    sys.exit(main())
