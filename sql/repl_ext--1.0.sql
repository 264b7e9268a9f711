/* repl_ext--1.0.sql: catalog, change log and functions of repl_ext 1.0 */

\echo Use "CREATE EXTENSION repl_ext" to load this file. \quit

-- Refuse to install unless the library was preloaded and this is the
-- database named by repl_ext.database.
CREATE FUNCTION repl.check_installable() RETURNS void
AS 'MODULE_PATHNAME', 'repl_check_installable' LANGUAGE C;
SELECT repl.check_installable();
DROP FUNCTION repl.check_installable();

------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------

-- The local node: at most one row.  No row means the node has no role yet.
CREATE TABLE repl.local_node (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	node_name text NOT NULL,
	role text NOT NULL CHECK (role IN ('leader', 'follower')),
	conninfo text,
	leader_name text,
	epoch bigint NOT NULL DEFAULT 1,
	applied_tick bigint NOT NULL DEFAULT 0,
	applied_at timestamptz
);

-- Leader: its followers.
CREATE TABLE repl.followers (
	node_name text PRIMARY KEY,
	conninfo text NOT NULL,
	synchronous boolean NOT NULL DEFAULT false,
	paused boolean NOT NULL DEFAULT false,
	needs_resync boolean NOT NULL DEFAULT false,
	applied_tick bigint NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	added_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Tables replicated by this node (leader: captured; follower: applied).
CREATE TABLE repl.replicated_tables (
	relid oid PRIMARY KEY,
	schema_name name NOT NULL,
	table_name name NOT NULL,
	added_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Ticks: snapshots of the leader.  A batch is what commits between two.
CREATE TABLE repl.tick (
	tick_id bigint PRIMARY KEY,
	snap pg_catalog.pg_snapshot NOT NULL,
	tick_time timestamptz NOT NULL,
	n_changes bigint NOT NULL
);

-- The replication log.  Triggers write into one of the children, which
-- the leader rotates through and truncates once every follower applied it.
CREATE TABLE repl.log (
	seq bigint NOT NULL,
	txid pg_catalog.xid8 NOT NULL,
	relid oid NOT NULL,
	op "char" NOT NULL,
	data bytea
) WITH (autovacuum_enabled = false);
CREATE TABLE repl.log_0 () INHERITS (repl.log) WITH (autovacuum_enabled = false);
CREATE TABLE repl.log_1 () INHERITS (repl.log) WITH (autovacuum_enabled = false);
CREATE TABLE repl.log_2 () INHERITS (repl.log) WITH (autovacuum_enabled = false);
CREATE INDEX log_0_txid ON repl.log_0 (txid);
CREATE INDEX log_1_txid ON repl.log_1 (txid);
CREATE INDEX log_2_txid ON repl.log_2 (txid);

-- The changes of one batch: those of the transactions visible in to_snap but
-- not in from_snap, in log order.  Transactions at or above from_snap's xmax
-- come from an index range scan; those in flight at from_snap are listed
-- explicitly, so a long transaction does not widen the scan.  Inlined by the
-- planner, so the log tables' indexes are used.
CREATE FUNCTION repl.batch_changes(from_snap pg_catalog.pg_snapshot,
	to_snap pg_catalog.pg_snapshot)
RETURNS SETOF repl.log
LANGUAGE sql STABLE AS $$
SELECT l.* FROM repl.log l
 WHERE (l.txid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmax(from_snap)
		AND l.txid OPERATOR(pg_catalog.<) pg_catalog.pg_snapshot_xmax(to_snap)
		AND pg_catalog.pg_visible_in_snapshot(l.txid, to_snap))
	OR l.txid OPERATOR(pg_catalog.=) ANY (ARRAY(
		SELECT x FROM pg_catalog.pg_snapshot_xip(from_snap) x
		 WHERE pg_catalog.pg_visible_in_snapshot(x, to_snap)))
$$;
COMMENT ON FUNCTION repl.batch_changes(pg_catalog.pg_snapshot, pg_catalog.pg_snapshot) IS
'The logged changes of the transactions visible in to_snap but not in from_snap: one batch';

-- State of each log table: 'current' (written to), 'draining' (no longer
-- written to by transactions below switch_xmax) or 'empty'.
CREATE TABLE repl.log_state (
	log_no int PRIMARY KEY CHECK (log_no BETWEEN 0 AND 2),
	state text NOT NULL CHECK (state IN ('current', 'draining', 'empty')),
	switch_xmax pg_catalog.xid8,
	switched_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
INSERT INTO repl.log_state (log_no, state) VALUES
	(0, 'current'), (1, 'empty'), (2, 'empty');

------------------------------------------------------------------------
-- Capture and apply
------------------------------------------------------------------------

CREATE FUNCTION repl.capture_trigger() RETURNS trigger
AS 'MODULE_PATHNAME', 'repl_capture_trigger' LANGUAGE C;
COMMENT ON FUNCTION repl.capture_trigger() IS
'Row and TRUNCATE trigger on replicated tables: logs changes on the leader, refuses local writes on a follower';

CREATE FUNCTION repl.apply_batch(batch bytea) RETURNS bigint
AS 'MODULE_PATHNAME', 'repl_apply_batch' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.apply_batch(bytea) IS
'Follower: apply one batch from the leader in the calling transaction and return the new position (called by the leader)';

CREATE FUNCTION repl.follower_attach(node_name text, leader_name text,
	epoch bigint, start_position bigint, tables text[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'repl_follower_attach' LANGUAGE C;
COMMENT ON FUNCTION repl.follower_attach(text, text, bigint, bigint, text[]) IS
'Follower: become a follower of leader_name at the given position (called by add_follower on the leader)';

CREATE FUNCTION repl.follower_detach(leader_name text) RETURNS boolean
AS 'MODULE_PATHNAME', 'repl_follower_detach' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.follower_detach(text) IS
'Follower: stop following leader_name (called by remove_follower on the leader)';

CREATE FUNCTION repl.follower_handshake(leader_name text, epoch bigint,
	OUT node_name text, OUT applied_position bigint)
AS 'MODULE_PATHNAME', 'repl_follower_handshake' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.follower_handshake(text, bigint) IS
'Follower: check that leader_name is this node''s leader and return the applied position (called by the sender)';

CREATE FUNCTION repl.table_definitions(tables text[])
RETURNS TABLE (table_name text, item text, definition text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t text;
	rel regclass;
	ident "char";
BEGIN
	FOREACH t IN ARRAY tables LOOP
		rel := pg_catalog.to_regclass(t);
		table_name := t;
		IF rel IS NULL THEN
			item := 'table';
			definition := 'missing';
			RETURN NEXT;
			CONTINUE;
		END IF;
		FOR item, definition IN
			SELECT pg_catalog.format('column %I', a.attname),
				   pg_catalog.format_type(a.atttypid, a.atttypmod)
				   OPERATOR(pg_catalog.||) CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
				   OPERATOR(pg_catalog.||) CASE WHEN a.attgenerated OPERATOR(pg_catalog.<>) '' THEN ' GENERATED' ELSE '' END
			  FROM pg_catalog.pg_attribute a
			 WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attnum OPERATOR(pg_catalog.>) 0
			   AND NOT a.attisdropped
		LOOP
			RETURN NEXT;
		END LOOP;
		SELECT c.relreplident INTO ident FROM pg_catalog.pg_class c
		 WHERE c.oid OPERATOR(pg_catalog.=) rel;
		item := 'key';
		IF ident OPERATOR(pg_catalog.=) 'f' THEN
			definition := 'FULL';
		ELSE
			SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', '
										 ORDER BY k.ord)
			  INTO definition
			  FROM pg_catalog.pg_index i
			 CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
			  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) rel
				   AND a.attnum OPERATOR(pg_catalog.=) k.attnum
			 WHERE i.indrelid OPERATOR(pg_catalog.=) rel
			   AND ((ident OPERATOR(pg_catalog.=) 'i' AND i.indisreplident)
					OR (ident OPERATOR(pg_catalog.=) 'd' AND i.indisprimary));
			definition := coalesce('(' OPERATOR(pg_catalog.||) definition OPERATOR(pg_catalog.||) ')', 'none');
		END IF;
		RETURN NEXT;
		item := 'rows';
		EXECUTE pg_catalog.format('SELECT CASE WHEN EXISTS (SELECT 1 FROM %s) THEN ''not empty'' ELSE ''empty'' END', rel)
		   INTO definition;
		RETURN NEXT;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION repl.table_definitions(text[]) IS
'Columns, key and emptiness of each named table (add_follower compares leader and follower with it)';

------------------------------------------------------------------------
-- Administration
------------------------------------------------------------------------

CREATE FUNCTION repl.init_leader(node_name text, conninfo text) RETURNS void
AS 'MODULE_PATHNAME', 'repl_init_leader' LANGUAGE C;
COMMENT ON FUNCTION repl.init_leader(text, text) IS
'Make this node the leader of a new replication cluster';

CREATE FUNCTION repl.add_table(rel regclass) RETURNS boolean
AS 'MODULE_PATHNAME', 'repl_add_table' LANGUAGE C;
COMMENT ON FUNCTION repl.add_table(regclass) IS
'Start replicating a table; false if it already was';

CREATE FUNCTION repl.remove_table(rel regclass) RETURNS boolean
AS 'MODULE_PATHNAME', 'repl_remove_table' LANGUAGE C;
COMMENT ON FUNCTION repl.remove_table(regclass) IS
'Stop replicating a table; false if it was not replicated';

CREATE FUNCTION repl.add_follower(node_name text, conninfo text,
	synchronous boolean DEFAULT false) RETURNS void
AS 'MODULE_PATHNAME', 'repl_add_follower' LANGUAGE C;
COMMENT ON FUNCTION repl.add_follower(text, text, boolean) IS
'Leader: add a follower and start streaming to it';

CREATE FUNCTION repl.remove_follower(node_name text) RETURNS boolean
AS 'MODULE_PATHNAME', 'repl_remove_follower' LANGUAGE C;
COMMENT ON FUNCTION repl.remove_follower(text) IS
'Leader: stop streaming to a follower and forget it; false if there was no such follower';

CREATE FUNCTION repl.pause_follower(node_name text) RETURNS void
AS 'MODULE_PATHNAME', 'repl_pause_follower' LANGUAGE C;
COMMENT ON FUNCTION repl.pause_follower(text) IS
'Leader: stop streaming to a follower for maintenance; its changes are kept';

CREATE FUNCTION repl.resume_follower(node_name text) RETURNS void
AS 'MODULE_PATHNAME', 'repl_resume_follower' LANGUAGE C;
COMMENT ON FUNCTION repl.resume_follower(text) IS
'Leader: resume streaming to a paused follower';

CREATE FUNCTION repl.wait_for_catchup(node_name text DEFAULT NULL,
	timeout interval DEFAULT '60 s') RETURNS boolean
AS 'MODULE_PATHNAME', 'repl_wait_for_catchup' LANGUAGE C;
COMMENT ON FUNCTION repl.wait_for_catchup(text, interval) IS
'Leader: wait until the follower (or every follower) has applied everything committed before the call; false on timeout';

CREATE FUNCTION repl.node_info(OUT node_name text, OUT role text,
	OUT leader_name text, OUT epoch bigint, OUT applied_position bigint)
AS 'MODULE_PATHNAME', 'repl_node_info' LANGUAGE C;
COMMENT ON FUNCTION repl.node_info() IS
'Name, role, leader and epoch of this node';

CREATE FUNCTION repl.follower_status(OUT node_name text, OUT state text,
	OUT synchronous boolean, OUT paused boolean, OUT sent_position bigint,
	OUT applied_position bigint, OUT last_error text,
	OUT last_error_time timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'repl_follower_status' LANGUAGE C;
COMMENT ON FUNCTION repl.follower_status() IS
'Leader: live state of each follower''s sender (used by repl.status)';

CREATE FUNCTION repl.decode_change(relid oid, op "char", data bytea,
	OUT key jsonb, OUT data jsonb)
AS 'MODULE_PATHNAME', 'repl_decode_change' LANGUAGE C;
COMMENT ON FUNCTION repl.decode_change(oid, "char", bytea) IS
'Decode one logged change into its key and column values as JSON';

------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------

CREATE VIEW repl.status AS
SELECT s.node_name, s.state, s.synchronous, s.paused,
	   s.sent_position, s.applied_position,
	   coalesce((SELECT pg_catalog.sum(t.n_changes)
				   FROM repl.tick t
				  WHERE t.tick_id OPERATOR(pg_catalog.>) s.applied_position),
				0)::bigint AS lag_changes,
	   coalesce(pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-)
		   (SELECT pg_catalog.min(t.tick_time) FROM repl.tick t
			 WHERE t.tick_id OPERATOR(pg_catalog.>) s.applied_position
			   AND t.n_changes OPERATOR(pg_catalog.>) 0)), 0)::float8 AS lag_seconds,
	   s.last_error, s.last_error_time
  FROM repl.follower_status() s;
COMMENT ON VIEW repl.status IS
'Leader: one row per follower with its state, positions and lag';

CREATE VIEW repl.tables AS
SELECT t.relid::regclass AS relid, t.schema_name, t.table_name,
	   CASE c.relreplident
		   WHEN 'f' THEN 'full'
		   WHEN 'i' THEN 'index'
		   ELSE 'primary key' END AS identity
  FROM repl.replicated_tables t
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid;
COMMENT ON VIEW repl.tables IS 'Tables replicated by this node';

CREATE VIEW repl.changes AS
SELECT l.seq, l.txid,
	   CASE WHEN c.oid IS NULL THEN l.relid::text
			ELSE pg_catalog.format('%I.%I', n.nspname, c.relname) END AS relation,
	   CASE l.op WHEN 'I' THEN 'INSERT' WHEN 'U' THEN 'UPDATE'
				 WHEN 'D' THEN 'DELETE' WHEN 'T' THEN 'TRUNCATE'
				 WHEN 'A' THEN 'ADD TABLE' WHEN 'R' THEN 'REMOVE TABLE'
				 ELSE l.op::text END AS op,
	   d.key, d.data
  FROM repl.log l
  LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) l.relid
  LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  CROSS JOIN LATERAL repl.decode_change(l.relid, l.op, l.data) d;
COMMENT ON VIEW repl.changes IS
'The leader''s replication log, decoded: one row per captured change not yet removed';

------------------------------------------------------------------------
-- A replicated table cannot be dropped before remove_table
------------------------------------------------------------------------

CREATE FUNCTION repl.guard_drop() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
	obj record;
BEGIN
	FOR obj IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects()
	LOOP
		IF obj.object_type OPERATOR(pg_catalog.=) 'table' AND EXISTS (
			SELECT 1 FROM repl.replicated_tables t
			 WHERE t.relid OPERATOR(pg_catalog.=) obj.objid) THEN
			RAISE EXCEPTION 'cannot drop replicated table %', obj.object_identity
				USING ERRCODE = 'dependent_objects_still_exist',
					  HINT = 'Call repl.remove_table() on the leader first.';
		END IF;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION repl.guard_drop() IS
'Event trigger: refuse to drop a table that is still replicated';
CREATE EVENT TRIGGER repl_guard_drop ON sql_drop
	EXECUTE FUNCTION repl.guard_drop();

------------------------------------------------------------------------
-- Privileges: replication is administered by superusers only
------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA repl FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA repl FROM PUBLIC;
GRANT USAGE ON SCHEMA repl TO PUBLIC;
GRANT EXECUTE ON FUNCTION repl.capture_trigger() TO PUBLIC;
GRANT EXECUTE ON FUNCTION repl.node_info() TO PUBLIC;
GRANT SELECT ON repl.tables TO PUBLIC;
