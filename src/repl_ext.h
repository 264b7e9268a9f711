/*-------------------------------------------------------------------------
 *
 * repl_ext.h
 *		Project-wide constants and small shared typedefs of repl_ext.
 *
 * Positions: a "tick" is a snapshot of the leader recorded in repl.tick.
 * A batch is the set of transactions visible in one tick's snapshot but not
 * in an earlier tick's; a follower's position is the id of the last tick it
 * has applied.  Tick ids only grow, so a position is a bigint.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_H
#define REPL_EXT_H

/* Version of the batch wire format (protocol.c). */
#define REPL_PROTOCOL_VERSION	3
#define REPL_PROTOCOL_MIN_VERSION	2	/* oldest version still read */

/* Number of log tables the change log rotates through (repl.log_0 ..). */
#define REPL_NUM_LOG_TABLES		3

/* Name of our schema; the control file fixes it. */
#define REPL_SCHEMA				"repl"

/* Change kinds as stored in repl.log.op and sent in batches. */
#define REPL_OP_INSERT			'I'
#define REPL_OP_UPDATE			'U'
#define REPL_OP_DELETE			'D'
#define REPL_OP_TRUNCATE		'T'
#define REPL_OP_ADD_TABLE		'A'
#define REPL_OP_REMOVE_TABLE	'R'
#define REPL_OP_DDL				'S'	/* repl.execute_ddl: SQL to replay */
#define REPL_OP_TICK			'K'	/* batches only: end of one tick */
#define REPL_OP_SEQUENCE		'Q'	/* batches only: a sequence's value */

/* Role of the local node (repl.local_node.role). */
typedef enum ReplRole
{
	REPL_ROLE_NONE = 0,
	REPL_ROLE_LEADER,
	REPL_ROLE_FOLLOWER,
	REPL_ROLE_FENCED			/* a former leader that learned of a newer
								 * epoch: refuses writes until rejoin */
} ReplRole;

/* Format of one logged column value. */
#define REPL_VALUE_NULL			'n'
#define REPL_VALUE_BINARY		'b'
#define REPL_VALUE_TEXT			't'

#endif							/* REPL_EXT_H */
