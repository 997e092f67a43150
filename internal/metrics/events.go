package metrics

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-ha/regent/internal/ha"
)

// Label values of the event counters. Any other input is counted as
// LabelOther, so each counter has a fixed, documented set of series, all
// exported from the start at 0 (so increase() sees the first event).
const (
	LabelOther = "other"

	// Reasons of RecordPromotion.
	PromotionFailover       = "failover"        // leader lost: won the leader race
	PromotionSwitchover     = "switchover"      // planned: named by a switchover request
	PromotionManualFailover = "manual_failover" // operator's failover to a named candidate
	PromotionBootstrap      = "bootstrap"       // first primary of a new cluster

	// Reasons of RecordDemotion.
	DemotionLeaseLost     = "lease_lost"     // lease not confirmed in time (also see fences)
	DemotionOtherLeader   = "other_leader"   // the leader key names another member
	DemotionStaleTimeline = "stale_timeline" // history has a newer timeline than ours
	DemotionSwitchover    = "switchover"     // handing over to a switchover candidate

	// Reasons of RecordFence.
	FenceRenewDeadline  = "renew_deadline"  // the HA loop saw the renew deadline pass
	FenceGuardTimer     = "guard_timer"     // the lease guard's timer fired between loops
	FenceDCSUnreachable = "dcs_unreachable" // writable, no lease and no DCS view

	// Results of ObserveRenewal.
	RenewalOK     = "ok"
	RenewalFailed = "failed"
)

// DecisionActions are the label values of regent_decisions_total (besides
// LabelOther): the names of internal/ha's action kinds, ha.Kind.String(),
// so a new kind gets its own series without a change here.
var DecisionActions = haKindNames()

func haKindNames() []string {
	var names []string
	for k := ha.Kind(0); k.String() != "unknown"; k++ {
		names = append(names, k.String())
	}
	return names
}

var (
	promotionReasons = []string{PromotionFailover, PromotionSwitchover, PromotionManualFailover, PromotionBootstrap}
	demotionReasons  = []string{DemotionLeaseLost, DemotionOtherLeader, DemotionStaleTimeline, DemotionSwitchover}
	fenceReasons     = []string{FenceRenewDeadline, FenceGuardTimer, FenceDCSUnreachable}
	renewalResults   = []string{RenewalOK, RenewalFailed}

	// loopBuckets cover a 1 s loop_wait: a healthy loop takes a few
	// milliseconds; one near loop_wait or retry_timeout is in trouble.
	loopBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// renewalBuckets cover a lease keep-alive bounded by retry_timeout (1 s
	// by default) against a renew deadline of 3.45 s.
	renewalBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
)

func (m *Metrics) initEvents() {
	m.loop = newHistogram("regent_ha_loop_duration_seconds",
		"Duration of one HA loop: observe, renew the lease, decide, act, publish.", loopBuckets)
	m.renewal = newHistogram("regent_lease_renewal_duration_seconds",
		"Duration of leader lease renewals (etcd keep-alive round trips), successful or not.", renewalBuckets)
	m.renewals = newCounterSet("regent_lease_renewals_total",
		"Leader lease renewals attempted, by result (ok, failed).", "result", renewalResults, false)
	m.decisions = newCounterSet("regent_decisions_total",
		"HA loop decisions, by their first action (internal/ha action kinds).", "action", DecisionActions, true)
	m.promotions = newCounterSet("regent_promotions_total",
		"Promotions of this member to primary, by reason (failover, switchover, manual_failover, bootstrap, other).",
		"reason", promotionReasons, true)
	m.demotions = newCounterSet("regent_demotions_total",
		"Demotions of this member's primary, by reason (lease_lost, other_leader, stale_timeline, switchover, other).",
		"reason", demotionReasons, true)
	m.fences = newCounterSet("regent_fences_total",
		"Times this member fenced its PostgreSQL (immediate stop), by reason (renew_deadline, guard_timer, dcs_unreachable, other).",
		"reason", fenceReasons, true)
	m.lastRenewal.desc = prometheus.NewDesc("regent_lease_last_renewal_duration_seconds",
		"Duration of the last leader lease renewal attempt; absent until the first one.", baseLabels, nil)
}

// ObserveLoop records the duration of one HA loop. Call it once per loop,
// after the snapshot is published.
func (m *Metrics) ObserveLoop(d time.Duration) {
	if m == nil {
		return
	}
	m.loop.observe(d.Seconds())
}

// RecordDecision counts a decision by its first action: pass
// ha.Decision.Actions[0].Kind.String() (one of DecisionActions).
func (m *Metrics) RecordDecision(action string) {
	if m == nil {
		return
	}
	m.decisions.inc(action)
}

