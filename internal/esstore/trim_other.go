//go:build !(linux && cgo)

package esstore

// Without cgo Pebble's memory is Go heap, which the runtime's scavenger
// returns to the system by itself.
func trimCHeap() {}
