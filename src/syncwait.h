/*-------------------------------------------------------------------------
 *
 * syncwait.h
 *		Synchronous followers: the commit wait and the supervisor's watch
 *		over the synchronous role.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_SYNCWAIT_H
#define REPL_EXT_SYNCWAIT_H

#include "datatype/timestamp.h"

#include "shmem.h"

extern bool repl_sync_commit_prepare(void);
extern void repl_sync_commit_abort(void);
extern void repl_sync_commit_wait(int64 own_tick);
extern long repl_sync_manage(void);
extern void repl_sync_assign_locked(void);
extern bool repl_slot_is_streaming(const ReplFollowerSlot *slot);
extern int	repl_sync_waiting_locked(TimestampTz *oldest);

extern int64 repl_write_epoch;

#endif							/* REPL_EXT_SYNCWAIT_H */
