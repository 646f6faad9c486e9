package dnsserver

import _ "unsafe" // for go:linkname

// nanotime is the runtime's monotonic clock in nanoseconds. time.Now
// reads the wall clock too, which doubles the cost of timing every query;
// the runtime keeps this symbol linkable for packages that need only the
// monotonic reading.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64
