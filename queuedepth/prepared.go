package queuedepth

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// maxPreparedProbes bounds the branches of the group probe, the one
// per-queue statement kept prepared.
const maxPreparedProbes = 64

// prepared keeps statements prepared on a direct connection of the
// sampler's own (Options.KeepPrepared, and the server process proven to be
// the connection's own): the fixed statements (discovery, catalog, local
// timeouts), prepared at the first sample and kept, and the probe of the
// queues above the threshold (groupSQL), re-prepared when the set of deep
// queues changes and the former one deallocated at once, so the session's
// memory follows the deep queues present, not the queues ever seen.
// Behind a pooler nothing is prepared: a statement prepared in one
// transaction may be missing from the next one's server connection, and
// would stay behind on a connection another client uses next.
type prepared struct {
	on     bool              // named statements may be used on this session
	fixed  map[string]string // SQL text -> name; nil until prepared
	probes map[string]string // group probe SQL text -> name
	wanted map[string]bool   // group probes wanted by the sample in progress
	next   int
}

// fixedStatements are prepared once per session.
var fixedStatements = []string{localTimeoutsSQL, discoverSQL, catalogSQL}

// stmt is a fixed statement with its arguments, under its prepared name
// when it has one.
func (p *prepared) stmt(sql string, queues int, args ...string) stmt {
	return stmt{sql: sql, args: args, queues: queues, name: p.fixed[sql]}
}

// ensureFixed prepares the fixed statements if they are not yet.
func (p *prepared) ensureFixed(ctx context.Context, conn *pgconn.PgConn) error {
	if !p.on || p.fixed != nil {
		return nil
	}
	names := make([]string, len(fixedStatements))
	for i := range fixedStatements {
		names[i] = "pgmqotel_depth_fixed_" + strconv.Itoa(i)
	}
	errs, err := each(ctx, conn, len(names), func(pl *pgconn.Pipeline, i int) { pl.SendPrepare(names[i], fixedStatements[i], nil) })
	if err != nil {
		return err
	}
	p.fixed = map[string]string{}
	for i, sql := range fixedStatements {
		if errs[i] == nil {
			p.fixed[sql] = names[i]
		}
	}
	return nil
}

// want returns the name to run the group probe sql under, or "" to send
// it unnamed.
func (p *prepared) want(sql string) string {
	if !p.on {
		return ""
	}
	if p.wanted == nil {
		p.wanted = map[string]bool{}
	}
	p.wanted[sql] = true
	if name, ok := p.probes[sql]; ok {
		return name
	}
	p.next++
	return "pgmqotel_depth_" + strconv.Itoa(p.next)
}

// sync deallocates the group probes the sample does not want and prepares
// the new one stmts name. A statement that fails to prepare (a table was
// just dropped) is sent unnamed instead.
func (p *prepared) sync(ctx context.Context, conn *pgconn.PgConn, stmts []stmt) error {
	if !p.on {
		return nil
	}
	wanted := p.wanted
	p.wanted = nil
	if p.probes == nil {
		p.probes = map[string]string{}
	}
	var stale []string
	for sql, name := range p.probes {
		if !wanted[sql] {
			stale = append(stale, name)
			delete(p.probes, sql)
		}
	}
	if _, err := each(ctx, conn, len(stale), func(pl *pgconn.Pipeline, i int) { pl.SendDeallocate(stale[i]) }); err != nil {
		return err
	}
	var fresh []int
	for i, s := range stmts {
		if _, ok := p.probes[s.sql]; s.name != "" && !ok {
			fresh = append(fresh, i)
		}
	}
	errs, err := each(ctx, conn, len(fresh), func(pl *pgconn.Pipeline, j int) {
		pl.SendPrepare(stmts[fresh[j]].name, stmts[fresh[j]].sql, nil)
	})
	if err != nil {
		return err
	}
	for j, i := range fresh {
		if errs[j] != nil {
			stmts[i].name = ""
			continue
		}
		p.probes[stmts[i].sql] = stmts[i].name
	}
	return nil
}

// each pipelines n requests made by send, each followed by a Sync, whose
// results carry no rows, and reports which failed.
func each(ctx context.Context, conn *pgconn.PgConn, n int, send func(*pgconn.Pipeline, int)) ([]error, error) {
	errs := make([]error, n)
	if n == 0 {
		return errs, nil
	}
	p := conn.StartPipeline(ctx)
	for i := range n {
		send(p, i)
		p.SendPipelineSync()
	}
	if err := p.Flush(); err != nil {
		_ = p.Close()
		return nil, err
	}
	for i := range n {
		if _, err := p.GetResults(); err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				_ = p.Close()
				return nil, err
			}
			errs[i] = err
		}
		res, err := p.GetResults()
		if err != nil {
			_ = p.Close()
			return nil, err
		}
		if _, ok := res.(*pgconn.PipelineSync); !ok {
			_ = p.Close()
			return nil, fmt.Errorf("queuedepth: pipeline: expected a sync, got %T", res)
		}
	}
	return errs, p.Close()
}
