/*-------------------------------------------------------------------------
 *
 * worker.h
 *		Background workers: the supervisor and one sender per follower.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_WORKER_H
#define REPL_EXT_WORKER_H

#include "fmgr.h"

extern void repl_worker_init(void);

extern PGDLLEXPORT void repl_supervisor_main(Datum main_arg);
extern PGDLLEXPORT void repl_sender_main(Datum main_arg);

#endif							/* REPL_EXT_WORKER_H */
