// Package kafkatest is the conformance suite for internal/kafkaio: the same
// cases run against every Kafka the product may meet — the embedded kfake
// broker, a real Apache Kafka broker, a Kafka container — so "works on the
// embedded default" and "works in production" are one claim.
package kafkatest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flexstream/flexstream/internal/kafkaio"
)

// Backend is one Kafka to run the suite against.
type Backend struct {
	Name    string
	Version string
	Brokers []string
	// Restart stops the broker and starts it again on the same address and
	// data. Nil skips the restart case, naming NoRestart as what is missing.
	Restart   func(ctx context.Context) error
	NoRestart string
}

// Run runs every case against b.
func Run(t *testing.T, b Backend) {
	t.Logf("kafka backend: %s %s at %s", b.Name, b.Version, strings.Join(b.Brokers, ","))
	s := &suite{b: b}
	t.Run("ProduceAcksAllKeyOrder", s.produceAcksAllKeyOrder)
	t.Run("GroupReaderCommitsOnlyDone", s.groupReaderCommitsOnlyDone)
	t.Run("TwoConsumersRebalance", s.twoConsumersRebalance)
	t.Run("BrokerRestartLosesNothing", s.brokerRestartLosesNothing)
}

type suite struct{ b Backend }

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// names returns a topic and a group unique to this test, so cases and
// repeated runs against one long-lived broker never see each other's data.
func (s *suite) names(t *testing.T) (topic, group string) {
	base := strings.ToLower(unsafeChars.ReplaceAllString(t.Name(), "-"))
	if len(base) > 60 {
		base = base[len(base)-60:]
	}
	id := fmt.Sprintf("%s-%d", base, time.Now().UnixNano())
	return "t-" + id, "g-" + id
}

func (s *suite) ctx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) topic(t *testing.T, ctx context.Context, name string, partitions int) {
	t.Helper()
	states, err := kafkaio.EnsureTopics(ctx, s.b.Brokers, []kafkaio.TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: 1}}, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	if len(states) != 1 || states[0].Partitions != partitions || !states[0].Created {
		t.Fatalf("EnsureTopics: got %+v", states)
	}
	// Asking again changes nothing and is not an error.
	states, err = kafkaio.EnsureTopics(ctx, s.b.Brokers, []kafkaio.TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: 1}}, nil)
	if err != nil || states[0].Created || states[0].Partitions != partitions {
		t.Fatalf("EnsureTopics again: %+v, %v", states, err)
	}
}

func (s *suite) producer(t *testing.T, topic string) *kafkaio.Producer {
	t.Helper()
	p, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: s.b.Brokers, Topic: topic, Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func (s *suite) consumer(t *testing.T, topic, group string) *kafkaio.Consumer {
	t.Helper()
	c, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{
		Brokers: s.b.Brokers, GroupID: group, Topics: []string{topic},
		// Short group timers keep rebalances in the suite to seconds.
		SessionTimeout: 10 * time.Second, HeartbeatInterval: 500 * time.Millisecond, RebalanceTimeout: 10 * time.Second,
		MaxWait: 200 * time.Millisecond, Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)),
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = c.Close()
		}
	})
	return c
}

func msg(key string, seq int) kafka.Message {
	return kafka.Message{
		Key:     []byte(key),
		Value:   []byte(fmt.Sprintf("%s#%d", key, seq)),
		Headers: []kafka.Header{{Key: "ce_id", Value: []byte(fmt.Sprintf("%s-%d", key, seq))}},
	}
}

// fetchN fetches n records; commit decides which are committed.
func fetchN(t *testing.T, ctx context.Context, c *kafkaio.Consumer, n int, commit func(i int) bool) []kafka.Message {
	t.Helper()
	var got []kafka.Message
	for i := 0; i < n; i++ {
		m, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch %d of %d: %v", i+1, n, err)
		}
		got = append(got, m)
		if commit(i) {
			if err := c.Commit(ctx, m); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
	}
	return got
}

func all(int) bool { return true }

