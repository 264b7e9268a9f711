/*-------------------------------------------------------------------------
 *
 * ddl.h
 *		Schema changes: running the DDL commands of repl.execute_ddl.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_DDL_H
#define REPL_EXT_DDL_H

extern void repl_ddl_run(const char *command);

#endif							/* REPL_EXT_DDL_H */
