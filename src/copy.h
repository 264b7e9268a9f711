/*-------------------------------------------------------------------------
 *
 * copy.h
 *		Snapshot copy and schema sync of tables to a follower.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_COPY_H
#define REPL_EXT_COPY_H

#include "nodes/pg_list.h"

#include "shmem.h"
#include "transport.h"

/* What a sender asks repl_copy_tables to do. */
typedef struct ReplCopyRequest
{
	const char *node_name;		/* the follower */
	const char *leader_name;
	const char *leader_conninfo;	/* how this node reaches itself */
	int64		epoch;
	bool		initial;		/* all tables, then attach the follower */
	bool		truncate_existing;	/* may empty tables with rows */
} ReplCopyRequest;

extern bool repl_copy_tables(ReplConn *fconn, const ReplCopyRequest *req,
							 ReplFollowerSlot *slot, int64 *tick, char **err);
extern char *repl_compare_tables(ReplResult *leader, ReplResult *follower,
								 List **missing, List **nonempty);
extern char *repl_text_array_literal(List *names);

#endif							/* REPL_EXT_COPY_H */
