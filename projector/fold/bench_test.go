package fold

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// workload is the events of n conversations of mixed lifecycles, each
// starting 2 s after the previous one, merged in time order (as they leave
// Kafka's partitions), each event's At shifted accordingly.
func workload(n int) []ev {
	rng := rand.New(rand.NewPCG(1, 1))
	weights := []struct {
		lc     func(int) *world
		weight int
	}{{fullLifecycle, 45}, {workflowTimeoutLifecycle, 20}, {declinedLifecycle, 15}, {deletedLifecycle, 5}, {messyLifecycle, 15}}
	var all []ev
	for i := range n {
		r := rng.IntN(100)
		k := 0
		for r >= weights[k].weight {
			r -= weights[k].weight
			k++
		}
		shift := time.Duration(i) * 2 * time.Second
		for _, x := range weights[k].lc(i + 1).events {
			x.e.At = x.e.At.Add(shift)
			all = append(all, x)
		}
	}
	slices.SortStableFunc(all, func(a, b ev) int { return a.e.At.Compare(b.e.At) })
	return all
}

// BenchmarkFold folds a mix of conversations as the projection does: each
// event into its conversation's view and its task's view.
//   - memory: views kept in memory (the pure fold).
//   - json-roundtrip: each view unmarshalled before and marshalled after
//     every event, as if stored between events (the projection only does
//     this once per view per commit batch).
func BenchmarkFold(b *testing.B) {
	events := workload(2000)
	b.Run("memory", func(b *testing.B) {
		iters := 0
		for b.Loop() {
			convs := make(map[string]*ConversationView, 2000)
			tasks := make(map[string]*TaskView, 2000)
			for _, x := range events {
				if s := x.e.ConversationSid; s != "" {
					v := convs[s]
					if v == nil {
						v = &ConversationView{Sid: s}
						convs[s] = v
					}
					v.Apply(x.e, x.id)
				}
				if s := x.e.TaskSid; s != "" {
					v := tasks[s]
					if v == nil {
						v = &TaskView{Sid: s}
						tasks[s] = v
					}
					v.Apply(x.e, x.id)
				}
			}
			iters++
		}
		b.ReportMetric(float64(iters*len(events))/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*len(events)), "ns/event")
	})
	b.Run("json-roundtrip", func(b *testing.B) {
		iters := 0
		for b.Loop() {
			convs := make(map[string][]byte, 2000)
			tasks := make(map[string][]byte, 2000)
			for _, x := range events {
				if s := x.e.ConversationSid; s != "" {
					v := ConversationView{Sid: s}
					if data := convs[s]; data != nil {
						if err := json.Unmarshal(data, &v); err != nil {
							b.Fatal(err)
						}
					}
					v.Apply(x.e, x.id)
					convs[s], _ = json.Marshal(&v)
				}
				if s := x.e.TaskSid; s != "" {
					v := TaskView{Sid: s}
					if data := tasks[s]; data != nil {
						if err := json.Unmarshal(data, &v); err != nil {
							b.Fatal(err)
						}
					}
					v.Apply(x.e, x.id)
					tasks[s], _ = json.Marshal(&v)
				}
			}
			iters++
		}
		b.ReportMetric(float64(iters*len(events))/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*len(events)), "ns/event")
	})
}
