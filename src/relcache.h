/*-------------------------------------------------------------------------
 *
 * relcache.h
 *		Per-relation metadata for capture and apply: key columns, value
 *		formats and I/O functions, built once and dropped on invalidation.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_RELCACHE_H
#define REPL_EXT_RELCACHE_H

#include "fmgr.h"
#include "utils/rel.h"

typedef struct ReplRelColumn
{
	NameData	name;
	Oid			typid;
	int32		typmod;
	bool		skip;			/* dropped or generated: never sent */
	bool		is_key;			/* part of the replica identity */
	bool		binary;			/* sent with send/recv, else out/in */
	bool		out_ready;		/* outfn set up (capture) */
	bool		recv_ready;		/* recvfn set up (apply) */
	bool		in_ready;		/* infn set up (apply) */
	FmgrInfo	outfn;			/* typsend or typoutput */
	FmgrInfo	recvfn;			/* typreceive */
	FmgrInfo	infn;			/* typinput */
	Oid			ioparam;
} ReplRelColumn;

typedef struct ReplRelInfo
{
	Oid			relid;			/* hash key */
	bool		valid;
	char		identity;		/* REPLICA_IDENTITY_xxx as resolved */
	Oid			identity_index; /* InvalidOid with identity FULL */
	int			natts;
	ReplRelColumn *cols;		/* indexed by attnum - 1 */
	int			nkeys;
	AttrNumber *keyatts;		/* attnums of the identity, index order */
	bool		fixed_settings; /* a column needs fixed text settings */
} ReplRelInfo;

extern ReplRelInfo *repl_relinfo_get(Relation rel);
extern bool repl_relation_has_identity(Relation rel, char *identity);
extern void repl_relinfo_prepare_output(ReplRelInfo *ri, int attidx);
extern void repl_relinfo_prepare_input(ReplRelInfo *ri, int attidx,
									   bool binary);
extern int	repl_relinfo_find_column(ReplRelInfo *ri, const char *name,
									 int namelen);
extern bool repl_type_is_binary_safe(Oid typid);
extern bool repl_type_needs_fixed_settings(Oid typid);
extern int	repl_fixed_settings_begin(void);
extern void repl_fixed_settings_end(int nestlevel);

#endif							/* REPL_EXT_RELCACHE_H */
