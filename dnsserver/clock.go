package dnsserver

import (
	"time"
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's monotonic clock in nanoseconds. time.Now
// reads the wall clock too, which doubles the cost of timing every query;
// the runtime keeps this symbol linkable for packages that need only the
// monotonic reading.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// wallClock turns monotonic readings into Unix seconds without reading
// the wall clock on the query path: the signature cache asks for the time
// of every signed answer, and time.Now costs about a tenth of one. It
// drifts from the wall clock only if that is stepped, by the step, which
// the week between a signature's refresh and its expiry absorbs.
type wallClock struct{ wall, mono int64 }

func newWallClock() wallClock { return wallClock{time.Now().UnixNano(), nanotime()} }

// unix returns the Unix time, in seconds, of the monotonic reading mono.
func (c wallClock) unix(mono int64) uint32 { return uint32((c.wall + mono - c.mono) / 1e9) }
