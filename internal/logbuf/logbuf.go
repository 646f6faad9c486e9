// Package logbuf is a buffer that a logger writes while a test reads it:
// the log of servers and daemons under test, checked for what they said.
package logbuf

import (
	"strings"
	"sync"
)

// Buffer collects writes; it is safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
