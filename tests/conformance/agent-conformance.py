#!/usr/bin/python3
"""Protocol conformance of a stillpoint guest agent (Linux or Windows): the replies a qemu-ga
client (libvirt, Proxmox, the stillpoint host) relies on, and bad input answered as qemu-ga
answers it. The same file drives both agents; standard library only.

  agent-conformance.py --connect tcp:HOST:PORT|unix:PATH [--freeze | --freeze-mountpoint MP]
                       [--timeout S] [-- AGENT-COMMAND ...]

With an agent command, the script starts it (replacing {port} by 0, {socket} by a socket path
in a private directory and {tmpdir} by that directory), waits until it answers, and stops it at
the end. An agent given port 0 picks a free one and prints "listening on tcp port N": that N
replaces {port} in --connect (no port is chosen here and taken by someone else meanwhile).
Freeze tests run only with --freeze (an agent whose freeze is harmless: the Windows agent on
its fake VSS) or --freeze-mountpoint (freeze just that test filesystem, with
guest-fsfreeze-freeze-list): the test never freezes a host's real filesystems.
Exit status: 0 all passed, 1 a test failed, 2 usage or the agent did not come up.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import Failure, check  # noqa: E402

STANDARD_COMMANDS = [
    "guest-sync", "guest-sync-delimited", "guest-ping", "guest-info",
    "guest-fsfreeze-status", "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list",
    "guest-fsfreeze-thaw",
]
FROZEN_ALLOWED = ["guest-ping", "guest-info", "guest-sync", "guest-sync-delimited",
                  "guest-fsfreeze-status", "guest-fsfreeze-thaw"]
MIB = 1024 * 1024


class Client:
    """One connection; replies are newline-terminated JSON objects, 0xFF may precede one."""

    def __init__(self, address, timeout):
        self.timeout = timeout
        kind, _, rest = address.partition(":")
        if kind == "tcp":
            host, _, port = rest.rpartition(":")
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        elif kind == "unix":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(rest)
        else:
            raise ValueError("--connect takes tcp:HOST:PORT or unix:PATH, not " + address)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, execute, arguments=None):
        msg = {"execute": execute}
        if arguments is not None:
            msg["arguments"] = arguments
        self.send_raw(json.dumps(msg).encode() + b"\n")

    def read_line(self):
        """The next reply line, raw (with a leading 0xFF if the agent sent one)."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure("the agent closed the connection (pending %r)" % self.buf[:80])
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def reply(self):
        line = self.read_line()
        try:
            return json.loads(line.decode())
        except ValueError:
            raise Failure("reply is not JSON: %r" % line[:200])

    def call(self, execute, arguments=None):
        self.send(execute, arguments)
        return self.reply()

    def ok(self, execute, arguments=None):
        r = self.call(execute, arguments)
        check("return" in r, "%s: expected a return, got %s" % (execute, r))
        return r["return"]


def expect_error(reply, klass, desc=None, desc_prefix=None, code=None):
    check("error" in reply, "expected an error, got %s" % reply)
    err = reply["error"]
    check(err.get("class") == klass, "expected class %s, got %s" % (klass, err))
    if code is not None:
        check(err.get("code") == code, "expected code %s, got %s" % (code, err))
    check(isinstance(err.get("desc"), str), "error without a desc: %s" % err)
    if desc is not None:
        check(err["desc"] == desc, "expected desc %r, got %r" % (desc, err["desc"]))
    if desc_prefix is not None:
        check(err["desc"].startswith(desc_prefix),
              "expected desc starting %r, got %r" % (desc_prefix, err["desc"]))


def assert_alive(c, n=7):
    """The stream is usable: a guest-sync round trip with a fresh id."""
    check(c.ok("guest-sync", {"id": n}) == n, "guest-sync after bad input")


# ---- tests every agent must pass -------------------------------------------------------------

def test_ping_returns_empty_object(c, args):
    check(c.call("guest-ping") == {"return": {}}, "guest-ping")


def test_sync_echoes_the_id(c, args):
    for n in (0, 1234, 2**53, -5):
        check(c.call("guest-sync", {"id": n}) == {"return": n}, "guest-sync id %d" % n)


