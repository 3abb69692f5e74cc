# Shell helpers shared by the tests that drive a real QEMU (host-qemu.sh, host-ops.sh, backup.sh,
# tests/faults/faults.sh). Sourced; the caller defines $T (its temp dir) and fail().

# wait_socket PATH: readiness, not sleep — the socket exists once the server listens.
wait_socket() {
  for _ in $(seq 400); do [ -S "$1" ] && return 0; sleep 0.05; done
  fail "socket $1 never appeared"
}

# mon CMD-JSON...: QMP commands on the test's own monitor ($T/mon.sock, usable while stillpoint
# holds its own QMP socket); prints each return value, exits non-zero on a QMP error.
mon() {
  python3 - "$T/mon.sock" "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
json.loads(f.readline())
def run(cmd):
    f.write(json.dumps(cmd) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m: return m["return"]
        if "error" in m: sys.exit("QMP error: %s" % m["error"])
run({"execute": "qmp_capabilities"})
for c in sys.argv[2:]:
    print(json.dumps(run(json.loads(c))))
PY
}
