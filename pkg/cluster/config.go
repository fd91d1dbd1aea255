// Package cluster keeps nfsrecover's cluster-wide state on etcd: the
// grace period database of package grace, the liveness of each node, the
// NSM monitors recorded per floating IP and the NFSv4 client records of
// each server scope. It is the only package that imports the etcd client.
//
// # Basics
//
// Dial connects with a Config (from nfs.conf by FromNFSConf). Every change
// is a compare-and-swap: read the value and its revision, apply one
// operation to a copy, and write it back in a transaction that succeeds only
// if the revision is unchanged; on a conflict, read again and retry. No
// operation writes without that guard. A reply of success means the etcd
// quorum committed the change; reads are linearizable (served through the
// leader), so a member cut off from the quorum neither acknowledges a
// change nor answers with stale data.
//
// # Keys
//
// Everything lives under Config.Prefix (default DefaultPrefix), one prefix
// per cluster:
//
//	PREFIX grace            the grace database (grace.Encode's JSON)
//	PREFIX alive/NODE       present while NODE's agent holds its lease
//	PREFIX nsm/VIP/mon/ID   a monitor recorded against floating IP VIP (JSON)
//	PREFIX nsm/VIP/state    the NSM state last sent for VIP (decimal)
//	PREFIX v4/SCOPE/...     a server scope's cld records (see ScopeRecords)
//
// The per-VIP monitor records are written blind (put or delete of one
// key, no read first), which needs no guard; the state advances with
// compare-and-swap, and a notified record is deleted only if nobody
// rewrote it since it was read.
//
// # Caveats
//
// A change whose transaction returned an error (a timeout, a lost leader)
// may or may not have been committed: its outcome is unknown and it is not
// retried, because applying an operation twice is not always the same as
// once (add). Callers report it as unknown.
//
// A binary built with the noetcd tag (make build-small) has Config and
// FromNFSConf but Dial fails with ErrNotBuilt.
package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"nfsrecover/pkg/nfsconf"
)

// DefaultPrefix is the key prefix when nfs.conf names none.
const DefaultPrefix = "/nfsrecover/default/"

// DefaultDialTimeout bounds the authentication at Dial.
const DefaultDialTimeout = 5 * time.Second

// DefaultRequestTimeout bounds one read or one change, retries included.
const DefaultRequestTimeout = 10 * time.Second

// Errors callers branch on.
var (
	// ErrNotBuilt: this binary was built without the etcd client.
	ErrNotBuilt = errors.New("this binary was built without etcd support (make build-small); use the full build")
	// ErrBadConfig: the etcd settings are incomplete or inconsistent, or
	// a file they name cannot be read. Every configuration error wraps it.
	ErrBadConfig = errors.New("bad etcd settings")
	// ErrNoEndpoints: no etcd endpoint is configured.
	ErrNoEndpoints = fmt.Errorf("%w: no etcd endpoints configured: set [nfsrecover] etcd-endpoints in nfs.conf or pass --etcd-endpoints", ErrBadConfig)
	// ErrUnknownOutcome: a change was sent but its result is not known.
	ErrUnknownOutcome = errors.New("the change may or may not have been committed")
)