def test_sync_delimited_reply_starts_with_0xff(c, args):
    c.send("guest-sync-delimited", {"id": 987654})
    line = c.read_line()
    check(line.startswith(b"\xff"), "no 0xFF before the reply: %r" % line[:40])
    check(json.loads(line[1:].decode()) == {"return": 987654}, "guest-sync-delimited: %r" % line)


def test_0xff_discards_a_partial_request(c, args):
    c.send_raw(b'{"execute":"guest-pi')
    c.send_raw(b"\xff")
    c.send("guest-sync-delimited", {"id": 31})
    line = c.read_line()
    check(line == b'\xff{"return":31}' or json.loads(line.lstrip(b"\xff")) == {"return": 31},
          "after 0xFF resync: %r" % line[:80])


def test_info_lists_the_standard_commands(c, args):
    info = c.ok("guest-info")
    check(isinstance(info.get("version"), str) and info["version"], "guest-info version")
    cmds = info.get("supported_commands")
    check(isinstance(cmds, list), "supported_commands is not a list")
    names = {}
    for e in cmds:
        check(set(e) >= {"name", "enabled", "success-response"}, "entry %s" % e)
        check(isinstance(e["enabled"], bool) and isinstance(e["success-response"], bool),
              "entry types %s" % e)
        names[e["name"]] = e
    for name in STANDARD_COMMANDS + ["stillpoint-freeze", "stillpoint-thaw"]:
        check(name in names, "%s missing from supported_commands" % name)
        check(names[name]["enabled"], "%s disabled while thawed" % name)


def test_fsfreeze_status_is_thawed(c, args):
    check(c.ok("guest-fsfreeze-status") == "thawed", "guest-fsfreeze-status")


def test_stillpoint_status_when_thawed(c, args):
    st = c.ok("stillpoint-status")
    check(st.get("status") == "thawed", "status: %s" % st)
    check(isinstance(st.get("epoch"), int), "epoch: %s" % st)
    check(st.get("frozen") == [], "frozen: %s" % st)


def test_stillpoint_capabilities(c, args):
    cap = c.ok("stillpoint-capabilities")
    check(cap.get("agent") == "stillpoint-agent", "agent: %s" % cap)
    check(cap.get("platform") in ("linux", "windows"), "platform: %s" % cap)
    check(isinstance(cap.get("protocol"), str), "protocol: %s" % cap)
    check({"stillpoint-freeze", "stillpoint-thaw"} <= set(cap.get("commands", [])),
          "commands: %s" % cap)
    f = cap.get("freeze", {})
    for key in ("default-lease-ms", "min-lease-ms", "max-lease-ms"):
        check(isinstance(f.get(key), int), "freeze.%s: %s" % (key, cap))
    check(f["min-lease-ms"] <= f["default-lease-ms"] <= f["max-lease-ms"], "lease bounds")
    check("all" in f.get("select", []), "freeze.select: %s" % cap)
    for key in ("thaw-on-hangup", "standard-thaw-on-hangup"):
        check(isinstance(f.get(key), bool), "freeze.%s: %s" % (key, cap))


def test_stillpoint_errors_carry_codes(c, args):
    # None of these freezes anything: each is refused before the freeze starts.
    expect_error(c.call("stillpoint-thaw"), "GenericError", code="not-frozen")
    expect_error(c.call("stillpoint-thaw", {"epoch": 0}), "GenericError",
                 code="invalid-arguments")
    expect_error(c.call("stillpoint-freeze", {"lease-ms": 1}), "GenericError",
                 code="lease-out-of-range")
    expect_error(c.call("stillpoint-freeze", {"mountpoints": []}), "GenericError",
                 code="invalid-arguments")
    expect_error(c.call("stillpoint-freeze", {"lease-ms": "long"}), "GenericError",
                 desc="Invalid parameter type for 'lease-ms', expected: integer",
                 code="invalid-arguments")
    expect_error(c.call("stillpoint-no-such-command"), "CommandNotFound",
                 code="command-not-found")
    # Standard commands keep qemu-ga's errors: no code.
    r = c.call("guest-no-such-command")
    check("code" not in r.get("error", {}), "a standard error has a code: %s" % r)
    check(c.ok("guest-fsfreeze-status") == "thawed", "a refused freeze froze")


def test_unknown_command_is_command_not_found(c, args):
    expect_error(c.call("guest-no-such-command"), "CommandNotFound",
                 desc="The command guest-no-such-command has not been found")
    assert_alive(c)


