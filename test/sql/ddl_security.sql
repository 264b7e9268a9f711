-- Schema changes through repl.execute_ddl, the guard against plain DDL,
-- replicated sequences, and who may call what.  This node is the leader
-- from setup; no follower streams here (TAP replays the DDL on followers).
SET client_min_messages = warning;
CREATE SCHEMA "Ddl; Schema";
CREATE TABLE "Ddl; Schema"."Tab ""1""" (id int PRIMARY KEY, v text);
SELECT repl.add_table('"Ddl; Schema"."Tab ""1"""');
CREATE TABLE plain_local (id int PRIMARY KEY);

-- plain ALTER TABLE on a replicated table is refused, with a hint
ALTER TABLE "Ddl; Schema"."Tab ""1""" ADD COLUMN w int;
-- other DDL, and ALTER TABLE on other tables, are not
CREATE INDEX tab1_v ON "Ddl; Schema"."Tab ""1""" (v);
ALTER TABLE plain_local ADD COLUMN w int;

-- through execute_ddl: run here, and logged at its place among the rows
INSERT INTO "Ddl; Schema"."Tab ""1""" VALUES (1, 'before');
SET search_path = "Ddl; Schema", public;
SELECT repl.execute_ddl('ALTER TABLE "Tab ""1""" ADD COLUMN "W; x" int DEFAULT 7');
RESET search_path;
INSERT INTO "Ddl; Schema"."Tab ""1""" VALUES (2, 'after', 8);
SELECT * FROM "Ddl; Schema"."Tab ""1""" ORDER BY id;
SELECT relation, op, key, data FROM repl.changes
 WHERE relation IS NULL OR relation LIKE '%Ddl;%' ORDER BY seq;

-- refused, and nothing changed
SELECT repl.execute_ddl('UPDATE "Ddl; Schema"."Tab ""1""" SET v = ''x''');
SELECT repl.execute_ddl('ALTER TABLE "Ddl; Schema"."Tab ""1""" RENAME TO t2');
SELECT repl.execute_ddl('ALTER TABLE "Ddl; Schema"."Tab ""1""" SET SCHEMA public');
SELECT repl.execute_ddl('ALTER TABLE "Ddl; Schema"."Tab ""1""" ADD COLUMN bad');
SELECT repl.execute_ddl(NULL);
SELECT repl.execute_ddl('  ; ');
SELECT * FROM "Ddl; Schema"."Tab ""1""" ORDER BY id;
SELECT count(*) AS ddl_records FROM repl.changes WHERE op = 'DDL';
-- dropping is refused as before
DROP TABLE "Ddl; Schema"."Tab ""1""";

-- sequences
CREATE SEQUENCE "Ddl; Schema"."Seq 1";
SELECT repl.add_sequence('"Ddl; Schema"."Seq 1"');
SELECT repl.add_sequence('"Ddl; Schema"."Seq 1"');   -- again: false
SELECT repl.add_sequence('plain_local');
SELECT nextval('"Ddl; Schema"."Seq 1"'), nextval('"Ddl; Schema"."Seq 1"');
SELECT relid, schema_name, sequence_name, last_value FROM repl.sequences;
DROP SEQUENCE "Ddl; Schema"."Seq 1";
SELECT repl.remove_sequence('"Ddl; Schema"."Seq 1"');
SELECT repl.remove_sequence('"Ddl; Schema"."Seq 1"');  -- again: false

-- Privileges.  An ordinary user may use what clients need and nothing else.
CREATE ROLE repl_nobody LOGIN;
GRANT ALL ON SCHEMA "Ddl; Schema" TO repl_nobody;
GRANT ALL ON ALL TABLES IN SCHEMA "Ddl; Schema" TO repl_nobody;
ALTER TABLE plain_local OWNER TO repl_nobody;
-- ownership of a replicated table changes through execute_ddl too
ALTER TABLE "Ddl; Schema"."Tab ""1""" OWNER TO repl_nobody;
SELECT repl.execute_ddl('ALTER TABLE "Ddl; Schema"."Tab ""1""" OWNER TO repl_nobody');
SELECT pg_has_role('repl_admin', 'repl_admin', 'MEMBER') AS admin_role_exists;
CREATE TEMP TABLE probe (kind text, name text, sqlstate text);
GRANT ALL ON probe TO repl_nobody;
SET ROLE repl_nobody;
-- call every function of the extension (arguments NULL, but not constants:
-- the planner would fold a strict function of a NULL constant to NULL
-- without ever checking the privilege)
DO $$
DECLARE
	f record;
	st text;
BEGIN
	FOR f IN SELECT p.oid::regprocedure AS sig, p.oid::regproc AS name,
					(SELECT string_agg(format('(SELECT NULL::%s)', t::regtype), ', ')
					   FROM unnest(p.proargtypes) t) AS args
			   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			  WHERE n.nspname = 'repl' AND p.prorettype <> 'trigger'::regtype
				AND p.prorettype <> 'event_trigger'::regtype
	LOOP
		BEGIN
			EXECUTE format('SELECT %s(%s)', f.name, f.args);
			st := 'ok';
		EXCEPTION WHEN OTHERS THEN
			st := SQLSTATE;
		END;
		INSERT INTO probe VALUES ('function', f.sig::text, st);
	END LOOP;
	FOR f IN SELECT c.oid::regclass AS name FROM pg_class c
			   JOIN pg_namespace n ON n.oid = c.relnamespace
			  WHERE n.nspname = 'repl' AND c.relkind IN ('r', 'v')
	LOOP
		BEGIN
			EXECUTE format('SELECT count(*) FROM %s', f.name);
			st := 'ok';
		EXCEPTION WHEN OTHERS THEN
			st := SQLSTATE;
		END;
		INSERT INTO probe VALUES ('relation', f.name::text, st);
	END LOOP;
END;
$$;
-- every management function and every table refused with 42501 ...
SELECT kind, count(*) AS refused FROM probe WHERE sqlstate = '42501' GROUP BY kind ORDER BY kind;
-- ... except these
SELECT kind, name, sqlstate FROM probe WHERE sqlstate <> '42501' ORDER BY kind, name;
-- the guards run for ordinary users too
ALTER TABLE "Ddl; Schema"."Tab ""1""" ADD COLUMN z int;
ALTER TABLE plain_local ADD COLUMN z int;
CREATE TABLE "Ddl; Schema".own_table (id int);
DROP TABLE "Ddl; Schema".own_table;
RESET ROLE;

-- a member of repl_admin may administer replication
GRANT repl_admin TO repl_nobody;
SET ROLE repl_nobody;
SELECT repl.add_table('plain_local');
SELECT repl.execute_ddl('ALTER TABLE plain_local ADD COLUMN y int');
SELECT repl.remove_table('plain_local');
SELECT count(*) > 0 AS can_read_log FROM repl.changes;
RESET ROLE;

-- current_leader shows the connection string without its password
SELECT repl.init_leader('n1', 'dbname=contrib_regression');
UPDATE repl.local_node SET conninfo = 'host=localhost password=''se cret'' dbname=contrib_regression';
SELECT node_name, conninfo FROM repl.current_leader();
UPDATE repl.local_node SET conninfo = 'dbname=contrib_regression';

SELECT repl.remove_table('"Ddl; Schema"."Tab ""1"""');
DROP TABLE "Ddl; Schema"."Tab ""1""", plain_local;
DROP SEQUENCE "Ddl; Schema"."Seq 1";
DROP SCHEMA "Ddl; Schema";
DROP OWNED BY repl_nobody;
DROP ROLE repl_nobody;
