//go:build !unix

package projectorbench

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
