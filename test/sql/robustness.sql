-- Every function of the extension called by a superuser with NULLs, with
-- empty or zero values and with absurd values, on a leader without
-- followers: each one returns, or refuses with a clean error (never an
-- internal error, SQLSTATE XX...).  Each call runs in a subtransaction that
-- is rolled back, so nothing it did stays.
SET client_min_messages = warning;
SET statement_timeout = '10s';
CREATE TEMP TABLE calls (fn text, args text, sqlstate text);
DO $$
DECLARE
	f record;
	kind text;
	args text;
	st text;
BEGIN
	FOR f IN SELECT p.oid, p.oid::regproc AS name, p.proargtypes::oid[] AS types
			   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			  WHERE n.nspname = 'repl'
				AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
				-- waits for followers (none here) up to its timeout
				AND p.proname <> 'wait_for_catchup'
			  ORDER BY p.oid::regprocedure::text
	LOOP
		FOREACH kind IN ARRAY ARRAY['null', 'empty', 'absurd'] LOOP
			SELECT string_agg(CASE kind
					WHEN 'null' THEN format('NULL::%s', t)
					WHEN 'empty' THEN CASE
						WHEN t IN ('text', 'name') THEN quote_literal('')
						WHEN t IN ('bigint', 'integer') THEN '0'
						WHEN t = 'boolean' THEN 'false'
						WHEN t = 'interval' THEN '''0 s'''::text
						WHEN t = 'bytea' THEN '''\x''::bytea'
						WHEN t = 'jsonb' THEN '''{}''::jsonb'
						WHEN t = 'text[]' THEN '''{}''::text[]'
						WHEN t = 'regclass[]' THEN '''{}''::regclass[]'
						WHEN t = 'regclass' THEN '''pg_class''::regclass'
						ELSE format('NULL::%s', t) END
					ELSE CASE
						WHEN t IN ('text', 'name') THEN quote_literal(repeat('é"x'';', 40))
						WHEN t IN ('bigint', 'integer') THEN '-1'
						WHEN t = 'boolean' THEN 'true'
						WHEN t = 'interval' THEN '''-1 day'''::text
						WHEN t = 'bytea' THEN '''\x52504c4203ffffffff''::bytea'
						WHEN t = 'jsonb' THEN '''{"nodes": 1, "epochs": [null]}''::jsonb'
						WHEN t = 'text[]' THEN '''{"no.such", NULL}''::text[]'
						WHEN t = 'regclass[]' THEN '''{pg_class}''::regclass[]'
						WHEN t = 'regclass' THEN '''pg_class''::regclass'
						ELSE format('NULL::%s', t) END
					END, ', ' ORDER BY o)
			  INTO args
			  FROM (SELECT x::regtype::text AS t, o FROM unnest(f.types) WITH ORDINALITY AS u(x, o)) u;
			BEGIN
				EXECUTE format('SELECT %s(%s)', f.name, coalesce(args, ''));
				RAISE EXCEPTION USING ERRCODE = 'P0099';	-- undo it
			EXCEPTION
				WHEN SQLSTATE 'P0099' THEN st := 'ok';
				WHEN OTHERS THEN st := SQLSTATE;
			END;
			INSERT INTO calls VALUES (f.oid::regprocedure::text, kind, st);
		END LOOP;
	END LOOP;
END;
$$;
RESET session_replication_role;
-- no internal errors, no timeouts
SELECT fn, args, sqlstate FROM calls
 WHERE sqlstate LIKE 'XX%' OR sqlstate = '57014' ORDER BY 1, 2;
-- the whole picture
SELECT fn, string_agg(args || ':' || sqlstate, ' ' ORDER BY args) AS outcomes
  FROM calls GROUP BY fn ORDER BY fn;
-- still the same leader, with no follower
SELECT node_name, role, epoch FROM repl.node_info();
SELECT count(*) AS followers FROM repl.followers;