// produceAcksAllKeyOrder: concurrent synchronous writes with acks=all are
// all readable; each key stays in one partition — the one the Java client's
// partitioner picks — in the order written; values and headers arrive intact.
func (s *suite) produceAcksAllKeyOrder(t *testing.T) {
	ctx := s.ctx(t, 2*time.Minute)
	topic, group := s.names(t)
	const partitions, keys, perKey = 3, 30, 10
	s.topic(t, ctx, topic, partitions)
	p := s.producer(t, topic)

	var wg sync.WaitGroup
	errs := make(chan error, keys)
	for k := 0; k < keys; k++ {
		wg.Add(1)
		go func(key string) {
			defer wg.Done()
			for i := 0; i < perKey; i++ {
				if err := p.Publish(ctx, msg(key, i)); err != nil {
					errs <- err
					return
				}
			}
		}(fmt.Sprintf("CH%032d", k))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}

	c := s.consumer(t, topic, group)
	got := fetchN(t, ctx, c, keys*perKey, all)
	java := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	next := map[string]int{}
	for _, m := range got {
		key := string(m.Key)
		want := java.Partition(&kgo.Record{Key: m.Key}, partitions)
		if m.Partition != want {
			t.Fatalf("key %s in partition %d, the Java partitioner says %d", key, m.Partition, want)
		}
		if v := fmt.Sprintf("%s#%d", key, next[key]); string(m.Value) != v {
			t.Fatalf("key %s: got %q, want %q (order or content broken)", key, m.Value, v)
		}
		if len(m.Headers) != 1 || m.Headers[0].Key != "ce_id" || string(m.Headers[0].Value) != fmt.Sprintf("%s-%d", key, next[key]) {
			t.Fatalf("headers not preserved: %+v", m.Headers)
		}
		next[key]++
	}
	if len(next) != keys {
		t.Fatalf("saw %d keys, want %d", len(next), keys)
	}
}

