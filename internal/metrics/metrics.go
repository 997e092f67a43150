// Package metrics exports a Regent member's state and events to Prometheus:
// every patroni_* metric of Patroni's GET /metrics (same names, labels and
// meaning, so existing dashboards keep working) plus Regent's own regent_*
// gauges, counters and histograms.
//
// Two sources feed it. State comes from the agent's published api.Snapshot,
// read at scrape time by a custom collector: the snapshot is in memory, so
// a scrape never waits on PostgreSQL or etcd, and a stalled agent shows as
// a growing regent_snapshot_age_seconds rather than as a hung scrape.
// Events (HA loops, decisions, promotions, demotions, fences, lease
// renewals) are recorded by the agent through the Observe*/Record* methods.
//
// Every series carries the labels scope (cluster name) and name (member
// name), taken from the current snapshot at scrape time. The other labels
// take values from small fixed sets, listed beside each Record method;
// unknown inputs are counted under "other". The only label whose values
// come from outside is standby (pg_stat_replication.application_name, one
// per connected standby), so cardinality stays bounded by the cluster size.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/regent-ha/regent/internal/api"
)

// Metrics holds a member's metrics in its own registry. Create it with
// New, record events with its methods, serve it with Handler. All methods
// are safe for concurrent use, and are no-ops on a nil *Metrics.
type Metrics struct {
	src api.SnapshotSource
	reg *prometheus.Registry
	now func() time.Time

	loop         *histogram
	renewal      *histogram
	renewals     *counterSet
	decisions    *counterSet
	promotions   *counterSet
	demotions    *counterSet
	fences       *counterSet
	lastRenewal  lastValue
	snapshotDesc snapshotDescs
}

// New returns the metrics of the member whose snapshots src publishes.
// src.Snapshot must be cheap and non-blocking (api.Publisher is); it is
// called once per scrape. The registry also holds the Go runtime and
// process collectors (go_*, process_*).
func New(src api.SnapshotSource) *Metrics {
	if src == nil {
		src = new(api.Publisher)
	}
	m := &Metrics{
		src: src,
		reg: prometheus.NewRegistry(),
		now: time.Now,
	}
	m.initEvents()
	m.snapshotDesc = newSnapshotDescs()
	m.reg.MustRegister(
		(*collector)(m),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Registry returns the registry behind Handler (for tests and for
// embedding extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// collector is Metrics as a prometheus.Collector: at each scrape it reads
// one snapshot and emits the snapshot-derived and the event metrics with
// that snapshot's scope and name.
type collector Metrics

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	m := (*Metrics)(c)
	m.snapshotDesc.describe(ch)
	m.describeEvents(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	s := m.src.Snapshot()
	now := m.now()
	m.snapshotDesc.collect(ch, &s, now)
	m.collectEvents(ch, s.Scope, s.Name)
}
