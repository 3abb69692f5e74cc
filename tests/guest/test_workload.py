#!/usr/bin/python3
"""sp-workload on the host, no VM: the checker finds exactly what a disk image can get wrong
(a missing record below the highest, a torn record, a short last record), --expect catches lost
records at the end, --resume continues the numbering, and SIGTERM prints the final report.

  test_workload.py SP-WORKLOAD-BINARY"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from sptest import run_functions  # noqa: E402

SIZE = 512


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def check(wl, path, *extra):
    r = run(wl, "check", "--record-size", str(SIZE), *extra, path)
    if r.returncode not in (0, 1):
        raise AssertionError(f"check {path}: status {r.returncode}: {r.stderr}")
    return r.returncode, json.loads(r.stdout)


def write(wl, count, *paths, resume=False):
    r = run(wl, "write", "--interval-ms", "1", "--record-size", str(SIZE), "--count", str(count),
            *(["--resume"] if resume else []), *paths)
    assert r.returncode == 0, f"write: status {r.returncode}: {r.stderr}"
    final = [line for line in r.stdout.splitlines() if line.startswith("sp-workload: final ")]
    assert final, f"write printed no final report: {r.stdout}"
    return json.loads(final[0].split(" ", 2)[2])


def patch(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_intact_files_check_clean(wl, tmp):
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    final = write(wl, 30, a, b)
    assert final["first"] == 1 and final["last"] == 30 and final["writes"] == 30, final
    for path in (a, b):
        status, c = check(wl, path, "--expect", "30")
        assert status == 0 and c["ok"] and c["highest"] == 30 and c["valid"] == 30, c


def test_missing_record_below_highest_is_a_gap(wl, tmp):
    path = os.path.join(tmp, "gap")
    write(wl, 30, path)
    patch(path, 9 * SIZE, bytes(SIZE))  # record 10 zeroed
    status, c = check(wl, path)
    assert status == 1 and not c["ok"] and c["gaps"] == 1 and c["first_bad"] == 10, c


def test_corrupt_byte_is_a_torn_record(wl, tmp):
    path = os.path.join(tmp, "torn")
    write(wl, 30, path)
    patch(path, 4 * SIZE + 100, b"\x5a")  # inside record 5's payload
    status, c = check(wl, path)
    assert status == 1 and c["torn"] == 1 and c["first_bad"] == 5 and c["highest"] == 30, c


def test_short_last_record_is_torn(wl, tmp):
    path = os.path.join(tmp, "short")
    write(wl, 30, path)
    os.truncate(path, 29 * SIZE + SIZE // 2)
    status, c = check(wl, path)
    assert status == 1 and c["torn"] == 1 and c["highest"] == 29, c


def test_expect_catches_lost_tail(wl, tmp):
    path = os.path.join(tmp, "tail")
    write(wl, 20, path)
    status, c = check(wl, path, "--expect", "25")
    assert status == 1 and c["highest"] == 20 and c["torn"] == 0 and c["gaps"] == 0, c


def test_resume_continues_numbering(wl, tmp):
    path = os.path.join(tmp, "resume")
    write(wl, 10, path)
    final = write(wl, 5, path, resume=True)
    assert final["first"] == 11 and final["last"] == 15, final
    status, c = check(wl, path, "--expect", "15")
    assert status == 0 and c["valid"] == 15, c


def test_sigterm_prints_final_report(wl, tmp):
    path = os.path.join(tmp, "term")
    p = subprocess.Popen([wl, "write", "--interval-ms", "5", "--record-size", str(SIZE), path],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith("sp-workload: writing"), "no start line"
    # Wait for progress on disk, not for time: the file grows record by record.
    while os.path.getsize(path) < 5 * SIZE:
        assert p.poll() is None, "the writer exited early"
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, p.returncode
    final = json.loads(out.split("sp-workload: final ", 1)[1])
    assert final["stopped"] and final["last"] >= 5 and "latency_us" in final, final
    status, c = check(wl, path, "--expect", str(final["last"]))
    assert status == 0, c


def main():
    return run_functions(globals(), sys.argv[1],
                         setup=lambda: tempfile.TemporaryDirectory(prefix="sp-workload-test-"))


if __name__ == "__main__":
    sys.exit(main())
