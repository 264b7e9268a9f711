/* pg_stubs.h: what the fuzz harnesses share with pg_stubs.c */
#ifndef REPL_EXT_PG_STUBS_H
#define REPL_EXT_PG_STUBS_H

#include <setjmp.h>

extern sigjmp_buf fuzz_error_jump;
extern int	fuzz_errors;
extern void fuzz_arena_reset(void);

#endif