// RecordPromotion counts a successful promotion of this member; reason is
// one of the Promotion* constants.
func (m *Metrics) RecordPromotion(reason string) {
	if m == nil {
		return
	}
	m.promotions.inc(reason)
}

// RecordDemotion counts a demotion of this member's primary; reason is one
// of the Demotion* constants.
func (m *Metrics) RecordDemotion(reason string) {
	if m == nil {
		return
	}
	m.demotions.inc(reason)
}

// RecordFence counts a fence (immediate stop of PostgreSQL because the
// lease may be lost); reason is one of the Fence* constants.
func (m *Metrics) RecordFence(reason string) {
	if m == nil {
		return
	}
	m.fences.inc(reason)
}

// ObserveRenewal records one leader lease renewal attempt: its latency from
// send to answer (or to the error) and whether etcd confirmed it.
func (m *Metrics) ObserveRenewal(latency time.Duration, ok bool) {
	if m == nil {
		return
	}
	m.renewal.observe(latency.Seconds())
	m.lastRenewal.set(latency.Seconds())
	if ok {
		m.renewals.inc(RenewalOK)
	} else {
		m.renewals.inc(RenewalFailed)
	}
}

func (m *Metrics) describeEvents(ch chan<- *prometheus.Desc) {
	ch <- m.loop.desc
	ch <- m.renewal.desc
	ch <- m.lastRenewal.desc
	for _, c := range []*counterSet{m.renewals, m.decisions, m.promotions, m.demotions, m.fences} {
		ch <- c.desc
	}
}

func (m *Metrics) collectEvents(ch chan<- prometheus.Metric, scope, name string) {
	m.loop.collect(ch, scope, name)
	m.renewal.collect(ch, scope, name)
	m.lastRenewal.collect(ch, scope, name)
	for _, c := range []*counterSet{m.renewals, m.decisions, m.promotions, m.demotions, m.fences} {
		c.collect(ch, scope, name)
	}
}

// counterSet is a counter with one extra label whose values are fixed.
type counterSet struct {
	desc   *prometheus.Desc
	values []string
	index  map[string]int
	counts []atomic.Uint64
}

func newCounterSet(fqName, help, label string, values []string, withOther bool) *counterSet {
	vals := append([]string(nil), values...)
	if withOther {
		vals = append(vals, LabelOther)
	}
	c := &counterSet{
		desc:   prometheus.NewDesc(fqName, help, append(append([]string(nil), baseLabels...), label), nil),
		values: vals,
		index:  make(map[string]int, len(vals)),
		counts: make([]atomic.Uint64, len(vals)),
	}
	for i, v := range vals {
		c.index[v] = i
	}
	return c
}

func (c *counterSet) inc(value string) {
	i, ok := c.index[value]
	if !ok {
		i, ok = c.index[LabelOther]
		if !ok {
			return
		}
	}
	c.counts[i].Add(1)
}

func (c *counterSet) collect(ch chan<- prometheus.Metric, scope, name string) {
	for i, v := range c.values {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.counts[i].Load()), scope, name, v)
	}
}

// histogram is a fixed-bucket histogram exported as a const metric, so the
// scope and name labels can come from the snapshot at scrape time.
type histogram struct {
	desc   *prometheus.Desc
	bounds []float64
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; last is +Inf
	count  uint64
	sum    float64
}

func newHistogram(fqName, help string, bounds []float64) *histogram {
	return &histogram{
		desc:   prometheus.NewDesc(fqName, help, baseLabels, nil),
		bounds: bounds,
		counts: make([]uint64, len(bounds)+1),
	}
}

func (h *histogram) observe(v float64) {
	if math.IsNaN(v) {
		return
	}
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.mu.Lock()
	h.counts[i]++
	h.count++
	h.sum += v
	h.mu.Unlock()
}

func (h *histogram) collect(ch chan<- prometheus.Metric, scope, name string) {
	buckets := make(map[float64]uint64, len(h.bounds))
	h.mu.Lock()
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		buckets[b] = cum
	}
	count, sum := h.count, h.sum
	h.mu.Unlock()
	ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets, scope, name)
}

// lastValue is a gauge that is absent until first set.
type lastValue struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	has  bool
	v    float64
}

func (l *lastValue) set(v float64) {
	l.mu.Lock()
	l.v, l.has = v, true
	l.mu.Unlock()
}

func (l *lastValue) collect(ch chan<- prometheus.Metric, scope, name string) {
	l.mu.Lock()
	v, ok := l.v, l.has
	l.mu.Unlock()
	if ok {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, v, scope, name)
	}
}
