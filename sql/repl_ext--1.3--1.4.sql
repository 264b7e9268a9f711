/* repl_ext--1.3--1.4.sql: schema changes, replicated sequences, repl_admin */

\echo Use "ALTER EXTENSION repl_ext UPDATE TO '1.4'" to load this file. \quit

------------------------------------------------------------------------
-- Schema changes
------------------------------------------------------------------------

CREATE FUNCTION repl.execute_ddl(command text) RETURNS void
AS 'MODULE_PATHNAME', 'repl_execute_ddl' LANGUAGE C;
COMMENT ON FUNCTION repl.execute_ddl(text) IS
'Leader: run DDL here and on every follower at the same point of the change stream';

CREATE FUNCTION repl.in_execute_ddl() RETURNS boolean
AS 'MODULE_PATHNAME', 'repl_in_execute_ddl' LANGUAGE C STABLE;
COMMENT ON FUNCTION repl.in_execute_ddl() IS
'Whether this session is running a command of repl.execute_ddl (asked by the DDL guard)';

-- Plain ALTER TABLE on a replicated table (or on a parent of one) would
-- leave the followers with another definition: refuse it, on the leader
-- and on followers.  Apply replays execute_ddl's commands in replica mode,
-- where this trigger does not fire.  SECURITY DEFINER: whoever runs DDL
-- may not read repl.replicated_tables.
CREATE FUNCTION repl.guard_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cmd record;
	hit regclass;
BEGIN
	IF repl.in_execute_ddl() THEN
		RETURN;
	END IF;
	FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands()
	LOOP
		IF cmd.command_tag OPERATOR(pg_catalog.<>) 'ALTER TABLE'
		   OR cmd.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_class'::pg_catalog.regclass THEN
			CONTINUE;
		END IF;
		WITH RECURSIVE tree(relid) AS (
			SELECT cmd.objid
			UNION
			SELECT i.inhrelid FROM pg_catalog.pg_inherits i
			  JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid)
		SELECT t.relid::pg_catalog.regclass INTO hit
		  FROM tree JOIN repl.replicated_tables t
			ON t.relid OPERATOR(pg_catalog.=) tree.relid
		 ORDER BY t.relid LIMIT 1;
		IF hit IS NOT NULL THEN
			RAISE EXCEPTION 'cannot ALTER replicated table % directly', hit
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = 'The followers would keep the old definition and stop applying changes.',
					  HINT = 'Run the command on the leader through repl.execute_ddl(), which replays it on every follower at the same point of the change stream.';
		END IF;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION repl.guard_ddl() IS
'Event trigger: refuse ALTER TABLE on a replicated table outside repl.execute_ddl';
CREATE EVENT TRIGGER repl_guard_ddl ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION repl.guard_ddl();

------------------------------------------------------------------------
-- Replicated sequences
------------------------------------------------------------------------

