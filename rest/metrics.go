package rest

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/health"
	"github.com/occopus-go/occopus/store"
)

// metrics live in a private registry: two Servers in one process (tests)
// never collide, and nothing global leaks in.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	reqDuration *prometheus.HistogramVec
	passes      *prometheus.HistogramVec
	transitions *prometheus.CounterVec
	toReady     prometheus.Histogram
	events      *prometheus.CounterVec
	webhook     *prometheus.CounterVec
	probes      *prometheus.HistogramVec
	calls       *prometheus.HistogramVec
	callErrors  *prometheus.CounterVec
	orphans     *prometheus.GaugeVec

	mu       sync.Mutex
	creating map[string]time.Time // node id -> when it entered creating
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "occopus_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "code"}),
		reqDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "occopus_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		passes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "occopus_reconcile_pass_duration_seconds", Help: "Duration of maintenance (reconcile) passes by result (ok, requeue, error, terminal, panic).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"result"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "occopus_instance_transitions_total", Help: "Node instance state changes by new state (failed: a health check or the backend gave up).",
		}, []string{"to"}),
		toReady: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "occopus_instance_time_to_ready_seconds", Help: "From creating to ready: backend creation plus health checks.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "occopus_events_total", Help: "Events recorded by this process, by kind.",
		}, []string{"kind"}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "occopus_webhook_deliveries_total", Help: "Webhook deliveries by result (ok, error, dropped).",
		}, []string{"result"}),
		probes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "occopus_health_check_duration_seconds", Help: "Health-check probes by primitive (ping, ports, urls, mysqldbs) and result (pass, fail).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"primitive", "status"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "occopus_backend_call_duration_seconds", Help: "Calls to resource backends by backend type and operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"backend", "op"}),
		callErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "occopus_backend_call_errors_total", Help: "Failed calls to resource backends by backend type and operation.",
		}, []string{"backend", "op"}),
		orphans: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "occopus_orphans", Help: "Backend resources the store does not know of: found (this store's, not removed yet) and foreign (another store's or none: never removed) as the last sweep saw them; removed: by this service since it started.",
		}, []string{"state"}),
		creating: map[string]time.Time{},
	}
	m.reg.MustRegister(m.requests, m.reqDuration, m.passes, m.transitions, m.toReady, m.events, m.webhook, m.probes, m.calls, m.callErrors, m.orphans,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// register adds the collector that reads the store.
func (m *metrics) register(mgr *occopus.Manager) {
	m.reg.MustRegister(&storeCollector{m: mgr}, &haCollector{m: mgr})
}

func (m *metrics) observeRequest(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.reqDuration.WithLabelValues(route).Observe(d.Seconds())
}

// observePass counts a pass by its outcome: ok, requeue, error, terminal,
// panic (occopus.Outcome).
func (m *metrics) observePass(d time.Duration, result string) {
	m.passes.WithLabelValues(result).Observe(d.Seconds())
}

// observeOrphans sets the gauges from a sweep's report: what it saw, and
// what it removed added to the removals before (a removed orphan is not
// seen again, so the last sweep's count alone would hide it at once).
func (m *metrics) observeOrphans(rep *occopus.OrphanReport) {
	m.orphans.WithLabelValues(occopus.OrphanFound).Set(float64(rep.Count(occopus.OrphanFound)))
	m.orphans.WithLabelValues(occopus.OrphanForeign).Set(float64(rep.Count(occopus.OrphanForeign)))
	m.orphans.WithLabelValues(occopus.OrphanRemoved).Add(float64(rep.Count(occopus.OrphanRemoved)))
}

func (m *metrics) observeProbe(r health.Result) {
	m.probes.WithLabelValues(r.Primitive, string(r.Status)).Observe(r.Latency.Seconds())
}

func (m *metrics) observeBackendCall(backend, op string, d time.Duration, err error) {
	m.calls.WithLabelValues(backend, op).Observe(d.Seconds())
	if err != nil {
		m.callErrors.WithLabelValues(backend, op).Inc()
	}
}

func (m *metrics) observeEvent(ev store.Event) {
	m.events.WithLabelValues(ev.Kind).Inc()
	if ev.Kind != "instance.state" {
		return
	}
	m.transitions.WithLabelValues(ev.To).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch ev.To {
	case store.StateCreating:
		m.creating[ev.NodeID] = ev.Time
	case store.StateReady:
		if t, ok := m.creating[ev.NodeID]; ok {
			m.toReady.Observe(ev.Time.Sub(t).Seconds())
		}
		delete(m.creating, ev.NodeID)
	case store.StateFailed, store.StateShutdown, store.StateDestroying, "deleted":
		delete(m.creating, ev.NodeID)
	}
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// storeCollector reports what the store holds at scrape time.
type storeCollector struct{ m *occopus.Manager }

var (
	descInfras   = prometheus.NewDesc("occopus_infrastructures", "Infrastructures in the store.", nil, nil)
	descAttached = prometheus.NewDesc("occopus_infrastructures_attached", "Infrastructures this service maintains continuously.", nil, nil)
	descInsts    = prometheus.NewDesc("occopus_instances", "Node instances in the store by state.", []string{"state"}, nil)
	descScrapeOK = prometheus.NewDesc("occopus_store_up", "1 when the store answered the last scrape.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descInfras
	ch <- descAttached
	ch <- descInsts
	ch <- descScrapeOK
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	infras, err := c.m.List(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descScrapeOK, prometheus.GaugeValue, 0)
		return
	}
	byState := map[string]int{}
	for _, s := range []string{store.StateCreating, store.StatePending, store.StateReady, store.StateFailed,
		store.StateShutdown, store.StateUnknown, store.StateDestroying} {
		byState[s] = 0
	}
	attached := 0
	for _, inf := range infras {
		if inf.Attached {
			attached++
		}
		ins, err := c.m.Store().Instances(ctx, inf.ID)
		if err != nil {
			ch <- prometheus.MustNewConstMetric(descScrapeOK, prometheus.GaugeValue, 0)
			return
		}
		for _, in := range ins {
			byState[in.State]++
		}
	}
	ch <- prometheus.MustNewConstMetric(descScrapeOK, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descInfras, prometheus.GaugeValue, float64(len(infras)))
	ch <- prometheus.MustNewConstMetric(descAttached, prometheus.GaugeValue, float64(attached))
	for s, n := range byState {
		ch <- prometheus.MustNewConstMetric(descInsts, prometheus.GaugeValue, float64(n), s)
	}
}

// haCollector reads who owns what from the Manager at each scrape.
type haCollector struct{ m *occopus.Manager }

var (
	descOwned = prometheus.NewDesc("occopus_owned_infrastructures",
		"Infrastructures whose lease this replica holds (maintains), by owner (this replica's name in the store's leases).", []string{"owner"}, nil)
	descLeaseLosses = prometheus.NewDesc("occopus_lease_losses_total",
		"Leases on infrastructures this replica lost while working on them (its work stopped before the next backend call).", nil, nil)
	descTakeovers = prometheus.NewDesc("occopus_lease_takeovers_total",
		"Infrastructures this replica began to maintain after another process had maintained them.", nil, nil)
)

func (c *haCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOwned
	ch <- descLeaseLosses
	ch <- descTakeovers
}

func (c *haCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.m.Ownership()
	ch <- prometheus.MustNewConstMetric(descOwned, prometheus.GaugeValue, float64(len(o.Owned)), o.Owner)
	ch <- prometheus.MustNewConstMetric(descLeaseLosses, prometheus.CounterValue, float64(o.LeaseLosses))
	ch <- prometheus.MustNewConstMetric(descTakeovers, prometheus.CounterValue, float64(o.Takeovers))
}
