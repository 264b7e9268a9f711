/* repl_ext--1.5--1.6.sql: autovacuum never truncates the tables written
 * for every tick or batch */

\echo Use "ALTER EXTENSION repl_ext UPDATE TO '1.6'" to load this file. \quit

-- VACUUM's last step, cutting empty pages off the end of a table, takes
-- ACCESS EXCLUSIVE on it and keeps it until a waiter's deadlock_timeout
-- cancels autovacuum: about a second in which no tick is cut (repl.tick)
-- and no synchronous commit returns, or the follower applies nothing
-- (repl.local_node, repl.retained) or its sender cannot record its position
-- (repl.followers).  The next inserts reuse the freed space instead.
-- repl.tick is also vacuumed without cost delay: the tick lock conflicts
-- with VACUUM's SHARE UPDATE EXCLUSIVE, so ticks wait while it runs.
ALTER TABLE repl.tick SET (vacuum_truncate = false, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE repl.retained SET (vacuum_truncate = false);
ALTER TABLE repl.local_node SET (vacuum_truncate = false);
ALTER TABLE repl.followers SET (vacuum_truncate = false);
