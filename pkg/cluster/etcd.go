//go:build !noetcd

package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"nfsrecover/pkg/grace"
)

// Client is a connection to one cluster's keys on etcd. It is safe for
// concurrent use.
type Client struct {
	etcd *clientv3.Client
	cfg  Config
}

// Dial sets up the connection to etcd. It does not wait for an endpoint to
// answer (with a username it does, up to DialTimeout, to authenticate):
// each request fails after RequestTimeout when none does.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tlsConf, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         tlsConf,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zap.NewNop(),
		Context:     ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return &Client{etcd: cli, cfg: cfg}, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	https := false
	for _, e := range cfg.Endpoints {
		https = https || strings.HasPrefix(e, "https://")
	}
	if cfg.CACert == "" && cfg.Cert == "" && !https {
		return nil, nil
	}
	// Without a CA file the system roots verify the servers.
	info := transport.TLSInfo{TrustedCAFile: cfg.CACert, CertFile: cfg.Cert, KeyFile: cfg.Key}
	c, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cluster: %w: TLS files (etcd-cacert %q, etcd-cert %q, etcd-key %q): %w", ErrBadConfig, cfg.CACert, cfg.Cert, cfg.Key, err)
	}
	return c, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.etcd.Close() }

func (c *Client) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}

// explain names the endpoints and the time limit when etcd did not answer.
func (c *Client) explain(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from etcd %s within %s (is a quorum of its members up?): %w",
			strings.Join(c.cfg.Endpoints, ","), c.cfg.RequestTimeout, err)
	}
	return err
}

// ReadGrace returns the grace database and its revision (0 when it was
// never written: then it is grace.New()). The read is linearizable.
func (c *Client) ReadGrace(ctx context.Context) (grace.DB, int64, error) {
	ctx, cancel := c.request(ctx)
	defer cancel()
	resp, err := c.etcd.Get(ctx, GraceKey(c.cfg.Prefix))
	if err != nil {
		return grace.DB{}, 0, fmt.Errorf("cluster: read %s: %w", GraceKey(c.cfg.Prefix), c.explain(err))
	}
	return decodeKVs(resp.Kvs, GraceKey(c.cfg.Prefix))
}

func decodeKVs(kvs []*mvccpb.KeyValue, key string) (grace.DB, int64, error) {
	if len(kvs) == 0 {
		return grace.New(), 0, nil
	}
	db, err := grace.Decode(kvs[0].Value)
	if err != nil {
		return grace.DB{}, 0, fmt.Errorf("cluster: %s (revision %d): %w", key, kvs[0].ModRevision, err)
	}
	return db, kvs[0].ModRevision, nil
}

// UpdateGrace applies op to the grace database with compare-and-swap and
// returns the database as committed. A conflicting writer makes it read
// again and retry until RequestTimeout; an error from op is returned with
// nothing written. When the transaction itself fails the result wraps
// ErrUnknownOutcome. An op that changes nothing writes nothing.
func (c *Client) UpdateGrace(ctx context.Context, op grace.Op, ids []string) (grace.DB, error) {
	ctx, cancel := c.request(ctx)
	defer cancel()
	key := GraceKey(c.cfg.Prefix)
	resp, err := c.etcd.Get(ctx, key)
	if err != nil {
		return grace.DB{}, fmt.Errorf("cluster: read %s: %w", key, c.explain(err))
	}
	kvs := resp.Kvs
	for {
		cur, rev, err := decodeKVs(kvs, key)
		if err != nil {
			return grace.DB{}, err
		}
		next := cur.Clone()
		if err := op(&next, ids); err != nil {
			return cur, err
		}
		enc := grace.Encode(next)
		if rev != 0 && bytes.Equal(enc, kvs[0].Value) {
			return next, nil // nothing changes: nothing to write
		}
		txn, err := c.etcd.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, string(enc))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return grace.DB{}, fmt.Errorf("cluster: write %s: %w: %w", key, ErrUnknownOutcome, c.explain(err))
		}
		if txn.Succeeded {
			return next, nil
		}
		kvs = txn.Responses[0].GetResponseRange().Kvs // someone else wrote: again
	}
}

