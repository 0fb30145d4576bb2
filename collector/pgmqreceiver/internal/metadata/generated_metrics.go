// Code in the shape cmd/mdatagen generates from metadata.yaml, written by
// hand (the generator is not available to this project).

package metadata

import (
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
)

type metricPgmqQueueDepth struct {
	data     pmetric.Metric // data buffer for generated metric.
	config   MetricConfig   // metric config provided by user.
	capacity int            // max observed number of data points added to the metric.
}

// init fills pgmq.queue.depth metric with initial data.
func (m *metricPgmqQueueDepth) init() {
	m.data.SetName("pgmq.queue.depth")
	m.data.SetDescription("Messages in the queue, by state: visible (readable now) or invisible (in flight or delayed).")
	m.data.SetUnit("{message}")
	m.data.SetEmptyGauge()
	m.data.Gauge().DataPoints().EnsureCapacity(m.capacity)
}

func (m *metricPgmqQueueDepth) recordDataPoint(start pcommon.Timestamp, ts pcommon.Timestamp, val int64, messagingSystemAttributeValue string, messagingDestinationNameAttributeValue string, pgmqMessageStateAttributeValue string, pgmqDepthMethodAttributeValue string, serverAddressAttributeValue string, serverPortAttributeValue int64, dbNamespaceAttributeValue string) {
	if !m.config.Enabled {
		return
	}
	dp := m.data.Gauge().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.SetIntValue(val)
	dp.Attributes().EnsureCapacity(7)
	dp.Attributes().PutStr("messaging.system", messagingSystemAttributeValue)
	dp.Attributes().PutStr("messaging.destination.name", messagingDestinationNameAttributeValue)
	dp.Attributes().PutStr("pgmq.message.state", pgmqMessageStateAttributeValue)
	dp.Attributes().PutStr("pgmq.depth.method", pgmqDepthMethodAttributeValue)
	dp.Attributes().PutStr("server.address", serverAddressAttributeValue)
	dp.Attributes().PutInt("server.port", serverPortAttributeValue)
	dp.Attributes().PutStr("db.namespace", dbNamespaceAttributeValue)
}

// updateCapacity saves max length of data point slices that will be used for the slice capacity.
func (m *metricPgmqQueueDepth) updateCapacity() {
	if m.data.Gauge().DataPoints().Len() > m.capacity {
		m.capacity = m.data.Gauge().DataPoints().Len()
	}
}

// emit appends recorded metric data to a metrics slice and prepares it for recording another set of data points.
func (m *metricPgmqQueueDepth) emit(metrics pmetric.MetricSlice) {
	if m.config.Enabled && m.data.Gauge().DataPoints().Len() > 0 {
		m.updateCapacity()
		m.data.MoveTo(metrics.AppendEmpty())
		m.init()
	}
}

func newMetricPgmqQueueDepth(cfg MetricConfig) metricPgmqQueueDepth {
	m := metricPgmqQueueDepth{config: cfg}
	if cfg.Enabled {
		m.data = pmetric.NewMetric()
		m.init()
	}
	return m
}

type metricPgmqQueueOldestMessageAge struct {
	data     pmetric.Metric // data buffer for generated metric.
	config   MetricConfig   // metric config provided by user.
	capacity int            // max observed number of data points added to the metric.
}

// init fills pgmq.queue.oldest_message.age metric with initial data.
func (m *metricPgmqQueueOldestMessageAge) init() {
	m.data.SetName("pgmq.queue.oldest_message.age")
	m.data.SetDescription("Age of the oldest message in the queue; 0 when the queue is empty.")
	m.data.SetUnit("s")
	m.data.SetEmptyGauge()
	m.data.Gauge().DataPoints().EnsureCapacity(m.capacity)
}

func (m *metricPgmqQueueOldestMessageAge) recordDataPoint(start pcommon.Timestamp, ts pcommon.Timestamp, val float64, messagingSystemAttributeValue string, messagingDestinationNameAttributeValue string, serverAddressAttributeValue string, serverPortAttributeValue int64, dbNamespaceAttributeValue string) {
	if !m.config.Enabled {
		return
	}
	dp := m.data.Gauge().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(val)
	dp.Attributes().EnsureCapacity(5)
	dp.Attributes().PutStr("messaging.system", messagingSystemAttributeValue)
	dp.Attributes().PutStr("messaging.destination.name", messagingDestinationNameAttributeValue)
	dp.Attributes().PutStr("server.address", serverAddressAttributeValue)
	dp.Attributes().PutInt("server.port", serverPortAttributeValue)
	dp.Attributes().PutStr("db.namespace", dbNamespaceAttributeValue)
}

