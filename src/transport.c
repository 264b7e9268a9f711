/*-------------------------------------------------------------------------
 *
 * transport.c
 *		Connections to other nodes over libpq, from backends and workers.
 *
 * Every wait is interruptible: connecting goes through libpqsrv_connect_params
 * (PQconnectPoll + WaitLatchOrSocket), commands are sent in non-blocking mode
 * with PQflush driven by socket waits (a batch can be many megabytes), and
 * results are collected with libpqsrv_get_result.  SIGTERM, query cancel and
 * postmaster death end a wait as usual.  A dead peer is detected by TCP
 * keepalives and tcp_user_timeout derived from repl_ext.network_timeout.
 *
 * Failures come back as a ReplResult with ok = false, so that workers can
 * record them and retry; backends turn them into errors that keep the remote
 * SQLSTATE, detail and hint (repl_result_raise).  Conninfo strings are never
 * printed: they may hold passwords.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "lib/stringinfo.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "transport.h"

#if PG_VERSION_NUM < 150013
#error "repl_ext needs libpq-be-fe-helpers.h from PostgreSQL 15.13 or later"
#endif

#define REPL_MAX_PREPARED 4

struct ReplConn
{
	PGconn	   *conn;
	int			nprepared;		/* statements prepared on this connection */
	char		prepared[REPL_MAX_PREPARED][NAMEDATALEN];
};

/*
 * repl_conninfo_is_valid
 *		Syntax check of a conninfo string; *err gets libpq's message.
 */
bool
repl_conninfo_is_valid(const char *conninfo, char **err)
{
	char	   *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);

	if (opts == NULL)
	{
		*err = pchomp(msg ? msg : "out of memory");
		if (msg)
			PQfreemem(msg);
		return false;
	}
	PQconninfoFree(opts);
	return true;
}

/*
 * repl_conninfo_redact
 *		conninfo without its secrets (password, sslpassword), for showing to
 *		anyone: the same key = value pairs libpq parsed, values quoted.  NULL
 *		if conninfo does not parse.
 */
char *
repl_conninfo_redact(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	PQconninfoOption *o;
	StringInfoData out;

	if (opts == NULL)
		return NULL;
	initStringInfo(&out);
	for (o = opts; o->keyword != NULL; o++)
	{
		const char *c;

		if (o->val == NULL || strcmp(o->keyword, "password") == 0 ||
			strcmp(o->keyword, "sslpassword") == 0)
			continue;
		if (out.len > 0)
			appendStringInfoChar(&out, ' ');
		appendStringInfo(&out, "%s='", o->keyword);
		for (c = o->val; *c; c++)
		{
			if (*c == '\\' || *c == '\'')
				appendStringInfoChar(&out, '\\');
			appendStringInfoChar(&out, *c);
		}
		appendStringInfoChar(&out, '\'');
	}
	PQconninfoFree(opts);
	return out.data;
}

static char *
conn_error(PGconn *conn)
{
	char	   *msg = pchomp(PQerrorMessage(conn));

	return msg[0] ? msg : pstrdup("connection failed");
}

/*
 * repl_conn_open
 *		Connect to a node.  Returns NULL with *err set when the node cannot
 *		be reached or refuses the connection.
 */