// WatchGrace sends the grace database now and after every change until
// ctx ends; the channel is closed then. A watch broken by compaction or a
// lost connection is resumed from a fresh read, so a receiver always sees
// the latest value (possibly skipping intermediate ones).
func (c *Client) WatchGrace(ctx context.Context) <-chan grace.DB {
	out := make(chan grace.DB, 1)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			db, rev, err := c.ReadGrace(ctx)
			if err != nil {
				sleep(ctx, time.Second)
				continue
			}
			if !send(ctx, out, db) {
				return
			}
			c.follow(ctx, rev, out)
		}
	}()
	return out
}

// follow sends each change after rev until the watch breaks.
func (c *Client) follow(ctx context.Context, rev int64, out chan grace.DB) {
	key := GraceKey(c.cfg.Prefix)
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range c.etcd.Watch(wctx, key, clientv3.WithRev(rev+1)) {
		if resp.Err() != nil {
			return
		}
		for _, ev := range resp.Events {
			db, _, err := decodeKVs([]*mvccpb.KeyValue{ev.Kv}, key)
			if ev.Type == clientv3.EventTypeDelete {
				db, err = grace.New(), nil
			}
			if err == nil && !send(ctx, out, db) {
				return
			}
		}
	}
}

// send replaces any value the receiver has not taken yet with db.
func send(ctx context.Context, out chan grace.DB, db grace.DB) bool {
	select {
	case <-out:
	default:
	}
	select {
	case out <- db:
		return true
	case <-ctx.Done():
		return false
	}
}

// Alive holds node's liveness key on a lease of ttl until ctx ends or the
// lease is lost (the returned channel is closed then). Liveness is only
// reported, never acted on: NEED is not lease-bound.
func (c *Client) Alive(ctx context.Context, node string, ttl time.Duration) (<-chan struct{}, error) {
	if err := grace.CheckNodeID(node); err != nil {
		return nil, err
	}
	// The session outlives ctx by as long as it takes to revoke it.
	sctx, scancel := context.WithCancel(context.WithoutCancel(ctx))
	s, err := concurrency.NewSession(c.etcd, concurrency.WithTTL(int(max(ttl/time.Second, 1))), concurrency.WithContext(sctx))
	if err != nil {
		scancel()
		return nil, fmt.Errorf("cluster: lease for %s: %w", node, err)
	}
	rctx, cancel := c.request(ctx)
	defer cancel()
	if _, err := c.etcd.Put(rctx, AliveKey(c.cfg.Prefix, node), time.Now().UTC().Format(time.RFC3339), clientv3.WithLease(s.Lease())); err != nil {
		s.Close()
		scancel()
		return nil, fmt.Errorf("cluster: liveness key for %s: %w", node, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer scancel()
		select {
		case <-ctx.Done():
			s.Close() // revoke: the key goes at once
		case <-s.Done():
		}
	}()
	return done, nil
}

// AliveNodes returns the nodes whose liveness key exists.
func (c *Client) AliveNodes(ctx context.Context) (map[string]bool, error) {
	ctx, cancel := c.request(ctx)
	defer cancel()
	p := c.cfg.Prefix + "alive/"
	resp, err := c.etcd.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("cluster: read %s: %w", p, c.explain(err))
	}
	out := map[string]bool{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), p)] = true
	}
	return out, nil
}

// Health asks every endpoint for its status.
func (c *Client) Health(ctx context.Context) []Endpoint {
	var out []Endpoint
	for _, url := range c.cfg.Endpoints {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.etcd.Status(rctx, url)
		cancel()
		e := Endpoint{URL: url}
		switch {
		case err != nil:
			e.Error = err.Error()
		case len(st.Errors) > 0:
			e.Error = strings.Join(st.Errors, "; ")
		case st.Leader == 0:
			e.Error = "no leader"
		default:
			e.Healthy, e.MemberID, e.Leader = true, st.Header.MemberId, st.Leader
		}
		out = append(out, e)
	}
	return out
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
