#!/usr/bin/python3
"""report.py: turns bench.py's results JSON into the Markdown table and the gnuplot PNG.

  report.py RESULTS.json --md OUT.md --png OUT.png
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

LOADS = ("idle", "fsync", "buffered")
SIDE_NAME = {"A": "stillpoint", "B": "qemu-ga"}


def pct(values, p):
    """Nearest-rank percentile; with few samples p95 is the maximum."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, -(-p * len(v) // 100) - 1))
    return v[int(k)]


def med(values):
    return statistics.median(values) if values else None


def f(x, digits=0):
    if x is None:
        return "—"
    return f"{x:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"**{a / b:.2f}**"


def side(recs, s, key):
    return [r[key] for r in recs if r["side"] == s and r.get(key) is not None]


def window_tables(res):
    out = ["## Frozen window, A = stillpoint-agent + `stillpoint checkpoint create`, "
           "B = qemu-ga + libvirt's sequence", "",
           "Headline: the ratio A/B of medians (below 1 = stillpoint shorter). *Window* = host side, "
           "freeze command sent → thaw answered (ms). *Stall* = the in-guest writer's longest write "
           "(ms) among the writes that overlapped one checkpoint.", "",
           "| filesystems | load | n | window A | window B | **A/B** | stall A | stall B | **A/B** "
           "| stall without checkpoint |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for sc in res["window"]:
        recs = sc["checkpoints"]
        wa, wb = med(side(recs, "A", "window_ms")), med(side(recs, "B", "window_ms"))
        idle = sc["load"] == "idle"
        sa = None if idle else med(side(recs, "A", "stall_ms"))
        sb = None if idle else med(side(recs, "B", "stall_ms"))
        out.append(f"| {sc['disks']} | {sc['load']} | {len(recs) // 2}+{len(recs) // 2} | {f(wa)} | {f(wb)} "
                   f"| {ratio(wa, wb)} | {f(sa)} | {f(sb)} | {ratio(sa, sb)} "
                   f"| {f(sc.get('baseline_stall_ms'))} |")
    out += ["", "Distributions (ms): median / p95 / max. Dirty = the guest's `Dirty:` (MiB, median) "
            "just before the freeze.", "",
            "| filesystems | load | side | window | stall | end-to-end | dirty MiB |",
            "|---|---|---|---|---|---|---|"]
    for sc in res["window"]:
        for s in ("A", "B"):
            recs = sc["checkpoints"]
            w, st, e = side(recs, s, "window_ms"), side(recs, s, "stall_ms"), side(recs, s, "e2e_ms")
            d = side(recs, s, "dirty_kb")
            stall = "—" if sc["load"] == "idle" else f"{f(med(st))} / {f(pct(st, 95))} / {f(max(st))}"
            out.append(f"| {sc['disks']} | {sc['load']} | {s} {SIDE_NAME[s]} "
                       f"| {f(med(w))} / {f(pct(w, 95))} / {f(max(w))} | {stall} "
                       f"| {f(med(e))} / {f(pct(e, 95))} / {f(max(e))} | {f(med(d) / 1024, 1)} |")
    return out


def breakdown_table(res):
    out = ["", "## Inside the window (medians, ms)", "",
           "freeze = freeze sent → answered; prep = answered → `transaction` sent (B creates and "
           "opens the overlays here, as libvirt does); transaction = QMP `transaction` round trip; "
           "to-thaw = transaction answered → thaw sent; thaw = thaw sent → answered. held = "
           "stillpoint-agent's own `held-ms` from the thaw reply: from the moment every filesystem is "
           "frozen (the last FIFREEZE returned) to the thaw; it leaves out the pre-freeze syncfs and "
           "FIFREEZE's own flush (qemu-ga reports nothing like it).", "",
           "| filesystems | load | side | freeze | prep | transaction | to-thaw | thaw | window | held |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for sc in res["window"]:
        for s in ("A", "B"):
            recs = sc["checkpoints"]
            cols = [f(med(side(recs, s, k)), 1) for k in
                    ("freeze_ms", "prep_ms", "transaction_ms", "to_thaw_ms", "thaw_ms", "window_ms")]
            held = f(med(side(recs, s, "held_ms"))) if s == "A" else "—"
            out.append(f"| {sc['disks']} | {sc['load']} | {s} {SIDE_NAME[s]} | " + " | ".join(cols)
                       + f" | {held} |")
    return out


def diag_table(res):
    d = res.get("diag")
    if not d:
        return []
    out = ["", "## Where the freeze step's time goes (1 filesystem, no snapshot: freeze, then thaw at once)", "",
           "Same guest, same channels; medians in ms. The first row sends exactly the "
           f"`stillpoint-freeze` the CLI sent (`{json.dumps(d['cli_freeze'].get('arguments'))}`).", "",
           "| load | agent, command | n | freeze | thaw | stall | agent CPU (freeze+thaw) | dirty MiB |",
           "|---|---|---|---|---|---|---|---|"]
    variants = []
    for r in d["runs"]:
        if (r["load"], r["variant"]) not in variants:
            variants.append((r["load"], r["variant"]))
    for load, v in variants:
        rs = [r for r in d["runs"] if r["load"] == load and r["variant"] == v]
        g = lambda k: med([r[k] for r in rs])
        stall = "—" if load == "idle" else f(g("stall_ms"))
        cpu = statistics.mean([r.get("cpu_ms", 0) for r in rs])
        out.append(f"| {load} | {v} | {len(rs)} | {f(g('freeze_ms'), 1)} | {f(g('thaw_ms'), 1)} | {stall} "
                   f"| {f(cpu, 0)} (mean) | {f(g('dirty_kb') / 1024, 1)} |")
    out += ["", "The agent commands one `stillpoint checkpoint create` sends: "
            + ", ".join(f"`{c}`" for c in d.get("cli_commands", [])) + "."]
    sy = d.get("syncfs_idle_ms", [])
    out += ["", f"One `syncfs` of the idle data filesystem in the guest: {', '.join(f(x, 1) for x in sy)} ms "
            "(a device cache flush that QEMU turns into an fdatasync of the qcow2 on the host)."]
    return out


def e2e_table(res):
    out = ["", "## End-to-end create latency", "",
           "A: `stillpoint checkpoint create` from exec to exit (the checkpoint is recorded in the "
           "store). B: the bare QMP/agent sequence from the freeze to the thaw answer (libvirt's own "
           "bookkeeping not included). Outside = the share of end-to-end outside the frozen window.", "",
           "| filesystems | load | A end-to-end | A before the freeze | A window | A after the thaw "
           "| A outside | B end-to-end | B window |",
           "|---|---|---|---|---|---|---|---|---|"]
    for sc in res["window"]:
        recs = sc["checkpoints"]
        ea, wa = med(side(recs, "A", "e2e_ms")), med(side(recs, "A", "window_ms"))
        eb, wb = med(side(recs, "B", "e2e_ms")), med(side(recs, "B", "window_ms"))
        outside = f"{100 * (ea - wa) / ea:.0f} %" if ea else "—"
        bef, aft = med(side(recs, "A", "before_ms")), med(side(recs, "A", "after_ms"))
        out.append(f"| {sc['disks']} | {sc['load']} | {f(ea)} | {f(bef)} | {f(wa)} | {f(aft)} | {outside} "
                   f"| {f(eb)} | {f(wb)} |")
    return out


def footprint_table(res):
    fp, bins = res.get("footprint", {}), res["binaries"]
    out = ["", "## Agent footprint (in the guest, Release build, both agents dynamically linked)", ""]
    idle = fp.get("idle", [{}])[0]
    after = fp.get("after", [{}])[-1]
    startup = fp.get("startup", {})
    cpu = {"A": [], "B": []}
    for sc in res["window"]:
        for r in sc["checkpoints"]:
            cpu[r["side"]].append(r["agent_cpu_ms"])
    out += ["| | stillpoint-agent | qemu-ga | A/B |", "|---|---|---|---|"]
    def row(label, a, b, digits=0):
        out.append(f"| {label} | {f(a, digits)} | {f(b, digits)} | {ratio(a, b)} |")
    g = lambda d, agent, k: d.get(agent, {}).get(k)
    row("RSS idle, kB", g(idle, "stillpoint", "rss_kb"), g(idle, "qemu-ga", "rss_kb"))
    row("PSS idle, kB", g(idle, "stillpoint", "pss_kb"), g(idle, "qemu-ga", "pss_kb"))
    row("private memory idle, kB", g(idle, "stillpoint", "private_kb"), g(idle, "qemu-ga", "private_kb"))
    row("RSS after all freezes, kB", g(after, "stillpoint", "rss_kb"), g(after, "qemu-ga", "rss_kb"))
    row("peak RSS (VmHWM), kB", g(after, "stillpoint", "hwm_kb"), g(after, "qemu-ga", "hwm_kb"))
    n = len(cpu["A"])
    row(f"CPU per checkpoint (all its agent commands), ms (mean of {n}; 10 ms ticks)", statistics.mean(cpu["A"]) if cpu["A"] else None,
        statistics.mean(cpu["B"]) if cpu["B"] else None, 1)
    ic = fp.get("idle_cpu", {})
    for state in ("no host", "host connected"):
        if state in ic:
            row(f"CPU idle, {state}, ms per s", ic[state].get("stillpoint"), ic[state].get("qemu-ga"), 1)
    row("start-up: exec → port open, ms (median)", med(startup.get("stillpoint", [])),
        med(startup.get("qemu-ga", [])), 1)
    row("binary, kB", bins["stillpoint"]["bytes"] / 1024, bins["qemu-ga"]["bytes"] / 1024)
    row("shared libraries it loads, kB", bins["stillpoint"]["libs_bytes"] / 1024,
        bins["qemu-ga"]["libs_bytes"] / 1024)
    out += ["", f"Libraries: stillpoint-agent {', '.join(bins['stillpoint']['libs'])}; "
            f"qemu-ga {', '.join(bins['qemu-ga']['libs'])}."]
    return out


def scale_table(res):
    if not res.get("scale"):
        return []
    out = ["", "## Scale: N VMs checkpointed at once (A only, 1 disk each, fsync writer in each)", "",
           "| VMs | rounds | all done, ms (median) | window median / max, ms | end-to-end median / max, ms "
           "| stall median / max, ms |", "|---|---|---|---|---|---|"]
    for sc in res["scale"]:
        walls = [r["wall_ms"] for r in sc["rounds"]]
        cps = [c for r in sc["rounds"] for c in r["checkpoints"]]
        w, e, s = ([c[k] for c in cps] for k in ("window_ms", "e2e_ms", "stall_ms"))
        out.append(f"| {sc['vms']} | {len(walls)} | {f(med(walls))} | {f(med(w))} / {f(max(w))} "
                   f"| {f(med(e))} / {f(max(e))} | {f(med(s))} / {f(max(s))} |")
    out += ["", "Disks per VM: see the 1 vs 4 filesystem rows above (one VM, one `transaction` for all)."]
    return out


def merge_table(res):
    if not res.get("merge") and not res.get("delete"):
        return []
    out = ["", "## Merge: `stillpoint checkpoint delete` vs data written, against `qemu-img commit`", "",
           "*delete*: a live VM (1 disk, TCG); checkpoint C is made, N MiB of new data are written "
           "and fsynced in the guest into the overlay above it, then `stillpoint checkpoint delete` "
           "of C (the active layer: `block-commit`, ready, `block-job-complete`, journal, file "
           "removed) is timed from exec to exit. *qemu-img commit*: offline, a qcow2 overlay holding "
           "N MiB committed into its (empty) base on this machine's disk: the bandwidth bound.", "",
           "| MiB written | delete (live), ms | delete MiB/s | qemu-img commit, ms | commit MiB/s |",
           "|---|---|---|---|---|"]
    sizes = sorted({m["mib"] for m in res.get("merge", []) + res.get("delete", [])})
    for mib in sizes:
        d = next((m for m in res.get("delete", []) if m["mib"] == mib), {})
        c = next((m for m in res.get("merge", []) if m["mib"] == mib), {})
        out.append(f"| {mib} | {f(d.get('delete_ms'))} | {f(d.get('mib_per_s'))} | {f(c.get('commit_ms'))} "
                   f"| {f(c.get('mib_per_s'))} |")
    return out


def markdown(res, png):
    m = res["machine"]
    la0, la1 = ", ".join(m["loadavg_start"]), ", ".join(m["loadavg_end"])
    samples = res.get("loadavg_samples", [])
    during = f"; 1-min load average sampled during the run: {min(samples):.1f}–{max(samples):.1f}" \
        if samples else ""
    busy = max([float(m["loadavg_start"][0]), float(m["loadavg_end"][0])] + samples) > 0.5 * m["cores"] + 1.5
    out = [f"# stillpoint benchmarks: {res['date']} on {m['host']}" + (" (quick run)" if res["quick"] else ""),
           "", f"Measured: commit `{res.get('commit') or 'unknown'}` (Release build, no sanitizers).", "",
           f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_mb']} MiB, Linux {m['kernel']}, "
           f"{m['qemu']}, accelerator **{m['accel'].upper()}** (emulated CPU: absolute times are "
           "several times a KVM host's; read the A/B ratios). Guest: Debian kernel, busybox "
           "initramfs, 1 vCPU, 512 MiB, ext4 data disks (qcow2, virtio-blk).",
           "",
           f"Load average (1, 5, 15 min) at start {la0}, at end {la1}{during}. This run's own VM "
           "accounts for about 1–1.5 of it"
           + (" (N for the N-VM scale part); the rest is other engineers' builds, tests and VMs on "
              "the same 2 cores, so absolute numbers are noisy. A and B were interleaved on the "
              "same guest, so the noise falls on both." if busy else "."),
           f"Run: {res['params']['reps']} checkpoints per side and load, alternating (AB, BA, ...), "
           f"{res['params']['gap_s']} s between checkpoints; buffered writer "
           f"{res['params']['buffered_mib_s']} MiB/s in 64 KiB writes; fsync writer 4 KiB + fsync "
           f"every 20 ms per filesystem. Took {res['duration_s']} s.", ""]
    out += window_tables(res) + breakdown_table(res) + diag_table(res) + e2e_table(res)
    out += footprint_table(res)
    out += scale_table(res) + merge_table(res)
    out += ["", f"![window distributions]({os.path.basename(png)})", ""]
    return "\n".join(out)


def plot(res, png):
    """Two panels: host-side window and in-guest stall, every checkpoint as a point, per scenario."""
    scen = res["window"]
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for s in ("A", "B"):
            for kind in ("window_ms", "stall_ms"):
                path = os.path.join(tmp, f"{s}-{kind}.dat")
                files[(s, kind)] = path
                with open(path, "w") as fh:
                    for i, sc in enumerate(scen):
                        if kind == "stall_ms" and sc["load"] == "idle":
                            continue
                        recs = [r for r in sc["checkpoints"] if r["side"] == s]
                        for j, r in enumerate(recs):
                            x = i + (-0.18 if s == "A" else 0.18) + (j - len(recs) / 2) * 0.02
                            fh.write(f"{x:.3f} {max(r[kind], 0.1):.2f}\n")
        meds = {}
        for s in ("A", "B"):
            for kind in ("window_ms", "stall_ms"):
                path = os.path.join(tmp, f"{s}-{kind}-median.dat")
                meds[(s, kind)] = path
                with open(path, "w") as fh:
                    for i, sc in enumerate(scen):
                        if kind == "stall_ms" and sc["load"] == "idle":
                            continue
                        v = med([r[kind] for r in sc["checkpoints"] if r["side"] == s])
                        x = i + (-0.18 if s == "A" else 0.18)
                        fh.write(f"{x:.3f} {max(v, 0.1):.2f} 0.12\n")
        tics = ", ".join(f'"{sc["load"]}\\n{sc["disks"]} fs" {i}' for i, sc in enumerate(scen))
        gp = f"""
set terminal pngcairo size 1100,800 font ",10"
set output "{png}"
set multiplot layout 2,1 title "stillpoint (A) vs qemu-ga + libvirt sequence (B), {res['machine']['host']}, TCG, {res['date'][:10]}"
set grid ytics
set logscale y
set xrange [-0.6:{len(scen) - 0.4}]
set xtics ({tics})
set key top left
set bmargin 4
set ylabel "freeze sent -> thaw answered (ms)"
plot "{files[('A', 'window_ms')]}" using 1:2 with points pt 7 ps 1 lc rgb "#1f77b4" title "A stillpoint", \\
     "{files[('B', 'window_ms')]}" using 1:2 with points pt 9 ps 1 lc rgb "#d62728" title "B qemu-ga", \\
     "{meds[('A', 'window_ms')]}" using 1:2:3 with xerrorbars pt 0 lw 3 lc rgb "#1f77b4" title "median", \\
     "{meds[('B', 'window_ms')]}" using 1:2:3 with xerrorbars pt 0 lw 3 lc rgb "#d62728" notitle
set ylabel "longest in-guest write stall (ms)"
plot "{files[('A', 'stall_ms')]}" using 1:2 with points pt 7 ps 1 lc rgb "#1f77b4" title "A stillpoint", \\
     "{files[('B', 'stall_ms')]}" using 1:2 with points pt 9 ps 1 lc rgb "#d62728" title "B qemu-ga", \\
     "{meds[('A', 'stall_ms')]}" using 1:2:3 with xerrorbars pt 0 lw 3 lc rgb "#1f77b4" title "median", \\
     "{meds[('B', 'stall_ms')]}" using 1:2:3 with xerrorbars pt 0 lw 3 lc rgb "#d62728" notitle
unset multiplot
"""
        subprocess.run(["gnuplot"], input=gp, text=True, check=True)


def main(argv):
    p = argparse.ArgumentParser(prog="report.py")
    p.add_argument("results")
    p.add_argument("--md", required=True)
    p.add_argument("--png", required=True)
    a = p.parse_args(argv)
    with open(a.results) as fh:
        res = json.load(fh)
    if res["window"]:
        plot(res, a.png)
    with open(a.md, "w") as fh:
        fh.write(markdown(res, a.png))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
