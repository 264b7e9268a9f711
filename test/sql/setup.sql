-- Install repl_ext and make this node a leader.
SET client_min_messages = warning;
CREATE EXTENSION repl_ext;
SELECT extname, extversion FROM pg_extension WHERE extname = 'repl_ext';

-- no role yet
SELECT node_name, role, leader_name, epoch FROM repl.node_info();
CREATE TABLE early (id int PRIMARY KEY);
SELECT repl.add_table('early');
SELECT repl.wait_for_catchup();
DROP TABLE early;

-- bad arguments
SELECT repl.init_leader(NULL, 'dbname=contrib_regression');
SELECT repl.init_leader('', 'dbname=contrib_regression');
SELECT repl.init_leader('n1', 'this is not a conninfo');
SELECT repl.init_leader(repeat('x', 64), 'dbname=contrib_regression');

SELECT repl.init_leader('n1', 'dbname=contrib_regression');
-- calling again is harmless; another name is refused
SELECT repl.init_leader('n1', 'dbname=contrib_regression');
SELECT repl.init_leader('other', 'dbname=contrib_regression');
SELECT node_name, role, leader_name, epoch FROM repl.node_info();
SELECT * FROM repl.status;
