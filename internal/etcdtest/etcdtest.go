// Package etcdtest runs a real etcd cluster inside the test process
// (go.etcd.io/etcd/server/v3/embed), for the tests of nfsrecover's etcd
// backend. Each member listens on loopback; its peer traffic passes through
// a proxy that knows which member opened each connection, so a test can
// cut one member off from the others, and members can be stopped and
// restarted on their data directories to kill a member or the leader.
package etcdtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Member is one etcd member of a Cluster.
type Member struct {
	Name      string
	ClientURL string // what clients dial, straight to the member
	clientURL url.URL
	dir       string
	peerURL   url.URL      // the member listens here
	advURL    url.URL      // the others reach it here, through the proxy
	ln        net.Listener // the proxy's listener at advURL
	etcd      *embed.Etcd
}

// Cluster is an embedded etcd cluster. Its methods are safe for use by
// one test goroutine at a time.
type Cluster struct {
	t       T
	mu      sync.Mutex
	Members []*Member
	initial string
	net     *partition
	picked  map[string]bool // every port handed out, so none is handed out twice
}

// Start starts an n-member cluster and waits until it has a leader. It
// is stopped when the test ends.
func Start(t T, n int) *Cluster {
	t.Helper()
	return StartOn(t, n, "127.0.0.1")
}

// StartOn is Start with the members' client URLs on address host (say a
// bridge that network namespaces reach); peers still talk over loopback.
func StartOn(t T, n int, host string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, net: newPartition(), picked: map[string]bool{}}
	var initial []string
	for i := 0; i < n; i++ {
		m := &Member{Name: fmt.Sprintf("m%d", i), dir: t.TempDir()}
		m.peerURL, m.clientURL = c.freeURL("127.0.0.1"), c.freeURL(host)
		m.ClientURL = m.clientURL.String()
		m.ln = c.listenLow("127.0.0.1") // the proxy's, kept open
		m.advURL = url.URL{Scheme: "http", Host: m.ln.Addr().String()}
		go c.net.serve(m.ln, i, m.peerURL.Host)
		initial = append(initial, m.Name+"="+m.advURL.String())
		c.Members = append(c.Members, m)
	}
	c.initial = strings.Join(initial, ",")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range c.Members {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.start(i, "new") }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.close)
	if c.WaitLeader(30*time.Second) < 0 {
		t.Fatal("etcdtest: no leader after 30s")
	}
	return c
}

// listenLow listens on a free loopback port below Linux's ephemeral range
// (32768 and up), so that no client connection can take a port this
// package hands out between the check and the member's own listen. A port
// already handed out to this cluster is never picked again: a member's
// port is free between freeURL and its start, and a second pick of it
// made the member's listen fail ("address already in use").
func (c *Cluster) listenLow(host string) net.Listener {
	for try := 0; try < 1000; try++ {
		addr := net.JoinHostPort(host, fmt.Sprint(20000+rand.IntN(12000)))
		if c.picked[addr] {
			continue
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			c.picked[addr] = true
			return l
		}
	}
	c.t.Fatal("etcdtest: no free port below 32000")
	return nil
}

// freeURL returns a loopback URL whose port is free now (see listenLow).
func (c *Cluster) freeURL(host string) url.URL {
	l := c.listenLow(host)
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

func (c *Cluster) start(i int, state string) error {
	m := c.Members[i]
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = m.Name, m.dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{m.clientURL}, []url.URL{m.clientURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{m.peerURL}, []url.URL{m.advURL}
	cfg.InitialCluster, cfg.ClusterState = c.initial, state
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"/dev/null"}
	cfg.TickMs, cfg.ElectionMs = 50, 500
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcdtest: start %s: %w", m.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return fmt.Errorf("etcdtest: %s not ready after 60s", m.Name)
	}
	c.mu.Lock()
	m.etcd = e
	c.mu.Unlock()
	c.net.learn(e.Server.MemberID().String(), i)
	return nil
}

// Endpoints returns every member's client URL.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Leader returns the index of the member that is leader, or -1.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.Members {
		if m.etcd != nil && m.etcd.Server.Leader() != 0 && m.etcd.Server.Leader() == m.etcd.Server.MemberID() {
			return i
		}
	}
	return -1
}

// WaitLeader waits up to d for a leader and returns its index, or -1.
func (c *Cluster) WaitLeader(d time.Duration) int {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l := c.Leader(); l >= 0 {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

// Kill stops member i at once (its data directory stays).
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	e := c.Members[i].etcd
	c.Members[i].etcd = nil
	c.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Restart starts a killed member again on its data directory.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.start(i, "existing"); err != nil {
		c.t.Fatal(err)
	}
}

// CutOff partitions member i from the others: every peer connection it
// opens or receives is closed and refused until Heal. Its clients still
// reach it; it can commit nothing and serve no linearizable read.
func (c *Cluster) CutOff(i int) { c.net.setCut(i, true) }

// Heal lets member i's peer traffic through again.
func (c *Cluster) Heal(i int) { c.net.setCut(i, false) }

func (c *Cluster) close() {
	for i, m := range c.Members {
		c.Kill(i)
		m.ln.Close()
	}
}
