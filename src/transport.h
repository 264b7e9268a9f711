/*-------------------------------------------------------------------------
 *
 * transport.h
 *		Connections to other nodes.  The only interface to libpq.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPL_EXT_TRANSPORT_H
#define REPL_EXT_TRANSPORT_H

typedef struct ReplConn ReplConn;

/* Outcome of a remote command; rows are copied out of libpq. */
typedef struct ReplResult
{
	bool		ok;
	char		sqlstate[6];	/* "" when the failure was not remote SQL */
	char	   *message;		/* error message, NULL when ok */
	char	   *detail;
	char	   *hint;
	char	   *context;		/* where on the remote side, or NULL */
	int			ntuples;
	int			nfields;
	char	  **values;			/* ntuples * nfields, NULL for SQL NULL */
} ReplResult;

/* Runs while a command sent with it waits for its commit (see transport.c). */
typedef void (*ReplBeforeCommit) (void *arg);

/* Called during a copy; returning false abandons it. */
typedef bool (*ReplCopyProgress) (void *arg, int64 rows, int64 bytes);

extern bool repl_conninfo_is_valid(const char *conninfo, char **err);
extern char *repl_conninfo_redact(const char *conninfo);
extern ReplConn *repl_conn_open(const char *conninfo, const char *node_name,
								char **err);
extern ReplConn *repl_conn_open_or_raise(const char *conninfo,
										 const char *node_name,
										 const char *what);
extern void repl_conn_close(ReplConn *conn);
extern ReplResult *repl_conn_exec(ReplConn *conn, const char *sql,
								  int nparams, const char *const *values,
								  const int *lengths, const int *formats);
extern ReplResult *repl_conn_exec_prepared(ReplConn *conn, const char *name,
										   const char *sql, int nparams,
										   const char *const *values,
										   const int *lengths,
										   const int *formats,
										   ReplBeforeCommit before_commit,
										   void *arg);
extern const char *repl_result_value(ReplResult *res, int row, int col);
extern void repl_result_raise(ReplResult *res, const char *node_name);
extern void repl_conn_exec_or_raise(ReplConn *conn, const char *sql,
									int nparams, const char *const *values,
									const char *node_name, ReplResult **res);
extern ReplResult *repl_conn_copy(ReplConn *src, const char *copy_out,
								  ReplConn *dst, const char *copy_in,
								  ReplCopyProgress progress, void *arg);

#endif							/* REPL_EXT_TRANSPORT_H */
