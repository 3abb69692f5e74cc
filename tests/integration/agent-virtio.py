#!/usr/bin/python3
"""stillpoint-agent on a real virtio-serial port: the test guest (tests/guest, QEMU TCG) runs the
agent on org.qemu.guest_agent.0 with two data disks (serials data0 on ext4, data1 on xfs) and
sp-workload writing to data0. Checks what only a VM shows:

  - stillpoint-freeze selects filesystems by disk serial (sysfs: virtio-blk serial);
  - a write blocked by the freeze resumes when the host side of the port hangs up (the agent
    sees POLLHUP on the port), and stillpoint-status then says why it thawed;
  - a freeze thawed on request over the port is consistent.

Usage: agent-virtio.py --guest DIR --run-dir DIR
"""
import argparse
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guest"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from spguest import Disk, Guest  # noqa: E402
from sptest import Failure, check, file_tail, report  # noqa: E402

PROMPT_S = 30.0


class Port:
    """One host connection to the agent's port, keeping whole replies (with their "code")."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(PROMPT_S)
        self.sock.connect(path)
        self.buf = b""
        # virtio-serial keeps bytes across host connections: resynchronise first.
        self.sock.sendall(b'\xff{"execute":"guest-sync-delimited","arguments":{"id":4242}}\n')
        while True:
            line = self._line().rpartition(b"\xff")[2].strip()
            try:
                if json.loads(line).get("return") == 4242:
                    break
            except ValueError:
                pass

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure("the port closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def call(self, execute, arguments=None):
        msg = {"execute": execute}
        if arguments is not None:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            line = self._line().strip(b"\xff \r\t")
            if line:
                return json.loads(line)

    def ok(self, execute, arguments=None):
        r = self.call(execute, arguments)
        check("return" in r, "%s: %s" % (execute, r))
        return r["return"]

    def close(self):
        self.sock.close()


def run(a):
    disks = [Disk("data0", "ext4"), Disk("data1", "xfs")]
    workload = ["--interval-ms", "50", "/mnt/data0/records"]
    with Guest(a.guest, a.run_dir, agent="stillpoint", disks=disks, workload=workload, fresh=True,
               lifetime=200) as g:
        g.qga_disconnect()  # QEMU serves one client at a time: the port is ours from here
        check("error" not in g.workload("wait 10"), "the workload does not write")
        port = Port(g.qga_path)

        e = port.call("stillpoint-freeze", {"disks": ["no-such-serial"]})
        check(e.get("error", {}).get("code") == "unknown-disk", "unknown serial: %s" % e)

        r = port.ok("stillpoint-freeze", {"disks": ["data0"], "lease-ms": 120000})
        check([f["mountpoint"] for f in r["frozen"]] == ["/mnt/data0"], "froze by serial: %s" % r)
        before = g.workload("report")
        blocked = g.workload("wait %d 1500" % (before["last"] + 3))
        check(blocked.get("error") == "timeout", "data0 writes go on while frozen: %s" % blocked)

        port.close()  # the host hangs up; the agent must thaw by itself
        resumed = g.workload("wait %d" % (before["last"] + 10))
        check("error" not in resumed, "writes did not resume after the hang-up: %s" % resumed)

        port = Port(g.qga_path)
        st = port.ok("stillpoint-status")
        check(st["status"] == "thawed", str(st))
        last = st["last-thaw"]
        check(last["reason"] == "channel-hangup" and last["consistent"] is False, str(st))
        check(last["epoch"] == r["epoch"], str(st))

        r = port.ok("stillpoint-freeze", {"disks": ["data1"]})
        check([f["mountpoint"] for f in r["frozen"]] == ["/mnt/data1"], str(r))
        t = port.ok("stillpoint-thaw", {"epoch": r["epoch"]})
        check(t["consistent"] is True and t["thawed"] == 1, str(t))
        port.close()
        final = g.workload("stop")
        check(all(c["ok"] for c in g.workload("check")["files"]), "records intact: %s" % final)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--guest", required=True)
    p.add_argument("--run-dir", required=True)
    a = p.parse_args()
    return report("integration/agent/virtio/serial-selection-and-hangup-thaw", lambda: run(a),
                  lambda: file_tail(os.path.join(a.run_dir, "console.log")))


if __name__ == "__main__":
    sys.exit(main())