// updateCapacity saves max length of data point slices that will be used for the slice capacity.
func (m *metricPgmqQueueOldestMessageAge) updateCapacity() {
	if m.data.Gauge().DataPoints().Len() > m.capacity {
		m.capacity = m.data.Gauge().DataPoints().Len()
	}
}

// emit appends recorded metric data to a metrics slice and prepares it for recording another set of data points.
func (m *metricPgmqQueueOldestMessageAge) emit(metrics pmetric.MetricSlice) {
	if m.config.Enabled && m.data.Gauge().DataPoints().Len() > 0 {
		m.updateCapacity()
		m.data.MoveTo(metrics.AppendEmpty())
		m.init()
	}
}

func newMetricPgmqQueueOldestMessageAge(cfg MetricConfig) metricPgmqQueueOldestMessageAge {
	m := metricPgmqQueueOldestMessageAge{config: cfg}
	if cfg.Enabled {
		m.data = pmetric.NewMetric()
		m.init()
	}
	return m
}

type metricPgmqQueueSentMessages struct {
	data     pmetric.Metric // data buffer for generated metric.
	config   MetricConfig   // metric config provided by user.
	capacity int            // max observed number of data points added to the metric.
}

// init fills pgmq.queue.sent.messages metric with initial data.
func (m *metricPgmqQueueSentMessages) init() {
	m.data.SetName("pgmq.queue.sent.messages")
	m.data.SetDescription("Messages ever sent to the queue.")
	m.data.SetUnit("{message}")
	m.data.SetEmptySum()
	m.data.Sum().SetIsMonotonic(true)
	m.data.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	m.data.Sum().DataPoints().EnsureCapacity(m.capacity)
}

func (m *metricPgmqQueueSentMessages) recordDataPoint(start pcommon.Timestamp, ts pcommon.Timestamp, val int64, messagingSystemAttributeValue string, messagingDestinationNameAttributeValue string, serverAddressAttributeValue string, serverPortAttributeValue int64, dbNamespaceAttributeValue string) {
	if !m.config.Enabled {
		return
	}
	dp := m.data.Sum().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.SetIntValue(val)
	dp.Attributes().EnsureCapacity(5)
	dp.Attributes().PutStr("messaging.system", messagingSystemAttributeValue)
	dp.Attributes().PutStr("messaging.destination.name", messagingDestinationNameAttributeValue)
	dp.Attributes().PutStr("server.address", serverAddressAttributeValue)
	dp.Attributes().PutInt("server.port", serverPortAttributeValue)
	dp.Attributes().PutStr("db.namespace", dbNamespaceAttributeValue)
}

// updateCapacity saves max length of data point slices that will be used for the slice capacity.
func (m *metricPgmqQueueSentMessages) updateCapacity() {
	if m.data.Sum().DataPoints().Len() > m.capacity {
		m.capacity = m.data.Sum().DataPoints().Len()
	}
}

// emit appends recorded metric data to a metrics slice and prepares it for recording another set of data points.
func (m *metricPgmqQueueSentMessages) emit(metrics pmetric.MetricSlice) {
	if m.config.Enabled && m.data.Sum().DataPoints().Len() > 0 {
		m.updateCapacity()
		m.data.MoveTo(metrics.AppendEmpty())
		m.init()
	}
}

func newMetricPgmqQueueSentMessages(cfg MetricConfig) metricPgmqQueueSentMessages {
	m := metricPgmqQueueSentMessages{config: cfg}
	if cfg.Enabled {
		m.data = pmetric.NewMetric()
		m.init()
	}
	return m
}

type metricPgmqSamplerErrors struct {
	data     pmetric.Metric // data buffer for generated metric.
	config   MetricConfig   // metric config provided by user.
	capacity int            // max observed number of data points added to the metric.
}

// init fills pgmq.sampler.errors metric with initial data.
func (m *metricPgmqSamplerErrors) init() {
	m.data.SetName("pgmq.sampler.errors")
	m.data.SetDescription("Queue samples, or single queues of a sample, that failed, by error type; their points were left out.")
	m.data.SetUnit("{error}")
	m.data.SetEmptySum()
	m.data.Sum().SetIsMonotonic(true)
	m.data.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	m.data.Sum().DataPoints().EnsureCapacity(m.capacity)
}

