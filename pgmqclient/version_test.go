package pgmqclient_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// caps returns the client's capabilities, failing the test on error, and
// logs what the install offers.
func caps(t *testing.T, ctx context.Context, c *pgmqclient.Client) *pgmqclient.Capabilities {
	t.Helper()
	cs, err := c.Capabilities(ctx)
	if err != nil {
		t.Fatalf("capabilities: %v", err)
	}
	return cs
}

// wantUnsupported checks that err reports feature f as unsupported, for op.
func wantUnsupported(t *testing.T, err error, op string, f pgmqclient.Feature) {
	t.Helper()
	if !errors.Is(err, pgmqclient.ErrUnsupported) {
		t.Fatalf("%s without %s: err = %v, want ErrUnsupported", op, f, err)
	}
	var ue *pgmqclient.UnsupportedError
	var oe *pgmqclient.OpError
	if !errors.As(err, &ue) || ue.Feature != f || !errors.As(err, &oe) || oe.Op != op {
		t.Fatalf("%s: err = %#v, want an *OpError for %q wrapping *UnsupportedError for %v", op, err, op, f)
	}
	if s := f.Since(); s != "" && !strings.Contains(err.Error(), "PGMQ "+s) {
		t.Errorf("error %q does not name release %s", err, s)
	}
}

func TestCapabilitiesCachedAndRefreshed(t *testing.T) {
	ctx, _, db := setup(t)
	counting := &countingDB{db: db.Pool}
	c := pgmqclient.New(counting)
	first := caps(t, ctx, c)
	t.Logf("install %s, extension version %q, %d functions", db.Install, first.ExtensionVersion, len(first.Functions()))
	if !first.HasFunction("send", "text", "jsonb", "integer") || !first.HasFunction("read", "text", "integer", "integer", "jsonb") {
		t.Fatalf("capabilities miss functions every release has: %v", first.Functions())
	}
	if db.Install != "extension" && first.ExtensionVersion != "" {
		t.Errorf("extension version %q for a %s install", first.ExtensionVersion, db.Install)
	}
	calls := counting.calls.Load()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if again, err := c.Capabilities(ctx); err != nil || again != first {
				t.Errorf("second Capabilities = %p, %v; want the cached %p", again, err, first)
			}
		}()
	}
	wg.Wait()
	if got := counting.calls.Load(); got != calls {
		t.Errorf("cached Capabilities sent %d statements", got-calls)
	}

	// A function that appears later is seen after a refresh only.
	if _, err := db.Pool.Exec(ctx, `CREATE FUNCTION pgmq.pgmqclient_probe(x bigint[]) RETURNS int LANGUAGE sql AS 'SELECT 1'`); err != nil {
		t.Fatal(err)
	}
	if caps(t, ctx, c).HasFunction("pgmqclient_probe", "bigint[]") {
		t.Fatal("cached capabilities changed without a refresh")
	}
	fresh, err := c.RefreshCapabilities(ctx)
	if err != nil || !fresh.HasFunction("pgmqclient_probe", "bigint[]") || caps(t, ctx, c) != fresh {
		t.Fatalf("RefreshCapabilities = %v, %v; want the probe function, cached", fresh, err)
	}
}

// An operation whose function is missing fails with ErrUnsupported before
// any failing SQL: the caller's transaction stays usable.
func TestUnsupportedBeforeFailingSQL(t *testing.T) {
	ctx, _, db := setup(t, "vt")
	if _, err := db.Pool.Exec(ctx, `DROP FUNCTION IF EXISTS pgmq.set_vt(text, bigint[], integer)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	c := pgmqclient.New(tx)
	id, err := c.Send(ctx, "vt", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SetVisibilityTimeoutBatch(ctx, "vt", []int64{id}, 0)
	wantUnsupported(t, err, "set visibility timeout batch", pgmqclient.FeatureSetVTBatch)
	if _, err := c.Read(ctx, "vt", 0, 1); err != nil {
		t.Fatalf("the transaction is broken after the unsupported call: %v", err)
	}
}

func TestFeatureNames(t *testing.T) {
	for f := pgmqclient.FeatureSendAt; f <= pgmqclient.FeatureConvertArchivePartitioned; f++ {
		if strings.HasPrefix(f.String(), "Feature(") {
			t.Errorf("feature %d has no name", int(f))
		}
	}
	if s := pgmqclient.Feature(-1).String(); s != "Feature(-1)" {
		t.Errorf("unknown feature named %q", s)
	}
	e := &pgmqclient.UnsupportedError{Feature: pgmqclient.FeatureTopics, Installed: "extension 1.5.1"}
	if got, want := e.Error(), "pgmqclient: topics: needs PGMQ 1.11.0 or newer (installed: extension 1.5.1)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// gatedDB holds every Query until release is closed, and says when one
// arrived.
type gatedDB struct {
	pgmqclient.DB
	entered chan struct{}
	release chan struct{}
}

func (d *gatedDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	select {
	case d.entered <- struct{}{}:
	default:
	}
	<-d.release
	return d.DB.Query(ctx, sql, args...)
}

// Callers arriving while the first load runs share it, and one whose
// context ends stops waiting.
func TestCapabilitiesSharedLoad(t *testing.T) {
	ctx, _, db := setup(t)
	gate := &gatedDB{DB: db.Pool, entered: make(chan struct{}, 1), release: make(chan struct{})}
	c := pgmqclient.New(gate)
	first := make(chan *pgmqclient.Capabilities, 1)
	go func() {
		cs, err := c.Capabilities(ctx)
		if err != nil {
			t.Error(err)
		}
		first <- cs
	}()
	<-gate.entered
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Capabilities(canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Capabilities with an ended context during a load = %v, want context.Canceled", err)
	}
	second := make(chan *pgmqclient.Capabilities, 1)
	go func() {
		cs, err := c.Capabilities(ctx)
		if err != nil {
			t.Error(err)
		}
		second <- cs
	}()
	close(gate.release)
	a, b := <-first, <-second
	if a == nil || a != b {
		t.Fatalf("concurrent callers got %p and %p, want the one load", a, b)
	}
	select {
	case <-gate.entered:
		t.Fatal("a second catalog query was sent")
	default:
	}
}

// The features each install offers, logged; the compat schema must offer
// all but convert_archive_partitioned, or CI would test only the
// ErrUnsupported paths of the newer operations.
func TestFeaturesOfTheInstall(t *testing.T) {
	ctx, c, db := setup(t)
	cs := caps(t, ctx, c)
	for f := pgmqclient.FeatureSendAt; f <= pgmqclient.FeatureConvertArchivePartitioned; f++ {
		t.Logf("%-40s since %-7q %v", f, f.Since(), cs.Has(f))
		want := f != pgmqclient.FeatureConvertArchivePartitioned
		if db.Install == pgmqtest.InstallCompat && cs.Has(f) != want {
			t.Errorf("compat schema: Has(%v) = %v, want %v", f, cs.Has(f), want)
		}
	}
}
