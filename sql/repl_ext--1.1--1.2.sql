/* repl_ext--1.1--1.2.sql: synchronous followers */

\echo Use "ALTER EXTENSION repl_ext UPDATE TO '1.2'" to load this file. \quit

------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------

-- At most one follower holds the synchronous role.  The supervisor moves it
-- to another follower when the synchronous one fails.
CREATE UNIQUE INDEX followers_one_synchronous ON repl.followers (synchronous)
	WHERE synchronous;

------------------------------------------------------------------------
-- Functions
------------------------------------------------------------------------

CREATE FUNCTION repl.set_synchronous(node_name text,
	synchronous boolean DEFAULT true) RETURNS boolean
AS 'MODULE_PATHNAME', 'repl_set_synchronous' LANGUAGE C;
COMMENT ON FUNCTION repl.set_synchronous(text, boolean) IS
'Leader: give the synchronous role to a follower (taking it from the one that has it), or take it away; false if nothing changed';

COMMENT ON FUNCTION repl.add_follower(text, text, boolean, boolean) IS
'Leader: add a follower; its tables are created and copied, then it streams (watch repl.status); synchronous => true makes commits wait for it once its copy is done';

DROP VIEW repl.status;
DROP FUNCTION repl.follower_status();
CREATE FUNCTION repl.follower_status(OUT node_name text, OUT state text,
	OUT synchronous boolean, OUT paused boolean, OUT sent_position bigint,
	OUT applied_position bigint, OUT last_error text,
	OUT last_error_time timestamptz, OUT copy_table text,
	OUT copy_tables_done integer, OUT copy_tables_total integer,
	OUT copy_rows bigint, OUT copy_bytes bigint,
	OUT copy_rows_estimate bigint, OUT copy_bytes_estimate bigint,
	OUT copy_started timestamptz, OUT sync_state text,
	OUT waiting_commits integer, OUT longest_wait_seconds float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'repl_follower_status' LANGUAGE C;
COMMENT ON FUNCTION repl.follower_status() IS
'Leader: live state of each follower''s sender (used by repl.status)';

CREATE VIEW repl.status AS
SELECT s.node_name, s.state, s.synchronous, s.sync_state, s.paused,
	   s.sent_position, s.applied_position,
	   coalesce((SELECT pg_catalog.sum(t.n_changes)
				   FROM repl.tick t
				  WHERE t.tick_id OPERATOR(pg_catalog.>) s.applied_position),
				0)::bigint AS lag_changes,
	   coalesce(pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-)
		   (SELECT pg_catalog.min(t.tick_time) FROM repl.tick t
			 WHERE t.tick_id OPERATOR(pg_catalog.>) s.applied_position
			   AND t.n_changes OPERATOR(pg_catalog.>) 0)), 0)::float8 AS lag_seconds,
	   s.waiting_commits, s.longest_wait_seconds,
	   s.last_error, s.last_error_time,
	   s.copy_table, s.copy_tables_done, s.copy_tables_total,
	   s.copy_rows, s.copy_bytes, s.copy_rows_estimate, s.copy_bytes_estimate,
	   s.copy_started
  FROM repl.follower_status() s;
COMMENT ON VIEW repl.status IS
'Leader: one row per follower with its state (phase), synchronous role, positions, lag, waiting commits and copy progress';

REVOKE ALL ON repl.status FROM PUBLIC;
REVOKE ALL ON FUNCTION repl.set_synchronous(text, boolean),
	repl.follower_status() FROM PUBLIC;
