"""The known load of the node tier's expert pods (test_node.py, versus.py): a small
Python program run with ``python3 -c`` in the stand-in python image."""

#: Burns CPU to a schedule and holds memory to one (on CPU time: it catches up when
#: preempted, at most half a second of backlog). Environment: CPU_SHARE (cores),
#: CPU_QUIET + PERIOD_S (a cycle: busy first half, quiet second), MEMORY_MIB (held),
#: START_MIB + GROW_S (grows linearly from START_MIB), SHARE_DIR + TOTAL_CPU (the
#: replicas split TOTAL_CPU, counting each other by files they touch every second).
BURNER = r"""
import os, socket, time
env = os.environ.get
busy = float(env("CPU_SHARE", "0"))
quiet = float(env("CPU_QUIET", env("CPU_SHARE", "0")))
period = float(env("PERIOD_S", "0"))
final_mib = int(env("MEMORY_MIB", "0"))
start_mib = int(env("START_MIB", env("MEMORY_MIB", "0")))
grow = float(env("GROW_S", "0"))
share_dir = env("SHARE_DIR")
total = float(env("TOTAL_CPU", "0"))
me = os.path.join(share_dir, socket.gethostname()) if share_dir else None
blocks = []
t0 = last = time.monotonic()
c0 = time.process_time()
owed = 0.0
counted_at = -10.0
replicas = 1
while True:
    now = time.monotonic()
    elapsed = now - t0
    want = final_mib if grow <= 0 or elapsed >= grow else start_mib + (final_mib - start_mib) * elapsed / grow
    while len(blocks) < int(want):
        block = bytearray(1 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        blocks.append(block)
    if me and now - counted_at >= 1:
        open(me, "a").close()
        os.utime(me)
        wall = time.time()
        replicas = max(1, sum(1 for f in os.scandir(share_dir) if wall - f.stat().st_mtime < 3))
        counted_at = now
    if me:
        share = total / replicas
    elif period > 0 and (elapsed % period) >= period / 2:
        share = quiet
    else:
        share = busy
    owed = min(owed + share * (now - last), (time.process_time() - c0) + 0.5)
    last = now
    if time.process_time() - c0 < owed:
        deadline = time.process_time() + 0.002
        while time.process_time() < deadline:
            pass
    else:
        time.sleep(0.01)
"""
