/* repl_ext--1.2--1.3.sql: failover, switchover and rejoin */

\echo Use "ALTER EXTENSION repl_ext UPDATE TO '1.3'" to load this file. \quit


-- 'fenced': a former leader that learned of a newer epoch; applied_epoch:
-- the epoch of the leader whose batch gave applied_tick (a leader: its own)
ALTER TABLE repl.local_node DROP CONSTRAINT local_node_role_check;
ALTER TABLE repl.local_node ADD CONSTRAINT local_node_role_check
	CHECK (role IN ('leader', 'follower', 'fenced'));
ALTER TABLE repl.local_node ADD COLUMN applied_epoch bigint NOT NULL DEFAULT 1;
UPDATE repl.local_node SET applied_epoch = epoch;
-- elections (repl_ext.auto_failover): a node votes at most once per epoch
ALTER TABLE repl.local_node ADD COLUMN voted_epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE repl.local_node ADD COLUMN voted_for text;

-- 'rejoin': a former leader the new leader contacts only to fence it, until
-- it calls repl.rejoin()
ALTER TABLE repl.followers DROP CONSTRAINT followers_phase_check;
ALTER TABLE repl.followers ADD CONSTRAINT followers_phase_check
	CHECK (phase IN ('copy', 'streaming', 'rejoin'));

-- a follower's copy of the cluster's nodes, sent by the leader (a leader
-- derives it: repl.cluster_state())
CREATE TABLE repl.nodes (
	node_name text PRIMARY KEY,
	conninfo text NOT NULL,
	is_leader boolean NOT NULL,
	synchronous boolean NOT NULL DEFAULT false
);

-- the leaders of the cluster: epoch N began after tick start_tick
CREATE TABLE repl.epochs (
	epoch bigint PRIMARY KEY,
	leader_name text NOT NULL,
	start_tick bigint NOT NULL,
	started_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
INSERT INTO repl.epochs (epoch, leader_name, start_tick)
SELECT epoch, node_name, 0 FROM repl.local_node
 WHERE role OPERATOR(pg_catalog.=) 'leader';

-- ticks a follower applied, each a batch of its own, for a new leader to
-- send on to the other followers (see failover.c)
CREATE TABLE repl.retained (
	tick_id bigint PRIMARY KEY,
	epoch bigint NOT NULL,
	batch bytea NOT NULL
);


CREATE FUNCTION repl.cluster_state() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
SELECT pg_catalog.jsonb_build_object(
	'nodes', (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
					'node_name', n.node_name, 'conninfo', n.conninfo,
					'is_leader', n.is_leader, 'synchronous', n.synchronous)
					ORDER BY n.node_name)
				FROM (SELECT l.node_name, l.conninfo, true AS is_leader, false AS synchronous
						FROM repl.local_node l
					   WHERE l.role OPERATOR(pg_catalog.=) 'leader' AND l.conninfo IS NOT NULL
					  UNION ALL
					  SELECT f.node_name, f.conninfo, false, f.synchronous
						FROM repl.followers f) n),
	'epochs', (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
					'epoch', e.epoch, 'leader_name', e.leader_name,
					'start_tick', e.start_tick, 'started_at', e.started_at)
					ORDER BY e.epoch)
				 FROM repl.epochs e),
	'retain_from', (SELECT pg_catalog.min(f.applied_tick) FROM repl.followers f
					 WHERE NOT f.needs_resync AND f.phase OPERATOR(pg_catalog.<>) 'rejoin'))
$$;
COMMENT ON FUNCTION repl.cluster_state() IS
'Leader: the nodes, the epochs and the oldest position any follower needs, as sent to followers';

CREATE FUNCTION repl.note_leader_contact() RETURNS void
AS 'MODULE_PATHNAME', 'repl_note_leader_contact_sql' LANGUAGE C;
COMMENT ON FUNCTION repl.note_leader_contact() IS
'Follower: the leader reached this node just now (its heartbeat; used by repl_ext.auto_failover)';

CREATE FUNCTION repl.request_vote(candidate text, epoch bigint,
	applied_epoch bigint, applied_position bigint, OUT granted boolean,
	OUT reason text)
AS 'MODULE_PATHNAME', 'repl_request_vote' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.request_vote(text, bigint, bigint, bigint) IS
'Election: give this node''s vote in epoch to candidate, at most once per epoch and only to a candidate at least as up to date, while it hears nothing from a leader';