-- Sequences whose value travels with every batch that carries changes, so
-- that a follower's sequence is never behind the values its rows hold.
CREATE TABLE repl.replicated_sequences (
	relid oid PRIMARY KEY,
	schema_name name NOT NULL,
	sequence_name name NOT NULL,
	added_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE FUNCTION repl.add_sequence(seq regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	node record;
	r record;
BEGIN
	IF seq IS NULL THEN
		RAISE EXCEPTION 'sequence must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO node FROM repl.node_info();
	IF node.role IS DISTINCT FROM 'leader' THEN
		RAISE EXCEPTION 'repl.add_sequence must be called on the leader'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = pg_catalog.format('This node has the role "%s".', node.role);
	END IF;
	SELECT c.relkind, n.nspname, c.relname INTO r
	  FROM pg_catalog.pg_class c
	  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	 WHERE c.oid OPERATOR(pg_catalog.=) seq;
	IF r.relkind OPERATOR(pg_catalog.<>) 'S' THEN
		RAISE EXCEPTION '"%" is not a sequence', seq USING ERRCODE = 'wrong_object_type';
	END IF;
	INSERT INTO repl.replicated_sequences (relid, schema_name, sequence_name)
	VALUES (seq, r.nspname, r.relname)
	ON CONFLICT (relid) DO NOTHING;
	RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION repl.add_sequence(regclass) IS
'Leader: send the sequence''s value to the followers with every batch; false if it already was';

CREATE FUNCTION repl.remove_sequence(seq regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	DELETE FROM repl.replicated_sequences WHERE relid OPERATOR(pg_catalog.=) seq;
	RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION repl.remove_sequence(regclass) IS
'Leader: stop sending the sequence''s value; false if it was not replicated';

CREATE VIEW repl.sequences AS
SELECT s.relid::regclass AS relid, s.schema_name, s.sequence_name,
	   pg_catalog.pg_sequence_last_value(s.relid) AS last_value
  FROM repl.replicated_sequences s;
COMMENT ON VIEW repl.sequences IS
'Sequences whose value the leader sends to its followers';

-- a replicated sequence cannot be dropped either
CREATE OR REPLACE FUNCTION repl.guard_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
		IF obj.object_type OPERATOR(pg_catalog.=) 'sequence' AND EXISTS (
			SELECT 1 FROM repl.replicated_sequences s
			 WHERE s.relid OPERATOR(pg_catalog.=) obj.objid) THEN
			RAISE EXCEPTION 'cannot drop replicated sequence %', obj.object_identity
				USING ERRCODE = 'dependent_objects_still_exist',
					  HINT = 'Call repl.remove_sequence() on the leader first.';
		END IF;
	END LOOP;
END;
$$;

-- The log, decoded: DDL records too
CREATE OR REPLACE VIEW repl.changes AS
SELECT l.seq, l.txid,
	   CASE WHEN l.op OPERATOR(pg_catalog.=) 'S' THEN NULL
			WHEN c.oid IS NULL THEN l.relid::text
			ELSE pg_catalog.format('%I.%I', n.nspname, c.relname) END AS relation,
	   CASE l.op WHEN 'I' THEN 'INSERT' WHEN 'U' THEN 'UPDATE'
				 WHEN 'D' THEN 'DELETE' WHEN 'T' THEN 'TRUNCATE'
				 WHEN 'A' THEN 'ADD TABLE' WHEN 'R' THEN 'REMOVE TABLE'
				 WHEN 'S' THEN 'DDL'
				 ELSE l.op::text END AS op,
	   d.key, d.data
  FROM repl.log l
  LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) l.relid
  LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  CROSS JOIN LATERAL repl.decode_change(l.relid, l.op, l.data) d;

------------------------------------------------------------------------
-- Apply: retained ticks are kept uncompressed.  pglz took 6% of a
-- follower's apply time compressing them, and they live only until every
-- follower has passed them.
------------------------------------------------------------------------

ALTER TABLE repl.retained ALTER COLUMN batch SET STORAGE EXTERNAL;

------------------------------------------------------------------------
-- Who may do what
------------------------------------------------------------------------

CREATE FUNCTION repl.prepare_apply_session(is_local boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'repl_prepare_apply_session' LANGUAGE C;
COMMENT ON FUNCTION repl.prepare_apply_session(boolean) IS
'Follower: switch this session (or transaction) to session_replication_role = replica for apply and copy (called by the leader)';

-- repl_admin: the role that administers replication.  Members may call
-- every function of the extension and read and change its catalog; the
-- leader's connection role on each follower must be a member.  Roles are
-- cluster-wide, so another database may have created it already.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles
				   WHERE rolname OPERATOR(pg_catalog.=) 'repl_admin') THEN
		CREATE ROLE repl_admin NOLOGIN;
	END IF;
END;
$$;

-- Everything, not PUBLIC: the log holds every replicated row, repl.nodes
-- and repl.followers hold connection strings (passwords).
REVOKE ALL ON ALL TABLES IN SCHEMA repl FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA repl FROM PUBLIC;
GRANT USAGE ON SCHEMA repl TO repl_admin;
GRANT ALL ON ALL TABLES IN SCHEMA repl TO repl_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA repl TO repl_admin;

-- What anyone may use: the capture trigger fires as the writing user, the
-- DDL guard asks in_execute_ddl as the user running DDL; node_info,
-- current_leader (connection string without password) and the list of
-- replicated tables tell clients where to write.
GRANT EXECUTE ON FUNCTION repl.capture_trigger(), repl.in_execute_ddl(),
	repl.node_info(), repl.current_leader() TO PUBLIC;
GRANT SELECT ON repl.tables TO PUBLIC;
