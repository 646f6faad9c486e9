package signing

import (
	"hash/maphash"
	"sync/atomic"
)

// Cache keeps signatures made on the query path, keyed by the canonical
// content of what they sign, so that every order of one pool subset, and
// every query for one name, shares one signature. It is a fixed table of
// atomic pointers: a lookup takes no lock and allocates nothing, and a
// new entry replaces whatever held its slot, which bounds the memory.
type Cache struct {
	slots []atomic.Pointer[cacheEntry]
	mask  uint64
	seed  maphash.Seed
	hits  atomic.Uint64
	miss  atomic.Uint64
}

type cacheEntry struct {
	hash    uint64
	key     string
	value   []byte
	refresh uint32 // Unix time after which the value is made again
}

// cacheWays is how many neighbouring slots a key may live in.
const cacheWays = 4

// NewCache returns a cache of at least size entries.
func NewCache(size int) *Cache {
	n := 1
	for n < size {
		n <<= 1
	}
	return &Cache{slots: make([]atomic.Pointer[cacheEntry], n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
}

// Get returns the value kept for key, if it is still good at now.
func (c *Cache) Get(key []byte, now uint32) ([]byte, bool) {
	h := maphash.Bytes(c.seed, key)
	for i := uint64(0); i < cacheWays; i++ {
		e := c.slots[(h+i)&c.mask].Load()
		if e != nil && e.hash == h && e.key == string(key) {
			if int32(now-e.refresh) >= 0 {
				break // due for renewal: a miss, so that it is made again
			}
			c.hits.Add(1)
			return e.value, true
		}
	}
	c.miss.Add(1)
	return nil, false
}

// Put keeps value for key until refresh, in the first free or stale slot
// of its neighbourhood, else in place of its first.
func (c *Cache) Put(key []byte, value []byte, refresh, now uint32) {
	h := maphash.Bytes(c.seed, key)
	e := &cacheEntry{hash: h, key: string(key), value: value, refresh: refresh}
	for i := uint64(0); i < cacheWays; i++ {
		s := &c.slots[(h+i)&c.mask]
		old := s.Load()
		if old == nil || old.hash == h && old.key == e.key || int32(now-old.refresh) >= 0 {
			s.Store(e)
			return
		}
	}
	c.slots[h&c.mask].Store(e)
}

// Stats returns the hits and misses so far.
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.miss.Load() }

// Len counts the entries held; it walks the table, for metrics and tests.
func (c *Cache) Len() int {
	n := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			n++
		}
	}
	return n
}
