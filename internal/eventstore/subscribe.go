package eventstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"go.uber.org/zap"
)

// SubscribeOptions configures SubscribeAll.
type SubscribeOptions struct {
	// Name identifies the subscription in logs.
	Name string
	// Filter is applied by the server; nil delivers every event.
	Filter *esdb.SubscriptionFilter
	// From is the position of the last event already handled, usually the
	// stored checkpoint; delivery starts after it. Nil starts at the
	// beginning of $all, or at its current end with FromEnd.
	From    *uint64
	FromEnd bool
	// OnCheckpoint receives the server's checkpoints of a filtered
	// subscription: positions up to which nothing more matches, worth
	// storing so a restart does not rescan them.
	OnCheckpoint func(ctx context.Context, position uint64) error
	// OnCaughtUp is called each time the subscription has delivered
	// everything that was in the store (after every resubscription too).
	OnCaughtUp func()
	// Backoff between resubscriptions: from MinBackoff (100 ms) doubling
	// to MaxBackoff (5 s).
	MinBackoff, MaxBackoff time.Duration
}

// Handler processes one event; an error ends the subscription with it.
type Handler func(ctx context.Context, e RecordedEvent) error

// SubscribeAll delivers $all events to h in order, until ctx ends (nil) or
// h or a callback fails (that error). The client does not resubscribe by
// itself: when the subscription drops (server restart, network), this
// resubscribes with backoff from the last position delivered or
// checkpointed, so nothing is skipped and nothing already handled in this
// run is delivered again.
func (c *Client) SubscribeAll(ctx context.Context, opts SubscribeOptions, h Handler) error {
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	log := c.log.With(zap.String("subscription", opts.Name))
	var last *uint64
	if opts.From != nil {
		v := *opts.From
		last = &v
	}
	b := backoff{min: opts.MinBackoff, max: opts.MaxBackoff}
	for {
		if last == nil && opts.FromEnd {
			// Pin "the end" to a position now, so a drop before the first
			// event cannot skip what was appended meanwhile.
			head, err := c.HeadPosition(ctx)
			if err == nil {
				last = &head
			} else if ctx.Err() == nil {
				log.Warn("reading the end of $all failed; retrying", zap.Error(err))
			}
		}
		if last != nil || !opts.FromEnd {
			delivered, err := c.subscribeOnce(ctx, opts, &last, h, log)
			if err != nil {
				return err
			}
			if delivered {
				b.reset()
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if !b.sleep(ctx) {
			return nil
		}
	}
}

// subscribeOnce runs one subscription until it drops. It returns a non-nil
// error only when the caller's code failed.
func (c *Client) subscribeOnce(ctx context.Context, opts SubscribeOptions, last **uint64, h Handler, log *zap.Logger) (delivered bool, err error) {
	so := esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: opts.Filter}
	if *last != nil {
		so.From = esdb.Position{Commit: **last, Prepare: **last}
	}
	sub, err := c.c.SubscribeToAll(ctx, so)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("subscribe failed; retrying", zap.Error(err))
		}
		return false, nil
	}
	defer sub.Close()
	for {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			e := fromESDB(ev.EventAppeared)
			if err := h(ctx, e); err != nil {
				return delivered, err
			}
			p := e.Position
			*last = &p
			delivered = true
		case ev.CheckPointReached != nil:
			p := ev.CheckPointReached.Commit
			if *last == nil || p > **last {
				*last = &p
			}
			if opts.OnCheckpoint != nil {
				if err := opts.OnCheckpoint(ctx, p); err != nil {
					return delivered, err
				}
			}
		case ev.CaughtUp != nil:
			if opts.OnCaughtUp != nil {
				opts.OnCaughtUp()
			}
		case ev.SubscriptionDropped != nil:
			if ctx.Err() == nil {
				log.Warn("subscription dropped; resubscribing", zap.Error(ev.SubscriptionDropped.Error), zap.Uint64p("from", *last))
			}
			return delivered, nil
		}
	}
}

// HeadPosition is the position of the last event in $all (0 if empty).
func (c *Client) HeadPosition(ctx context.Context) (uint64, error) {
	rs, err := c.c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return 0, wrap(err, "read", "$all")
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap(err, "read", "$all")
	}
	return ev.OriginalEvent().Position.Commit, nil
}

type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits the next backoff step; false if ctx ended first.
func (b *backoff) sleep(ctx context.Context) bool {
	if b.cur == 0 {
		b.cur = b.min
	} else if b.cur *= 2; b.cur > b.max {
		b.cur = b.max
	}
	t := time.NewTimer(b.cur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