func (m *metricPgmqSamplerErrors) recordDataPoint(start pcommon.Timestamp, ts pcommon.Timestamp, val int64, errorTypeAttributeValue string, serverAddressAttributeValue string, serverPortAttributeValue int64, dbNamespaceAttributeValue string) {
	if !m.config.Enabled {
		return
	}
	dp := m.data.Sum().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.SetIntValue(val)
	dp.Attributes().EnsureCapacity(4)
	dp.Attributes().PutStr("error.type", errorTypeAttributeValue)
	dp.Attributes().PutStr("server.address", serverAddressAttributeValue)
	dp.Attributes().PutInt("server.port", serverPortAttributeValue)
	dp.Attributes().PutStr("db.namespace", dbNamespaceAttributeValue)
}

// updateCapacity saves max length of data point slices that will be used for the slice capacity.
func (m *metricPgmqSamplerErrors) updateCapacity() {
	if m.data.Sum().DataPoints().Len() > m.capacity {
		m.capacity = m.data.Sum().DataPoints().Len()
	}
}

// emit appends recorded metric data to a metrics slice and prepares it for recording another set of data points.
func (m *metricPgmqSamplerErrors) emit(metrics pmetric.MetricSlice) {
	if m.config.Enabled && m.data.Sum().DataPoints().Len() > 0 {
		m.updateCapacity()
		m.data.MoveTo(metrics.AppendEmpty())
		m.init()
	}
}

func newMetricPgmqSamplerErrors(cfg MetricConfig) metricPgmqSamplerErrors {
	m := metricPgmqSamplerErrors{config: cfg}
	if cfg.Enabled {
		m.data = pmetric.NewMetric()
		m.init()
	}
	return m
}

// MetricsBuilder provides an interface for scrapers to report metrics while taking care of all the transformations
// required to produce metric representation defined in metadata and user config.
type MetricsBuilder struct {
	config                          MetricsBuilderConfig // config of the metrics builder.
	startTime                       pcommon.Timestamp    // start time that will be applied to all recorded data points.
	metricsCapacity                 int                  // maximum observed number of metrics per resource.
	metricsBuffer                   pmetric.Metrics      // accumulates metrics data before emitting.
	buildInfo                       component.BuildInfo  // contains version information.
	metricPgmqQueueDepth            metricPgmqQueueDepth
	metricPgmqQueueOldestMessageAge metricPgmqQueueOldestMessageAge
	metricPgmqQueueSentMessages     metricPgmqQueueSentMessages
	metricPgmqSamplerErrors         metricPgmqSamplerErrors
}

// MetricBuilderOption applies changes to default metrics builder.
type MetricBuilderOption interface {
	apply(*MetricsBuilder)
}

type metricBuilderOptionFunc func(mb *MetricsBuilder)

func (mbof metricBuilderOptionFunc) apply(mb *MetricsBuilder) {
	mbof(mb)
}

// WithStartTime sets startTime on the metrics builder.
func WithStartTime(startTime pcommon.Timestamp) MetricBuilderOption {
	return metricBuilderOptionFunc(func(mb *MetricsBuilder) {
		mb.startTime = startTime
	})
}

// NewMetricsBuilder returns a MetricsBuilder for mbc's enabled metrics.
func NewMetricsBuilder(mbc MetricsBuilderConfig, settings receiver.Settings, options ...MetricBuilderOption) *MetricsBuilder {
	mb := &MetricsBuilder{
		config:                          mbc,
		startTime:                       pcommon.NewTimestampFromTime(time.Now()),
		metricsBuffer:                   pmetric.NewMetrics(),
		buildInfo:                       settings.BuildInfo,
		metricPgmqQueueDepth:            newMetricPgmqQueueDepth(mbc.Metrics.PgmqQueueDepth),
		metricPgmqQueueOldestMessageAge: newMetricPgmqQueueOldestMessageAge(mbc.Metrics.PgmqQueueOldestMessageAge),
		metricPgmqQueueSentMessages:     newMetricPgmqQueueSentMessages(mbc.Metrics.PgmqQueueSentMessages),
		metricPgmqSamplerErrors:         newMetricPgmqSamplerErrors(mbc.Metrics.PgmqSamplerErrors),
	}
	for _, op := range options {
		op.apply(mb)
	}
	return mb
}

// updateCapacity updates max length of metrics that will be used for the slice capacity.
func (mb *MetricsBuilder) updateCapacity(rm pmetric.ResourceMetrics) {
	if mb.metricsCapacity < rm.ScopeMetrics().At(0).Metrics().Len() {
		mb.metricsCapacity = rm.ScopeMetrics().At(0).Metrics().Len()
	}
}

