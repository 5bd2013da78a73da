# Run by tests/programs.rs with PYTHONMALLOC=malloc, with and without
# LD_PRELOAD=libhoming.so; the two outputs must be identical.
# Threads build and drop large dicts and lists; a producer thread builds
# objects that a consumer thread drops (cross-thread frees).
import queue
import threading

THREADS = 4
ROUNDS = 2
ENTRIES = 10000


def build(seed, out):
    total = 0
    for r in range(ROUNDS):
        d = {"k%d-%d" % (seed, i): [i, str(i) * (i % 7), {"x": i, "y": (i, r)}] for i in range(ENTRIES)}
        lists = [list(range(i % 50)) for i in range(ENTRIES // 4)]
        total += sum(len(v[1]) for v in d.values()) + sum(map(len, lists)) + len(d)
        del d, lists
    out[seed] = total


out = {}
threads = [threading.Thread(target=build, args=(s, out)) for s in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sorted(out.items()))

q = queue.Queue(maxsize=8)
sizes = []


def produce():
    for n in range(100):
        q.put({i: [str(i)] * 3 for i in range(n * 10)})
    q.put(None)


def consume():
    while True:
        item = q.get()
        if item is None:
            break
        sizes.append(len(item))
        del item


p = threading.Thread(target=produce)
c = threading.Thread(target=consume)
p.start()
c.start()
p.join()
c.join()
print(sum(sizes), len(sizes))

# Strings and bytes of many sizes, resized (realloc) as they grow.
s = ""
b = bytearray()
for i in range(20000):
    s += chr(97 + i % 26)
    b += bytes([i % 256]) * (i % 13)
print(len(s), len(b), hash(s[:100]) == hash(s[:100]), sum(b) % 1000003)
