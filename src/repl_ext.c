/*-------------------------------------------------------------------------
 *
 * repl_ext.c
 *		Module entry point of repl_ext.
 *
 * The library must be preloaded: it needs shared memory and registers the
 * supervisor background worker at postmaster start.  Loaded any other way,
 * _PG_init does nothing and every SQL entry point, starting with the check
 * run by CREATE EXTENSION, refuses with a hint.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lwlock.h"

#include "guc.h"
#include "shmem.h"
#include "worker.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(repl_check_installable);

void		_PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	repl_guc_init();
	repl_shmem_init();
	repl_worker_init();
}

/*
 * repl.check_installable() returns void
 *		Run by the install script: refuse unless preloaded and in the
 *		database the workers use.
 */
Datum
repl_check_installable(PG_FUNCTION_ARGS)
{
	char	   *dbname;

	repl_check_preloaded();
	dbname = get_database_name(MyDatabaseId);
	if (strcmp(dbname, repl_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("repl_ext can only be installed in database \"%s\"",
						repl_database),
				 errdetail("repl_ext.database names the database whose tables repl_ext replicates."),
				 errhint("Set repl_ext.database = '%s' in postgresql.conf and restart the server to use this database.",
						 dbname)));

	/* a new install starts writing into repl.log_0 */
	LWLockAcquire(repl_shared->lock, LW_EXCLUSIVE);
	repl_shared->cur_log_valid = false;
	LWLockRelease(repl_shared->lock);
	PG_RETURN_VOID();
}