def test_bad_json_is_a_generic_error_and_the_stream_recovers(c, args):
    c.send_raw(b'{"execute": ]\n')
    expect_error(c.reply(), "GenericError", desc_prefix="JSON parse error")
    assert_alive(c)


def test_garbage_outside_an_object_is_an_error(c, args):
    c.send_raw(b"[1, 2]\n")
    expect_error(c.reply(), "GenericError")
    assert_alive(c)


def test_missing_execute_is_refused(c, args):
    c.send_raw(b'{"arguments": {}}\n')
    expect_error(c.reply(), "GenericError", desc="QMP input lacks member 'execute'")
    assert_alive(c)


def test_wrong_argument_type_is_refused(c, args):
    expect_error(c.call("guest-sync", {"id": "seven"}), "GenericError",
                 desc="Invalid parameter type for 'id', expected: integer")
    expect_error(c.call("stillpoint-freeze", {"lease-ms": "long"}), "GenericError",
                 desc="Invalid parameter type for 'lease-ms', expected: integer")
    check(c.ok("guest-fsfreeze-status") == "thawed", "a refused freeze froze")


def test_missing_and_unexpected_arguments_are_refused(c, args):
    expect_error(c.call("guest-sync", {}), "GenericError", desc="Parameter 'id' is missing")
    expect_error(c.call("guest-ping", {"verbose": True}), "GenericError",
                 desc="Parameter 'verbose' is unexpected")
    assert_alive(c)


def test_one_mebibyte_request_is_refused_and_the_stream_recovers(c, args):
    pad = "x" * MIB
    c.send_raw(json.dumps({"execute": "guest-ping", "arguments": {"pad": pad}}).encode() + b"\n")
    expect_error(c.reply(), "GenericError")
    assert_alive(c, 11)


def test_one_mebibyte_garbage_line_is_refused_and_the_stream_recovers(c, args):
    c.send_raw(b"z" * MIB + b"\n")
    expect_error(c.reply(), "GenericError")
    assert_alive(c, 12)


def test_request_id_is_echoed(c, args):
    c.send_raw(b'{"execute": "guest-ping", "id": "req-1"}\n')
    check(c.reply() == {"return": {}, "id": "req-1"}, "id not echoed")


# ---- freeze tests (only when freezing is harmless) -------------------------------------------

def freeze_args(args):
    if args.freeze_mountpoint:
        return "guest-fsfreeze-freeze-list", {"mountpoints": [args.freeze_mountpoint]}
    return "guest-fsfreeze-freeze", None


def test_fsfreeze_freeze_status_thaw(c, args):
    cmd, a = freeze_args(args)
    n = c.ok(cmd, a)
    check(isinstance(n, int) and n >= 1, "%s returned %r" % (cmd, n))
    check(c.ok("guest-fsfreeze-status") == "frozen", "status after freeze")
    check(c.call("guest-ping") == {"return": {}}, "ping while frozen")
    # qemu-ga's frozen allow-list: everything else is "disabled".
    expect_error(c.call("guest-fsfreeze-freeze"), "CommandNotFound",
                 desc="Command guest-fsfreeze-freeze has been disabled: "
                      "the command is not allowed")
    info = {e["name"]: e for e in c.ok("guest-info")["supported_commands"]}
    for name in STANDARD_COMMANDS:
        check(info[name]["enabled"] == (name in FROZEN_ALLOWED),
              "%s enabled=%s while frozen" % (name, info[name]["enabled"]))
    check(c.ok("guest-fsfreeze-thaw") == n, "thaw count")
    check(c.ok("guest-fsfreeze-status") == "thawed", "status after thaw")
    check(c.ok("guest-fsfreeze-thaw") == 0, "thaw when thawed")


