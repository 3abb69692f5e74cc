#!/usr/bin/python3
"""stillpoint-agent beside a real, stock qemu-ga (Debian's qemu-guest-agent) on a private unix
socket: the standard commands the agent does not implement are answered through it, within an
allow-list, a deadline and a reply size bound (README "DESIGN: coexisting with qemu-ga").

Usage: agent-forward.py AGENT SCENARIO   (as root; 77 = skipped)

The qemu-ga started here runs on the test machine itself, so everything that could change the
machine is blocked in it (--block-rpcs): shutdown, suspend, time, vCPUs, memory, fstrim, freeze,
passwords, keys, file writes. The agent's own refusals are what is tested for those.
"""
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("agent_freeze", os.path.join(HERE, "agent-freeze.py"))
af = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(af)
Client, PROMPT_S = af.Client, af.PROMPT_S
sys.path.insert(0, os.path.join(HERE, ".."))
from sptest import check, need_root, scenario_main  # noqa: E402

QGA = "/usr/sbin/qemu-ga"
# Never run these against the machine running the tests.
QGA_BLOCKED = ["guest-shutdown", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid",
               "guest-set-time", "guest-set-vcpus", "guest-set-memory-blocks", "guest-fstrim",
               "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw",
               "guest-set-user-password", "guest-ssh-add-authorized-keys",
               "guest-ssh-remove-authorized-keys", "guest-file-write"]


