/*-------------------------------------------------------------------------
 *
 * capture.h
 *		Capture trigger and the replicated-table catalog.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_CAPTURE_H
#define REPL_EXT_CAPTURE_H

#include "utils/rel.h"

#include "follower.h"

extern bool repl_install_capture(Relation rel);
extern bool repl_uninstall_capture(Oid relid);
extern void repl_protect_tables(bool protect);
extern List *repl_replicated_table_names(MemoryContext cxt);
extern List *repl_replicated_relids(MemoryContext cxt);
extern void repl_check_leader_writable(const ReplLocalNode *node,
									   const char *what);

#endif							/* REPL_EXT_CAPTURE_H */
