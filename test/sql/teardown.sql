-- Remove repl_ext and check that nothing is left behind.
SET client_min_messages = warning;
SELECT repl.remove_table(relid) FROM repl.tables ORDER BY 1;
DROP EXTENSION repl_ext;
SELECT count(*) AS leftover_triggers FROM pg_trigger WHERE tgname LIKE 'repl_ext%';
SELECT count(*) AS leftover_objects FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'repl';
SELECT count(*) AS leftover_functions FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'repl';
SELECT count(*) AS leftover_event_triggers FROM pg_event_trigger
 WHERE evtname LIKE 'repl%';
DROP SCHEMA IF EXISTS repl;
DROP TABLE with_pk, ident_full, "My Schema"."Odd ""Table""";
DROP SCHEMA "My Schema";
