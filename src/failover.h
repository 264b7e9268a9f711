/*-------------------------------------------------------------------------
 *
 * failover.h
 *		Epochs, promote, switchover, rejoin and fencing.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_FAILOVER_H
#define REPL_EXT_FAILOVER_H

#include "changelog.h"

extern bool repl_position_diverged(int64 applied_epoch, int64 applied_tick,
								   char **why);
extern bool repl_read_retained(int64 from_tick, const char *leader_name,
							   int64 epoch, MemoryContext outcxt,
							   ReplBatch *batch);
extern void repl_fence_self(const char *leader_name, int64 epoch);
extern void repl_set_read_only_default(bool read_only);
extern void repl_clear_leader_state(void);
extern void repl_note_leader_contact(void);
extern long repl_failover_watch(void);

#endif							/* REPL_EXT_FAILOVER_H */
