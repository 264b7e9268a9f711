/* repl_ext--1.0--1.1.sql: add_follower copies the schema and data of a live leader */

\echo Use "ALTER EXTENSION repl_ext UPDATE TO '1.1'" to load this file. \quit

------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------

-- phase 'copy': the follower still needs its initial copy (the sender does
-- it, then sets 'streaming').  truncate_existing: the copy may empty tables
-- that already hold rows on the follower.
ALTER TABLE repl.followers
	ADD COLUMN phase text NOT NULL DEFAULT 'streaming'
		CHECK (phase IN ('copy', 'streaming')),
	ADD COLUMN truncate_existing boolean NOT NULL DEFAULT false;

-- Leader: which replicated tables each follower has, and the snapshot its
-- copy of the table was taken at.  While the follower's position is below
-- sync_tick, changes of the table from transactions visible in sync_snap
-- are already in its copy and are not sent again.
CREATE TABLE repl.follower_tables (
	node_name text NOT NULL REFERENCES repl.followers ON DELETE CASCADE,
	relid oid NOT NULL,
	sync_tick bigint NOT NULL,
	sync_snap pg_catalog.pg_snapshot NOT NULL,
	synced_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (node_name, relid)
);
-- followers added by 1.0 already had every replicated table
INSERT INTO repl.follower_tables (node_name, relid, sync_tick, sync_snap)
SELECT f.node_name, t.relid, 0, '1:1:'
  FROM repl.followers f CROSS JOIN repl.replicated_tables t;

------------------------------------------------------------------------
-- Schema of a replicated table, for creating it on a follower
------------------------------------------------------------------------

