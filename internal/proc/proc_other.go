//go:build !linux

package proc

// canCheck: without /proc nothing here tells a dead process from a live
// one, so Alive says every owner is alive and a dead one's lease ends by
// its expiry only.
const canCheck = false

// procStart is unknown without /proc.
func procStart(int) string { return "" }
