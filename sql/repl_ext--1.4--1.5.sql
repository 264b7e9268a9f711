/* repl_ext--1.4--1.5.sql: promote claims its epoch on every reachable node;
 * follower_sync_cluster safe when called twice at once */

\echo Use "ALTER EXTENSION repl_ext UPDATE TO '1.5'" to load this file. \quit

CREATE FUNCTION repl.claim_epoch(candidate text, epoch bigint,
	OUT granted boolean, OUT reason text, OUT seen_epoch bigint)
AS 'MODULE_PATHNAME', 'repl_claim_epoch' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.claim_epoch(text, bigint) IS
'Promote: give epoch to candidate unless this node leads, is in or voted in that epoch or a newer one, or is itself being promoted right now (called by repl.promote on the other nodes)';
REVOKE ALL ON FUNCTION repl.claim_epoch(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION repl.claim_epoch(text, bigint) TO repl_admin;

-- 1.3's definition, with a lock before the node list is replaced
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
		DELETE FROM repl.retained r WHERE r.tick_id OPERATOR(pg_catalog.<=) retain_from;
	END IF;
END;
$$;