-- pre: statements that create the table (schema, sequences its defaults
-- use, columns with types, collations, defaults, NOT NULL, identity and
-- generated columns, CHECK constraints).  post: what is faster to build
-- after the data is in (primary key, unique and exclusion constraints,
-- indexes, replica identity).  fkeys: foreign keys to other replicated
-- tables, run once every table exists.
CREATE FUNCTION repl.table_ddl(rel regclass,
	OUT pre text[], OUT post text[], OUT fkeys text[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
DECLARE
	nsp name;
	relname name;
	qual text;
	cols text[] := '{}';
	col text;
	r record;
BEGIN
	SELECT n.nspname, c.relname INTO nsp, relname
	  FROM pg_catalog.pg_class c
	  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	 WHERE c.oid OPERATOR(pg_catalog.=) rel;
	qual := pg_catalog.format('%I.%I', nsp, relname);
	pre := ARRAY[pg_catalog.format('CREATE SCHEMA IF NOT EXISTS %I', nsp)];
	post := '{}';
	fkeys := '{}';

	-- sequences named in column defaults (serial columns and the like)
	FOR r IN
		SELECT DISTINCT sn.nspname, sc.relname, s.seqtypid, s.seqincrement,
			   s.seqmin, s.seqmax, s.seqstart, s.seqcache, s.seqcycle
		  FROM pg_catalog.pg_attrdef ad
		  JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass
			   AND d.objid OPERATOR(pg_catalog.=) ad.oid
			   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		  JOIN pg_catalog.pg_sequence s ON s.seqrelid OPERATOR(pg_catalog.=) d.refobjid
		  JOIN pg_catalog.pg_class sc ON sc.oid OPERATOR(pg_catalog.=) s.seqrelid
		  JOIN pg_catalog.pg_namespace sn ON sn.oid OPERATOR(pg_catalog.=) sc.relnamespace
		 WHERE ad.adrelid OPERATOR(pg_catalog.=) rel
	LOOP
		IF r.nspname OPERATOR(pg_catalog.<>) nsp THEN
			pre := pre OPERATOR(pg_catalog.||) pg_catalog.format(
				'CREATE SCHEMA IF NOT EXISTS %I', r.nspname);
		END IF;
		pre := pre OPERATOR(pg_catalog.||) pg_catalog.format(
			'CREATE SEQUENCE IF NOT EXISTS %I.%I AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s %s',
			r.nspname, r.relname, pg_catalog.format_type(r.seqtypid, NULL),
			r.seqincrement, r.seqmin, r.seqmax, r.seqstart, r.seqcache,
			CASE WHEN r.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END);
	END LOOP;

	FOR r IN
		SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull, a.attidentity,
			   a.attgenerated, a.attcollation, t.typcollation,
			   cn.nspname AS collnsp, co.collname,
			   pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS defexpr
		  FROM pg_catalog.pg_attribute a
		  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
		  LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid OPERATOR(pg_catalog.=) a.attrelid
			   AND ad.adnum OPERATOR(pg_catalog.=) a.attnum
		  LEFT JOIN pg_catalog.pg_collation co ON co.oid OPERATOR(pg_catalog.=) a.attcollation
		  LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) co.collnamespace
		 WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attnum OPERATOR(pg_catalog.>) 0
		   AND NOT a.attisdropped
		 ORDER BY a.attnum
	LOOP
		col := pg_catalog.format('%I %s', r.attname,
								 pg_catalog.format_type(r.atttypid, r.atttypmod));
		IF r.attcollation OPERATOR(pg_catalog.<>) 0
		   AND r.attcollation OPERATOR(pg_catalog.<>) r.typcollation THEN
			col := col OPERATOR(pg_catalog.||)
				pg_catalog.format(' COLLATE %I.%I', r.collnsp, r.collname);
		END IF;
		IF r.attgenerated OPERATOR(pg_catalog.=) 's' THEN
			col := col OPERATOR(pg_catalog.||)
				pg_catalog.format(' GENERATED ALWAYS AS (%s) STORED', r.defexpr);
		ELSIF r.defexpr IS NOT NULL THEN
			col := col OPERATOR(pg_catalog.||) ' DEFAULT ' OPERATOR(pg_catalog.||) r.defexpr;
		END IF;
		IF r.attidentity OPERATOR(pg_catalog.=) 'a' THEN
			col := col OPERATOR(pg_catalog.||) ' GENERATED ALWAYS AS IDENTITY';
		ELSIF r.attidentity OPERATOR(pg_catalog.=) 'd' THEN
			col := col OPERATOR(pg_catalog.||) ' GENERATED BY DEFAULT AS IDENTITY';
		END IF;
		IF r.attnotnull THEN
			col := col OPERATOR(pg_catalog.||) ' NOT NULL';
		END IF;
		cols := cols OPERATOR(pg_catalog.||) col;
	END LOOP;
	FOR r IN
		SELECT co.conname, pg_catalog.pg_get_constraintdef(co.oid) AS def
		  FROM pg_catalog.pg_constraint co
		 WHERE co.conrelid OPERATOR(pg_catalog.=) rel
		   AND co.contype OPERATOR(pg_catalog.=) 'c'
		 ORDER BY co.conname
	LOOP
		cols := cols OPERATOR(pg_catalog.||)
			pg_catalog.format('CONSTRAINT %I %s', r.conname, r.def);
	END LOOP;
	pre := pre OPERATOR(pg_catalog.||) pg_catalog.format('CREATE TABLE %s (%s)', qual,
		pg_catalog.array_to_string(cols, ', '));

	-- sequences owned by a column go with the table
	FOR r IN
		SELECT sn.nspname, sc.relname, a.attname
		  FROM pg_catalog.pg_depend d
		  JOIN pg_catalog.pg_class sc ON sc.oid OPERATOR(pg_catalog.=) d.objid
			   AND sc.relkind OPERATOR(pg_catalog.=) 'S'
		  JOIN pg_catalog.pg_namespace sn ON sn.oid OPERATOR(pg_catalog.=) sc.relnamespace
		  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.refobjid
			   AND a.attnum OPERATOR(pg_catalog.=) d.refobjsubid
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND d.refobjid OPERATOR(pg_catalog.=) rel
		   AND d.deptype OPERATOR(pg_catalog.=) 'a'
	LOOP
		pre := pre OPERATOR(pg_catalog.||) pg_catalog.format(
			'ALTER SEQUENCE %I.%I OWNED BY %s.%I', r.nspname, r.relname, qual, r.attname);
	END LOOP;

	-- keys and exclusion constraints, then the other indexes
	FOR r IN
		SELECT co.conname, co.contype, pg_catalog.pg_get_constraintdef(co.oid) AS def,
			   (co.contype OPERATOR(pg_catalog.<>) 'f' OR EXISTS (
				   SELECT 1 FROM repl.replicated_tables t
					WHERE t.relid OPERATOR(pg_catalog.=) co.confrelid)) AS wanted
		  FROM pg_catalog.pg_constraint co
		 WHERE co.conrelid OPERATOR(pg_catalog.=) rel
		   AND co.contype OPERATOR(pg_catalog.=) ANY (ARRAY['p', 'u', 'x', 'f']::"char"[])
		 ORDER BY co.contype OPERATOR(pg_catalog.<>) 'p', co.conname
	LOOP
		CONTINUE WHEN NOT r.wanted;
		IF r.contype OPERATOR(pg_catalog.=) 'f' THEN
			fkeys := fkeys OPERATOR(pg_catalog.||) pg_catalog.format(
				'ALTER TABLE %s ADD CONSTRAINT %I %s', qual, r.conname, r.def);
		ELSE
			post := post OPERATOR(pg_catalog.||) pg_catalog.format(
				'ALTER TABLE %s ADD CONSTRAINT %I %s', qual, r.conname, r.def);
		END IF;
	END LOOP;
	FOR r IN
		SELECT pg_catalog.pg_get_indexdef(i.indexrelid) AS def
		  FROM pg_catalog.pg_index i
		 WHERE i.indrelid OPERATOR(pg_catalog.=) rel
		   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co
							WHERE co.conindid OPERATOR(pg_catalog.=) i.indexrelid
							  AND co.conrelid OPERATOR(pg_catalog.=) rel)
		 ORDER BY i.indexrelid
	LOOP
		post := post OPERATOR(pg_catalog.||) r.def;
	END LOOP;
	FOR r IN
		SELECT c.relreplident, ic.relname AS idxname
		  FROM pg_catalog.pg_class c
		  LEFT JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) c.oid
			   AND i.indisreplident
		  LEFT JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
		 WHERE c.oid OPERATOR(pg_catalog.=) rel
	LOOP
		IF r.relreplident OPERATOR(pg_catalog.=) 'f' THEN
			post := post OPERATOR(pg_catalog.||)
				pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', qual);
		ELSIF r.relreplident OPERATOR(pg_catalog.=) 'i' THEN
			post := post OPERATOR(pg_catalog.||) pg_catalog.format(
				'ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', qual, r.idxname);
		END IF;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION repl.table_ddl(regclass) IS
