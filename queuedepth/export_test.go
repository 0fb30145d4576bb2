package queuedepth

import "time"

// Hooks for the external tests (package queuedepth_test).

// Statements lists every statement of sql.go with the columns it declares,
// the per-table ones built for table rel.
func Statements(rel string) map[string]string {
	return map[string]string{
		"scan":               scanSQL(rel),
		"discover":           discoverSQL,
		"catalog":            catalogSQL,
		"existing":           existingSQL,
		"local timeouts":     localTimeoutsSQL,
		"probe, vt index":    probeSQL(rel, true),
		"probe, no vt index": probeSQL(rel, false),
		"group":              groupSQL([]groupBranch{{rel: rel, vtIndex: true, invLimit: 11, visible: true}, {rel: rel, invLimit: 11}}, 10),
		"id sample":          idSampleSQL(rel),
	}
}

// Columns are the columns each statement of Statements declares.
var Columns = map[string][]string{
	"scan":               {colLo, colHi, colAge, colInvisible, colVisible, colVisCounted},
	"discover":           {colQueue, colRel, colRelOID, colSeqOID, colVTIndex, colUnlogged, colClock, colStandby, colPID},
	"catalog":            {colPos, colRoot, colPartitioned, colRelTuples, colRelPages, colPages, colLive, colRebased, colLastValue},
	"existing":           {colExisting},
	"local timeouts":     {"set_config", "set_config"},
	"probe, vt index":    {colLo, colHi, colAge, colInvisible, colVisible, colVisCounted},
	"probe, no vt index": {colLo, colHi, colAge, colInvisible, colVisible, colVisCounted},
	"group":              {colPos, colLo, colHi, colAge, colInvisible, colVisible, colVisCounted},
	"id sample":          {colHits, colVisibleHits, colTotal, colVisibleTotal},
}

// SetCatalogChunk sets how many queues one catalog statement reads, for
// tests crossing chunk boundaries with few queues; it returns the function
// restoring the default.
func SetCatalogChunk(n int) func() {
	old := catalogChunk
	catalogChunk = n
	return func() { catalogChunk = old }
}

// SetPhases makes every successful sample report its stages' times to f
// (nil: stop).
func SetPhases(f func(discover, catalog, probe time.Duration)) { phases = f }

// Inline exposes inline, the simple protocol's parameter writing.
func Inline(sql string, args ...string) string { return inline(stmt{sql: sql, args: args}) }
