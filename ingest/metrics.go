package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's own: a registry per server, so tests and two
// servers in one process never share counters.
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec   // route, code
	signatureFails   *prometheus.CounterVec   // route
	records          *prometheus.CounterVec   // route: records acknowledged by Kafka
	produceSeconds   *prometheus.HistogramVec // route, outcome
	inFlight         prometheus.Gauge
	preEventLate     prometheus.Counter
	preEventUnstored prometheus.Counter
	kafkaReady       prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flexstream_ingest_requests_total", Help: "Webhook requests by route and HTTP status.",
		}, []string{"route", "code"}),
		signatureFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flexstream_ingest_signature_failures_total", Help: "Requests refused for a missing or wrong X-Twilio-Signature.",
		}, []string{"route"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flexstream_ingest_records_total", Help: "Records Kafka acknowledged, by route.",
		}, []string{"route"}),
		produceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flexstream_ingest_produce_seconds", Help: "Time from the produce call to Kafka's acknowledgement (or failure).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flexstream_ingest_in_flight", Help: "Webhook requests being processed.",
		}),
		preEventLate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flexstream_ingest_pre_events_answered_before_stored_total",
			Help: "Pre-event webhooks answered 200 at the deadline while Kafka had not yet acknowledged them.",
		}),
		preEventUnstored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flexstream_ingest_pre_events_unstored_total",
			Help: "Pre-event webhooks answered 200 that Kafka never acknowledged (lost from the topic).",
		}),
		kafkaReady: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flexstream_ingest_kafka_ready", Help: "1 while the last Kafka probe succeeded.",
		}),
	}
	m.reg.MustRegister(m.requests, m.signatureFails, m.records, m.produceSeconds, m.inFlight,
		m.preEventLate, m.preEventUnstored, m.kafkaReady,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