ReplConn *
repl_conn_open(const char *conninfo, const char *node_name, char **err)
{
	const char *keys[10];
	const char *vals[10];
	char		appname[NAMEDATALEN + 16];
	char		connect_timeout[16];
	char		idle[16];
	char		interval[16];
	char		user_timeout[16];
	PGconn	   *conn;
	PGresult   *res;
	ReplConn   *rc;
	int			n = 0;
	int			timeout_s = Max(repl_network_timeout / 1000, 2);

	snprintf(appname, sizeof(appname), "repl_ext:%s", node_name);
	snprintf(connect_timeout, sizeof(connect_timeout), "%d", timeout_s);
	snprintf(idle, sizeof(idle), "%d", Max(timeout_s / 3, 1));
	snprintf(interval, sizeof(interval), "%d", Max(timeout_s / 9, 1));
	snprintf(user_timeout, sizeof(user_timeout), "%d", repl_network_timeout);

	keys[n] = "dbname";
	vals[n++] = conninfo;
	keys[n] = "fallback_application_name";
	vals[n++] = appname;
	keys[n] = "connect_timeout";
	vals[n++] = connect_timeout;
	keys[n] = "keepalives";
	vals[n++] = "1";
	keys[n] = "keepalives_idle";
	vals[n++] = idle;
	keys[n] = "keepalives_interval";
	vals[n++] = interval;
	keys[n] = "keepalives_count";
	vals[n++] = "3";
	keys[n] = "tcp_user_timeout";
	vals[n++] = user_timeout;
	keys[n] = "client_encoding";
	vals[n++] = GetDatabaseEncodingName();
	keys[n] = NULL;
	vals[n] = NULL;

	conn = libpqsrv_connect_params(keys, vals, true,
								   PG_WAIT_EXTENSION);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		*err = conn_error(conn);
		libpqsrv_disconnect(conn);
		return NULL;
	}

	/* as libpqrcv_connect does: nothing may resolve through search_path */
	/*
	 * ... and our calls write on followers, whose sessions start read-only
	 * (repl_ext.follower_read_only)
	 */
	res = libpqsrv_exec(conn, "SELECT pg_catalog.set_config('search_path', '', false),"
						" pg_catalog.set_config('default_transaction_read_only', 'off', false)",
						PG_WAIT_EXTENSION);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		*err = conn_error(conn);
		PQclear(res);
		libpqsrv_disconnect(conn);
		return NULL;
	}
	PQclear(res);
	if (PQsetnonblocking(conn, 1) != 0)
	{
		*err = conn_error(conn);
		libpqsrv_disconnect(conn);
		return NULL;
	}

	rc = MemoryContextAllocZero(TopMemoryContext, sizeof(ReplConn));
	rc->conn = conn;
	return rc;
}

void
repl_conn_close(ReplConn *conn)
{
	if (conn == NULL)
		return;
	libpqsrv_disconnect(conn->conn);
	pfree(conn);
}

static ReplResult *
result_failed(const char *message)
{
	ReplResult *r = palloc0(sizeof(ReplResult));

	r->ok = false;
	r->message = pstrdup(message);
	return r;
}

/* Push the output buffer out, waiting on the socket; false on failure. */
static bool
flush_output(PGconn *conn)
{
	for (;;)
	{
		int			r = PQflush(conn);
		int			rc;

		if (r == 0)
			return true;
		if (r < 0)
			return false;
		rc = WaitLatchOrSocket(MyLatch,
							   WL_EXIT_ON_PM_DEATH | WL_LATCH_SET |
							   WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE,
							   PQsocket(conn), 0, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		/* the server may talk while we write: keep reading */
		if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
			return false;
	}
}

/* A ReplResult (allocated in the current context) from libpq's last result. */
static ReplResult *
convert_result(PGconn *pgconn, PGresult *last)
{
	ReplResult *r;

	if (last == NULL)
		r = result_failed(conn_error(pgconn));
	else if (PQresultStatus(last) == PGRES_TUPLES_OK ||
			 PQresultStatus(last) == PGRES_COMMAND_OK)
	{
		int			i;
		int			j;

		r = palloc0(sizeof(ReplResult));
		r->ok = true;
		r->ntuples = PQntuples(last);
		r->nfields = PQnfields(last);
		r->values = palloc0(sizeof(char *) * Max(r->ntuples * r->nfields, 1));
		for (i = 0; i < r->ntuples; i++)
			for (j = 0; j < r->nfields; j++)
				if (!PQgetisnull(last, i, j))
					r->values[i * r->nfields + j] = pstrdup(PQgetvalue(last, i, j));
	}
	else
	{
		const char *state = PQresultErrorField(last, PG_DIAG_SQLSTATE);
		const char *msg = PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY);
		const char *detail = PQresultErrorField(last, PG_DIAG_MESSAGE_DETAIL);
		const char *hint = PQresultErrorField(last, PG_DIAG_MESSAGE_HINT);
		const char *context = PQresultErrorField(last, PG_DIAG_CONTEXT);

		r = result_failed(msg ? msg : pchomp(PQresultErrorMessage(last)));
		if (state)
			strlcpy(r->sqlstate, state, sizeof(r->sqlstate));
		if (detail)
			r->detail = pstrdup(detail);
		if (hint)
			r->hint = pstrdup(hint);
		if (context)
			r->context = pstrdup(context);
	}
	return r;
}

/*
 * Collect the outcome of the command just sent.  Never raises for remote
 * or network errors; does raise on interrupts.  All PGresults are cleared
 * on every path.
 */