def test_stillpoint_freeze_and_thaw_report_epoch_and_consistency(c, args):
    a = {"lease-ms": 30000}
    if args.freeze_mountpoint:
        a["mountpoints"] = [args.freeze_mountpoint]
    r = c.ok("stillpoint-freeze", a)
    check(isinstance(r.get("frozen"), list) and r["frozen"], "frozen: %s" % r)
    for fs in r["frozen"]:
        check(isinstance(fs.get("mountpoint"), str) and isinstance(fs.get("type"), str),
              "frozen entry %s" % fs)
    check(isinstance(r.get("skipped"), list), "skipped: %s" % r)
    check(isinstance(r.get("epoch"), int) and r["epoch"] > 0, "epoch: %s" % r)
    check(isinstance(r.get("lease-ms"), int) and 0 < r["lease-ms"] <= 30000, "lease-ms: %s" % r)
    expect_error(c.call("stillpoint-freeze", a), "GenericError", code="already-frozen")
    st = c.ok("stillpoint-status")
    check(st.get("status") == "frozen" and st.get("epoch") == r["epoch"], "status: %s" % st)
    for key in ("lease-ms", "remaining-ms", "held-ms"):
        check(isinstance(st.get(key), int), "status.%s: %s" % (key, st))
    check(len(st.get("frozen", [])) == len(r["frozen"]), "status.frozen: %s" % st)
    expect_error(c.call("stillpoint-thaw", {"epoch": r["epoch"] + 1000}), "GenericError",
                 code="epoch-mismatch")
    t = c.ok("stillpoint-thaw", {"epoch": r["epoch"]})
    check(t.get("consistent") is True, "consistent: %s" % t)
    check(t.get("reason") == "requested", "reason: %s" % t)
    check(t.get("epoch") == r["epoch"], "thaw epoch: %s" % t)
    check(t.get("thawed") == len(r["frozen"]), "thawed: %s" % t)
    check(isinstance(t.get("held-ms"), int) and t["held-ms"] >= 0, "held-ms: %s" % t)
    expect_error(c.call("stillpoint-thaw"), "GenericError", code="not-frozen")
    st = c.ok("stillpoint-status")
    check(st.get("status") == "thawed" and st.get("frozen") == [], "status after thaw: %s" % st)
    last = st.get("last-thaw", {})
    check(last.get("epoch") == r["epoch"] and last.get("consistent") is True
          and last.get("reason") == "requested", "last-thaw: %s" % st)
    r2 = c.ok("stillpoint-freeze", a)
    check(r2["epoch"] > r["epoch"], "epochs increase")
    check(c.ok("stillpoint-thaw")["consistent"] is True, "second thaw")