// EmitForResource saves all the generated metrics under a new resource and updates the internal state to be ready for
// recording another set of data points as part of another resource. The receiver declares no resource attributes.
func (mb *MetricsBuilder) EmitForResource() {
	rm := pmetric.NewResourceMetrics()
	ils := rm.ScopeMetrics().AppendEmpty()
	ils.Scope().SetName(ScopeName)
	ils.Scope().SetVersion(mb.buildInfo.Version)
	ils.Metrics().EnsureCapacity(mb.metricsCapacity)
	mb.metricPgmqQueueDepth.emit(ils.Metrics())
	mb.metricPgmqQueueOldestMessageAge.emit(ils.Metrics())
	mb.metricPgmqQueueSentMessages.emit(ils.Metrics())
	mb.metricPgmqSamplerErrors.emit(ils.Metrics())
	if ils.Metrics().Len() > 0 {
		mb.updateCapacity(rm)
		rm.MoveTo(mb.metricsBuffer.ResourceMetrics().AppendEmpty())
	}
}

// Emit returns all the metrics accumulated by the metrics builder and updates the internal state to be ready for
// recording another set of metrics.
func (mb *MetricsBuilder) Emit() pmetric.Metrics {
	mb.EmitForResource()
	metrics := mb.metricsBuffer
	mb.metricsBuffer = pmetric.NewMetrics()
	return metrics
}

// RecordPgmqQueueDepthDataPoint adds a data point to pgmq.queue.depth metric.
func (mb *MetricsBuilder) RecordPgmqQueueDepthDataPoint(ts pcommon.Timestamp, val int64, messagingSystemAttributeValue AttributeMessagingSystem, messagingDestinationNameAttributeValue string, pgmqMessageStateAttributeValue AttributePgmqMessageState, pgmqDepthMethodAttributeValue AttributePgmqDepthMethod, serverAddressAttributeValue string, serverPortAttributeValue int64, dbNamespaceAttributeValue string) {
	mb.metricPgmqQueueDepth.recordDataPoint(mb.startTime, ts, val, messagingSystemAttributeValue.String(), messagingDestinationNameAttributeValue, pgmqMessageStateAttributeValue.String(), pgmqDepthMethodAttributeValue.String(), serverAddressAttributeValue, serverPortAttributeValue, dbNamespaceAttributeValue)
}

// RecordPgmqQueueOldestMessageAgeDataPoint adds a data point to pgmq.queue.oldest_message.age metric.
func (mb *MetricsBuilder) RecordPgmqQueueOldestMessageAgeDataPoint(ts pcommon.Timestamp, val float64, messagingSystemAttributeValue AttributeMessagingSystem, messagingDestinationNameAttributeValue string, serverAddressAttributeValue string, serverPortAttributeValue int64, dbNamespaceAttributeValue string) {
	mb.metricPgmqQueueOldestMessageAge.recordDataPoint(mb.startTime, ts, val, messagingSystemAttributeValue.String(), messagingDestinationNameAttributeValue, serverAddressAttributeValue, serverPortAttributeValue, dbNamespaceAttributeValue)
}

// RecordPgmqQueueSentMessagesDataPoint adds a data point to pgmq.queue.sent.messages metric.
func (mb *MetricsBuilder) RecordPgmqQueueSentMessagesDataPoint(ts pcommon.Timestamp, val int64, messagingSystemAttributeValue AttributeMessagingSystem, messagingDestinationNameAttributeValue string, serverAddressAttributeValue string, serverPortAttributeValue int64, dbNamespaceAttributeValue string) {
	mb.metricPgmqQueueSentMessages.recordDataPoint(mb.startTime, ts, val, messagingSystemAttributeValue.String(), messagingDestinationNameAttributeValue, serverAddressAttributeValue, serverPortAttributeValue, dbNamespaceAttributeValue)
}

// RecordPgmqSamplerErrorsDataPoint adds a data point to pgmq.sampler.errors metric.
func (mb *MetricsBuilder) RecordPgmqSamplerErrorsDataPoint(ts pcommon.Timestamp, val int64, errorTypeAttributeValue string, serverAddressAttributeValue string, serverPortAttributeValue int64, dbNamespaceAttributeValue string) {
	mb.metricPgmqSamplerErrors.recordDataPoint(mb.startTime, ts, val, errorTypeAttributeValue, serverAddressAttributeValue, serverPortAttributeValue, dbNamespaceAttributeValue)
}

// Reset resets metrics builder to its initial state. It should be used when external metrics source is restarted,
// and metrics builder should update its startTime and reset it's internal state accordingly.
func (mb *MetricsBuilder) Reset(options ...MetricBuilderOption) {
	mb.startTime = pcommon.NewTimestampFromTime(time.Now())
	for _, op := range options {
		op.apply(mb)
	}
}