static ReplResult *
collect_result(ReplConn *conn)
{
	PGconn	   *pgconn = conn->conn;
	ReplResult *volatile r = NULL;
	PGresult   *volatile last = NULL;

	PG_TRY();
	{
		PGresult   *res;

		while ((res = libpqsrv_get_result(pgconn, PG_WAIT_EXTENSION)) != NULL)
		{
			PQclear(last);
			last = res;
		}
		r = convert_result(pgconn, last);
	}
	PG_CATCH();
	{
		PQclear(last);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PQclear(last);
	return r;
}

/*
 * repl_conn_exec
 *		Run one command with parameters (text unless formats says binary) and
 *		return its outcome.  Never raises for remote or network errors; does
 *		raise on interrupts.
 */
ReplResult *
repl_conn_exec(ReplConn *conn, const char *sql, int nparams,
			   const char *const *values, const int *lengths,
			   const int *formats)
{
	PGconn	   *pgconn = conn->conn;

	if (!PQsendQueryParams(pgconn, sql, nparams, NULL, values, lengths,
						   formats, 0) ||
		!flush_output(pgconn))
		return result_failed(conn_error(pgconn));
	return collect_result(conn);
}

/*
 * repl_conn_exec_prepared
 *		As repl_conn_exec, for a command run many times on one connection:
 *		it is prepared as statement name on first use (sql gives the
 *		parameter types by casts), so the remote side neither parses nor
 *		plans it again.  At most REPL_MAX_PREPARED names per connection.
 */
ReplResult *
repl_conn_exec_prepared(ReplConn *conn, const char *name, const char *sql,
						int nparams, const char *const *values,
						const int *lengths, const int *formats)
{
	PGconn	   *pgconn = conn->conn;
	int			i;
	bool		prepared = false;

	for (i = 0; i < conn->nprepared; i++)
		if (strcmp(conn->prepared[i], name) == 0)
			prepared = true;
	if (!prepared)
	{
		ReplResult *r;

		if (conn->nprepared >= REPL_MAX_PREPARED)
			elog(ERROR, "too many prepared statements on one connection");
		if (!PQsendPrepare(pgconn, name, sql, nparams, NULL) ||
			!flush_output(pgconn))
			return result_failed(conn_error(pgconn));
		r = collect_result(conn);
		if (!r->ok)
			return r;
		strlcpy(conn->prepared[conn->nprepared++], name, NAMEDATALEN);
	}
	if (!PQsendQueryPrepared(pgconn, name, nparams, values, lengths,
							 formats, 0) ||
		!flush_output(pgconn))
		return result_failed(conn_error(pgconn));
	return collect_result(conn);
}

const char *
repl_result_value(ReplResult *res, int row, int col)
{
	Assert(row < res->ntuples && col < res->nfields);
	return res->values[row * res->nfields + col];
}

/*
 * repl_result_raise
 *		Raise a failed result as an ERROR that keeps the remote SQLSTATE,
 *		detail and hint, naming the node.
 */
void
repl_result_raise(ReplResult *res, const char *node_name)
{
	int			code = ERRCODE_CONNECTION_FAILURE;

	if (res->sqlstate[0])
		code = MAKE_SQLSTATE(res->sqlstate[0], res->sqlstate[1],
							 res->sqlstate[2], res->sqlstate[3],
							 res->sqlstate[4]);
	ereport(ERROR,
			(errcode(code),
			 errmsg("%s", res->message),
			 res->detail ? errdetail_internal("%s", res->detail) : 0,
			 res->hint ? errhint("%s", res->hint) : 0,
			 errcontext("on node \"%s\"", node_name)));
}

/*
 * repl_conn_open_or_raise
 *		repl_conn_open for a function a user called: an unreachable node is
 *		an error naming it (what: e.g. 'follower "n2"'), with libpq's text.
 */
ReplConn *
repl_conn_open_or_raise(const char *conninfo, const char *node_name,
						const char *what)
{
	char	   *err;
	ReplConn   *conn = repl_conn_open(conninfo, node_name, &err);

	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to %s", what),
				 errdetail_internal("%s", err)));
	return conn;
}

/*
 * repl_conn_exec_or_raise
 *		repl_conn_exec with text parameters, raising on failure.  *res (if
 *		not NULL) receives the result.
 */
void
repl_conn_exec_or_raise(ReplConn *conn, const char *sql, int nparams,
						const char *const *values, const char *node_name,
						ReplResult **res)
{
	ReplResult *r = repl_conn_exec(conn, sql, nparams, values, NULL, NULL);

	if (!r->ok)
		repl_result_raise(r, node_name);
	if (res)
		*res = r;
}

