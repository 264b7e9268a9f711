/*-------------------------------------------------------------------------
 *
 * fuzz_decode.c
 *		libFuzzer harness for the batch decoder (src/protocol.c): reads an
 *		input as a batch the way apply does, without a server.  Every read
 *		is bounds-checked by protocol.c and pqformat's contract; a malformed
 *		batch must end in ereport(ERROR) (a jump back here), never in a read
 *		past the input (AddressSanitizer), a crash, or a loop that does not
 *		end.  The input buffer is allocated at its exact size so that any
 *		over-read is caught.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/stringinfo.h"

#include "protocol.h"
#include "repl_ext.h"
#include "pg_stubs.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the two parts of a row image, as apply reads them */
static void
read_image(StringInfo img)
{
	int			part;

	for (part = 0; part < 2; part++)
	{
		int			n = repl_proto_get_count(img);
		int			i;

		for (i = 0; i < n; i++)
		{
			ReplColumnValue val;

			repl_proto_get_column(img, &val);
			/* what apply relies on: the value lies inside the image */
			if (val.len < 0 ||
				(val.data != NULL &&
				 (val.data < img->data || val.data + val.len > img->data + img->len)))
				abort();
		}
	}
}

static void
read_batch(StringInfo msg)
{
	ReplBatchHeader hdr;
	int			i;

	repl_proto_get_batch_header(msg, &hdr);
	if (hdr.nrels < 0 || hdr.nchanges < 0)
		abort();
	for (i = 0; i < hdr.nchanges; i++)
	{
		int			relidx;
		char		op;
		StringInfoData change;

		repl_proto_get_change(msg, &hdr, &relidx, &op, &change);
		if (op != REPL_OP_TICK && op != REPL_OP_DDL &&
			(relidx < 0 || relidx >= hdr.nrels))
			abort();
		switch (op)
		{
			case REPL_OP_INSERT:
			case REPL_OP_UPDATE:
			case REPL_OP_DELETE:
				read_image(&change);
				break;
			case REPL_OP_TICK:
				{
					int64		tick_id;
					TimestampTz tick_time;

					repl_proto_get_tick(&change, &tick_id, &tick_time);
				}
				break;
			case REPL_OP_DDL:
				{
					char	   *search_path;
					char	   *command;

					repl_proto_get_ddl(&change, &search_path, &command);
				}
				break;
			case REPL_OP_SEQUENCE:
				(void) repl_proto_get_sequence(&change);
				break;
			case REPL_OP_ADD_TABLE:
			case REPL_OP_REMOVE_TABLE:
				{
					char	   *nspname;
					char	   *relname;

					repl_proto_get_table_name(&change, &nspname, &relname);
				}
				break;
			default:
				break;			/* apply refuses it; nothing to decode */
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	StringInfoData msg;
	char	   *copy;

	if (size > INT_MAX / 2)
		return 0;
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	msg.data = copy;
	msg.len = (int) size;
	msg.maxlen = (int) size;
	msg.cursor = 0;
	if (sigsetjmp(fuzz_error_jump, 0) == 0)
		read_batch(&msg);
	fuzz_arena_reset();
	free(copy);
	return 0;
}
