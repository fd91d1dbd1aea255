package doctor

import (
	"context"
	"strings"
	"testing"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/nfsconf"
)

// TestClusterFindings: what doctor makes of each cluster state.
func TestClusterFindings(t *testing.T) {
	up := []cluster.Endpoint{{URL: "a", Healthy: true}, {URL: "b", Healthy: true}, {URL: "c", Healthy: true}}
	oneDown := []cluster.Endpoint{{URL: "a", Healthy: true}, {URL: "b", Healthy: true}, {URL: "c", Error: "refused"}}
	twoDown := []cluster.Endpoint{{URL: "a", Healthy: true}, {URL: "b", Error: "refused"}, {URL: "c", Error: "refused"}}
	badSettings := cluster.Read(nfsconf.Parse("nfs.conf", []byte("[nfsrecover]\nfloating-ips = 192.0.2.1/24\netcd-timeout = 10\n"))).Err()
	cases := []struct {
		name     string
		view     *cluster.View
		settings error
		worst    int
		detail   string // in some finding
	}{
		{"not in a cluster", nil, nil, 0, ""},
		{"unusable settings, both named on one line", nil, badSettings, 1, `etcd-timeout "10": want a duration such as 10s; cluster: bad etcd settings: [nfsrecover] floating-ips: "192.0.2.1/24" is not an IP address`},
		{"etcd unreadable", &cluster.View{Etcd: twoDown, Err: "no answer"}, nil, 1, "cannot read the cluster state"},
		{"healthy, no grace", &cluster.View{Etcd: up, Current: 3, Members: []cluster.MemberView{{Node: "a", Alive: true}}}, nil, 0, "not in grace (epoch 3, 1 members)"},
		{"one endpoint down", &cluster.View{Etcd: oneDown, Current: 3}, nil, 2, "1 of 3 endpoints unhealthy: c (refused)"},
		{"no quorum", &cluster.View{Etcd: twoDown, Current: 3}, nil, 1, "no quorum"},
		{"in grace, waiting for a live node", &cluster.View{Etcd: up, Current: 4, Recovery: 3,
			Members: []cluster.MemberView{{Node: "a", Alive: true}, {Node: "b", Need: true, Alive: true}}}, nil, 0, "waiting for: b"},
		{"in grace, the node it waits for is down", &cluster.View{Etcd: up, Current: 4, Recovery: 3,
			Members: []cluster.MemberView{{Node: "a", Alive: true}, {Node: "b", Need: true}}}, nil, 2, "grace remove b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := checkCluster(context.Background(), Host{Cluster: c.view, Settings: c.settings})
			if c.view == nil && c.settings == nil {
				if len(fs) != 0 {
					t.Fatalf("findings outside a cluster: %+v", fs)
				}
				return
			}
			if got := Worst(fs); got != c.worst {
				t.Errorf("exit status %d, want %d: %+v", got, c.worst, fs)
			}
			found := false
			for _, f := range fs {
				found = found || strings.Contains(f.Detail+" fix: "+f.Fix, c.detail)
			}
			if !found {
				t.Errorf("no finding says %q: %+v", c.detail, fs)
			}
		})
	}
}
