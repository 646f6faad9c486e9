package mgmtapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter keeps a token bucket per key (a token, a client address).
// Buckets idle long enough to be full again are dropped, so that the map
// stays as small as the set of recent clients.
type limiter struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*bucket
	swept time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(r float64, burst int) *limiter {
	return &limiter{rate: rate.Limit(r), burst: burst, m: map[string]*bucket{}, swept: time.Now()}
}

// allow takes a request from key's bucket; when it is empty, it returns
// the seconds to wait.
func (l *limiter) allow(key string) (bool, int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if full := time.Duration(float64(l.burst) / float64(l.rate) * float64(time.Second)); now.Sub(l.swept) > full+time.Minute {
		for k, b := range l.m {
			if now.Sub(b.seen) > full {
				delete(l.m, k)
			}
		}
		l.swept = now
	}
	b := l.m[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(l.rate, l.burst)}
		l.m[key] = b
	}
	b.seen = now
	if b.l.AllowN(now, 1) {
		return true, 0
	}
	wait := b.l.ReserveN(now, 1)
	d := wait.DelayFrom(now)
	wait.CancelAt(now)
	return false, int(math.Ceil(max(d, time.Second).Seconds()))
}
