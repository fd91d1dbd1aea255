//go:build !noetcd

package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"nfsrecover/pkg/grace"
)

// Gather builds the View: etcd's health, the grace database and the
// members' leases, and, from c's Config, the floating IPs and (with
// backend = etcd) the server scope. It reads; it changes nothing.
func (c *Client) Gather(ctx context.Context) View {
	v := View{Etcd: c.Health(ctx)}
	db, _, err := c.ReadGrace(ctx)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	alive, err := c.AliveNodes(ctx)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	v.Current, v.Recovery = db.Current, db.Recovery
	for _, id := range db.Members() {
		f := db.Nodes[id]
		v.Members = append(v.Members, MemberView{Node: id, Need: f&grace.Need != 0, Enforcing: f&grace.Enforcing != 0, Alive: alive[id]})
	}
	if err := c.gatherVIPs(ctx, &v); err != nil {
		v.Err = err.Error()
		return v
	}
	if c.cfg.Backend == BackendEtcd {
		if err := c.gatherScope(ctx, &v); err != nil {
			v.Err = err.Error()
		}
	}
	return v
}

func (c *Client) count(ctx context.Context, prefix string) (int, error) {
	ctx, cancel := c.request(ctx)
	defer cancel()
	resp, err := c.etcd.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("cluster: count %s: %w", prefix, c.explain(err))
	}
	return int(resp.Count), nil
}

func (c *Client) gatherVIPs(ctx context.Context, v *View) error {
	held, _ := HostedVIPs(c.cfg.FloatingIPs)
	for _, ip := range c.cfg.FloatingIPs {
		n, err := c.count(ctx, vipPrefix(c.cfg.Prefix, ip)+"mon/")
		if err != nil {
			return err
		}
		vv := VIPView{IP: ip, Held: slices.Contains(held, ip), Clients: n}
		rctx, cancel := c.request(ctx)
		resp, err := c.etcd.Get(rctx, VIPStateKey(c.cfg.Prefix, ip))
		cancel()
		if err != nil {
			return fmt.Errorf("cluster: read %s: %w", VIPStateKey(c.cfg.Prefix, ip), c.explain(err))
		}
		if len(resp.Kvs) > 0 {
			s, _ := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 32)
			vv.State = int32(s)
		}
		v.VIPs = append(v.VIPs, vv)
	}
	return nil
}

func (c *Client) gatherScope(ctx context.Context, v *View) error {
	s := &ScopeRecords{Client: c, Scope: c.cfg.V4Scope}
	e, err := s.ScopeEpochs(ctx)
	if err != nil {
		return err
	}
	sv := &ScopeView{Name: s.Scope, Current: e.Current, Recovery: e.Recovery}
	if sv.Clients, err = c.count(ctx, s.epochPrefix(e.Current)); err != nil {
		return err
	}
	if e.Recovery != 0 {
		if sv.Reclaimable, err = c.count(ctx, s.epochPrefix(e.Recovery)); err != nil {
			return err
		}
	}
	v.Scope = sv
	return nil
}