// Config says how to reach etcd and where the cluster's keys live.
type Config struct {
	// Endpoints are the etcd client URLs (http://host:2379). Required.
	Endpoints []string
	// Prefix is the key prefix of this cluster; default DefaultPrefix.
	// It always ends in "/".
	Prefix string
	// CACert, Cert and Key are PEM files for TLS: CACert to verify the
	// servers, Cert and Key for client authentication. Default: no TLS
	// unless an endpoint is https.
	CACert, Cert, Key string
	// Username and Password authenticate to etcd; default none.
	Username, Password string
	// PasswordFile, when Password is empty, holds the password; Dial reads
	// it (so a command that never connects never reads the secret).
	PasswordFile string
	// DialTimeout bounds authentication when Dial connects with a
	// username; default DefaultDialTimeout.
	DialTimeout time.Duration
	// RequestTimeout bounds each operation; default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// FloatingIPs are the service addresses that move between nodes
	// (Pacemaker's or CTDB's VIPs). statd records each monitor against
	// every one of them this node holds, and sm-notify -v VIP notifies
	// that VIP's clients from etcd. Empty: no per-VIP records.
	FloatingIPs []string
	// Backend is where the applets that support it keep their records:
	// "bbolt" (the local database, the default) or "etcd". Today cld
	// supports etcd (its records per V4Scope).
	Backend string
	// V4Scope names the NFSv4 server scope whose client records cld keeps
	// on etcd; default the host name, which is knfsd's own server scope
	// (the UTS name of nfsd's namespace).
	V4Scope string

	problems []problem // unusable settings Read found
}

// Backends that [nfsrecover] backend names.
const (
	BackendBolt = "bbolt"
	BackendEtcd = "etcd"
)

// FromNFSConf reads the [nfsrecover] etcd settings:
//
//	etcd-endpoints = http://a:2379,http://b:2379
//	etcd-prefix    = /nfsrecover/CLUSTER/
//	etcd-cacert, etcd-cert, etcd-key = PEM files
//	etcd-username, etcd-password-file
//	floating-ips   = 192.0.2.10 192.0.2.11   (FloatingIPs; numeric only)
//	etcd-timeout   = 10s                     (RequestTimeout)
//	backend        = bbolt | etcd
//	v4-scope       = NAME                    (V4Scope)
//
// It fails on any unusable setting; commands that only work on the
// cluster use it. The password is read from a file (mode 0600 expected),
// never from nfs.conf itself, which is world-readable.
func FromNFSConf(conf *nfsconf.Config) (Config, error) {
	c := Read(conf)
	return c, c.Err()
}

// Read reads the settings as FromNFSConf does but never fails: an
// unusable setting is left at its default and kept as a problem, which
// Err, RecordsErr and VIPsErr report. A program refuses to start only
// for the settings it uses (see those methods) and logs the others with
// WarnUnused, so a typo in a setting that a node does not use never
// stops, say, the kernel's nfsdcltrack upcalls on it.
func Read(conf *nfsconf.Config) Config {
	c := Config{
		Endpoints: splitList(conf.String("nfsrecover", "etcd-endpoints", "")),
		Prefix:    conf.String("nfsrecover", "etcd-prefix", ""),
		CACert:    conf.String("nfsrecover", "etcd-cacert", ""),
		Cert:      conf.String("nfsrecover", "etcd-cert", ""),
		Key:       conf.String("nfsrecover", "etcd-key", ""),
		Username:  conf.String("nfsrecover", "etcd-username", ""),
		Backend:   conf.String("nfsrecover", "backend", BackendBolt),
		V4Scope:   conf.String("nfsrecover", "v4-scope", ""),
	}
	c.PasswordFile = conf.String("nfsrecover", "etcd-password-file", "")
	if t := conf.String("nfsrecover", "etcd-timeout", ""); t != "" {
		if d, err := time.ParseDuration(t); err == nil && d > 0 {
			c.RequestTimeout = d
		} else {
			c.refuse(keyTimeout, fmt.Sprintf("etcd-timeout %q: want a duration such as 10s", t))
		}
	}
	if c.Backend != BackendBolt && c.Backend != BackendEtcd {
		c.refuse(keyBackend, fmt.Sprintf("backend %q: want %s or %s", c.Backend, BackendBolt, BackendEtcd))
	}
	if c.V4Scope == "" {
		c.V4Scope, _ = os.Hostname()
	}
	if strings.ContainsAny(c.V4Scope, "/ \t") || c.V4Scope == "" {
		c.refuse(keyScope, fmt.Sprintf("v4-scope %q: want a name without '/' or spaces", c.V4Scope))
	}
	for _, ip := range splitList(conf.String("nfsrecover", "floating-ips", "")) {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			c.refuse(keyVIPs, fmt.Sprintf("floating-ips: %q is not an IP address", ip))
			c.FloatingIPs = nil // never a partial list
			break
		}
		c.FloatingIPs = append(c.FloatingIPs, a.Unmap().String())
	}
	return c
}

