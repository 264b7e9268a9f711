/*-------------------------------------------------------------------------
 *
 * follower.h
 *		The node catalog: this node's identity and role, and the leader's
 *		list of followers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_FOLLOWER_H
#define REPL_EXT_FOLLOWER_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"

#include "repl_ext.h"

typedef struct ReplLocalNode
{
	ReplRole	role;
	char	   *node_name;
	char	   *conninfo;
	char	   *leader_name;
	int64		epoch;
	int64		applied_tick;
	int64		applied_epoch;	/* epoch of the batch that gave applied_tick */
} ReplLocalNode;

extern const ReplLocalNode *repl_local_node(void);
extern void repl_local_node_changed(void);
extern const ReplLocalNode *repl_local_node_fresh(void);
extern Oid	repl_catalog_relid(const char *relname);

/* Called by repl_catalog_scan for each row; false stops the scan. */
typedef bool (*ReplCatalogRowFn) (HeapTuple tup, TupleDesc desc, void *arg);
extern void repl_catalog_scan(const char *relname, ReplCatalogRowFn fn,
							  void *arg);
extern AttrNumber repl_catalog_attnum(TupleDesc desc, const char *colname);
extern void repl_require_role(ReplRole role, const char *funcname);
extern int64 repl_read_applied_tick(void);
extern char *repl_arg_node_name(FunctionCallInfo fcinfo, int argno);
extern char *repl_arg_conninfo(FunctionCallInfo fcinfo, int argno);

#endif							/* REPL_EXT_FOLLOWER_H */
