package pgmqclient

import (
	"context"
	"strconv"
)

// maxPreparedProbes bounds the probe statements kept prepared on a
// sampler's session.
const maxPreparedProbes = 64

// depthPrepared keeps the probes of the queues above the threshold
// prepared on a dedicated connection (*pgx.Conn), so that sampling a deep
// queue costs no planning: those are the queues where a sample must stay
// far cheaper than a count. At most maxPreparedProbes are kept; a
// statement not wanted by the last sample (its queue dropped, or now
// below the threshold) is deallocated at once, so the session's memory
// follows the deep queues present, not the queues ever seen. Small queues
// are probed with unnamed statements, planned each time.
type depthPrepared struct {
	names  map[string]string // SQL text -> statement name; nil: off
	wanted map[string]bool   // SQL texts wanted by the sample in progress
	next   int
	// fixed are the statements whose text never changes (discovery,
	// catalog, settings), prepared at the first sample and kept: a
	// constant handful whatever the queues.
	fixed map[string]string
}

// fixedStatements are prepared once per session.
var fixedStatements = []string{localTimeoutsSQL, depthDiscoverSQL, depthCatalogSQL}

// ensureFixed prepares the fixed statements if they are not yet.
func (d *depthPrepared) ensureFixed(ctx context.Context, r pipelineRunner) error {
	if d.names == nil || d.fixed != nil {
		return nil
	}
	stmts := make([]depthStmt, len(fixedStatements))
	for i, sql := range fixedStatements {
		stmts[i] = depthStmt{sql: sql, name: "pgmqotel_depth_fixed_" + strconv.Itoa(i)}
	}
	errs, err := r.prepare(ctx, stmts)
	if err != nil {
		return err
	}
	fixed := map[string]string{}
	for i, s := range stmts {
		if errs[i] == nil {
			fixed[s.sql] = s.name
		}
	}
	d.fixed = fixed
	return nil
}

// stmt is a fixed statement with its arguments, under its prepared name
// when it has one.
func (d *depthPrepared) stmt(sql string, args ...string) depthStmt {
	return depthStmt{sql: sql, args: args, name: d.fixed[sql]}
}

// want returns the name to run sql under, or "" to send it unnamed.
func (d *depthPrepared) want(sql string) string {
	if d.names == nil {
		return ""
	}
	if d.wanted == nil {
		d.wanted = map[string]bool{}
	}
	if name, ok := d.names[sql]; ok {
		d.wanted[sql] = true
		return name
	}
	if len(d.wanted) >= maxPreparedProbes {
		return ""
	}
	d.wanted[sql] = true
	d.next++
	return "pgmqotel_depth_" + strconv.Itoa(d.next)
}

// sync deallocates the statements the sample does not want and prepares
// the new ones stmts name. A statement that fails to prepare (its table
// was just dropped) is sent unnamed instead.
func (d *depthPrepared) sync(ctx context.Context, r pipelineRunner, stmts []depthStmt) error {
	wanted := d.wanted
	d.wanted = nil
	var stale []string
	for sql, name := range d.names {
		if !wanted[sql] {
			stale = append(stale, name)
			delete(d.names, sql)
		}
	}
	if _, err := r.deallocate(ctx, stale); err != nil {
		return err
	}
	var fresh []int
	for i, s := range stmts {
		if s.name != "" {
			if _, ok := d.names[s.sql]; !ok {
				fresh = append(fresh, i)
			}
		}
	}
	prep := make([]depthStmt, len(fresh))
	for j, i := range fresh {
		prep[j] = stmts[i]
	}
	errs, err := r.prepare(ctx, prep)
	if err != nil {
		return err
	}
	for j, i := range fresh {
		if errs[j] != nil {
			stmts[i].name = ""
			continue
		}
		d.names[stmts[i].sql] = stmts[i].name
	}
	return nil
}
