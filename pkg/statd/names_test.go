package statd

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestCanonicalizer(t *testing.T) {
	var calls atomic.Int32
	c := &Canonicalizer{Timeout: 50 * time.Millisecond, Lookup: func(ctx context.Context, host string) (string, error) {
		calls.Add(1)
		switch host {
		case "alias":
			return "Real.Example.", nil
		case "slow":
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "", errors.New("NXDOMAIN")
	}}
	cases := map[string]string{
		"192.168.1.2":     "192.168.1.2",
		"::ffff:10.0.0.1": "10.0.0.1",
		"fe80::1":         "fe80::1",
		"alias":           "real.example",
		"Unknown.Example": "unknown.example",
		"slow":            "slow",
	}
	for in, want := range cases {
		start := time.Now()
		got, err := c.Canon(context.Background(), in)
		if err != nil || got != want {
			t.Errorf("%s -> %q %v, want %q", in, got, err, want)
		}
		if time.Since(start) > time.Second {
			t.Errorf("%s took %v: DNS must be bounded", in, time.Since(start))
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d lookups: numeric names must not use DNS", n)
	}
	c.Canon(context.Background(), "alias")
	if calls.Load() != 3 {
		t.Errorf("cached name looked up again")
	}
}

// Names sent by remote hosts (SM_STAT) cannot grow the cache past its
// bound; the least recently used name is the one forgotten.
func TestCanonicalizerBounded(t *testing.T) {
	var calls atomic.Int32
	c := &Canonicalizer{MaxNames: 100, Lookup: func(ctx context.Context, host string) (string, error) {
		calls.Add(1)
		return "", errors.New("NXDOMAIN")
	}}
	ctx := context.Background()
	c.Canon(ctx, "keep")
	for i := 0; i < 10000; i++ {
		c.Canon(ctx, fmt.Sprintf("flood-%d", i))
		if i%50 == 0 {
			c.Canon(ctx, "keep") // recently used: stays
		}
	}
	if n := c.Len(); n != 100 {
		t.Errorf("cache holds %d names after 10,000, want the bound 100", n)
	}
	before := calls.Load()
	c.Canon(ctx, "keep")
	if calls.Load() != before {
		t.Error("a recently used name was evicted")
	}
	c.Canon(ctx, "flood-0")
	if calls.Load() != before+1 {
		t.Error("the least recently used name was kept")
	}
}
