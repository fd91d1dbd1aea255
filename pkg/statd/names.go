package statd

import (
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
type Canonicalizer struct {
	Lookup  func(ctx context.Context, host string) (string, error) // default net.DefaultResolver.LookupCNAME
	Timeout time.Duration                                          // default 2s
	TTL     time.Duration                                          // default 10min
	mu      sync.Mutex
	cache   map[string]cached
}

type cached struct {
	name string
	at   time.Time
}

// Canon implements Service.Canon.
func (c *Canonicalizer) Canon(ctx context.Context, name string) (string, error) {
	if a, err := netip.ParseAddr(name); err == nil {
		return a.Unmap().String(), nil
	}
	key := strings.ToLower(name)
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && time.Since(e.at) < orDefault(c.TTL, 10*time.Minute) {
		c.mu.Unlock()
		return e.name, nil
	}
	c.mu.Unlock()
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
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]cached{}
	}
	c.cache[key] = cached{canon, time.Now()}
	c.mu.Unlock()
	return canon, nil
}
