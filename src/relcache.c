/*-------------------------------------------------------------------------
 *
 * relcache.c
 *		Per-relation metadata cache used by the capture trigger and by apply.
 *
 * Hot paths never look at the catalogs: the first row of a relation builds
 * an entry (column names, types, which columns form the replica identity,
 * how each value travels), and a relcache invalidation of the relation -
 * any ALTER TABLE - marks it invalid so that the next row rebuilds it.
 * Entries live in their own child of CacheMemoryContext.
 *
 * Value formats: a built-in type whose binary send format contains neither
 * type OIDs of user objects nor text in the client encoding travels in
 * binary (send/recv), which is independent of session settings and of the
 * server version.  Everything else travels as text; text of a type that is
 * not a plain string type is produced and parsed under fixed settings
 * (repl_fixed_settings_begin), so DateStyle, TimeZone and friends of the
 * writing or applying session never change a value.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/transam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "utils/fmgroids.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "relcache.h"

static HTAB *relinfo_hash = NULL;
static MemoryContext relinfo_context = NULL;

static void
relinfo_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	ReplRelInfo *ri;

	if (relinfo_hash == NULL)
		return;
	if (OidIsValid(relid))
	{
		ri = hash_search(relinfo_hash, &relid, HASH_FIND, NULL);
		if (ri != NULL)
			ri->valid = false;
		return;
	}
	hash_seq_init(&status, relinfo_hash);
	while ((ri = hash_seq_search(&status)) != NULL)
		ri->valid = false;
}

static void
relinfo_init_hash(void)
{
	HASHCTL		ctl;

	relinfo_context = AllocSetContextCreate(CacheMemoryContext,
											"repl_ext relation cache",
											ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(ReplRelInfo);
	ctl.hcxt = relinfo_context;
	relinfo_hash = hash_create("repl_ext relation cache", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(relinfo_invalidate, (Datum) 0);
}

/*
 * repl_type_is_binary_safe
 *		True if values of typid can travel in binary send/recv format
 *		between any two nodes: built-in (stable OIDs), not a string type
 *		(their send converts to the client encoding), not composite.
 */
bool
repl_type_is_binary_safe(Oid typid)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		result;

	if (typid >= FirstGenbkiObjectId)
		return false;
	switch (typid)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case JSONOID:
		case JSONBOID:
		case JSONPATHOID:
		case XMLOID:
		case TSVECTOROID:
		case TSQUERYOID:
		case UNKNOWNOID:
		case CSTRINGOID:
		case REGPROCOID:
		case REGPROCEDUREOID:
		case REGOPEROID:
		case REGOPERATOROID:
		case REGCLASSOID:
		case REGTYPEOID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
		case REGNAMESPACEOID:
		case REGROLEOID:
		case REGCOLLATIONOID:
		case OIDOID:
			return false;
		default:
			break;
	}
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tup);
	if (!OidIsValid(typ->typsend) || !OidIsValid(typ->typreceive))
		result = false;
	else if (typ->typtype == TYPTYPE_COMPOSITE ||
			 typ->typtype == TYPTYPE_PSEUDO)
		result = false;
	else if (OidIsValid(typ->typelem) && IsTrueArrayType(typ))
		result = repl_type_is_binary_safe(typ->typelem);
	else
		result = true;
	ReleaseSysCache(tup);
	return result;
}

/*
 * repl_type_needs_fixed_settings
 *		True if the text form of typid may depend on session settings, that
 *		is, it is not a plain string type.
 */
bool
repl_type_needs_fixed_settings(Oid typid)
{
	Oid			base = getBaseType(typid);

	switch (base)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case JSONOID:
		case JSONBOID:
			return false;
		default:
			/* xml too: xmloption decides what its input accepts */
			return true;
	}
}

/*
 * repl_fixed_settings_begin / repl_fixed_settings_end
 *		Produce or parse text values under settings that do not depend on
 *		the session.  The settings are undone by end (or by transaction
 *		abort).
 */
