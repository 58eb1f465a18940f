package api

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the API's own, registered into Config.Registry (the
// projector's, so one scrape gets both) or into a registry of their own.
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec   // route, code
	requestSeconds *prometheus.HistogramVec // route, code (event streams excluded)
	streams        prometheus.Gauge
	streamEvents   *prometheus.CounterVec // kind
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	own := reg == nil
	if own {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &metrics{reg: reg}
	var err error
	if m.requests, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flexstream_api_requests_total", Help: "Query API requests by route pattern and HTTP status (aborted: cut mid-response).",
	}, []string{"route", "code"})); err != nil {
		return nil, err
	}
	if m.requestSeconds, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "flexstream_api_request_seconds", Help: "Query API request durations by route pattern and HTTP status; event streams are not included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "code"})); err != nil {
		return nil, err
	}
	if m.streams, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flexstream_api_event_streams", Help: "Server-Sent Event streams open.",
	})); err != nil {
		return nil, err
	}
	if m.streamEvents, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flexstream_api_stream_events_total", Help: "Changes sent on Server-Sent Event streams, by kind.",
	}, []string{"kind"})); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg, or adopts the collector already registered
// under its name: a server started again on the same registry (after a
// replay, in tests) keeps counting where the last one stopped.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
