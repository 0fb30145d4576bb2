package otelsetup

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgmqotel/pgmqotel/internal/testkit/faultproxy"
	"github.com/pgmqotel/pgmqotel/internal/testkit/testcerts"
	"github.com/pgmqotel/pgmqotel/otelmetrics"
	"github.com/pgmqotel/pgmqotel/pgmqclient"
	"github.com/pgmqotel/pgmqotel/pgmqclient/pgmqtest"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// The secrets the test hands to the module. None may come out anywhere.
var secrets = map[string]string{
	"DSN password":        "S3cr3t-Pa55",
	"authorization value": "TOPSECRET-TOKEN",
	"x-api-key value":     "TOPSECRET-KEY",
}

// outputs collects everything the telemetry emitted, by where it came
// from: otel.Handle, the OpenTelemetry logger, the standard logger, error
// strings, attributes, snapshots.
type outputs struct {
	mu    sync.Mutex
	texts map[string][]string
}

func (o *outputs) add(where, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.texts[where] = append(o.texts[where], text)
}

func (o *outputs) count(where, substr string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, s := range o.texts[where] {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// watchOutputs captures otel.Handle, the OpenTelemetry logger at every
// verbosity and the standard logger until the test ends.
func watchOutputs(t *testing.T) *outputs {
	t.Helper()
	o := &outputs{texts: map[string][]string{}}
	prevHandler := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { o.add("otel.Handle", err.Error()) }))
	otel.SetLogger(funcr.New(func(prefix, args string) { o.add("otel logger", prefix+" "+args) }, funcr.Options{Verbosity: 10}))
	prevLog := log.Writer()
	log.SetOutput(writerFunc(func(p []byte) { o.add("log", string(p)) }))
	t.Cleanup(func() {
		otel.SetErrorHandler(prevHandler)
		// Back to stderr at verbosity 0, as the SDK's default logger.
		stderr := log.New(os.Stderr, "", log.LstdFlags)
		otel.SetLogger(funcr.New(func(prefix, args string) { stderr.Println(prefix, args) }, funcr.Options{}))
		log.SetOutput(prevLog)
	})
	return o
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// check fails the test for every secret found in any output. It names the
// secret and the output, never the text around it.
func (o *outputs) check(t *testing.T) {
	t.Helper()
	o.checkAlso(t, nil)
}

// checkAlso is check with more secrets than the shared ones.
func (o *outputs) checkAlso(t *testing.T, extra map[string]string) {
	t.Helper()
	all := map[string]string{}
	for name, secret := range secrets {
		all[name] = secret
	}
	for name, secret := range extra {
		all[name] = secret
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	total := 0
	for where, texts := range o.texts {
		for _, text := range texts {
			total++
			for name, secret := range all {
				if strings.Contains(text, secret) || strings.Contains(text, url.QueryEscape(secret)) {
					t.Errorf("the %s appears in %s", name, where)
				}
			}
		}
	}
	t.Logf("checked %d outputs", total)
}

// recordCollection adds every resource attribute, metric and data point
// attribute of one collection.
func recordCollection(t *testing.T, o *outputs, r sdkmetric.Reader) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		o.add("collect error", err.Error())
	}
	for _, kv := range rm.Resource.Attributes() {
		o.add("resource", string(kv.Key)+"="+kv.Value.String())
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, set := range pointAttributes(m.Data) {
				for _, kv := range set.ToSlice() {
					o.add("attributes", m.Name+" "+string(kv.Key)+"="+kv.Value.String())
				}
			}
		}
	}
	o.add("collection", fmt.Sprintf("%+v", rm)) // whatever else it holds
}

func recordSnapshot(t *testing.T, o *outputs, m *otelmetrics.Metrics) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	b, err := json.Marshal(m.Snapshot(ctx))
	if err != nil {
		t.Fatal(err)
	}
	o.add("snapshot", string(b))
}

