-- The log's row format: INSERT carries every column, DELETE the key,
-- UPDATE the key plus the columns whose stored bytes changed.
SET client_min_messages = warning;
SET datestyle = 'ISO, YMD';
SET timezone = 'UTC';
SET extra_float_digits = 0;

CREATE TABLE fmt (
	id int PRIMARY KEY,
	t text,
	n numeric,
	f float8,
	b bytea,
	ts timestamptz,
	arr int[],
	j jsonb,
	big text,
	gen int GENERATED ALWAYS AS (id * 2) STORED
);
SELECT repl.add_table('fmt');
CREATE SEQUENCE app_seq;

-- which part of the log belongs to this test
SELECT coalesce(max(seq), 0) AS start_seq FROM repl.log \gset

BEGIN;
INSERT INTO fmt (id, t, n, f, b, ts, arr, j)
VALUES (1, 'it''s "quoted" ünïcode', 1.0, 0, '\x00ff'::bytea,
		'2024-02-29 12:34:56.789+00', '{1,NULL,3}', '{"a": [1, null]}'),
	   (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
COMMIT;

-- only the changed columns; numeric 1.0 -> 1.00 and 0 -> -0 are changes
UPDATE fmt SET n = 1.00 WHERE id = 1;
UPDATE fmt SET f = '-0' WHERE id = 1;
-- an update that changes nothing logs nothing
UPDATE fmt SET t = t, n = n WHERE id = 1;
-- NULL to value and value to NULL
UPDATE fmt SET t = 'now set' WHERE id = 2;
UPDATE fmt SET arr = NULL WHERE id = 1;
-- key change: old key plus the new key among the changed columns
UPDATE fmt SET id = 20 WHERE id = 2;
DELETE FROM fmt WHERE id = 20;

SELECT seq - :start_seq AS n, op, key, data FROM repl.changes
 WHERE relation = 'public.fmt' ORDER BY seq;

-- a large (TOASTed) value is logged once; an update of another column
-- does not log it again
SELECT coalesce(max(seq), 0) AS start_seq FROM repl.log \gset
INSERT INTO fmt (id, big) SELECT 3, string_agg(md5(g::text), '') FROM generate_series(1, 20000) g;
UPDATE fmt SET t = 'small change' WHERE id = 3;
SELECT seq - :start_seq AS n, op, key, data ? 'big' AS has_big,
	   length(data->>'big') AS big_length, data - 'big' AS other
  FROM repl.changes WHERE relation = 'public.fmt' AND seq > :start_seq ORDER BY seq;

-- logged bytes do not depend on the writer's settings
SELECT coalesce(max(seq), 0) AS start_seq FROM repl.log \gset
SET datestyle = 'SQL, DMY';
SET timezone = 'America/New_York';
SET extra_float_digits = -10;
SET bytea_output = 'escape';
INSERT INTO fmt (id, f, b, ts) VALUES (10, 0.1, '\x01', '2024-01-01 00:00:00+00');
SET datestyle = 'Postgres, MDY';
SET timezone = 'Asia/Kolkata';
SET extra_float_digits = 3;
SET bytea_output = 'hex';
DELETE FROM fmt WHERE id = 10;
INSERT INTO fmt (id, f, b, ts) VALUES (10, 0.1, '\x01', '2024-01-01 00:00:00+00');
RESET datestyle;
RESET timezone;
RESET extra_float_digits;
RESET bytea_output;
SELECT count(*) AS inserts, count(DISTINCT data) AS distinct_images
  FROM repl.log WHERE seq > :start_seq AND op = 'I';

-- the trigger leaves lastval() alone
SELECT nextval('app_seq');
INSERT INTO fmt (id) VALUES (12);
SELECT lastval();

-- TRUNCATE is captured
SELECT coalesce(max(seq), 0) AS start_seq FROM repl.log \gset
TRUNCATE fmt;
SELECT seq - :start_seq AS n, relation, op, key, data FROM repl.changes
 WHERE seq > :start_seq ORDER BY seq;

-- rolled back work leaves nothing in the log
SELECT count(*) AS before FROM repl.log \gset
BEGIN;
INSERT INTO fmt (id) VALUES (100);
ROLLBACK;
BEGIN;
INSERT INTO fmt (id) VALUES (101);
SAVEPOINT s;
INSERT INTO fmt (id) VALUES (102);
ROLLBACK TO s;
COMMIT;
SELECT count(*) - :before AS new_rows FROM repl.log;
SELECT key, data->>'id' AS id FROM repl.changes WHERE relation = 'public.fmt'
 ORDER BY seq DESC LIMIT 1;

-- the trigger refuses to be called wrongly
CREATE TABLE wrong (id int PRIMARY KEY);
CREATE TRIGGER before_trg BEFORE INSERT ON wrong FOR EACH STATEMENT
	EXECUTE FUNCTION repl.capture_trigger();
INSERT INTO wrong VALUES (1);
DROP TRIGGER before_trg ON wrong;
CREATE TRIGGER stmt_trg AFTER INSERT ON wrong FOR EACH STATEMENT
	EXECUTE FUNCTION repl.capture_trigger();
INSERT INTO wrong VALUES (1);
SELECT repl.capture_trigger();
DROP TABLE wrong;

SELECT repl.remove_table('fmt');
DROP TABLE fmt;
DROP SEQUENCE app_seq;
