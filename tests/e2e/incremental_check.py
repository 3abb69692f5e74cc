#!/usr/bin/python3
"""Checks an incremental backup's changed extents against the blocks that really changed.

  incremental_check.py BASE.raw CURRENT.raw SESSION.json [DISK]

BASE is the disk as the previous backup read it, CURRENT as this one reads it (both raw, read
over the sessions' NBD exports); SESSION is `backup begin --json`'s output. Passes when every
64 KiB block that differs lies inside the extents the session reports for DISK (default the
first), and BASE with CURRENT's bytes copied in at exactly those extents is CURRENT: an
incremental restore gives the disk back. Prints the sizes as JSON."""
import json
import sys

BLOCK = 64 * 1024


def main():
    base_path, cur_path, session_path = sys.argv[1:4]
    session = json.load(open(session_path))
    disks = session["disks"]
    disk = next(d for d in disks if len(sys.argv) < 5 or d["disk"] == sys.argv[4])
    extents = [(e["offset"], e["length"]) for e in disk.get("changed", [])]
    base = bytearray(open(base_path, "rb").read())
    cur = open(cur_path, "rb").read()
    if len(base) != len(cur):
        print(f"FAIL: sizes differ ({len(base)} vs {len(cur)})")
        return 1
    uncovered, differing = [], 0
    for off in range(0, len(cur), BLOCK):
        if base[off:off + BLOCK] != cur[off:off + BLOCK]:
            differing += 1
            if not any(o <= off and off + BLOCK <= o + n for o, n in extents):
                uncovered.append(off)
    for o, n in extents:
        base[o:o + n] = cur[o:o + n]
    report = {"differing-bytes": differing * BLOCK, "reported-bytes": sum(n for _, n in extents),
              "extents": len(extents), "uncovered": uncovered[:8], "restored": base == cur,
              "disk-bytes": len(cur)}
    print(json.dumps(report))
    return 0 if not uncovered and base == cur and differing > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
