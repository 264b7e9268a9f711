/*-------------------------------------------------------------------------
 *
 * guc.h
 *		repl_ext configuration parameters (all defined in guc.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_GUC_H
#define REPL_EXT_GUC_H

extern char *repl_database;
extern int	repl_max_followers;
extern int	repl_batch_interval;
extern int	repl_batch_max_changes;
extern int	repl_network_timeout;
extern int	repl_retry_interval;
extern int	repl_log_rotate_interval;
extern int	repl_max_retention;
extern bool repl_synchronous_commit;
extern bool repl_synchronous_flush_overlap;
extern int	repl_synchronous_mode;
extern int	repl_synchronous_timeout;
extern int	repl_synchronous_failover_timeout;
extern int	repl_fence_timeout;
extern bool repl_follower_read_only;
extern bool repl_auto_failover;
extern int	repl_leader_timeout;

/* Values of repl_ext.synchronous_mode */
typedef enum ReplSyncMode
{
	REPL_SYNC_STRICT,			/* wait until a follower confirms */
	REPL_SYNC_DEGRADE			/* stop waiting after synchronous_timeout */
} ReplSyncMode;

extern void repl_guc_init(void);

#endif							/* REPL_EXT_GUC_H */
