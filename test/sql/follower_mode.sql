-- A follower refuses local writes to replicated tables, checks what it is
-- sent, and gets its write access back when detached.
SET client_min_messages = warning;

CREATE TABLE fm (id int PRIMARY KEY, v text);
INSERT INTO fm VALUES (1, 'leader era');

-- start over as a follower of a (fictitious) leader "boss"
DROP EXTENSION repl_ext CASCADE;
CREATE EXTENSION repl_ext;
SELECT repl.follower_attach('f1', 'boss', 1, 7, ARRAY['public.fm']);
SELECT repl.follower_attach('f1', 'boss', 1, 7, ARRAY['public.fm']);  -- again: same
SELECT repl.follower_attach('f1', 'other', 1, 7, ARRAY['public.fm']);
SELECT node_name, role, leader_name, epoch, applied_position FROM repl.node_info();
SELECT relid, identity FROM repl.tables;

INSERT INTO fm VALUES (2, 'x');
\echo :LAST_ERROR_SQLSTATE
-- refused before constraints are checked: this key exists
INSERT INTO fm VALUES (1, 'duplicate');
SELECT tgname, tgtype FROM pg_trigger WHERE tgrelid = 'fm'::regclass ORDER BY 1;
UPDATE fm SET v = 'y';
DELETE FROM fm;
TRUNCATE fm;
SELECT * FROM fm ORDER BY id;

-- leader-only calls
SELECT repl.add_table('fm');
SELECT repl.add_follower('f2', 'dbname=contrib_regression');
SELECT repl.init_leader('f1', 'dbname=contrib_regression');

-- handshake: only from the leader
SELECT * FROM repl.follower_handshake('boss', 1);
SELECT * FROM repl.follower_handshake('intruder', 1);

-- malformed batches are refused and change nothing
SELECT repl.apply_batch(''::bytea);
SELECT repl.apply_batch('\x52504c42'::bytea);
SELECT repl.apply_batch('\x52504c4202'::bytea);
SELECT repl.apply_batch('\x52504c4201ffffffff'::bytea);
SELECT applied_position FROM repl.node_info();
SELECT * FROM fm ORDER BY id;

SELECT repl.follower_detach('other');
SELECT repl.follower_detach('boss');
SELECT node_name, role FROM repl.node_info();
INSERT INTO fm VALUES (2, 'writable again');
SELECT * FROM fm ORDER BY id;
DROP TABLE fm;
