//go:build !noetcd

package status

import (
	"fmt"
	"io"
	"strings"

	"nfsrecover/pkg/cluster"
)

func printCluster(w io.Writer, v cluster.View) {
	healthy := 0
	for _, e := range v.Etcd {
		if e.Healthy {
			healthy++
		}
	}
	fmt.Fprintf(w, "etcd                %d of %d endpoints healthy\n", healthy, len(v.Etcd))
	if v.Err != "" {
		fmt.Fprintf(w, "cluster             unreadable: %s\n", v.Err)
		return
	}
	grace := "not in grace"
	if v.InGrace() {
		grace = fmt.Sprintf("in grace since epoch %d", v.Recovery)
	}
	fmt.Fprintf(w, "cluster epoch       %d, %s\n", v.Current, grace)
	for _, m := range v.Members {
		flags := []string{map[bool]string{true: "alive", false: "no lease"}[m.Alive]}
		if m.Need {
			flags = append(flags, "NEEDS grace")
		}
		if m.Enforcing {
			flags = append(flags, "enforcing")
		}
		fmt.Fprintf(w, "  member %-12s %s\n", m.Node, strings.Join(flags, ", "))
	}
	for _, ip := range v.VIPs {
		held := "held elsewhere"
		if ip.Held {
			held = "held here"
		}
		fmt.Fprintf(w, "  floating IP %-15s %s, %d clients to notify on a move, NSM state %d\n", ip.IP, held, ip.Clients, ip.State)
	}
	if sc := v.Scope; sc != nil {
		fmt.Fprintf(w, "  v4 scope %-10s current epoch %d (%d clients), recovery epoch %d (%d may reclaim)\n",
			sc.Name, sc.Current, sc.Clients, sc.Recovery, sc.Reclaimable)
	}
}

// clusterMetrics are the cluster's gauges (none when etcd was unreadable).
func clusterMetrics(v cluster.View) []metric {
	if v.Err != "" {
		return nil
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	need := 0
	for _, mv := range v.Members {
		if mv.Need {
			need++
		}
	}
	return []metric{
		{"nfsrecover_cluster_in_grace", "1 while the cluster is in grace.", b(v.InGrace())},
		{"nfsrecover_cluster_members", "Members of the cluster grace database.", float64(len(v.Members))},
		{"nfsrecover_cluster_members_needing_grace", "Members whose NEED flag is set.", float64(need)},
		{"nfsrecover_cluster_etcd_quorum", "1 while most etcd endpoints are healthy.", b(v.Quorum())},
	}
}
