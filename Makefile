# repl_ext: trigger-based leader/follower row replication for PostgreSQL.
EXTENSION      = repl_ext
MODULE_big     = repl_ext
OBJS           = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA           = $(wildcard sql/repl_ext--*.sql)
PGFILEDESC     = "repl_ext - leader/follower row replication"
PG_CPPFLAGS    = -I$(libpq_srcdir) -I$(srcdir)/src
SHLIB_LINK_INTERNAL = $(libpq)

REGRESS        = setup add_table capture_format copy_ddl refusals sync_config ddl_security robustness follower_mode teardown upgrade
REGRESS_OPTS   = --inputdir=test --temp-instance=tmp_regress --temp-config=$(srcdir)/test/regress.conf
ISOLATION      = iso_batch_cut iso_concurrent_update iso_rollback iso_admin_twice iso_sync_cluster
ISOLATION_OPTS = --inputdir=test --outputdir=. --temp-instance=tmp_isolation --temp-config=$(srcdir)/test/isolation.conf
TAP_TESTS      = 1
PROVE_TESTS    = test/t/*.pl
EXTRA_CLEAN    = tmp_regress tmp_isolation output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
PROVE_FLAGS += -I $(srcdir)/test/perl

.PHONY: bench demo
bench:
	bash $(srcdir)/test/bench/run.sh
demo:
	bash $(srcdir)/test/demo.sh