int
repl_fixed_settings_begin(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("timezone", "UTC", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("bytea_output", "hex", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/* input side: a NULL in an array literal is NULL, not the string */
	(void) set_config_option("array_nulls", "on", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/* input side: xml content fragments as well as documents */
	(void) set_config_option("xmloption", "content", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/* reg* types: output schema-qualifies every name, input needs no path */
	(void) set_config_option("search_path", "", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
repl_fixed_settings_end(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

/*
 * repl_relation_has_identity
 *		Whether rel has a usable replica identity; *identity gets 'd' (primary
 *		key), 'i' (index) or 'f' (full).
 */
bool
repl_relation_has_identity(Relation rel, char *identity)
{
	char		ident = rel->rd_rel->relreplident;

	if (ident == REPLICA_IDENTITY_FULL)
	{
		*identity = REPLICA_IDENTITY_FULL;
		return true;
	}
	if (ident == REPLICA_IDENTITY_NOTHING)
		return false;
	if (!OidIsValid(RelationGetReplicaIndex(rel)))
		return false;
	*identity = ident;
	return true;
}

static void
relinfo_build(ReplRelInfo *ri, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(relinfo_context);
	int			i;

	if (ri->cols)
		pfree(ri->cols);
	if (ri->keyatts)
		pfree(ri->keyatts);
	ri->cols = NULL;
	ri->keyatts = NULL;
	ri->nkeys = 0;
	ri->fixed_settings = false;

	if (!repl_relation_has_identity(rel, &ri->identity))
	{
		bool		deferrable_pkey = false;
		ListCell   *lc;

		foreach(lc, RelationGetIndexList(rel))
		{
			HeapTuple	itup = SearchSysCache1(INDEXRELID,
											   ObjectIdGetDatum(lfirst_oid(lc)));

			if (!HeapTupleIsValid(itup))
				continue;
			if (((Form_pg_index) GETSTRUCT(itup))->indisprimary &&
				!((Form_pg_index) GETSTRUCT(itup))->indimmediate)
				deferrable_pkey = true;
			ReleaseSysCache(itup);
		}
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no primary key or replica identity",
						RelationGetRelationName(rel)),
				 deferrable_pkey ?
				 errdetail("A deferrable primary key cannot identify rows.") : 0,
				 errhint("Add a primary key or set REPLICA IDENTITY to an index or FULL.")));
	}

	ri->natts = desc->natts;
	ri->cols = palloc0(sizeof(ReplRelColumn) * Max(desc->natts, 1));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		ReplRelColumn *col = &ri->cols[i];

		namestrcpy(&col->name, NameStr(att->attname));
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		col->skip = att->attisdropped || att->attgenerated != '\0';
		if (col->skip)
			continue;
		col->binary = repl_type_is_binary_safe(att->atttypid);
		if (!col->binary && repl_type_needs_fixed_settings(att->atttypid))
			ri->fixed_settings = true;
	}

	if (ri->identity == REPLICA_IDENTITY_FULL)
	{
		ri->identity_index = InvalidOid;
		ri->keyatts = palloc(sizeof(AttrNumber) * Max(desc->natts, 1));
		for (i = 0; i < desc->natts; i++)
		{
			if (ri->cols[i].skip)
				continue;
			ri->cols[i].is_key = true;
			ri->keyatts[ri->nkeys++] = i + 1;
		}
	}
	else
	{
		Relation	idx;

		ri->identity_index = RelationGetReplicaIndex(rel);
		idx = index_open(ri->identity_index, AccessShareLock);
		ri->keyatts = palloc(sizeof(AttrNumber) *
							 Max(idx->rd_index->indnkeyatts, 1));
		for (i = 0; i < idx->rd_index->indnkeyatts; i++)
		{
			AttrNumber	attnum = idx->rd_index->indkey.values[i];

			if (attnum <= 0)
				elog(ERROR, "replica identity index of \"%s\" has an expression",
					 RelationGetRelationName(rel));
			ri->cols[attnum - 1].is_key = true;
			ri->keyatts[ri->nkeys++] = attnum;
		}
		index_close(idx, AccessShareLock);
	}
	MemoryContextSwitchTo(old);
	ri->valid = true;
}

/*
 * repl_relinfo_get
 *		The cached entry for rel, built if missing or invalidated.  Raises an
 *		error if rel has no usable replica identity.  The entry stays valid
 *		until the next relcache invalidation; callers must not keep it across
 *		transactions.
 */
ReplRelInfo *
repl_relinfo_get(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	ReplRelInfo *ri;
	bool		found;

	if (relinfo_hash == NULL)
		relinfo_init_hash();
	ri = hash_search(relinfo_hash, &relid, HASH_ENTER, &found);
	if (!found)
	{
		ri->valid = false;
		ri->cols = NULL;
		ri->keyatts = NULL;
	}
	if (!ri->valid)
		relinfo_build(ri, rel);
	return ri;
}

/*
 * repl_relinfo_prepare_output / repl_relinfo_prepare_input
 *		Look up the send/out or recv/in function of one column, once.
 */
void
repl_relinfo_prepare_output(ReplRelInfo *ri, int attidx)
{
	ReplRelColumn *col = &ri->cols[attidx];
	Oid			func;
	bool		isvarlena;

	if (col->out_ready)
		return;
	if (col->binary)
		getTypeBinaryOutputInfo(col->typid, &func, &isvarlena);
	else
		getTypeOutputInfo(col->typid, &func, &isvarlena);
	fmgr_info_cxt(func, &col->outfn, relinfo_context);
	col->out_ready = true;
}

void
repl_relinfo_prepare_input(ReplRelInfo *ri, int attidx, bool binary)
{
	ReplRelColumn *col = &ri->cols[attidx];
	Oid			func;

	if (binary && !col->recv_ready)
	{
		getTypeBinaryInputInfo(col->typid, &func, &col->ioparam);
		fmgr_info_cxt(func, &col->recvfn, relinfo_context);
		col->recv_ready = true;
	}
	else if (!binary && !col->in_ready)
	{
		getTypeInputInfo(col->typid, &func, &col->ioparam);
		fmgr_info_cxt(func, &col->infn, relinfo_context);
		col->in_ready = true;
	}
}

/*
 * repl_relinfo_find_column
 *		Attribute index (attnum - 1) of the column named name, or -1.
 */
int
repl_relinfo_find_column(ReplRelInfo *ri, const char *name, int namelen)
{
	int			i;

	for (i = 0; i < ri->natts; i++)
	{
		const char *colname = NameStr(ri->cols[i].name);

		if (ri->cols[i].skip)
			continue;
		if (strncmp(colname, name, namelen) == 0 && colname[namelen] == '\0')
			return i;
	}
	return -1;
}
