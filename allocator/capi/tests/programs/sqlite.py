# Run by tests/programs.rs with PYTHONMALLOC=malloc, with and without
# LD_PRELOAD=libhoming.so; outputs must match. Python's sqlite3 module:
# one database per thread, filled and queried.
import sqlite3
import sys
import threading

ROWS = 20000
results = {}


def fill(n, path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v REAL)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", ((i, "key-%d" % (i * 7919 % 1009), i * 0.25) for i in range(ROWS)))
    db.execute("CREATE INDEX t_k ON t(k)")
    db.commit()
    rows = db.execute("SELECT k, count(*), sum(v) FROM t GROUP BY k ORDER BY 2 DESC, 1 LIMIT 3").fetchall()
    total = db.execute("SELECT count(*), sum(v) FROM t WHERE k LIKE 'key-1%'").fetchone()
    db.close()
    results[n] = (rows, total)


directory = sys.argv[1]
threads = [threading.Thread(target=fill, args=(n, "%s/db%d.sqlite" % (directory, n))) for n in range(3)]
threads.append(threading.Thread(target=fill, args=(3, ":memory:")))
for t in threads:
    t.start()
for t in threads:
    t.join()
for n in sorted(results):
    print(n, results[n])
