-- Calls that must be refused cleanly, leaving nothing behind.
SET client_min_messages = warning;

-- connection strings
SELECT repl.add_follower('f1', 'port=notanumber host=');
SELECT repl.add_follower('f1', 'this is not a conninfo');
\set VERBOSITY sqlstate
-- nobody listens on port 1
SELECT repl.add_follower('f1', 'host=127.0.0.1 port=1 dbname=contrib_regression connect_timeout=2');
\set VERBOSITY default
SELECT * FROM repl.status;

-- names
SELECT repl.add_follower(NULL, 'dbname=contrib_regression');
SELECT repl.add_follower('', 'dbname=contrib_regression');
SELECT repl.add_follower('n1', 'dbname=contrib_regression');
SELECT repl.add_follower(repeat('y', 64), 'dbname=contrib_regression');
-- this node is a leader, not a follower
SELECT repl.add_follower('self', 'dbname=contrib_regression');
SELECT * FROM repl.status;

-- unknown followers
SELECT repl.remove_follower('nobody');
SELECT repl.pause_follower('nobody');
SELECT repl.resume_follower('nobody');
SELECT repl.wait_for_catchup('nobody');
SELECT repl.wait_for_catchup(NULL, NULL);
SELECT repl.wait_for_catchup(NULL, '-1 s');
-- no followers at all: trivially caught up
SELECT repl.wait_for_catchup(NULL, '30 s');

-- follower-side entry points called on the leader
SELECT repl.follower_handshake('n1', 1);
SELECT repl.apply_batch('\x00'::bytea);
SELECT repl.follower_attach('x', 'n1', 1, 1, '{}');
SELECT repl.follower_detach('n1');