class ForwardEnv(af.Env):
    def __init__(self, agent_bin):
        super().__init__(agent_bin)
        self.qga = None
        self.qga_sock = self.path("qga", "qemu-ga.sock")

    def start_qga(self):
        os.makedirs(self.path("qga"), mode=0o700, exist_ok=True)
        argv = [QGA, "--method=unix-listen", "--path=" + self.qga_sock,
                "--pidfile=" + self.path("qga", "pid"), "--statedir=" + self.path("qga"),
                "--block-rpcs=" + ",".join(QGA_BLOCKED)]
        self.qga = subprocess.Popen(argv, stdout=open(self.path("qga.log"), "ab"),
                                    stderr=subprocess.STDOUT)
        end = time.monotonic() + PROMPT_S
        while not os.path.exists(self.qga_sock):
            check(self.qga.poll() is None and time.monotonic() < end,
                  "qemu-ga did not start: %s" % open(self.path("qga.log")).read()[-500:])
            time.sleep(0.02)

    def qga_direct(self, execute):
        """Asks qemu-ga itself (no agent in between), for comparison."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(PROMPT_S)
        s.connect(self.qga_sock)
        s.sendall(json.dumps({"execute": execute}).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            check(chunk, "qemu-ga closed the connection")
            buf += chunk
        s.close()
        return json.loads(buf.split(b"\n")[0])["return"]

    def write_forward_config(self, extra=""):
        self.write_config("[qemu-ga]\nsocket=%s\n%s" % (self.qga_sock, extra))

    def cleanup(self):
        if self.qga and self.qga.poll() is None:
            self.qga.send_signal(signal.SIGCONT)
            self.qga.kill()
            self.qga.wait()
        super().cleanup()


def call_id(c, execute, arguments=None, rid="r1"):
    msg = {"execute": execute, "id": rid}
    if arguments is not None:
        msg["arguments"] = arguments
    c.send_raw(json.dumps(msg).encode() + b"\n")
    return c.reply()


# ---- scenarios ----

def test_standard_commands_are_answered_by_qemu_ga(env):
    env.start_qga()
    env.write_forward_config()
    c = env.start_agent()
    r = call_id(c, "guest-get-host-name", rid="host")
    check(r == {"return": {"host-name": socket.gethostname()}, "id": "host"}, str(r))
    t = c.ok("guest-get-time")
    check(isinstance(t, int) and abs(t - time.time_ns()) < 30e9, "guest-get-time: %s" % t)
    osinfo = c.ok("guest-get-osinfo")
    check(osinfo == env.qga_direct("guest-get-osinfo") and osinfo.get("id"), "osinfo: %s" % osinfo)
    ifaces = c.ok("guest-network-get-interfaces")
    lo = [i for i in ifaces if i.get("name") == "lo"]
    check(lo and any(a.get("ip-address") == "127.0.0.1" for a in lo[0]["ip-addresses"]),
          "interfaces: %s" % ifaces)
    # Several requests in one write: the second waits for the forwarded first, in order.
    c.send_raw(b'{"execute":"guest-get-host-name","id":1}\n{"execute":"guest-ping","id":2}\n'
               b'{"execute":"guest-get-timezone","id":3}\n')
    ids = [c.reply().get("id") for _ in range(3)]
    check(ids == [1, 2, 3], "replies out of order: %s" % ids)
    info = {e["name"]: e for e in c.ok("guest-info")["supported_commands"]}
    check(info.get("guest-get-time", {}).get("enabled") is True, "guest-info: guest-get-time")
    check(info.get("guest-shutdown", {}).get("success-response") is False, "guest-shutdown")
    check("guest-exec" not in info, "guest-exec listed while not allowed")
    # What qemu-ga refuses comes back as it said it (here: blocked on this test machine).
    e = c.error("guest-set-time")
    check(e["class"] == "CommandNotFound" and "disabled" in e["desc"] and "code" not in e, str(e))
    env.stop_agent()


def test_exec_file_password_and_keys_stay_off_unless_allowed(env):
    env.start_qga()
    env.write_forward_config()
    c = env.start_agent()
    for cmd, key in (("guest-exec", "allow-exec"), ("guest-exec-status", "allow-exec"),
                     ("guest-file-open", "allow-file"), ("guest-set-user-password", "allow-password"),
                     ("guest-ssh-get-authorized-keys", "allow-ssh-keys")):
        e = c.error(cmd, {})
        check(e["class"] == "CommandNotFound" and key + "=true" in e["desc"], "%s: %s" % (cmd, e))
    env.stop_agent()
    env.write_forward_config("allow-exec=true\n")
    c = env.start_agent()
    pid = c.ok("guest-exec", {"path": "/bin/sh", "arg": ["-c", "exit 7"]})["pid"]
    end = time.monotonic() + PROMPT_S
    while True:
        st = c.ok("guest-exec-status", {"pid": pid})
        if st["exited"] or time.monotonic() > end:
            break
        time.sleep(0.05)
    check(st["exited"] and st["exitcode"] == 7, "guest-exec through the agent: %s" % st)
    check(c.error("guest-file-open", {"path": "/etc/hostname"})["class"] == "CommandNotFound",
          "allow-exec allowed file access")
    env.stop_agent()


def test_a_stalled_qemu_ga_gets_a_deadline_error(env):
    env.start_qga()
    env.write_forward_config("timeout-ms=1000\n")
    c = env.start_agent()
    check(c.ok("guest-get-host-name")["host-name"], "before the stall")
    env.qga.send_signal(signal.SIGSTOP)
    other = Client(env.sock)
    c.send_raw(b'{"execute":"guest-get-time","id":"late"}\n')
    # Meanwhile the agent serves other channels: nothing waits on qemu-ga but that one request.
    t0 = time.monotonic()
    check(other.ok("stillpoint-status")["status"] == "thawed", "status while forwarding")
    check(time.monotonic() - t0 < 0.9, "another channel waited for the forwarded request")
    r = c.reply()
    elapsed = time.monotonic() - t0
    check(r.get("id") == "late" and "error" in r and "within 1000 ms" in r["error"]["desc"], str(r))
    check(0.8 < elapsed < 5, "deadline error after %.2f s" % elapsed)
    env.qga.send_signal(signal.SIGCONT)
    # A fresh connection for each request: the late answer is never taken for the next one's.
    r = call_id(c, "guest-get-host-name", rid="next")
    check(r == {"return": {"host-name": socket.gethostname()}, "id": "next"}, str(r))
    other.close()
    env.stop_agent()


def test_an_oversized_reply_is_cut_off(env):
    env.start_qga()
    env.write_forward_config("max-reply-bytes=256\n")
    c = env.start_agent()
    check(len(json.dumps(env.qga_direct("guest-network-get-interfaces"))) > 256, "test premise")
    e = c.error("guest-network-get-interfaces")
    check("larger than 256 bytes" in e["desc"] and "max-reply-bytes" in e["desc"], str(e))
    check(c.ok("guest-ping") == {}, "the stream goes on")
    check(c.ok("guest-get-host-name") == {"host-name": socket.gethostname()}, "a small reply")
    env.stop_agent()


def test_forwarded_commands_are_refused_while_frozen(env):
    env.mount(env.image("ext4", "ext4", 64), env.path("ext4"))
    env.start_qga()
    env.write_forward_config()
    c = env.start_agent()
    r = c.ok("stillpoint-freeze", {"mountpoints": [env.path("ext4")]})
    e = c.error("guest-get-time")
    check(e == {"class": "CommandNotFound",
                "desc": "Command guest-get-time has been disabled: the command is not allowed"},
          str(e))
    info = {x["name"]: x for x in c.ok("guest-info")["supported_commands"]}
    check(info["guest-get-time"]["enabled"] is False, "guest-info while frozen")
    c.ok("stillpoint-thaw", {"epoch": r["epoch"]})
    check(isinstance(c.ok("guest-get-time"), int), "after the thaw")
    env.stop_agent()


def test_without_qemu_ga_the_error_says_what_to_install(env):
    env.write_forward_config()
    c = env.start_agent()
    t0 = time.monotonic()
    e = c.error("guest-network-get-interfaces")
    check(time.monotonic() - t0 < PROMPT_S / 2, "slow to fail")
    check(env.qga_sock in e["desc"] and "qemu-guest-agent" in e["desc"], str(e))
    check(c.ok("guest-ping") == {}, "still serving")
    env.stop_agent()


SCENARIOS = {name[len("test_"):]: fn for name, fn in globals().items() if name.startswith("test_")}


def prepare():
    need_root("loop devices, mount, FIFREEZE")
    check(os.access(QGA, os.X_OK), f"{QGA} is missing: install qemu-guest-agent (scripts/deps does)")
    af.private_mount_namespace()


if __name__ == "__main__":
    sys.exit(scenario_main(SCENARIOS, "AGENT", ForwardEnv, prepare))
