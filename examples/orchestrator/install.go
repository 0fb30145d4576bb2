package main

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// compatMarker starts the comment on schema pgmq of the project's
// PGMQ-compatible test schema (pgmqclient/pgmqtest/compat.sql), which has
// PGMQ's names but is not PGMQ.
const compatMarker = "pgmqotel compat schema"

// Installs of PGMQ as the summary names them (field pgmq), besides
// "extension <version>".
const (
	installSQL     = "SQL install"
	installCompat  = "compat schema (not PGMQ)"
	installMissing = "missing"
	installUnknown = "unknown"
)

// installQuery reads, in one round trip, the version of the pgmq extension
// (NULL for a SQL install), whether pgmq.meta exists and the comment on
// schema pgmq (” when there is none).
const installQuery = `SELECT
	(SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pgmq'),
	to_regclass('pgmq.meta') IS NOT NULL,
	coalesce(obj_description(to_regnamespace('pgmq'), 'pg_namespace'), '')`

// readInstall says how PGMQ is installed in the pool's database:
// "extension 1.9.0", "SQL install", "compat schema (not PGMQ)" or
// "missing".
func readInstall(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var (
		ext     *string
		meta    bool
		comment string
	)
	if err := pool.QueryRow(ctx, installQuery).Scan(&ext, &meta, &comment); err != nil {
		return "", err
	}
	switch {
	case ext != nil:
		return "extension " + *ext, nil
	case !meta:
		return installMissing, nil
	case strings.HasPrefix(comment, compatMarker):
		return installCompat, nil
	}
	return installSQL, nil
}

// pgmqInstall returns how PGMQ is installed, read once it is there and
// kept; until then (PGMQ missing, the database down or every connection
// busy for healthTimeout) it returns health's word for PGMQ's state,
// "unknown" where that would be "installed" without saying how.
func (o *orchestrator) pgmqInstall(ctx context.Context, health string) string {
	if s := o.install.Load(); s != nil {
		return *s
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	s, err := readInstall(ctx, o.pool)
	switch {
	case err == nil && s != installMissing:
		o.install.Store(&s)
		return s
	case err == nil:
		return installMissing
	case health == pgmqInstalled:
		return installUnknown
	}
	return health
}
