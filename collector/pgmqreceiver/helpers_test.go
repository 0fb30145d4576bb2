package pgmqreceiver

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/pgmqotel/pgmqotel/collector/pgmqreceiver/internal/metadata"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
)

// metricShape is what a metric is, apart from its points.
type metricShape struct {
	name, unit, description, kind string // kind: gauge or sum/cumulative/monotonic
}

// point is one data point: its attributes, in a canonical form, and value.
type point struct {
	attrs string // k=v pairs, sorted, comma separated
	value float64
}

// collection is one scrape's metrics by name.
type collection map[string]struct {
	shape  metricShape
	points []point
}

// collectionOf flattens md.
func collectionOf(md pmetric.Metrics) collection {
	out := collection{}
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				c := out[m.Name()]
				c.shape = metricShape{name: m.Name(), unit: m.Unit(), description: m.Description()}
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					c.shape.kind, dps = "gauge", m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					c.shape.kind = fmt.Sprintf("sum/%s/monotonic=%v", m.Sum().AggregationTemporality(), m.Sum().IsMonotonic())
					dps = m.Sum().DataPoints()
				default:
					c.shape.kind = m.Type().String()
				}
				for l := range dps.Len() {
					dp := dps.At(l)
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					c.points = append(c.points, point{attrs: canonicalAttrs(dp.Attributes()), value: v})
				}
				out[m.Name()] = c
			}
		}
	}
	for name, c := range out {
		sort.Slice(c.points, func(i, j int) bool { return c.points[i].attrs < c.points[j].attrs })
		out[name] = c
	}
	return out
}

func canonicalAttrs(m pcommon.Map) string {
	var kv []string
	for k, v := range m.All() {
		kv = append(kv, k+"="+typedValue(v))
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

// typedValue writes a value with its type, so an int port and a string
// port differ.
func typedValue(v pcommon.Value) string {
	return v.Type().String() + ":" + v.AsString()
}

// value returns the value of the point of name whose attributes include
// every k=v of want (typed as canonicalAttrs writes them).
func (c collection) value(name string, want ...string) (float64, bool) {
	for _, p := range c[name].points {
		attrs := strings.Split(p.attrs, ",")
		if !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(attrs, w) }) {
			return p.value, true
		}
	}
	return 0, false
}

// str and num are attribute filters for value.
func str(k, v string) string     { return k + "=Str:" + v }
func num(k string, v int) string { return k + "=Int:" + strconv.Itoa(v) }

// serverAttrs are the attributes naming the database of dsn.
func serverAttrs(t testing.TB, dsn string) []string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return []string{str("server.address", u.Hostname()), num("server.port", port), str("db.namespace", strings.TrimPrefix(u.Path, "/"))}
}

// testConfig is a receiver configuration sampling dsns every second, from
// the start.
func testConfig(dsns ...string) *Config {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.CollectionInterval = time.Second
	cfg.InitialDelay = 0
	for _, d := range dsns {
		cfg.Databases = append(cfg.Databases, DatabaseConfig{DSN: configopaque.String(d)})
	}
	return cfg
}

// startReceiver creates the receiver through its factory, as the
// Collector does, and starts it. stop shuts it down once; the end of the
// test calls it too.
func startReceiver(t *testing.T, cfg *Config) (sink *consumertest.MetricsSink, stop func() error) {
	t.Helper()
	sink = new(consumertest.MetricsSink)
	r, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	stop = sync.OnceValue(func() error { return r.Shutdown(context.Background()) })
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return sink, stop
}

// lastCollection waits until sink holds a scrape for which ok holds, and
// returns it.
func lastCollection(t *testing.T, sink *consumertest.MetricsSink, what string, ok func(collection) bool) collection {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if all := sink.AllMetrics(); len(all) > 0 {
			if c := collectionOf(all[len(all)-1]); ok(c) {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counts returns count(*) of queue's visible and invisible messages.
func counts(t testing.TB, db *pgmqtest.DB, queue string) (visible, invisible int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE vt <= clock_timestamp()), count(*) FILTER (WHERE vt > clock_timestamp()) FROM pgmq.`+
		pgx.Identifier{"q_" + queue}.Sanitize()).Scan(&visible, &invisible); err != nil {
		t.Fatal(err)
	}
	return visible, invisible
}

// closedDSN is a DSN of a port nobody listens on.
func closedDSN(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "postgres://postgres@" + addr + "/nowhere?sslmode=disable&connect_timeout=2"
}