// setting is a set of the settings whose values Read checks.
type setting uint8

const (
	keyTimeout setting = 1 << iota
	keyBackend
	keyScope
	keyVIPs
)

// problem is an unusable setting.
type problem struct {
	key setting
	err error
}

// refuse records a problem; what names the setting and says what is wrong.
func (c *Config) refuse(key setting, what string) {
	c.problems = append(c.problems, problem{key, fmt.Errorf("cluster: %w: [nfsrecover] %s", ErrBadConfig, what)})
}

// Err reports every unusable setting (nil: none). Each error wraps
// ErrBadConfig and names its setting.
func (c Config) Err() error { return c.errOf(keyTimeout | keyBackend | keyScope | keyVIPs) }

// RecordsErr reports the unusable settings that decide where cld and
// cltrack keep their records: backend, and with backend = etcd also
// etcd-timeout and v4-scope.
func (c Config) RecordsErr() error {
	if c.Backend == BackendEtcd {
		return c.errOf(keyBackend | keyTimeout | keyScope)
	}
	return c.errOf(keyBackend)
}

// VIPsErr reports the unusable settings that decide statd's and
// sm-notify's per-floating-IP records: floating-ips, and with floating
// IPs set also etcd-timeout.
func (c Config) VIPsErr() error {
	if len(c.FloatingIPs) > 0 {
		return c.errOf(keyVIPs | keyTimeout)
	}
	return c.errOf(keyVIPs)
}

// WarnUnused logs every unusable setting as a warning. A program calls
// it once it has refused to start on the settings it uses, so what is
// left are settings it does not use.
func (c Config) WarnUnused(log *slog.Logger) {
	for _, p := range c.problems {
		log.Warn("setting ignored: not used by this program", "err", p.err)
	}
}

func (c Config) errOf(keys setting) error {
	var errs []error
	for _, p := range c.problems {
		if keys&p.key != 0 {
			errs = append(errs, p.err)
		}
	}
	return errors.Join(errs...)
}

// splitList splits a comma- or space-separated list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// SplitEndpoints splits a command line's --etcd-endpoints value.
func SplitEndpoints(s string) []string { return splitList(s) }

// withDefaults checks c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if len(c.Endpoints) == 0 {
		return c, ErrNoEndpoints
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if (c.Cert == "") != (c.Key == "") {
		return c, fmt.Errorf("cluster: %w: etcd-cert and etcd-key go together: give both or neither", ErrBadConfig)
	}
	if c.Password == "" && c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return c, fmt.Errorf("cluster: %w: etcd-password-file: %w", ErrBadConfig, err)
		}
		c.Password = strings.TrimRight(string(b), "\r\n")
	}
	if c.Password != "" && c.Username == "" {
		return c, fmt.Errorf("cluster: %w: an etcd password needs etcd-username", ErrBadConfig)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	return c, nil
}

// Endpoint is one etcd endpoint's health as Client.Health reports it.
type Endpoint struct {
	URL      string `json:"url"`
	Healthy  bool   `json:"healthy"`
	MemberID uint64 `json:"member_id,omitempty"`
	Leader   uint64 `json:"leader,omitempty"`
	Error    string `json:"error,omitempty"`
}

// IsUnknownOutcome reports whether err left a change's outcome unknown.
func IsUnknownOutcome(err error) bool { return errors.Is(err, ErrUnknownOutcome) }

// GraceKey is the key of the grace database under prefix.
func GraceKey(prefix string) string { return prefix + "grace" }

// AliveKey is the key NODE's agent holds while its lease lives.
func AliveKey(prefix, node string) string { return prefix + "alive/" + node }
