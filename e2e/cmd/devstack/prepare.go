package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/e2e/internal/stack"
)

// preparePGMQ checks the database at url before anything starts and says
// what it found. With sqlFile it applies PGMQ's SQL install file when PGMQ
// is missing. In a throwaway database (throwaway) it installs what is at
// hand: sqlFile, else the pgmq extension where the server has it, else the
// project's compat schema, saying plainly that this is not PGMQ. Otherwise
// a missing PGMQ fails, with the way to install it, when the orchestrator
// would run there.
func preparePGMQ(ctx context.Context, url, sqlFile string, orchestrator, throwaway bool) (pgmqState, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, url)
	if err != nil {
		source := "at DATABASE_URL"
		if throwaway {
			source = "(the throwaway cluster)"
		}
		return pgmqState{}, fmt.Errorf("database %s is unreachable: %w", source, err)
	}
	defer conn.Close(context.Background())
	where := describeURL(conn)
	if sqlFile != "" {
		applied, state, err := installPGMQ(ctx, conn, sqlFile, "-pgmq-sql")
		switch {
		case err != nil:
			return state, err
		case applied:
			fmt.Printf("pgmq: installed PGMQ into %s from %s (%s)\n", where, sqlFile, state.How)
		default:
			fmt.Printf("pgmq: PGMQ is already installed in %s (%s); -pgmq-sql %s not applied\n", where, state.How, sqlFile)
		}
		return state, nil
	}
	state, err := checkPGMQ(ctx, conn)
	switch {
	case err != nil:
		return state, fmt.Errorf("check PGMQ in %s: %w", where, err)
	case state.Installed:
		fmt.Printf("pgmq: %s has PGMQ (%s)\n", where, state.How)
	case throwaway:
		return installAtHand(ctx, conn, where)
	case orchestrator:
		return state, errors.New(pgmqMissingHelp(where))
	}
	return state, nil
}

// installAtHand puts PGMQ into a throwaway database without an install
// file: the extension where the server has it, else the project's
// PGMQ-compatible schema, which the summary lines then name.
func installAtHand(ctx context.Context, conn *pgx.Conn, where string) (pgmqState, error) {
	ext, err := extensionAvailable(ctx, conn)
	if err != nil {
		return pgmqState{}, fmt.Errorf("check for the pgmq extension in %s: %w", where, err)
	}
	if ext {
		if _, err := conn.Exec(ctx, "CREATE EXTENSION pgmq"); err != nil {
			return pgmqState{}, fmt.Errorf("CREATE EXTENSION pgmq in %s: %w", where, err)
		}
		state, err := checkPGMQ(ctx, conn)
		if err == nil {
			fmt.Printf("pgmq: created the pgmq extension in %s (%s)\n", where, state.How)
		}
		return state, err
	}
	root, err := stack.RepoRoot()
	if err != nil {
		return pgmqState{}, err
	}
	file := filepath.Join(root, compatFile)
	_, state, err := installPGMQ(ctx, conn, file, "compat schema")
	if err != nil {
		return state, err
	}
	fmt.Printf(`pgmq: this server has no pgmq extension and no -pgmq-sql was given: installed the project's
      PGMQ-compatible schema (%s) into %s.
      It is NOT PGMQ: the orchestrator's summary lines say pgmq=%q.
      For PGMQ itself, start with -pgmq-sql path/to/pgmq.sql (see -h).
`, compatFile, where, compatHow)
	return state, nil
}
