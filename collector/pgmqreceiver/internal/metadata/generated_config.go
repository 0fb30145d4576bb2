// Code in the shape cmd/mdatagen generates from metadata.yaml, written by
// hand (the generator is not available to this project).

package metadata

import (
	"go.opentelemetry.io/collector/confmap"
)

// MetricConfig provides common config for a particular metric.
type MetricConfig struct {
	Enabled bool `mapstructure:"enabled"`

	enabledSetByUser bool
}

// Unmarshal reads a metric's settings and remembers whether enabled was set.
func (ms *MetricConfig) Unmarshal(parser *confmap.Conf) error {
	if parser == nil {
		return nil
	}
	if err := parser.Unmarshal(ms); err != nil {
		return err
	}
	ms.enabledSetByUser = parser.IsSet("enabled")
	return nil
}

// MetricsConfig provides config for the pgmq receiver's metrics.
type MetricsConfig struct {
	PgmqQueueDepth            MetricConfig `mapstructure:"pgmq.queue.depth"`
	PgmqQueueOldestMessageAge MetricConfig `mapstructure:"pgmq.queue.oldest_message.age"`
	PgmqQueueSentMessages     MetricConfig `mapstructure:"pgmq.queue.sent.messages"`
	PgmqSamplerErrors         MetricConfig `mapstructure:"pgmq.sampler.errors"`
}

// DefaultMetricsConfig enables every metric.
func DefaultMetricsConfig() MetricsConfig {
	return MetricsConfig{
		PgmqQueueDepth: MetricConfig{
			Enabled: true,
		},
		PgmqQueueOldestMessageAge: MetricConfig{
			Enabled: true,
		},
		PgmqQueueSentMessages: MetricConfig{
			Enabled: true,
		},
		PgmqSamplerErrors: MetricConfig{
			Enabled: true,
		},
	}
}

// MetricsBuilderConfig is a configuration for the pgmq receiver's metrics builder.
type MetricsBuilderConfig struct {
	Metrics MetricsConfig `mapstructure:"metrics"`
}

// DefaultMetricsBuilderConfig is the default configuration of the metrics builder.
func DefaultMetricsBuilderConfig() MetricsBuilderConfig {
	return MetricsBuilderConfig{
		Metrics: DefaultMetricsConfig(),
	}
}