CREATE FUNCTION repl.follower_sync_cluster(leader_name text, epoch bigint,
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
COMMENT ON FUNCTION repl.follower_sync_cluster(text, bigint, jsonb) IS
'Follower: take the cluster''s nodes and epochs from the leader and forget retained ticks no follower needs (called by the leader)';

DROP FUNCTION repl.follower_handshake(text, bigint);
CREATE FUNCTION repl.follower_handshake(leader_name text, epoch bigint,
	OUT accepted boolean, OUT node_name text, OUT role text,
	OUT node_leader text, OUT node_epoch bigint, OUT applied_epoch bigint,
	OUT applied_position bigint)
AS 'MODULE_PATHNAME', 'repl_follower_handshake' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.follower_handshake(text, bigint) IS
'Follower: accept leader_name if its epoch is current or newer (a node that led an older epoch fences itself), and return the applied position (called by the sender)';

DROP FUNCTION repl.node_info();
CREATE FUNCTION repl.node_info(OUT node_name text, OUT role text,
	OUT leader_name text, OUT epoch bigint, OUT applied_position bigint,
	OUT applied_epoch bigint)
AS 'MODULE_PATHNAME', 'repl_node_info' LANGUAGE C;
COMMENT ON FUNCTION repl.node_info() IS
'Name, role, leader and epoch of this node, and the position (and its epoch) it has applied or, on a leader, cut';
GRANT EXECUTE ON FUNCTION repl.node_info() TO PUBLIC;

CREATE FUNCTION repl.current_leader(OUT node_name text, OUT conninfo text,
	OUT epoch bigint)
AS 'MODULE_PATHNAME', 'repl_current_leader' LANGUAGE C;
COMMENT ON FUNCTION repl.current_leader() IS
'The leader as this node knows it: its name, connection string and epoch';
GRANT EXECUTE ON FUNCTION repl.current_leader() TO PUBLIC;

CREATE FUNCTION repl.failover_candidates(OUT node_name text,
	OUT reachable boolean, OUT role text, OUT leader_name text,
	OUT epoch bigint, OUT applied_epoch bigint, OUT applied_position bigint,
	OUT is_local boolean, OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'repl_failover_candidates' LANGUAGE C;
COMMENT ON FUNCTION repl.failover_candidates() IS
'Every node this node knows, asked now: its role, epoch and applied position (pick the most up-to-date follower to promote)';

CREATE FUNCTION repl.promote(force boolean DEFAULT false) RETURNS bigint
AS 'MODULE_PATHNAME', 'repl_promote' LANGUAGE C;
COMMENT ON FUNCTION repl.promote(boolean) IS
'Follower: become the leader in a new epoch (returned); refuses while the leader or a more up-to-date follower is reachable, unless force';

CREATE FUNCTION repl.switchover(node_name text,
	timeout interval DEFAULT '60 s') RETURNS bigint
AS 'MODULE_PATHNAME', 'repl_switchover' LANGUAGE C;
COMMENT ON FUNCTION repl.switchover(text, interval) IS
'Leader: hand leadership to a follower without losing a transaction; this node then follows it; returns the new epoch';

CREATE FUNCTION repl.takeover(old_leader text, epoch bigint,
	at_position bigint, cluster jsonb) RETURNS bigint
AS 'MODULE_PATHNAME', 'repl_takeover' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.takeover(text, bigint, bigint, jsonb) IS
'Follower: become the leader when the old leader hands over at at_position; returns the position it starts from (called by repl.switchover)';

CREATE FUNCTION repl.rejoin(leader_conninfo text, OUT mode text,
	OUT lost_changes bigint, OUT lost_tables text[])
AS 'MODULE_PATHNAME', 'repl_rejoin' LANGUAGE C;
COMMENT ON FUNCTION repl.rejoin(text) IS
'Former leader: follow the current leader; changes the cluster never received are reported and the node is copied again';

CREATE FUNCTION repl.accept_rejoin(node_name text, conninfo text,
	applied_epoch bigint, at_position bigint) RETURNS text
AS 'MODULE_PATHNAME', 'repl_accept_rejoin' LANGUAGE C;
COMMENT ON FUNCTION repl.accept_rejoin(text, text, bigint, bigint) IS
'Leader: take back a former node, resuming at at_position or, with a null at_position, copying it again (called by repl.rejoin)';

CREATE FUNCTION repl.resync_follower(node_name text) RETURNS void
AS 'MODULE_PATHNAME', 'repl_resync_follower' LANGUAGE C;
COMMENT ON FUNCTION repl.resync_follower(text) IS
'Leader: copy a follower that diverged or fell behind the log again, replacing its rows';

CREATE FUNCTION repl.fence(leader_name text, epoch bigint) RETURNS boolean
AS 'MODULE_PATHNAME', 'repl_fence' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.fence(text, bigint) IS
'Stop a leader of an older epoch from accepting writes: it learns of leader_name and epoch (called by a new leader)';

CREATE FUNCTION repl.advance_sequences() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	r record;
	m numeric;
	cur bigint;
	n integer := 0;
BEGIN
	FOR r IN
		-- serial and other defaults that call nextval(), and identity columns
		SELECT DISTINCT t.relid::pg_catalog.regclass AS tab, a.attname,
			   q.seqrelid::pg_catalog.regclass AS seq
		  FROM repl.replicated_tables t
		  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.relid
			   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
			   AND a.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['int2', 'int4', 'int8', 'numeric']::pg_catalog.regtype[])
		  JOIN pg_catalog.pg_depend d ON d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
			   AND ((d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass
					 AND d.objid OPERATOR(pg_catalog.=) (SELECT ad.oid FROM pg_catalog.pg_attrdef ad
						  WHERE ad.adrelid OPERATOR(pg_catalog.=) t.relid AND ad.adnum OPERATOR(pg_catalog.=) a.attnum))
					OR (a.attidentity OPERATOR(pg_catalog.<>) ''
						AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
						AND d.deptype OPERATOR(pg_catalog.=) 'i'
						AND d.refobjid OPERATOR(pg_catalog.=) t.relid
						AND d.refobjsubid OPERATOR(pg_catalog.=) a.attnum))
		  JOIN pg_catalog.pg_sequence q ON q.seqrelid OPERATOR(pg_catalog.=)
			   CASE WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass
					THEN d.refobjid ELSE d.objid END
		 WHERE q.seqincrement OPERATOR(pg_catalog.>) 0
	LOOP
		EXECUTE pg_catalog.format('SELECT pg_catalog.max(%I)::pg_catalog.numeric FROM %s', r.attname, r.tab)
		   INTO m;
		CONTINUE WHEN m IS NULL;
		EXECUTE pg_catalog.format('SELECT last_value FROM %s', r.seq) INTO cur;
		IF m OPERATOR(pg_catalog.>=) cur THEN
			PERFORM pg_catalog.setval(r.seq, m::bigint, true);
			n := n OPERATOR(pg_catalog.+) 1;
		END IF;
	END LOOP;
	RETURN n;
END;
$$;
COMMENT ON FUNCTION repl.advance_sequences() IS
'New leader: move every ascending sequence that feeds a column of a replicated table (default or identity) past the largest value in that column; returns how many moved';

CREATE VIEW repl.cluster AS
SELECT l.node_name, 'leader'::text AS role, l.conninfo, l.epoch
  FROM repl.local_node l WHERE l.role OPERATOR(pg_catalog.=) 'leader'
UNION ALL
SELECT f.node_name, 'follower', f.conninfo, l.epoch
  FROM repl.followers f, repl.local_node l WHERE l.role OPERATOR(pg_catalog.=) 'leader'
UNION ALL
SELECT n.node_name, CASE WHEN n.node_name OPERATOR(pg_catalog.=) l.leader_name
						 THEN 'leader' ELSE 'follower' END,
	   n.conninfo, l.epoch
  FROM repl.nodes n, repl.local_node l WHERE l.role OPERATOR(pg_catalog.<>) 'leader';
COMMENT ON VIEW repl.cluster IS
'The nodes of the cluster as this node knows them, with the role each has and the current epoch';

REVOKE ALL ON repl.nodes, repl.epochs, repl.retained, repl.cluster FROM PUBLIC;
REVOKE ALL ON FUNCTION repl.cluster_state(),
	repl.follower_sync_cluster(text, bigint, jsonb),
	repl.follower_handshake(text, bigint), repl.failover_candidates(),
	repl.promote(boolean), repl.switchover(text, interval),
	repl.takeover(text, bigint, bigint, jsonb), repl.rejoin(text),
	repl.accept_rejoin(text, text, bigint, bigint),
	repl.resync_follower(text), repl.fence(text, bigint),
	repl.note_leader_contact(), repl.request_vote(text, bigint, bigint, bigint),
	repl.advance_sequences() FROM PUBLIC;
