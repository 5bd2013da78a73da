-- Run by tests/programs.rs through the sqlite3 shell, with and without
-- LD_PRELOAD=libhoming.so, on a fresh database file; outputs must match.
PRAGMA cache_size = 2000;
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v REAL, b BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, 'key-' || (x * 7919 % 10007), x * 0.5, zeroblob(x % 200) FROM c;
CREATE INDEX t_k ON t(k);
SELECT count(*), sum(v), count(DISTINCT k), sum(length(b)) FROM t;
SELECT k, count(*) FROM t GROUP BY k ORDER BY count(*) DESC, k LIMIT 5;
SELECT group_concat(id) FROM (SELECT id FROM t WHERE k = 'key-42' ORDER BY id);
UPDATE t SET k = upper(k) || '-' || id WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
VACUUM;
SELECT count(*), min(k), max(k), sum(v) FROM t;
SELECT a.k, count(*) FROM t a JOIN t b ON a.k = b.k WHERE a.id < 2000 GROUP BY a.k ORDER BY 2 DESC, 1 LIMIT 3;
