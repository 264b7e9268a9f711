/*-------------------------------------------------------------------------
 *
 * guc.c
 *		Every repl_ext configuration parameter.
 *
 * Sizes and the worker's database are fixed at server start; anything a
 * worker reads can change on reload (SIGHUP).  Time values are integers with
 * units, so '10ms' and '5s' work as they do for wal_receiver_timeout.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "guc.h"

char	   *repl_database = NULL;
int			repl_max_followers = 8;
int			repl_batch_interval = 10;
int			repl_batch_max_changes = 10000;
int			repl_network_timeout = 30000;
int			repl_retry_interval = 5000;
int			repl_log_rotate_interval = 60;
int			repl_max_retention = 86400;
bool		repl_synchronous_commit = true;
bool		repl_synchronous_flush_overlap = true;
int			repl_synchronous_mode = REPL_SYNC_STRICT;
int			repl_synchronous_timeout = 10000;
int			repl_synchronous_failover_timeout = 5000;
int			repl_fence_timeout = 0;
bool		repl_follower_read_only = false;
bool		repl_auto_failover = false;
int			repl_leader_timeout = 10000;

static const struct config_enum_entry sync_mode_options[] = {
	{"strict", REPL_SYNC_STRICT, false},
	{"degrade", REPL_SYNC_DEGRADE, false},
	{NULL, 0, false}
};

/*
 * repl_guc_init
 *		Define the parameters.  Called from _PG_init while preloading.
 */
void
repl_guc_init(void)
{
	DefineCustomStringVariable("repl_ext.database",
							   "Database in which the repl_ext background workers run.",
							   "Only this database of the instance can take part in replication.",
							   &repl_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.max_followers",
							"Maximum number of followers a leader can stream to.",
							"Each follower needs one background worker slot.",
							&repl_max_followers,
							8, 1, 64,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.batch_interval",
							"Longest delay between a commit and the batch that contains it.",
							"The leader cuts a batch at most this long after the previous one when there are new commits.",
							&repl_batch_interval,
							10, 1, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.batch_max_changes",
							"Number of changes after which the leader stops merging batches for a follower.",
							"A single transaction larger than this is still sent whole.",
							&repl_batch_max_changes,
							10000, 1, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.network_timeout",
							"Time after which an unresponsive follower connection is abandoned.",
							NULL,
							&repl_network_timeout,
							30000, 1000, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.retry_interval",
							"Longest wait before reconnecting to a follower after an error.",
							"Retries start after 100 ms and back off exponentially up to this value.",
							&repl_retry_interval,
							5000, 100, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.log_rotate_interval",
							"Time after which the leader switches to the next replication log table.",
							"A log table is truncated once every follower has applied all of it.",
							&repl_log_rotate_interval,
							60, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.max_retention",
							"Time a follower may stay behind before the leader stops keeping changes for it.",
							"Such a follower is marked as needing re-synchronisation. Zero keeps changes forever.",
							&repl_max_retention,
							86400, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("repl_ext.synchronous_commit",
							 "Whether a commit that changed replicated tables waits for the synchronous follower.",
							 "Only matters while a follower is synchronous. Can be turned off per session or transaction (SET LOCAL).",
							 &repl_synchronous_commit,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("repl_ext.synchronous_flush_overlap",
							 "Whether a commit that waits for the synchronous follower flushes its WAL while the follower applies it.",
							 "On: the commit becomes visible before its local WAL flush, which runs in parallel with shipping; the client still gets its result only after the flush and the follower's confirmation. Off: flush first, then ship (other sessions never see rows that are not yet durable locally).",
							 &repl_synchronous_flush_overlap,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("repl_ext.synchronous_mode",
							 "What commits do when the synchronous follower does not confirm them.",
							 "strict: wait until a follower confirms. degrade: after repl_ext.synchronous_timeout, return with a WARNING and stop waiting until a follower is synchronous again.",
							 &repl_synchronous_mode,
							 REPL_SYNC_STRICT,
							 sync_mode_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.synchronous_timeout",
							"Longest time a commit waits for the synchronous follower in degrade mode.",
							"Has no effect with repl_ext.synchronous_mode = strict.",
							&repl_synchronous_timeout,
							10000, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.synchronous_failover_timeout",
							"Time after which a synchronous follower that does not confirm is replaced.",
							"After this long disconnected, or with a commit waiting this long, the most up-to-date streaming asynchronous follower becomes synchronous.",
							&repl_synchronous_failover_timeout,
							5000, 100, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.fence_timeout",
							"Time without contact with any follower after which a leader stops acknowledging commits.",
							"While a synchronous follower is configured, a leader that has reached no follower for this long never lets a commit stop waiting (not even in degrade mode): it may have been replaced. 0 turns this off.",
							&repl_fence_timeout,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("repl_ext.follower_read_only",
							 "Makes sessions on a follower read-only by default.",
							 "When a node becomes a follower (or is fenced), repl_ext sets default_transaction_read_only = on for repl_ext.database, so that clients using target_session_attrs=read-write find the leader; it resets it when the node leads or leaves the cluster.",
							 &repl_follower_read_only,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("repl_ext.auto_failover",
							 "Lets followers elect a new leader when the leader is silent.",
							 "A follower that has heard nothing from its leader for repl_ext.leader_timeout, and cannot reach it, asks the other nodes for their votes; with a majority of the cluster it promotes itself.",
							 &repl_auto_failover,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("repl_ext.leader_timeout",
							"Time without a heartbeat or batch from the leader after which it counts as dead.",
							"Only with repl_ext.auto_failover. The leader's senders contact every follower at least once a second, independently of user transactions.",
							&repl_leader_timeout,
							10000, 1000, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("repl_ext");
}
