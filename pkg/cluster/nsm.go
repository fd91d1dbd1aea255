//go:build !noetcd

package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"nfsrecover/pkg/store"
)

// maxTxnOps is etcd's default --max-txn-ops: a larger transaction is
// refused, so bigger batches go out in several.
const maxTxnOps = 128

// VIPMonitor is a monitor recorded against a floating IP, with the
// revision it was last written at.
type VIPMonitor struct {
	store.Monitor
	Rev int64
}

// vipRecord is the stored JSON form of a monitor.
type vipRecord struct {
	MonName string `json:"mon_name"`
	DNSName string `json:"dns_name"`
	MyName  string `json:"my_name"`
	Prog    uint32 `json:"prog"`
	Vers    uint32 `json:"vers"`
	Proc    uint32 `json:"proc"`
	Priv    string `json:"priv"`
	Created int64  `json:"created"`
}

func encodeVIPMonitor(m store.Monitor) string {
	b, _ := json.Marshal(vipRecord{m.MonName, m.DNSName, m.MyName, m.Prog, m.Vers, m.Proc, hex.EncodeToString(m.Priv[:]), m.Created})
	return string(b)
}

func decodeVIPMonitor(key string, v []byte) (store.Monitor, error) {
	var r vipRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return store.Monitor{}, fmt.Errorf("cluster: %s: %w", key, err)
	}
	m := store.Monitor{MonName: r.MonName, DNSName: r.DNSName, MyName: r.MyName, Prog: r.Prog, Vers: r.Vers, Proc: r.Proc, Created: r.Created}
	p, err := hex.DecodeString(r.Priv)
	if err != nil || len(p) != len(m.Priv) {
		return store.Monitor{}, fmt.Errorf("cluster: %s: priv %q is not 16 bytes of hex", key, r.Priv)
	}
	copy(m.Priv[:], p)
	if r.MonName == "" {
		return store.Monitor{}, fmt.Errorf("cluster: %s: no mon_name", key)
	}
	return m, nil
}

// vipPrefix is where VIP's keys live.
func vipPrefix(prefix, vip string) string { return prefix + "nsm/" + vip + "/" }

// VIPMonitorKey is the key of m's record under vip: one per monitor
// identity (peer, my_name, callback), as statd keeps them.
func VIPMonitorKey(prefix, vip string, m store.Monitor) string {
	return fmt.Sprintf("%smon/%s/%s/%d.%d.%d", vipPrefix(prefix, vip), url.PathEscape(strings.ToLower(m.MonName)),
		url.PathEscape(m.MyName), m.Prog, m.Vers, m.Proc)
}

// VIPStateKey is the key of the NSM state last sent for vip.
func VIPStateKey(prefix, vip string) string { return vipPrefix(prefix, vip) + "state" }

// commitOps writes ops in as few transactions as etcd takes. Each
// transaction is atomic, the whole is not; the ops are blind puts and
// deletes, so writing them again is harmless.
func (c *Client) commitOps(ctx context.Context, what string, ops []clientv3.Op) error {
	ctx, cancel := c.request(ctx)
	defer cancel()
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps)
		if _, err := c.etcd.Txn(ctx).Then(ops[:n]...).Commit(); err != nil {
			return fmt.Errorf("cluster: %s: %w: %w", what, ErrUnknownOutcome, c.explain(err))
		}
		ops = ops[n:]
	}
	return nil
}

// VIPMonitors returns the monitors recorded against vip (a linearizable
// read).
func (c *Client) VIPMonitors(ctx context.Context, vip string) ([]VIPMonitor, error) {
	ctx, cancel := c.request(ctx)
	defer cancel()
	p := vipPrefix(c.cfg.Prefix, vip) + "mon/"
	resp, err := c.etcd.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("cluster: read %s: %w", p, c.explain(err))
	}
	out := make([]VIPMonitor, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		m, err := decodeVIPMonitor(string(kv.Key), kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, VIPMonitor{m, kv.ModRevision})
	}
	return out, nil
}

