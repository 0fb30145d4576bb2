package pgmqreceiver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/pgmqotel/pgmqotel/collector/pgmqreceiver/internal/metadata"
	"github.com/pgmqotel/pgmqotel/queuedepth"
	"github.com/pgmqotel/pgmqotel/queuesampler"
)

// pgmqScraper samples every configured database at each scrape, through
// one queuesampler.Sampler per database: the sampler package otelmetrics
// runs in process, with the same election, so receivers and in-process
// samplers of the same queues elect one sampler among them.
type pgmqScraper struct {
	cfg *Config
	set receiver.Settings
	mb  *metadata.MetricsBuilder
	dbs []*database
}

// database is one sampled database and the attributes of its points.
type database struct {
	s         *queuesampler.Sampler
	address   string
	port      int64
	namespace string
}

func newScraper(cfg *Config, set receiver.Settings) *pgmqScraper {
	return &pgmqScraper{cfg: cfg, set: set}
}

// start builds one sampler per database. It opens no connection: each
// sampler connects at its first sample, so a database that is down at
// start costs only its own points (and counts its failures).
func (p *pgmqScraper) start(ctx context.Context, _ component.Host) error {
	p.mb = metadata.NewMetricsBuilder(p.cfg.MetricsBuilderConfig, p.set)
	for i := range p.cfg.Databases {
		sc, err := p.samplerConfig(ctx, &p.cfg.Databases[i])
		if err != nil {
			return fmt.Errorf("pgmq receiver: databases::%d: %w", i, err)
		}
		s, err := queuesampler.New(sc)
		if err != nil {
			return fmt.Errorf("pgmq receiver: databases::%d: %w", i, err)
		}
		srv := s.Server()
		p.dbs = append(p.dbs, &database{s: s, address: srv.Address, port: int64(srv.Port), namespace: srv.Namespace})
	}
	return nil
}

// samplerConfig is the sampler of db. A scrape comes every collection
// interval; the sampler's minimum interval is half of it, so a scrape that
// comes early never samples twice, and the lease outlasts three intervals.
func (p *pgmqScraper) samplerConfig(ctx context.Context, db *DatabaseConfig) (queuesampler.Config, error) {
	conn, err := db.connConfig(ctx)
	if err != nil {
		return queuesampler.Config{}, err
	}
	where := conn.ConnConfig.Host + ":" + strconv.Itoa(int(conn.ConnConfig.Port)) + "/" + conn.ConnConfig.Database
	logger := p.set.Logger.With(zap.String("database", where))
	return queuesampler.Config{
		Conn:          conn,
		Depth:         db.depth(),
		SampleTimeout: p.cfg.sampleTimeout(),
		MinInterval:   p.cfg.CollectionInterval / 2,
		NoElection:    !p.cfg.Election.Enabled,
		ElectionTTL:   p.cfg.electionTTL(),
		// Each distinct failure once, until the next success: the
		// failures are counted in pgmq.sampler.errors at every scrape.
		OnError: func(err error) { logger.Warn("PGMQ queue sampling failed", zap.Error(err)) },
	}, nil
}

// shutdown closes every sampler, releasing the election leases it holds.
func (p *pgmqScraper) shutdown(context.Context) error {
	errs := make([]error, len(p.dbs))
	var wg sync.WaitGroup
	for i, db := range p.dbs {
		wg.Go(func() { errs[i] = db.s.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// scrape samples every database concurrently, so one that is down or slow
// costs only its own points, and records what each may report. A failed
// database is no scrape error: its failures are counted in
// pgmq.sampler.errors and logged once each.
func (p *pgmqScraper) scrape(ctx context.Context) (pmetric.Metrics, error) {
	samples := make([]*queuesampler.Sample, len(p.dbs))
	var wg sync.WaitGroup
	for i, db := range p.dbs {
		wg.Go(func() { samples[i], _ = db.s.Get(ctx) })
	}
	wg.Wait()
	now := pcommon.NewTimestampFromTime(time.Now())
	for i, db := range p.dbs {
		db.record(p.mb, now, samples[i])
	}
	return p.mb.Emit(), nil
}

// record adds db's failure counts and, when the sample is this replica's
// to report, its queues, as package otelmetrics observes them: a queue
// that could not be sampled reports nothing, except that a queue whose
// depth alone is unknown still reports its age and sent messages; sent
// messages are left out where they are not known to be true.
func (db *database) record(mb *metadata.MetricsBuilder, ts pcommon.Timestamp, sample *queuesampler.Sample) {
	for _, f := range db.s.Failures() {
		mb.RecordPgmqSamplerErrorsDataPoint(ts, f.Count, f.Type, db.address, db.port, db.namespace)
	}
	// No sample (the scrape was cancelled), a failed one, a standby's or
	// one from a term that has ended: report nothing rather than a
	// made-up or second value.
	if !db.s.Reportable(sample) {
		return
	}
	pgmq := metadata.AttributeMessagingSystemPgmq
	for _, q := range sample.Queues {
		if q.Known() {
			mb.RecordPgmqQueueDepthDataPoint(ts, q.Visible, pgmq, q.Name, metadata.AttributePgmqMessageStateVisible,
				depthMethod(q.VisibleMethod), db.address, db.port, db.namespace)
			mb.RecordPgmqQueueDepthDataPoint(ts, q.Invisible, pgmq, q.Name, metadata.AttributePgmqMessageStateInvisible,
				depthMethod(q.InvisibleMethod), db.address, db.port, db.namespace)
		}
		if q.AgeKnown() {
			mb.RecordPgmqQueueOldestMessageAgeDataPoint(ts, q.OldestAge.Seconds(), pgmq, q.Name, db.address, db.port, db.namespace)
		}
		if q.TotalSentKnown {
			mb.RecordPgmqQueueSentMessagesDataPoint(ts, q.TotalSent, pgmq, q.Name, db.address, db.port, db.namespace)
		}
	}
}

// depthMethod is the pgmq.depth.method of a figure obtained by m.
func depthMethod(m queuedepth.Method) metadata.AttributePgmqDepthMethod {
	if m == queuedepth.MethodCount {
		return metadata.AttributePgmqDepthMethodCount
	}
	return metadata.AttributePgmqDepthMethodEstimate
}
