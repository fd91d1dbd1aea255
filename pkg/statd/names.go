package statd

import (
	"container/list"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Canonicalizer turns a peer name into the canonical name records are
// filed under. Numeric addresses never need DNS: they are their own
// canonical name. Other names get one lookup with a timeout, cached; when
// DNS is slow or down the name itself is used, so a dead resolver never
// makes statd refuse the lock manager or stall (rpc.statd fails SM_MON
// then, and blocks its whole loop while it waits).
//
// The cache holds at most MaxNames names and forgets the least recently
// used one first: SM_STAT lets any host make statd look a name up, so
// the cache must not grow with what remote hosts send.
type Canonicalizer struct {
	Lookup   func(ctx context.Context, host string) (string, error) // default net.DefaultResolver.LookupCNAME
	Timeout  time.Duration                                          // default 2s
	TTL      time.Duration                                          // default 10min
	MaxNames int                                                    // default 4096
	mu       sync.Mutex
	cache    map[string]*list.Element // of *cached, in lru
	lru      list.List                // front = most recently used
}

type cached struct {
	key, name string
	at        time.Time
}

// Canon implements Service.Canon.
func (c *Canonicalizer) Canon(ctx context.Context, name string) (string, error) {
	if a, err := netip.ParseAddr(name); err == nil {
		return a.Unmap().String(), nil
	}
	key := strings.ToLower(name)
	if canon, ok := c.cached(key); ok {
		return canon, nil
	}
	lookup := c.Lookup
	if lookup == nil {
		lookup = net.DefaultResolver.LookupCNAME
	}
	lctx, cancel := context.WithTimeout(ctx, orDefault(c.Timeout, 2*time.Second))
	defer cancel()
	canon := key
	if cn, err := lookup(lctx, name); err == nil && cn != "" {
		canon = strings.ToLower(strings.TrimSuffix(cn, "."))
	}
	c.remember(key, canon)
	return canon, nil
}

// cached returns the fresh cached canonical name of key.
func (c *Canonicalizer) cached(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.cache[key]
	if !ok {
		return "", false
	}
	e := el.Value.(*cached)
	if time.Since(e.at) >= orDefault(c.TTL, 10*time.Minute) {
		return "", false
	}
	c.lru.MoveToFront(el)
	return e.name, true
}

// remember caches key's canonical name, dropping the least recently used
// names beyond MaxNames.
func (c *Canonicalizer) remember(key, canon string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = map[string]*list.Element{}
	}
	if el, ok := c.cache[key]; ok {
		c.lru.Remove(el)
	}
	c.cache[key] = c.lru.PushFront(&cached{key, canon, time.Now()})
	for c.lru.Len() > orDefault(c.MaxNames, 4096) {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.cache, old.Value.(*cached).key)
	}
}

// Len returns the number of cached names.
func (c *Canonicalizer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
