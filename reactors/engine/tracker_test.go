package engine

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flexstream/flexstream/reactors/decide"
)

func TestTrackerHoldsTheCheckpointBelowTheOldestOpenTrigger(t *testing.T) {
	var tr tracker
	tr.saw(10)
	pos, changed := tr.safe()
	require.Equal(t, uint64(10), pos)
	require.True(t, changed)
	_, changed = tr.safe()
	require.False(t, changed, "nothing moved since the last call")

	tr.add(12)
	tr.add(15)
	tr.saw(20) // a server checkpoint past both
	pos, _ = tr.safe()
	require.Equal(t, uint64(11), pos, "12 is open: a restart must see it again")

	tr.done(15) // finishes out of order
	pos, _ = tr.safe()
	require.Equal(t, uint64(11), pos)

	tr.done(12)
	pos, changed = tr.safe()
	require.Equal(t, uint64(20), pos, "nothing open: the highest position seen")
	require.True(t, changed)

	tr.done(99) // unknown: ignored
	pos, _ = tr.safe()
	require.Equal(t, uint64(20), pos)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestReactionFold(t *testing.T) {
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	plan := Planned{Owner: "a", At: at, Plan: decide.Plan{Kind: decide.KindWorkflowTimeout, Actions: []decide.Action{{Kind: decide.ActMessage}, {Kind: decide.ActReinvite}}}}
	steps := []struct {
		typ  string
		data any
		next int
		open bool // of the action next points at
	}{
		{EvPlanned, plan, 0, false},
		{EvStarted, Step{Action: 0, Attempt: 1, Owner: "a", At: at}, 0, true},
		{EvFailed, Step{Action: 0, Attempt: 1, Owner: "a", At: at, Status: 429}, 0, false},
		{EvStarted, Step{Action: 0, Attempt: 2, Owner: "b", At: at.Add(time.Second)}, 0, true},
		{EvSucceeded, Step{Action: 0, Attempt: 2, Owner: "b", At: at.Add(time.Second)}, 1, false},
		{EvStarted, Step{Action: 1, Attempt: 1, Owner: "b", At: at.Add(2 * time.Second)}, 1, true},
		{EvSkipped, Step{Action: 1, Attempt: 1, Owner: "b", At: at.Add(2 * time.Second), Reason: "interaction channel is closed"}, -1, false},
	}
	r := &reaction{}
	for i, s := range steps {
		require.NoError(t, r.apply(uint64(i), s.typ, mustJSON(t, s.data)), "step %d", i)
		require.Equal(t, s.next, r.next(), "step %d (%s)", i, s.typ)
		if s.next >= 0 {
			require.Equal(t, s.open, r.actions[s.next].open, "step %d (%s)", i, s.typ)
		}
		require.Equal(t, uint64(i), r.lastRev)
	}
	require.Equal(t, 2, r.actions[0].attempts)
	require.Equal(t, 1, r.actions[0].failures)
	require.Equal(t, "b", r.lastOwner)
	require.Empty(t, r.final)
	require.NoError(t, r.apply(7, EvCompleted, mustJSON(t, Step{Owner: "b", At: at})))
	require.Equal(t, EvCompleted, r.final)

	bad := &reaction{}
	require.NoError(t, bad.apply(0, EvPlanned, mustJSON(t, plan)))
	require.ErrorContains(t, bad.apply(1, EvStarted, mustJSON(t, Step{Action: 5})), "action 5 of 2")
	require.Error(t, bad.apply(1, EvStarted, []byte("{")))
}