// A DSN password, the values of OTEL_EXPORTER_OTLP_HEADERS and the content
// of a TLS client key never appear in attributes, logs, handled errors,
// returned errors or snapshots, while the database and the collector fail
// in every way the fault tests know, and the key is refused or does not
// match its certificate.
func TestSecretsNeverLeak(t *testing.T) {
	cleanEnv(t)
	o := watchOutputs(t)
	ctx := context.Background()
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20"+secrets["authorization value"]+",x-api-key="+secrets["x-api-key value"])
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
	t.Setenv("OTEL_METRIC_EXPORT_TIMEOUT", "300")

	// The headers are really in use: a collector receives them.
	sink := startSink(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+sink.addr)
	p := newProvider(t)
	addOne(t, p, "secrets.count", 1)
	shutdown(t, p)
	if got := sink.header("authorization"); len(got) == 0 || got[0] != "Bearer "+secrets["authorization value"] {
		t.Fatalf("the authorization header did not reach the collector (%d values)", len(got)) // never print it
	}

	// A database reached with a password (trust authentication ignores
	// it, so the connection works) through a proxy that will cut it, and
	// one that is not there at all.
	db := pgmqtest.New(t)
	if err := pgmqclient.New(db.Pool).CreateQueue(ctx, "secret_q"); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Listen(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	u.Host = proxy.Addr()
	u.User = url.UserPassword(u.User.Username(), secrets["DSN password"])
	livePool := newSecretPool(t, u.String())
	deadPool := newSecretPool(t, "postgres://postgres:"+secrets["DSN password"]+"@"+deadAddr(t)+"/nowhere?connect_timeout=1")

	// A collector that is not there, and one that accepts and never answers.
	silent, err := faultproxy.Listen(deadAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	if err := silent.Blackhole(); err != nil {
		t.Fatal(err)
	}
	collectors := map[string]string{"nothing listening": deadAddr(t), "never answers": silent.Addr()}

	for _, protocol := range []string{ProtocolGRPC, ProtocolHTTPProtobuf} {
		for name, addr := range collectors {
			t.Run(protocol+"/"+name, func(t *testing.T) {
				t.Setenv(envProtocol, protocol)
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
				exportErrors := o.count("otel.Handle", "metrics")
				reader := sdkmetric.NewManualReader()
				p := newProvider(t, WithReader(reader))
				live, err := otelmetrics.New(append(p.MetricsOptions(), otelmetrics.WithPool("", livePool),
					otelmetrics.WithQueueSampler(queuesampler.Config{Conn: livePool.Config(), MinInterval: -1, SampleTimeout: faultTimeout}))...)
				if err != nil {
					t.Fatal(err)
				}
				dead, err := otelmetrics.New(append(p.MetricsOptions(), otelmetrics.WithPool("", deadPool),
					otelmetrics.WithQueueSampler(queuesampler.Config{Conn: deadPool.Config(), Depth: queuedepth.Options{Queues: []string{"secret_q"}},
						MinInterval: -1, SampleTimeout: faultTimeout, NoElection: true}))...)
				if err != nil {
					t.Fatal(err)
				}
				r1 := live.Processor("live").Start()
				r2 := dead.Processor("dead").Start()

				recordCollection(t, o, reader)
				recordSnapshot(t, o, live)
				recordSnapshot(t, o, dead)
				proxy.Cut()
				recordCollection(t, o, reader)
				recordSnapshot(t, o, live)
				if err := proxy.Restore(); err != nil {
					t.Fatal(err)
				}

				// Periodic exports fail and are handed to otel.Handle.
				eventually(t, hangGuard, "a failed export to be handled", func() bool {
					return o.count("otel.Handle", "metrics") > exportErrors
				})
				flushCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				if err := p.ForceFlush(flushCtx); err != nil {
					o.add("ForceFlush error", err.Error())
				} else {
					t.Error("ForceFlush succeeded without a collector")
				}
				r1.Finish()
				r2.Finish()
				for _, m := range []*otelmetrics.Metrics{live, dead} {
					if err := m.Close(); err != nil {
						o.add("Close error", err.Error())
					}
				}
				shutCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				if err := p.Shutdown(shutCtx); err != nil {
					o.add("Shutdown error", err.Error())
				}
			})
		}
	}
	tlsKeyPaths(t, o)
	o.add("gRPC log", grpcLog.String())
	o.add("pool names", otelmetrics.PoolName(livePool)+" "+otelmetrics.PoolName(deadPool))

	// The outputs hold the failures, so the check is not vacuous.
	for where, substr := range map[string]string{
		"otel.Handle":               "failed to connect",             // the dead database
		"snapshot":                  "connect",                       // its error, as served
		"ForceFlush error":          "",                              //
		"NewMeterProvider error":    "OTEL_EXPORTER_OTLP_CLIENT_KEY", // a key that does not match
		"NewTracerProvider error":   "OTEL_EXPORTER_OTLP_CLIENT_KEY", //
		"TLS ForceFlush error":      "client certificate",            // a key the Collector refuses
		"TLS otel.Handle (refused)": "client certificate",            //
	} {
		if o.count(where, substr) == 0 {
			t.Errorf("no %s output mentions %q", where, substr)
		}
	}
	o.check(t)
}

// tlsKeyPaths adds the outputs of the TLS key paths: a client key that
// does not match its certificate, and a client certificate and key that
// the Collector refuses, for both providers. A line of the key file's
// content becomes a secret that no output may hold.
func tlsKeyPaths(t *testing.T, o *outputs) {
	t.Helper()
	ca, other := testcerts.NewCA(t, "secrets"), testcerts.NewCA(t, "other")
	client, mismatched := ca.Client(t, "app"), other.Client(t, "app")
	key, err := os.ReadFile(client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	secrets["client key content"] = strings.Split(string(key), "\n")[1]
	t.Cleanup(func() { delete(secrets, "client key content") })

	cleanEnv(t)
	clearTraceEnv(t)
	// The Collector trusts only client certificates of the other CA.
	sink := startTLSSink(t, ca.Server(t, "collector"), other)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://"+sink.addr)
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.CertFile)
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
	t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", mismatched.CertFile)
	t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", client.KeyFile)
	if _, err := NewMeterProvider(context.Background()); err != nil {
		o.add("NewMeterProvider error", err.Error())
	}
	if _, err := NewTracerProvider(context.Background()); err != nil {
		o.add("NewTracerProvider error", err.Error())
	}

	t.Setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", client.CertFile)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	reported := o.count("otel.Handle", "client certificate")
	p := newProvider(t, WithMetricExportInterval(20*time.Millisecond))
	tp, err := NewTracerProvider(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	addOne(t, p, "secrets.tls.count", 1)
	_, span := tp.Tracer("secrets").Start(context.Background(), "refused")
	span.End()
	eventually(t, hangGuard, "the refused exports of both signals", func() bool {
		return o.count("otel.Handle", "client certificate") >= reported+2
	})
	o.add("TLS otel.Handle (refused)", strings.Join(o.texts["otel.Handle"], "\n"))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := p.ForceFlush(ctx); err != nil {
		o.add("TLS ForceFlush error", err.Error())
	}
	_, span = tp.Tracer("secrets").Start(context.Background(), "refused")
	span.End()
	for what, shut := range map[string]func(context.Context) error{"meter": p.Shutdown, "tracer": tp.Shutdown} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if err := shut(ctx); err != nil {
			o.add("TLS Shutdown error ("+what+")", err.Error())
		}
		cancel()
	}
}

// faultTimeout bounds a sample against a database that fails.
const faultTimeout = 500 * time.Millisecond

// pointAttributes returns the attribute sets of a metric's data points.
func pointAttributes(data metricdata.Aggregation) []attribute.Set {
	var out []attribute.Set
	switch d := data.(type) {
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	}
	return out
}

func newSecretPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err) // pgx redacts the password in parse errors
	}
	t.Cleanup(pool.Close)
	return pool
}
