package doctor

import (
	"context"
	"fmt"
	"strings"

	"nfsrecover/pkg/cluster"
)

// checkCluster reports unusable cluster settings, or else the cluster's
// state when the host is in one (Host.Cluster set): etcd's quorum, who
// keeps the cluster in grace, and members that need grace but hold no
// lease (down, or their agent is).
func checkCluster(_ context.Context, h Host) []Finding {
	if h.Settings != nil {
		return []Finding{{"cluster settings", Fail, strings.ReplaceAll(h.Settings.Error(), "\n", "; "),
			"correct them in nfs.conf; meanwhile each program that uses one refuses to start (nfsdcltrack and nfsdcld: backend, and with backend = etcd etcd-timeout and v4-scope; rpc.statd: floating-ips, and with floating IPs etcd-timeout), and the cluster cannot be checked"}}
	}
	v := h.Cluster
	if v == nil {
		return nil
	}
	if v.Err != "" {
		return []Finding{{"cluster", Fail, "cannot read the cluster state on etcd: " + v.Err,
			"check [nfsrecover] etcd-endpoints and that most etcd members are up (etcdctl endpoint health)"}}
	}
	out := []Finding{etcdHealth(*v)}
	var needing []string
	for _, m := range v.Members {
		if !m.Need {
			continue
		}
		needing = append(needing, m.Node)
		if !m.Alive {
			out = append(out, Finding{"cluster grace", Warn,
				fmt.Sprintf("member %s needs grace but holds no lease: the cluster stays in grace until it returns", m.Node),
				"start its agent (nfsrecover grace agent), or if it will not come back: nfsrecover grace remove " + m.Node})
		}
	}
	switch {
	case v.InGrace():
		out = append(out, Finding{Check: "cluster grace", Level: Info,
			Detail: fmt.Sprintf("in grace since epoch %d, waiting for: %s", v.Recovery, strings.Join(needing, ", "))})
	default:
		out = append(out, Finding{Check: "cluster grace", Level: OK,
			Detail: fmt.Sprintf("not in grace (epoch %d, %d members)", v.Current, len(v.Members))})
	}
	return out
}

func etcdHealth(v cluster.View) Finding {
	var bad []string
	for _, e := range v.Etcd {
		if !e.Healthy {
			bad = append(bad, e.URL+" ("+e.Error+")")
		}
	}
	switch {
	case !v.Quorum():
		return Finding{"etcd", Fail, fmt.Sprintf("no quorum: %d of %d endpoints unhealthy: %s", len(bad), len(v.Etcd), strings.Join(bad, "; ")),
			"bring etcd members back (etcdctl endpoint health); no record can be committed meanwhile"}
	case len(bad) > 0:
		return Finding{"etcd", Warn, fmt.Sprintf("%d of %d endpoints unhealthy: %s", len(bad), len(v.Etcd), strings.Join(bad, "; ")),
			"restore the unhealthy members before another one fails"}
	}
	return Finding{Check: "etcd", Level: OK, Detail: fmt.Sprintf("%d endpoints healthy", len(v.Etcd))}
}