// groupReaderCommitsOnlyDone: a record is committed only when the caller
// says so. A consumer that stops after committing 5 of 10 fetched records
// hands over at record 5 — uncommitted work is redelivered, committed work
// is not — and a third member resumes exactly after the last commit.
func (s *suite) groupReaderCommitsOnlyDone(t *testing.T) {
	ctx := s.ctx(t, 2*time.Minute)
	topic, group := s.names(t)
	s.topic(t, ctx, topic, 1)
	p := s.producer(t, topic)
	for i := 0; i < 20; i++ {
		if err := p.Publish(ctx, msg("k", i)); err != nil {
			t.Fatal(err)
		}
	}

	a := s.consumer(t, topic, group)
	got := fetchN(t, ctx, a, 10, func(i int) bool { return i < 5 })
	if got[0].Offset != 0 || got[9].Offset != 9 {
		t.Fatalf("first consumer read offsets %d..%d", got[0].Offset, got[9].Offset)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b := s.consumer(t, topic, group)
	got = fetchN(t, ctx, b, 15, all)
	if got[0].Offset != 5 || string(got[0].Value) != "k#5" {
		t.Fatalf("restarted consumer began at offset %d (%q), want 5: the last committed record +1", got[0].Offset, got[0].Value)
	}
	if got[14].Offset != 19 {
		t.Fatalf("restarted consumer ended at %d, want 19", got[14].Offset)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	if err := p.Publish(ctx, msg("k", 20)); err != nil {
		t.Fatal(err)
	}
	c := s.consumer(t, topic, group)
	got = fetchN(t, ctx, c, 1, all)
	if got[0].Offset != 20 {
		t.Fatalf("third consumer began at %d, want 20: nothing committed may come back", got[0].Offset)
	}
}

// twoConsumersRebalance: a second member joining a busy group takes over
// part of the partitions; between them every record is handled, and after
// both leave the group's committed offsets cover everything.
func (s *suite) twoConsumersRebalance(t *testing.T) {
	ctx := s.ctx(t, 3*time.Minute)
	topic, group := s.names(t)
	const partitions, first, maxSecond = 4, 40, 4000
	s.topic(t, ctx, topic, partitions)
	p := s.producer(t, topic)
	publish := func(from, to int) {
		t.Helper()
		batch := make([]kafka.Message, 0, to-from)
		for i := from; i < to; i++ {
			batch = append(batch, msg(fmt.Sprintf("key-%d", i), i))
		}
		if err := p.Publish(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}

	type seen struct {
		who   string
		value string
	}
	seenCh := make(chan seen, 1024)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	start := func(who string) {
		c := s.consumer(t, topic, group)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.Run(runCtx, func(_ context.Context, m kafka.Message) error {
				seenCh <- seen{who, string(m.Value)}
				return nil
			})
		}()
	}

	publish(0, first)
	start("a")
	handled := map[string]map[string]bool{"a": {}, "b": {}}
	wait := func(want func() bool, what string) {
		t.Helper()
		for !want() {
			select {
			case sn := <-seenCh:
				handled[sn.who][sn.value] = true
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s; a handled %d, b handled %d", what, len(handled["a"]), len(handled["b"]))
			}
		}
	}
	wait(func() bool { return len(handled["a"]) == first }, "the first member to drain the topic")

	start("b")
	// Records keep arriving while the group rebalances, until both members
	// have handled some of them: proof that b was given partitions and a
	// kept the rest.
	next := first
	both := func() bool { return len(handled["b"]) > 0 && len(handled["a"]) > first }
	for !both() {
		if next >= first+maxSecond {
			t.Fatalf("after %d more records, a handled %d and b %d: the group never shared its partitions", maxSecond, len(handled["a"])-first, len(handled["b"]))
		}
		publish(next, next+20)
		next += 20
		deadline := time.After(100 * time.Millisecond)
	drain:
		for {
			select {
			case sn := <-seenCh:
				handled[sn.who][sn.value] = true
			case <-deadline:
				break drain
			}
		}
	}
	union := func() int {
		n := 0
		for i := 0; i < next; i++ {
			v := fmt.Sprintf("key-%d#%d", i, i)
			if handled["a"][v] || handled["b"][v] {
				n++
			}
		}
		return n
	}
	wait(func() bool { return union() == next }, "every record to be handled")
	stop()
	wg.Wait()
	t.Logf("after the rebalance: a handled %d, b handled %d", len(handled["a"]), len(handled["b"]))

	// Nothing is left uncommitted: a new member's first record is the marker.
	if err := p.Publish(ctx, msg("marker", 0)); err != nil {
		t.Fatal(err)
	}
	got := fetchN(t, ctx, s.consumer(t, topic, group), 1, all)
	if string(got[0].Value) != "marker#0" {
		t.Fatalf("a fresh member got %q before the marker: an offset was not committed", got[0].Value)
	}
}

// brokerRestartLosesNothing: records acknowledged before a broker restart
// are all there after it, so are committed group offsets, and the same
// producer and a new consumer carry on.
func (s *suite) brokerRestartLosesNothing(t *testing.T) {
	if s.b.Restart == nil {
		t.Skipf("cannot restart this broker: %s", s.b.NoRestart)
	}
	ctx := s.ctx(t, 3*time.Minute)
	topic, group := s.names(t)
	const before, after = 100, 50
	s.topic(t, ctx, topic, 2)
	p := s.producer(t, topic)
	for i := 0; i < before; i += 10 {
		batch := make([]kafka.Message, 0, 10)
		for j := i; j < i+10; j++ {
			batch = append(batch, msg(fmt.Sprintf("k%d", j%7), j))
		}
		if err := p.Publish(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	// A group commits 40 records before the restart.
	c := s.consumer(t, topic, group)
	committed := map[string]bool{}
	for _, m := range fetchN(t, ctx, c, 40, all) {
		committed[string(m.Value)] = true
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	if err := s.b.Restart(ctx); err != nil {
		t.Fatalf("restart broker: %v", err)
	}

	// The producer reconnects by itself; while the broker is still coming
	// up a publish may fail, and is then retried as ingest would.
	for i := before; i < before+after; i++ {
		m := msg(fmt.Sprintf("k%d", i%7), i)
		for {
			err := p.Publish(ctx, m)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("publish after restart: %v", err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	c = s.consumer(t, topic, group)
	got := fetchN(t, ctx, c, before+after-40, all)
	seen := map[string]int{}
	for _, m := range got {
		seen[string(m.Value)]++
	}
	var missing []int
	for i := 0; i < before+after; i++ {
		v := fmt.Sprintf("k%d#%d", i%7, i)
		if seen[v] == 0 && !committed[v] {
			missing = append(missing, i)
		}
		if seen[v] > 0 && committed[v] {
			t.Fatalf("record %s was committed before the restart and delivered again after it", v)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("records lost, or committed offsets forgotten, across the restart: %v", missing)
	}
	for v, n := range seen {
		if n > 1 {
			t.Fatalf("record %s delivered %d times to one group after the restart", v, n)
		}
	}

	// From the beginning, every acknowledged record is present.
	fresh := s.consumer(t, topic, group+"-fresh")
	everything := fetchN(t, ctx, fresh, before+after, all)
	have := map[string]bool{}
	for _, m := range everything {
		have[string(m.Value)] = true
	}
	for i := 0; i < before+after; i++ {
		if !have[fmt.Sprintf("k%d#%d", i%7, i)] {
			t.Fatalf("acknowledged record %d is gone after the restart", i)
		}
	}
}