'Statements that create a replicated table on a follower: before the data (pre), after it (post), and its foreign keys';

-- What the copy of each table needs: columns to copy (generated columns are
-- computed by the follower), whether binary COPY is safe (every column of a
-- built-in type: binary values of other types carry OIDs that differ between
-- nodes), and size estimates for progress reports.
CREATE FUNCTION repl.copy_plan(tables regclass[])
RETURNS TABLE (relid oid, table_name text, columns text, binary_ok boolean,
	est_rows bigint, est_bytes bigint)
LANGUAGE sql STABLE AS $$
SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname),
	   (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
		  FROM pg_catalog.pg_attribute a
		 WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
		   AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) ''),
	   NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
					 JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
					 LEFT JOIN pg_catalog.pg_type e ON e.oid OPERATOR(pg_catalog.=) t.typelem
						  AND t.typcategory OPERATOR(pg_catalog.=) 'A'
					WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
					  AND NOT a.attisdropped
					  AND (t.oid OPERATOR(pg_catalog.>=) 16384
						   OR t.typtype OPERATOR(pg_catalog.<>) 'b'
						   OR e.oid OPERATOR(pg_catalog.>=) 16384
						   OR t.typsend OPERATOR(pg_catalog.=) 0)),
	   GREATEST(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)::bigint,
	   pg_catalog.pg_relation_size(c.oid)
  FROM pg_catalog.unnest(tables) WITH ORDINALITY u(rel, ord)
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) u.rel
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 ORDER BY u.ord
$$;
COMMENT ON FUNCTION repl.copy_plan(regclass[]) IS
'Columns, COPY format and size estimates of the tables a follower copy transfers';

-- Names in definitions are qualified the same way on every node, whatever
-- the caller's search_path.
ALTER FUNCTION repl.table_definitions(text[]) SET search_path = pg_catalog;

------------------------------------------------------------------------
-- Functions with new arguments or results
------------------------------------------------------------------------

DROP FUNCTION repl.add_follower(text, text, boolean);
CREATE FUNCTION repl.add_follower(node_name text, conninfo text,
	synchronous boolean DEFAULT false, truncate_existing boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'repl_add_follower' LANGUAGE C;
COMMENT ON FUNCTION repl.add_follower(text, text, boolean, boolean) IS
'Leader: add a follower; its tables are created and copied, then it streams (watch repl.status)';

CREATE FUNCTION repl.follower_add_tables(leader_name text, tables text[])
RETURNS void
AS 'MODULE_PATHNAME', 'repl_follower_add_tables' LANGUAGE C STRICT;
COMMENT ON FUNCTION repl.follower_add_tables(text, text[]) IS
'Follower: start applying changes to newly copied tables (called by the leader''s sender)';

DROP VIEW repl.status;
DROP FUNCTION repl.follower_status();
CREATE FUNCTION repl.follower_status(OUT node_name text, OUT state text,
	OUT synchronous boolean, OUT paused boolean, OUT sent_position bigint,
	OUT applied_position bigint, OUT last_error text,
	OUT last_error_time timestamptz, OUT copy_table text,
	OUT copy_tables_done integer, OUT copy_tables_total integer,
	OUT copy_rows bigint, OUT copy_bytes bigint,
	OUT copy_rows_estimate bigint, OUT copy_bytes_estimate bigint,
	OUT copy_started timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'repl_follower_status' LANGUAGE C;
COMMENT ON FUNCTION repl.follower_status() IS
'Leader: live state of each follower''s sender (used by repl.status)';

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
	   s.last_error, s.last_error_time,
	   s.copy_table, s.copy_tables_done, s.copy_tables_total,
	   s.copy_rows, s.copy_bytes, s.copy_rows_estimate, s.copy_bytes_estimate,
	   s.copy_started
  FROM repl.follower_status() s;
COMMENT ON VIEW repl.status IS
'Leader: one row per follower with its state (phase), positions, lag and copy progress';

REVOKE ALL ON repl.follower_tables, repl.status FROM PUBLIC;
REVOKE ALL ON FUNCTION repl.table_ddl(regclass), repl.copy_plan(regclass[]),
	repl.add_follower(text, text, boolean, boolean),
	repl.follower_add_tables(text, text[]), repl.follower_status() FROM PUBLIC;
