//go:build noetcd

package cluster

import (
	"context"
	"time"

	"nfsrecover/pkg/grace"
)

// Client is a connection to etcd; in this build none can be made.
type Client struct{}

// Dial always fails with ErrNotBuilt.
func Dial(context.Context, Config) (*Client, error) { return nil, ErrNotBuilt }

// Close does nothing.
func (*Client) Close() error { return nil }

// ReadGrace fails with ErrNotBuilt.
func (*Client) ReadGrace(context.Context) (grace.DB, int64, error) {
	return grace.DB{}, 0, ErrNotBuilt
}

// UpdateGrace fails with ErrNotBuilt.
func (*Client) UpdateGrace(context.Context, grace.Op, []string) (grace.DB, error) {
	return grace.DB{}, ErrNotBuilt
}

// WatchGrace returns a closed channel.
func (*Client) WatchGrace(context.Context) <-chan grace.DB {
	c := make(chan grace.DB)
	close(c)
	return c
}

// Alive fails with ErrNotBuilt.
func (*Client) Alive(context.Context, string, time.Duration) (<-chan struct{}, error) {
	return nil, ErrNotBuilt
}

// AliveNodes fails with ErrNotBuilt.
func (*Client) AliveNodes(context.Context) (map[string]bool, error) { return nil, ErrNotBuilt }

// Health returns nothing.
func (*Client) Health(context.Context) []Endpoint { return nil }

// Gather returns a View that says this build has no etcd client.
func (*Client) Gather(context.Context) View { return View{Err: ErrNotBuilt.Error()} }