def wait_status(c, want, seconds):
    """Polls the state: a lease expiry is a deadline in the agent, not an event we can see."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if c.ok("guest-fsfreeze-status") == want:
            return True
        time.sleep(0.05)
    return False


def test_thaw_reports_inconsistent_after_lease_expiry(c, args):
    a = {"lease-ms": 300}
    if args.freeze_mountpoint:
        a["mountpoints"] = [args.freeze_mountpoint]
    r = c.ok("stillpoint-freeze", a)
    check(wait_status(c, "thawed", 10), "still frozen after the lease")
    t = c.ok("stillpoint-thaw", {"epoch": r["epoch"]})
    check(t.get("consistent") is False, "consistent after expiry: %s" % t)
    check(t.get("reason") == "lease-expired", "reason after expiry: %s" % t)
    # Asked again, the agent says the same, and has thawed nothing more.
    t2 = c.ok("stillpoint-thaw")
    check(t2.get("consistent") is False and t2.get("thawed") == 0, "second thaw: %s" % t2)
    # The standard thaw has nothing to thaw.
    check(c.ok("guest-fsfreeze-thaw") == 0, "guest-fsfreeze-thaw after expiry")


def test_hangup_thaws(c, args):
    a = {"lease-ms": 60000}
    if args.freeze_mountpoint:
        a["mountpoints"] = [args.freeze_mountpoint]
    c.ok("stillpoint-freeze", a)
    c.close()
    c2 = connect(args)
    try:
        check(wait_status(c2, "thawed", 10), "still frozen after the host hung up")
        t = c2.ok("stillpoint-thaw")
        check(t.get("consistent") is False, "consistent after hang-up: %s" % t)
        check(t.get("reason") == "channel-hangup", "reason after hang-up: %s" % t)
    finally:
        c2.close()


def test_hangup_keeps_a_standard_freeze(c, args):
    # Without standard-thaw-on-hangup (the default), a hang-up after guest-fsfreeze-freeze(-list)
    # leaves the freeze to the next connection (hosts like Proxmox connect once per command).
    f = c.ok("stillpoint-capabilities")["freeze"]
    cmd, a = freeze_args(args)
    n = c.ok(cmd, a)
    c.close()
    c2 = connect(args)
    try:
        if f["standard-thaw-on-hangup"]:
            check(wait_status(c2, "thawed", 10), "still frozen after the host hung up")
            return
        check(c2.ok("guest-fsfreeze-status") == "frozen", "thawed by the hang-up")
        check(c2.ok("stillpoint-status")["status"] == "frozen", "stillpoint-status")
        check(c2.ok("guest-fsfreeze-thaw") == n, "thaw count on the new connection")
        check(c2.ok("guest-fsfreeze-status") == "thawed", "status after thaw")
    finally:
        c2.close()


BASIC = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
FREEZE = [test_fsfreeze_freeze_status_thaw,
          test_stillpoint_freeze_and_thaw_report_epoch_and_consistency,
          test_thaw_reports_inconsistent_after_lease_expiry, test_hangup_thaws,
          test_hangup_keeps_a_standard_freeze]
BASIC = [t for t in BASIC if t not in FREEZE]


def connect(args):
    return Client(args.connect, args.timeout)


def wait_for_agent(args, proc):
    """Waits until the agent accepts a connection and answers guest-sync."""
    end = time.monotonic() + args.timeout
    last = None
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise Failure("the agent exited with status %d before answering" % proc.returncode)
        try:
            c = connect(args)
        except OSError as e:
            last = e
            time.sleep(0.1)
            continue
        try:
            assert_alive(c, 1)
            return
        finally:
            c.close()
    raise Failure("the agent did not answer within %s s: %s" % (args.timeout, last))


def listening_port(log_path, proc, timeout):
    """The port an agent started on port 0 chose, from its "listening on tcp port N" line."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(log_path, "rb") as f:
            m = re.search(rb"listening on tcp port (\d+)", f.read())
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            raise Failure("the agent exited with status %d before listening" % proc.returncode)
        time.sleep(0.05)
    raise Failure("the agent did not say which port it listens on within %s s" % timeout)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--connect", required=True, help="tcp:HOST:PORT or unix:PATH")
    p.add_argument("--freeze", action="store_true", help="also test freezing (harmless agents)")
    p.add_argument("--freeze-mountpoint", help="also test freezing, of this mount point only")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per step (default 20)")
    p.add_argument("--only", help="run only tests whose name contains this")
    p.add_argument("agent", nargs=argparse.REMAINDER, help="-- command that starts the agent")
    args = p.parse_args()
    cmd = args.agent[1:] if args.agent[:1] == ["--"] else args.agent

    tmp = tempfile.mkdtemp(prefix="sp-conformance-")
    subst = {"{port}": "0", "{socket}": os.path.join(tmp, "agent.sock"), "{tmpdir}": tmp}
    for k, v in subst.items():
        if k != "{port}":
            args.connect = args.connect.replace(k, v)
    if "{port}" in args.connect and not cmd:
        p.error("--connect with {port} needs the agent command")
    proc, log = None, None
    if cmd:
        for k, v in subst.items():
            cmd = [arg.replace(k, v) for arg in cmd]
        log = open(os.path.join(tmp, "agent.log"), "w+b")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    failures = 0
    try:
        try:
            if "{port}" in args.connect:
                port = listening_port(log.name, proc, args.timeout)
                args.connect = args.connect.replace("{port}", str(port))
            wait_for_agent(args, proc)
        except Failure as e:
            print("Bail out! %s" % e)
            return 2
        tests = BASIC + (FREEZE if args.freeze or args.freeze_mountpoint else [])
        if args.only:
            tests = [t for t in tests if args.only in t.__name__]
        print("1..%d" % len(tests))
        for i, t in enumerate(tests, 1):
            name = t.__name__[len("test_"):]
            c = None
            try:
                c = connect(args)
                t(c, args)
                print("ok %d - %s" % (i, name))
            except (Failure, OSError, ValueError, KeyError, TypeError) as e:
                failures += 1
                print("not ok %d - %s: %s: %s" % (i, name, type(e).__name__, e))
            finally:
                if c:
                    c.close()
            sys.stdout.flush()
        if not (args.freeze or args.freeze_mountpoint):
            print("# freeze tests skipped: no --freeze or --freeze-mountpoint")
        print("# %d of %d failed" % (failures, len(tests)))
    finally:
        if proc is not None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            if failures and log:
                log.seek(0)
                print("# agent output:")
                for line in log.read().decode(errors="replace").splitlines()[-60:]:
                    print("#   " + line)
            log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
