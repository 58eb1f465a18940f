package esstore

import (
	"slices"
	"testing"
)

// runGroup hands requests to the writer as one commit group, as if they had
// all been waiting together. The writer goroutine is idle meanwhile (no
// Append is in flight), and the queue orders this with its later work.
func runGroup(s *diskStore, reqs ...*appendRequest) {
	s.w.process(reqs)
	for _, r := range reqs {
		if r.state.Load() == reqTaken {
			<-r.done
		}
	}
}

func appendReq(stream string, exp Expected, ids ...uint64) *appendRequest {
	return newAppendRequest(stream, exp, evs(ids...), false)
}

// Each request is checked against the state left by the ones before it in
// the same group.
func TestGroupSeesEarlierRequests(t *testing.T) {
	type want struct {
		err string
		res AppendResult
	}
	cases := []struct {
		name    string
		reqs    []*appendRequest
		want    []want
		wantIDs []uint64 // of stream "g"
	}{
		{
			name:    "chained revisions",
			reqs:    []*appendRequest{appendReq("g", NoStream(), 1), appendReq("g", Revision(0), 2), appendReq("g", Revision(1), 3, 4)},
			want:    []want{{res: AppendResult{Revision: 0, Position: 1}}, {res: AppendResult{Revision: 1, Position: 2}}, {res: AppendResult{Revision: 3, Position: 4}}},
			wantIDs: []uint64{1, 2, 3, 4},
		},
		{
			name:    "second no stream conflicts",
			reqs:    []*appendRequest{appendReq("g", NoStream(), 1), appendReq("g", NoStream(), 2)},
			want:    []want{{res: AppendResult{Revision: 0, Position: 1}}, {err: "wev"}},
			wantIDs: []uint64{1},
		},
		{
			name:    "retry with any in the same group",
			reqs:    []*appendRequest{appendReq("g", Any(), 1, 2), appendReq("g", Any(), 1, 2)},
			want:    []want{{res: AppendResult{Revision: 1, Position: 2}}, {res: AppendResult{Revision: 1, Position: 2, Idempotent: true}}},
			wantIDs: []uint64{1, 2},
		},
		{
			name:    "retry by revision in the same group",
			reqs:    []*appendRequest{appendReq("g", NoStream(), 1, 2), appendReq("g", NoStream(), 1, 2)},
			want:    []want{{res: AppendResult{Revision: 1, Position: 2}}, {res: AppendResult{Revision: 1, Position: 2, Idempotent: true}}},
			wantIDs: []uint64{1, 2},
		},
		{
			name:    "partial retry in the same group",
			reqs:    []*appendRequest{appendReq("g", Any(), 1, 2), appendReq("g", Any(), 1, 3)},
			want:    []want{{res: AppendResult{Revision: 1, Position: 2}}, {err: "wev"}},
			wantIDs: []uint64{1, 2},
		},
		{
			name:    "tombstone then append",
			reqs:    []*appendRequest{appendReq("g", Any(), 1), newAppendRequest("g", Revision(0), nil, true), appendReq("g", Any(), 2)},
			want:    []want{{res: AppendResult{Revision: 0, Position: 1}}, {res: AppendResult{Position: 2}}, {err: "deleted"}},
			wantIDs: []uint64{1},
		},
		{
			name:    "failure in the middle does not disturb the others",
			reqs:    []*appendRequest{appendReq("g", Any(), 1), appendReq("g", Revision(7), 2), appendReq("h", Any(), 3), appendReq("g", Revision(0), 4)},
			want:    []want{{res: AppendResult{Revision: 0, Position: 1}}, {err: "wev"}, {res: AppendResult{Revision: 0, Position: 2}}, {res: AppendResult{Revision: 1, Position: 3}}},
			wantIDs: []uint64{1, 4},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestStore(t)
			runGroup(s, c.reqs...)
			for i, r := range c.reqs {
				if got := errKind(r.err); got != c.want[i].err {
					t.Errorf("request %d: error %v, want %q", i, r.err, c.want[i].err)
				}
				if r.err == nil && r.res != c.want[i].res {
					t.Errorf("request %d: %+v, want %+v", i, r.res, c.want[i].res)
				}
			}
			if got := idNums(readStream(t, s, "g", 0, true)); !slices.Equal(got, c.wantIDs) {
				t.Errorf("stream ids %v, want %v", got, c.wantIDs)
			}
			all := readAll(t, s, 0, true)
			for i, e := range all {
				if e.Position != uint64(i+1) {
					t.Fatalf("positions %v are not 1, 2, 3...", positions(all))
				}
			}
		})
	}
}

// A request its caller withdrew (context cancelled) before the writer took
// it is neither written nor answered.
func TestGroupSkipsWithdrawn(t *testing.T) {
	s := newTestStore(t)
	gone := appendReq("g", Any(), 1)
	if !gone.withdraw() {
		t.Fatal("withdraw failed")
	}
	kept := appendReq("g", Any(), 2)
	runGroup(s, gone, kept)
	select {
	case <-gone.done:
		t.Fatal("withdrawn request was answered")
	default:
	}
	if kept.err != nil || kept.res != (AppendResult{Revision: 0, Position: 1}) {
		t.Fatalf("kept request: %+v, %v", kept.res, kept.err)
	}
	if got := idNums(readStream(t, s, "g", 0, true)); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("stream ids %v", got)
	}
	if kept.withdraw() {
		t.Fatal("a taken request could be withdrawn")
	}
}
