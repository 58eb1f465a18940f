package esstore

import "testing"

// A stream's ids within a group are found at their latest revision, by
// scanning a few or through the map built once there are many, and ids
// added after the map was built are in it too.
func TestGroupRevision(t *testing.T) {
	for _, n := range []int{0, 1, 5, byIDFrom - 1, byIDFrom, 3 * byIDFrom} {
		ps := &pendingStream{disk: streamRecord{exists: true, lastRev: 9}} // next revision 10
		id := func(i int) ID { return ID{byte(i), byte(i >> 8), 1} }
		for i := range n {
			ps.added(id(i), uint64(100+i))
		}
		if n > 1 {
			ps.added(id(0), 999) // a repeat: the latest occurrence counts
		}
		for i := range n {
			want := uint64(10 + i)
			if i == 0 && n > 1 {
				want = uint64(10 + n)
			}
			if rev, ok := ps.groupRevision(id(i)); !ok || rev != want {
				t.Fatalf("n=%d: id %d at %d, %v; want %d", n, i, rev, ok, want)
			}
		}
		if _, ok := ps.groupRevision(id(n + 1)); ok {
			t.Fatalf("n=%d: an id never added was found", n)
		}
		// Added after a lookup (which may have built the map).
		ps.added(id(n+1), 5)
		if rev, ok := ps.groupRevision(id(n + 1)); !ok || rev != 10+uint64(len(ps.ids))-1 {
			t.Fatalf("n=%d: an id added after a lookup: %d, %v", n, rev, ok)
		}
		if many := len(ps.ids) >= byIDFrom; many != (ps.byID != nil) {
			t.Fatalf("n=%d: a map %v with %d ids", n, ps.byID != nil, len(ps.ids))
		}
	}
}
