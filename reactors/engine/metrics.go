package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reactions *prometheus.CounterVec   // kind, outcome
	actions   *prometheus.CounterVec   // kind, action, outcome
	latency   *prometheus.HistogramVec // action: trigger → Twilio's answer
	abandoned *prometheus.CounterVec   // kind
	inflight  prometheus.Gauge
	position  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flexstream_reactions_total",
			Help: "Reactions by trigger kind and outcome: completed, abandoned, skipped-<reason>, dry-run.",
		}, []string{"kind", "outcome"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flexstream_reaction_actions_total",
			Help: "Reaction actions by trigger kind, action and outcome: succeeded, reconciled, failed, skipped, dry-run.",
		}, []string{"kind", "action", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flexstream_reaction_trigger_to_action_seconds",
			Help:    "Time from the trigger (Twilio's event time) to Twilio's answer to the action.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50 ms … 7 min
		}, []string{"action"}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flexstream_reactions_abandoned_total",
			Help: "Reactions given up (deadline passed, attempts exhausted, or a call refused) by trigger kind.",
		}, []string{"kind"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flexstream_reactions_in_flight",
			Help: "Triggers received and not yet answered.",
		}),
		position: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flexstream_reactors_checkpoint_position",
			Help: "The $all position up to which every trigger is answered.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.reactions, m.actions, m.latency, m.abandoned, m.inflight, m.position} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("reactors: register metrics: %w", err)
		}
	}
	return m, nil
}
