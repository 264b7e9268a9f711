/* repl_ext--1.6--1.7.sql: a follower forgets the ticks it keeps in its
 * supervisor, a chunk at a time, not in the leader's session */

\echo Use "ALTER EXTENSION repl_ext UPDATE TO '1.7'" to load this file. \quit

CREATE FUNCTION repl.forget_retained(retain_from bigint) RETURNS void
AS 'MODULE_PATHNAME', 'repl_forget_retained' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.forget_retained(bigint) IS
'Follower: every follower has the ticks up to retain_from; this node''s supervisor deletes them from repl.retained (called by repl.follower_sync_cluster)';
REVOKE ALL ON FUNCTION repl.forget_retained(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION repl.forget_retained(bigint) TO repl_admin;

-- 1.5's definition; the retained ticks are deleted by the supervisor: a
-- second's worth (a thousand rows and more under synchronous commits) took
-- this call, and the batch waiting behind it, one to two milliseconds
CREATE OR REPLACE FUNCTION repl.follower_sync_cluster(leader_name text, epoch bigint,
	cluster jsonb, OUT accepted boolean, OUT node_epoch bigint,
	OUT node_leader text)
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	n record;
	retain_from bigint;
BEGIN
	SELECT l.role, l.leader_name, l.epoch INTO n FROM repl.local_node l;
	node_epoch := n.epoch;
	node_leader := n.leader_name;
	IF n.role IS DISTINCT FROM 'follower' OR n.leader_name IS DISTINCT FROM leader_name
	   OR n.epoch IS DISTINCT FROM epoch THEN
		accepted := false;
		RETURN;
	END IF;
	accepted := true;
	PERFORM repl.note_leader_contact();
	IF (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
				   'node_name', x.node_name, 'conninfo', x.conninfo,
				   'is_leader', x.is_leader, 'synchronous', x.synchronous)
				   ORDER BY x.node_name) FROM repl.nodes x)
	   IS DISTINCT FROM cluster OPERATOR(pg_catalog.->) 'nodes' THEN
		-- two calls at once (a sender reconnecting while its old session
		-- still runs): the second waits, then replaces the first's rows
		LOCK TABLE repl.nodes IN SHARE ROW EXCLUSIVE MODE;
		DELETE FROM repl.nodes;
		INSERT INTO repl.nodes (node_name, conninfo, is_leader, synchronous)
		SELECT r.node_name, r.conninfo, r.is_leader, r.synchronous
		  FROM pg_catalog.jsonb_to_recordset(cluster OPERATOR(pg_catalog.->) 'nodes')
			   AS r(node_name text, conninfo text, is_leader boolean, synchronous boolean);
	END IF;
	INSERT INTO repl.epochs (epoch, leader_name, start_tick, started_at)
	SELECT r.epoch, r.leader_name, r.start_tick, r.started_at
	  FROM pg_catalog.jsonb_to_recordset(cluster OPERATOR(pg_catalog.->) 'epochs')
		   AS r(epoch bigint, leader_name text, start_tick bigint, started_at timestamptz)
	ON CONFLICT ON CONSTRAINT epochs_pkey DO NOTHING;
	retain_from := (cluster OPERATOR(pg_catalog.->>) 'retain_from')::bigint;
	IF retain_from IS NOT NULL THEN
		PERFORM repl.forget_retained(retain_from);
	END IF;
END;
$$;
