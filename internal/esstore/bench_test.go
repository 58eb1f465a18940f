package esstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// benchPayload is a ~300-byte JSON event body, the size the brief measures.
var benchPayload = []byte(`{"orderId":"` + strings.Repeat("x", 270) + `","amount":12345}`)

func benchEvents(n int, tag, seq uint64) []EventData {
	out := make([]EventData, n)
	for i := range out {
		binary.BigEndian.PutUint64(out[i].ID[:8], tag)
		binary.BigEndian.PutUint64(out[i].ID[8:], seq*uint64(n)+uint64(i))
		out[i].Type = "OrderPlaced"
		out[i].ContentType = "application/json"
		out[i].Data = benchPayload
	}
	return out
}

// BenchmarkAppend1x64 is single-event appends from 64 goroutines, each to
// its own stream, acknowledged after fsync: the group-commit path.
func BenchmarkAppend1x64(b *testing.B) {
	s := openAt(b, b.TempDir(), Options{})
	var g atomic.Uint64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tag := g.Add(1)
		stream := fmt.Sprintf("bench-%d", tag)
		for i := uint64(0); pb.Next(); i++ {
			if _, err := s.Append(context.Background(), stream, Any(), benchEvents(1, tag, i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppend100 is appends of 100 events per call, fsync'd, from one
// goroutine and from 8.
func BenchmarkAppend100(b *testing.B) {
	for _, par := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", par), func(b *testing.B) {
			s := openAt(b, b.TempDir(), Options{})
			var g atomic.Uint64
			b.SetParallelism(max(1, par/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			if par == 1 { // RunParallel would use GOMAXPROCS goroutines
				for i := range uint64(b.N) {
					if _, err := s.Append(context.Background(), "bench", Any(), benchEvents(100, 0, i)); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					tag := g.Add(1)
					stream := fmt.Sprintf("bench-%d", tag)
					for i := uint64(0); pb.Next(); i++ {
						if _, err := s.Append(context.Background(), stream, Any(), benchEvents(100, tag, i)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkReadAll scans the whole log forwards. The log has 1 M events
// (ESSTORE_BENCH_EVENTS overrides), written by 16 streams in appends of
// 1000; the resident memory after loading and after scanning is reported.
func BenchmarkReadAll(b *testing.B) {
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ESSTORE_BENCH_EVENTS")); err == nil && v > 0 {
		total = v
	}
	s := openAt(b, b.TempDir(), Options{NoSync: true})
	const per = 1000
	for i := range uint64(total / per) {
		if _, err := s.Append(context.Background(), fmt.Sprintf("load-%d", i%16), Any(), benchEvents(per, 1, i)); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	rssLoaded := residentMiB()
	b.Run(fmt.Sprintf("events=%d", total), func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			n := 0
			if err := s.ReadAll(context.Background(), 0, true, func(RecordedEvent) bool { n++; return true }); err != nil || n != total {
				b.Fatalf("read %d events: %v", n, err)
			}
		}
		b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(rssLoaded, "rss-MiB-loaded")
		b.ReportMetric(residentMiB(), "rss-MiB-scanned")
	})
}

// residentMiB is the process's resident set (VmRSS), in MiB.
func residentMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
