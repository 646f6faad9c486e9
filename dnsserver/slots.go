package dnsserver

// slots is a slice indexed by pool Index or zone Slot, kept in chunks
// that successive states share: a state made from another copies the
// chunk list and only the chunks it changes, so that one zone's change
// does not copy an entry per pool (100,000 pools: 800 kB, 0.7 ms). It is
// immutable once made.
type slots[T any] struct {
	chunks [][]T
	n      int
}

const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// len is the number of slots.
func (s *slots[T]) len() int { return s.n }

// at returns slot i's value; the zero value beyond the end.
func (s *slots[T]) at(i int) T {
	var zero T
	if i < 0 || i >= s.n {
		return zero
	}
	c := s.chunks[i>>chunkBits]
	if c == nil { // never written
		return zero
	}
	return c[i&chunkMask]
}

// slotsEdit makes a slots from another, sharing the chunks it does not
// write.
type slotsEdit[T any] struct {
	s     slots[T]
	owned []bool
}

// edit starts a slots of n entries with s's values.
func (s *slots[T]) edit(n int) *slotsEdit[T] {
	nc := (n + chunkSize - 1) >> chunkBits
	chunks := make([][]T, nc)
	copy(chunks, s.chunks)
	if n < s.n && nc > 0 && n&chunkMask != 0 {
		// The last chunk is cut: entries beyond n must read as zero.
		last := make([]T, chunkSize)
		copy(last, chunks[nc-1][:n&chunkMask])
		chunks[nc-1] = last
	}
	return &slotsEdit[T]{s: slots[T]{chunks: chunks, n: n}, owned: make([]bool, nc)}
}

// set writes slot i, copying its chunk first if it is shared.
func (e *slotsEdit[T]) set(i int, v T) {
	c := i >> chunkBits
	if !e.owned[c] {
		chunk := make([]T, chunkSize)
		copy(chunk, e.s.chunks[c])
		e.s.chunks[c] = chunk
		e.owned[c] = true
	}
	e.s.chunks[c][i&chunkMask] = v
}

// done returns the slots made.
func (e *slotsEdit[T]) done() slots[T] { return e.s }