/* Wait until sock is ready for what events asks, handling interrupts. */
static void
wait_socket(PGconn *conn, int events)
{
	int			rc = WaitLatchOrSocket(MyLatch,
									   WL_EXIT_ON_PM_DEATH | WL_LATCH_SET | events,
									   PQsocket(conn), 0, PG_WAIT_EXTENSION);

	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Start a COPY on conn and wait for the server to enter copy state. */
static bool
start_copy(PGconn *conn, const char *sql, ExecStatusType expected,
		   ReplResult **failure)
{
	PGresult   *res;

	if (!PQsendQuery(conn, sql) || !flush_output(conn))
	{
		*failure = result_failed(conn_error(conn));
		return false;
	}
	res = libpqsrv_get_result(conn, PG_WAIT_EXTENSION);
	if (res != NULL && PQresultStatus(res) == expected)
	{
		PQclear(res);
		return true;
	}
	if (res == NULL)
		*failure = result_failed(conn_error(conn));
	else
	{
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);

		*failure = result_failed(msg ? msg : pchomp(PQresultErrorMessage(res)));
		if (state)
			strlcpy((*failure)->sqlstate, state, sizeof((*failure)->sqlstate));
		if (detail)
			(*failure)->detail = pstrdup(detail);
		PQclear(res);
	}
	return false;
}

/* Collect the results that end a COPY; NULL when it succeeded. */
static ReplResult *
finish_copy(PGconn *conn)
{
	ReplResult *failure = NULL;
	PGresult   *res;

	while ((res = libpqsrv_get_result(conn, PG_WAIT_EXTENSION)) != NULL)
	{
		if (failure == NULL && PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);

			failure = result_failed(msg ? msg : pchomp(PQresultErrorMessage(res)));
			if (state)
				strlcpy(failure->sqlstate, state, sizeof(failure->sqlstate));
			if (detail)
				failure->detail = pstrdup(detail);
		}
		PQclear(res);
	}
	return failure;
}

/*
 * repl_conn_copy
 *		Stream a COPY from one node to another: copy_out (COPY ... TO STDOUT)
 *		runs on src, copy_in (COPY ... FROM STDIN, same format) on dst, and
 *		every data message goes straight from one to the other; nothing is
 *		parsed or held beyond one row.  Both sockets are driven non-blocking
 *		with latch waits.  progress(arg, rows, bytes) is called every few
 *		thousand rows and whenever the latch is set; when it returns false
 *		the copy is abandoned (the caller then closes both connections).
 *		Returns an ok result on success, otherwise the first failure.
 */
ReplResult *
repl_conn_copy(ReplConn *src, const char *copy_out,
			   ReplConn *dst, const char *copy_in,
			   ReplCopyProgress progress, void *arg)
{
	PGconn	   *in = src->conn;
	PGconn	   *out = dst->conn;
	ReplResult *failure = NULL;
	int64		rows = 0;
	int64		bytes = 0;
	int64		next_report = 4096;
	bool		src_done = false;

	if (!start_copy(out, copy_in, PGRES_COPY_IN, &failure) ||
		!start_copy(in, copy_out, PGRES_COPY_OUT, &failure))
		return failure;

	while (!src_done)
	{
		char	   *buf = NULL;
		int			n = PQgetCopyData(in, &buf, 1);

		if (n > 0)
		{
			int			r;

			while ((r = PQputCopyData(out, buf, n)) == 0)
			{
				/* output buffer full: wait until the follower takes more */
				if (!flush_output(out))
				{
					r = -1;
					break;
				}
			}
			PQfreemem(buf);
			if (r < 0)
				return result_failed(conn_error(out));
			rows++;
			bytes += n;
			if (rows >= next_report)
			{
				next_report = rows + 4096;
				if (!progress(arg, rows, bytes))
					return result_failed("copy cancelled");
			}
			continue;
		}
		if (n == 0)
		{
			/* nothing buffered: send what we have, then wait for more */
			if (PQflush(out) < 0)
				return result_failed(conn_error(out));
			wait_socket(in, WL_SOCKET_READABLE);
			if (!PQconsumeInput(in))
				return result_failed(conn_error(in));
			if (!progress(arg, rows, bytes))
				return result_failed("copy cancelled");
			continue;
		}
		if (n == -2)
			return result_failed(conn_error(in));
		src_done = true;		/* n == -1: the source sent everything */
	}
	(void) progress(arg, rows, bytes);

	failure = finish_copy(in);
	if (failure != NULL)
		return failure;
	for (;;)
	{
		int			r = PQputCopyEnd(out, NULL);

		if (r > 0)
			break;
		if (r < 0 || !flush_output(out))
			return result_failed(conn_error(out));
	}
	if (!flush_output(out))
		return result_failed(conn_error(out));
	failure = finish_copy(out);
	if (failure != NULL)
		return failure;
	failure = palloc0(sizeof(ReplResult));
	failure->ok = true;
	return failure;
}