// VIPNotified deletes m's record under vip after its peer was notified,
// unless it was written again since it was read (the peer monitored us
// anew: that record must stay for the next move).
func (c *Client) VIPNotified(ctx context.Context, vip string, m VIPMonitor) error {
	ctx, cancel := c.request(ctx)
	defer cancel()
	key := VIPMonitorKey(c.cfg.Prefix, vip, m.Monitor)
	_, err := c.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", m.Rev)).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return fmt.Errorf("cluster: delete %s: %w: %w", key, ErrUnknownOutcome, c.explain(err))
	}
	return nil
}

// AdvanceVIPState sets vip's NSM state to next(current, present) with
// compare-and-swap and returns it: concurrent callers each get their own
// step, so a state is never handed out twice.
func (c *Client) AdvanceVIPState(ctx context.Context, vip string, next func(cur int32, ok bool) int32) (int32, error) {
	ctx, cancel := c.request(ctx)
	defer cancel()
	key := VIPStateKey(c.cfg.Prefix, vip)
	resp, err := c.etcd.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("cluster: read %s: %w", key, c.explain(err))
	}
	kvs := resp.Kvs
	for {
		var cur int64
		var rev int64
		if len(kvs) > 0 {
			if cur, err = strconv.ParseInt(string(kvs[0].Value), 10, 32); err != nil {
				return 0, fmt.Errorf("cluster: %s: %q is not a state number", key, kvs[0].Value)
			}
			rev = kvs[0].ModRevision
		}
		s := next(int32(cur), len(kvs) > 0)
		txn, err := c.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, strconv.Itoa(int(s)))).Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			return 0, fmt.Errorf("cluster: write %s: %w: %w", key, ErrUnknownOutcome, c.explain(err))
		}
		if txn.Succeeded {
			return s, nil
		}
		kvs = txn.Responses[0].GetResponseRange().Kvs
	}
}

// NSMRecorder records statd's monitors against the floating IPs this node
// holds, with group commit: while one transaction is in flight, every
// change that arrives waits and goes out together in the next one. It is
// safe for concurrent use and needs no goroutine of its own.
type NSMRecorder struct {
	Client *Client
	// VIPs returns the floating IPs to record against now (HostedVIPs).
	VIPs func() ([]string, error)

	once  sync.Once
	batch batcher[clientv3.Op]
}

// Monitor records m under every VIP held now; nil means the etcd quorum
// committed it.
func (r *NSMRecorder) Monitor(ctx context.Context, m store.Monitor) error {
	return r.each(ctx, []store.Monitor{m}, func(key string, m store.Monitor) clientv3.Op {
		return clientv3.OpPut(key, encodeVIPMonitor(m))
	})
}

// Unmonitor deletes the records of ms under every VIP held now.
func (r *NSMRecorder) Unmonitor(ctx context.Context, ms []store.Monitor) error {
	return r.each(ctx, ms, func(key string, _ store.Monitor) clientv3.Op { return clientv3.OpDelete(key) })
}

// Commits returns how many group commits the recorder has made.
func (r *NSMRecorder) Commits() int64 { return r.batch.commits.Load() }

func (r *NSMRecorder) each(ctx context.Context, ms []store.Monitor, op func(string, store.Monitor) clientv3.Op) error {
	vips, err := r.VIPs()
	if err != nil || len(vips) == 0 {
		return err
	}
	var ops []clientv3.Op
	for _, vip := range vips {
		for _, m := range ms {
			ops = append(ops, op(VIPMonitorKey(r.Client.cfg.Prefix, vip, m), m))
		}
	}
	r.once.Do(func() {
		r.batch.commit = func(ops []clientv3.Op) error {
			return r.Client.commitOps(context.Background(), "record monitors", lastPerKey(ops))
		}
	})
	return r.batch.do(ctx, ops...)
}

// lastPerKey keeps the last op on each key, in order: etcd refuses a
// transaction that names a key twice, and a batch may hold two changes to
// one record (a retried SM_MON, or SM_MON then SM_UNMON).
func lastPerKey(ops []clientv3.Op) []clientv3.Op {
	last := make(map[string]int, len(ops))
	for i, op := range ops {
		last[string(op.KeyBytes())] = i
	}
	out := ops[:0:0]
	for i, op := range ops {
		if last[string(op.KeyBytes())] == i {
			out = append(out, op)
		}
	}
	return out
}
