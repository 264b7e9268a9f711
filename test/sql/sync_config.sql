-- Synchronous followers on one node: the settings, moving the role, and the
-- rule that at most one follower is synchronous.  No follower here streams,
-- so nothing in this file ever waits (the waits are tested by TAP).
SET client_min_messages = warning;

SHOW repl_ext.synchronous_commit;
SHOW repl_ext.synchronous_mode;
SHOW repl_ext.synchronous_timeout;
SHOW repl_ext.synchronous_failover_timeout;
SHOW repl_ext.synchronous_flush_overlap;
-- per transaction and per session
BEGIN;
SET LOCAL repl_ext.synchronous_commit = off;
SHOW repl_ext.synchronous_commit;
COMMIT;
SHOW repl_ext.synchronous_commit;
SET repl_ext.synchronous_commit = maybe;
-- cluster-wide settings belong in postgresql.conf
SET repl_ext.synchronous_mode = degrade;
SET repl_ext.synchronous_timeout = '1s';
SELECT name, setting, unit, context, enumvals FROM pg_settings
 WHERE name LIKE 'repl_ext.synchronous%' ORDER BY name;

-- two followers recorded directly, paused so that no sender runs
INSERT INTO repl.followers (node_name, conninfo, applied_tick, phase, paused)
VALUES ('fa', 'dbname=nowhere', 1, 'copy', true),
	   ('fb', 'dbname=nowhere', 1, 'copy', true);

SELECT repl.set_synchronous('nobody');
SELECT repl.set_synchronous(NULL);
SELECT repl.set_synchronous('fa', NULL);
SELECT repl.set_synchronous('fa');
SELECT repl.set_synchronous('fa');          -- again: nothing to do
SELECT node_name, synchronous FROM repl.followers ORDER BY node_name;
-- a follower still to be copied is pending: commits do not wait for it yet
SELECT node_name, synchronous, sync_state, waiting_commits, longest_wait_seconds
  FROM repl.status ORDER BY node_name;
SELECT repl.set_synchronous('fb');          -- moves the role
SELECT node_name, synchronous FROM repl.followers ORDER BY node_name;

-- at most one synchronous follower
UPDATE repl.followers SET synchronous = true;
SELECT repl.add_follower('fc', 'dbname=contrib_regression', synchronous => true);
SELECT node_name, synchronous FROM repl.followers ORDER BY node_name;

SELECT repl.set_synchronous('fb', false);
SELECT repl.set_synchronous('fb', false);   -- again: nothing to do
SELECT node_name, synchronous, sync_state FROM repl.status ORDER BY node_name;

DELETE FROM repl.followers;
