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

extern void repl_guc_init(void);

#endif							/* REPL_EXT_GUC_H */
