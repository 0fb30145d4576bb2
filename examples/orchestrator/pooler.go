package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// adaptToPooler makes the pool work behind a pooler in transaction mode
// (PgBouncer before 1.21 follows no prepared statement from one server
// connection to the next): when a test connection shows that a pooler
// answers for the server (the process id the server gave at startup is
// not the backend's own, pg_backend_pid()) and DATABASE_URL chose no
// default_query_exec_mode, the pool sends its statements unprepared
// (exec), and one line says so. It reports whether a pooler answers, so
// that idle processors poll rather than LISTEN (a notification is
// delivered to a session, which a pooler in transaction mode does not
// keep). An unreachable database is left to the pool, which reports it.
func adaptToPooler(ctx context.Context, pc *pgxpool.Config, log *slog.Logger) (pooled bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, pc.ConnConfig.Copy())
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	var pid uint32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()", pgx.QueryExecModeSimpleProtocol).Scan(&pid); err != nil || pid == conn.PgConn().PID() {
		return false
	}
	mode := pc.ConnConfig.DefaultQueryExecMode
	if !strings.Contains(pc.ConnString(), "default_query_exec_mode") &&
		(mode == pgx.QueryExecModeCacheStatement || mode == pgx.QueryExecModeCacheDescribe) {
		pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		log.Info("a pooler answers for the server (PgBouncer?): the pool sends statements unprepared, default_query_exec_mode=exec; set default_query_exec_mode in DATABASE_URL to choose another")
	}
	return true
}
