package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgmqState says whether and how PGMQ is in a database.
type pgmqState struct {
	Installed bool
	// How is "extension 1.13.0", "SQL install (schema pgmq)" or, for the
	// project's PGMQ-compatible schema, compatHow.
	How string
}

// compatHow describes the project's PGMQ-compatible schema
// (pgmqclient/pgmqtest/compat.sql), as the orchestrator's summary does.
const compatHow = "compat schema (not PGMQ)"

// compatMarker starts the comment compat.sql puts on schema pgmq.
const compatMarker = "pgmqotel compat schema"

// compatFile is the compat schema's install file in the repository.
const compatFile = "pgmqclient/pgmqtest/compat.sql"

// checkPGMQ reports PGMQ's presence in conn's database. The project ships
// none of PGMQ's SQL; it only looks.
func checkPGMQ(ctx context.Context, conn *pgx.Conn) (pgmqState, error) {
	var ext *string
	var schema bool
	var comment string
	err := conn.QueryRow(ctx, `SELECT
		(SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pgmq'),
		to_regnamespace('pgmq') IS NOT NULL AND to_regclass('pgmq.meta') IS NOT NULL,
		coalesce(obj_description(to_regnamespace('pgmq'), 'pg_namespace'), '')`).Scan(&ext, &schema, &comment)
	switch {
	case err != nil:
		return pgmqState{}, err
	case ext != nil:
		return pgmqState{Installed: true, How: "extension " + *ext}, nil
	case schema && strings.HasPrefix(comment, compatMarker):
		return pgmqState{Installed: true, How: compatHow}, nil
	case schema:
		return pgmqState{Installed: true, How: "SQL install (schema pgmq)"}, nil
	}
	return pgmqState{}, nil
}

// extensionAvailable reports whether the server offers the pgmq extension
// (CREATE EXTENSION pgmq would work).
func extensionAvailable(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_available_extensions WHERE name = 'pgmq')`).Scan(&ok)
	return ok, err
}

// installPGMQ runs an install file into the database (PGMQ's own, from a
// PGMQ release, given with -pgmq-sql; or the project's compat schema),
// unless PGMQ is already there; who names the file's source in errors.
// PGMQ's
// install file is not idempotent (CREATE FUNCTION, CREATE TYPE), so a
// second run is refused rather than half-applied. The file runs as one
// simple-protocol call, which PostgreSQL treats as one transaction: it
// applies fully or not at all. psql meta-commands (lines starting with a
// backslash) are dropped, as psql would interpret them.
func installPGMQ(ctx context.Context, conn *pgx.Conn, file, who string) (applied bool, state pgmqState, err error) {
	state, err = checkPGMQ(ctx, conn)
	if err != nil || state.Installed {
		return false, state, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return false, state, fmt.Errorf("%s: %w", who, err)
	}
	if !strings.Contains(string(b), "pgmq.") {
		return false, state, fmt.Errorf("%s: %s does not look like PGMQ's SQL install file (no pgmq. in it)", who, file)
	}
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), `\`) {
			kept = append(kept, l)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := conn.Exec(ctx, strings.Join(kept, "\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
		return false, state, fmt.Errorf("%s: apply %s: %w (nothing was applied)", who, file, err)
	}
	state, err = checkPGMQ(ctx, conn)
	if err == nil && !state.Installed {
		err = fmt.Errorf("%s: the file ran but there is no pgmq schema with pgmq.meta afterwards", who)
	}
	return err == nil, state, err
}

// pgmqMissingHelp says plainly how to get PGMQ into a plain PostgreSQL.
func pgmqMissingHelp(where string) string {
	return fmt.Sprintf(`PGMQ is not installed in %s, so the orchestrator cannot run there.
  Without Docker: download PGMQ's SQL install file from a PGMQ release
  (https://github.com/pgmq/pgmq/releases, file pgmq-extension/sql/pgmq.sql of the release's
  source) and start again with:
      scripts/stack.sh -orchestrator -pgmq-sql path/to/pgmq.sql
  or install it yourself: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f path/to/pgmq.sql
  (where the extension is available: CREATE EXTENSION pgmq).`, where)
}

// describeURL names the database of a connection string without its
// password, for messages.
func describeURL(conn *pgx.Conn) string {
	c := conn.Config()
	return fmt.Sprintf("database %q on %s:%d", c.Database, c.Host, c.Port)
}
