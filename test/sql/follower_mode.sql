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
SELECT repl.set_synchronous('f2');

-- handshake: only from the leader
SELECT * FROM repl.follower_handshake('boss', 1);
SELECT * FROM repl.follower_handshake('intruder', 1);

-- malformed batches are refused and change nothing
SELECT repl.apply_batch(''::bytea);
SELECT repl.apply_batch('\x52504c42'::bytea);
SELECT repl.apply_batch('\x52504c4201'::bytea);
SELECT repl.apply_batch('\x52504c4202ffffffff'::bytea);
SELECT applied_position FROM repl.node_info();
SELECT * FROM fm ORDER BY id;

-- well-formed batches, built by hand (format: src/protocol.c)
CREATE FUNCTION pg_temp.batch(leader text, from_pos bigint, to_pos bigint,
							  changes bytea DEFAULT NULL, epoch bigint DEFAULT 1) RETURNS bytea
LANGUAGE sql AS $$
SELECT '\x52504c4202'::bytea || int4send(octet_length(leader)) || convert_to(leader, 'UTF8')
	   || int4send(6) || int8send(epoch) || int8send(from_pos) || int8send(to_pos) || int8send(0)
	   || CASE WHEN changes IS NULL THEN int4send(0) || int4send(1)
			   ELSE int4send(1) || int4send(6) || convert_to('public', 'UTF8')
					|| int4send(2) || convert_to('fm', 'UTF8') || int4send(2) || changes END
	   -- the tick marker that ends the (one) tick
	   || int4send(-1) || '\x4b'::bytea || int4send(16) || int8send(to_pos) || int8send(0)
$$;
-- one INSERT of (3, 'from boss'): key part empty, two columns
CREATE FUNCTION pg_temp.insert_change() RETURNS bytea LANGUAGE sql AS $$
SELECT int4send(0) || '\x49'::bytea
	   || int4send(32)
	   || int2send(0::int2) || int2send(2::int2)
	   || '\x02'::bytea || convert_to('id', 'UTF8') || '\x62'::bytea || int4send(4) || int4send(3)
	   || '\x01'::bytea || convert_to('v', 'UTF8') || '\x74'::bytea || int4send(9) || convert_to('from boss', 'UTF8')
$$;
SELECT repl.apply_batch(pg_temp.batch('intruder', 7, 8));
SELECT repl.apply_batch(pg_temp.batch('boss', 9, 10));
SELECT repl.apply_batch(pg_temp.batch('boss', 7, 8, pg_temp.insert_change()));
SELECT * FROM fm ORDER BY id;
-- the follower keeps the tick it applied, for a future leader to send on
SELECT tick_id, epoch, octet_length(batch) > 0 AS kept FROM repl.retained;
-- the same batch again: already applied, nothing happens
SELECT repl.apply_batch(pg_temp.batch('boss', 7, 8, pg_temp.insert_change()));
SELECT * FROM fm ORDER BY id;
-- a cut-off batch changes nothing
SELECT repl.apply_batch(substr(pg_temp.batch('boss', 8, 9, pg_temp.insert_change()), 1, 80));
SELECT applied_position FROM repl.node_info();


-- a leader of a newer epoch takes over the follower at its handshake ...
SELECT accepted, node_leader, node_epoch, applied_epoch, applied_position
  FROM repl.follower_handshake('newboss', 2);
SELECT node_name, role, leader_name, epoch, applied_epoch FROM repl.node_info();
-- ... after which the old leader's handshake and batches are refused
SELECT accepted, node_leader, node_epoch FROM repl.follower_handshake('boss', 1);
SELECT repl.apply_batch(pg_temp.batch('boss', 8, 9, pg_temp.insert_change()));
SELECT applied_position FROM repl.node_info();
-- the new leader's batches are taken; a kept tick of the earlier epoch with
-- the same number (here: the position set back by hand) is replaced
SELECT repl.apply_batch(pg_temp.batch('newboss', 8, 9, NULL, 2));
UPDATE repl.local_node SET applied_tick = 7;
SELECT repl.apply_batch(pg_temp.batch('newboss', 7, 8, NULL, 2));
SELECT tick_id, epoch FROM repl.retained ORDER BY tick_id;
SELECT applied_position, applied_epoch FROM repl.node_info();

SELECT repl.follower_detach('other');
SELECT repl.follower_detach('newboss');
SELECT node_name, role FROM repl.node_info();
INSERT INTO fm VALUES (2, 'writable again');
SELECT * FROM fm ORDER BY id;
DROP TABLE fm;
