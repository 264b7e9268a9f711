-- Install 1.0 and update it: the result is what a fresh install gives
-- (a fresh install runs the same scripts).  Runs after teardown.
SET client_min_messages = warning;
CREATE EXTENSION repl_ext VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'repl_ext';
CREATE TABLE upgraded (id int PRIMARY KEY, v text);
SELECT repl.init_leader('up', 'dbname=contrib_regression');
SELECT repl.add_table('upgraded');
-- a 1.0 follower row, as if added before the update
INSERT INTO repl.followers (node_name, conninfo, applied_tick) VALUES ('old', 'dbname=nowhere', 1);
UPDATE repl.followers SET paused = true;

ALTER EXTENSION repl_ext UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'repl_ext';
SELECT node_name, phase, truncate_existing FROM repl.followers;
-- the old follower already has every table: nothing to copy
SELECT f.node_name, f.relid::regclass, f.sync_tick FROM repl.follower_tables f;
SELECT pg_get_function_identity_arguments('repl.add_follower'::regproc);
SELECT node_name, state, copy_table, copy_rows FROM repl.status;
SELECT proconfig FROM pg_proc WHERE oid = 'repl.table_definitions'::regproc;
-- 1.2: synchronous followers
SELECT pg_get_function_identity_arguments('repl.set_synchronous'::regproc);
SELECT indexdef FROM pg_indexes WHERE indexname = 'followers_one_synchronous';
SELECT repl.set_synchronous('old');
SELECT node_name, synchronous, waiting_commits FROM repl.status;
-- take the role back before anything below writes the log: "old" is paused,
-- so a commit would wait for it
SELECT repl.set_synchronous('old', false);
-- 1.3: failover
SELECT epoch, leader_name, start_tick FROM repl.epochs;
SELECT node_name, is_leader, synchronous FROM repl.nodes ORDER BY node_name;
SELECT node_name, role, epoch, applied_epoch FROM repl.node_info();
SELECT node_name, role FROM repl.cluster ORDER BY node_name;
SELECT pg_get_function_identity_arguments('repl.promote'::regproc);

-- 1.4: schema changes, sequences, repl_admin
SELECT pg_get_function_identity_arguments('repl.execute_ddl'::regproc);
SELECT evtname, evtevent, evttags FROM pg_event_trigger WHERE evtname LIKE 'repl%' ORDER BY 1;
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = 'repl_admin';
SELECT has_function_privilege('public', 'repl.add_table(regclass)', 'EXECUTE') AS public_add_table,
	   has_function_privilege('repl_admin', 'repl.add_table(regclass)', 'EXECUTE') AS admin_add_table,
	   has_table_privilege('public', 'repl.followers', 'SELECT') AS public_followers,
	   has_table_privilege('repl_admin', 'repl.followers', 'SELECT') AS admin_followers;
-- 1.5: promote claims its epoch
SELECT pg_get_function_identity_arguments('repl.claim_epoch'::regproc);
SELECT has_function_privilege('public', 'repl.claim_epoch(text, bigint)', 'EXECUTE') AS public_claim,
	   has_function_privilege('repl_admin', 'repl.claim_epoch(text, bigint)', 'EXECUTE') AS admin_claim;
SELECT granted, reason, seen_epoch FROM repl.claim_epoch('someone', 5);
-- 1.6: autovacuum never truncates the tables written for every tick or batch
SELECT c.relname, c.reloptions FROM pg_class c
 WHERE c.relnamespace = 'repl'::regnamespace AND c.relkind = 'r' AND c.reloptions IS NOT NULL
 ORDER BY 1;
-- 1.7: a follower's supervisor forgets its retained ticks
SELECT pg_get_function_identity_arguments('repl.forget_retained'::regproc);
SELECT has_function_privilege('public', 'repl.forget_retained(bigint)', 'EXECUTE') AS public_forget;
SELECT prosrc LIKE '%repl.forget_retained(retain_from)%' AS calls_forget
  FROM pg_proc WHERE oid = 'repl.follower_sync_cluster'::regproc;
SELECT repl.remove_table('upgraded');
DROP EXTENSION repl_ext;
DROP SCHEMA repl;
DROP TABLE upgraded;
