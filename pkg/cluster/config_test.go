package cluster_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/nfsconf"
)

// parse reads body as the [nfsrecover] section of an nfs.conf.
func parse(body string) *nfsconf.Config {
	return nfsconf.Parse("nfs.conf", []byte("[nfsrecover]\n"+body))
}

// TestSettingProblemsPerUse: an unusable setting stops only the programs
// that use it. cld and cltrack depend on backend (and, on etcd, on
// etcd-timeout and v4-scope); statd and sm-notify on floating-ips (and,
// with floating IPs, on etcd-timeout). Every problem names its setting.
func TestSettingProblemsPerUse(t *testing.T) {
	cases := []struct {
		name, body       string
		setting          string // named by Err; "" when all are usable
		records, vips    bool   // RecordsErr, VIPsErr fail
		floatingIPsAfter int
	}{
		{"all usable", "backend = etcd\nfloating-ips = 192.0.2.1, ::ffff:192.0.2.2\netcd-timeout = 3s\nv4-scope = s1\n", "", false, false, 2},
		{"backend typo", "backend = ectd\n", "backend", true, false, 0},
		{"bad floating IP", "floating-ips = 192.0.2.1 192.0.2.0/24\n", "floating-ips", false, true, 0},
		{"bad timeout, bbolt, no floating IPs", "etcd-timeout = 10\n", "etcd-timeout", false, false, 0},
		{"bad timeout, records on etcd", "backend = etcd\netcd-timeout = -1s\n", "etcd-timeout", true, false, 0},
		{"bad timeout, floating IPs", "floating-ips = 192.0.2.1\netcd-timeout = soon\n", "etcd-timeout", false, true, 1},
		{"bad scope, bbolt", "v4-scope = a/b\n", "v4-scope", false, false, 0},
		{"bad scope, records on etcd", "backend = etcd\nv4-scope = a b\n", "v4-scope", true, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := cluster.Read(parse(c.body))
			err := cfg.Err()
			switch {
			case c.setting == "" && err != nil:
				t.Fatalf("Err: %v, want none", err)
			case c.setting != "" && (!errors.Is(err, cluster.ErrBadConfig) || !strings.Contains(err.Error(), c.setting)):
				t.Fatalf("Err: %v, want ErrBadConfig naming %s", err, c.setting)
			}
			if got := cfg.RecordsErr() != nil; got != c.records {
				t.Errorf("RecordsErr: %v, want failing=%v", cfg.RecordsErr(), c.records)
			}
			if got := cfg.VIPsErr() != nil; got != c.vips {
				t.Errorf("VIPsErr: %v, want failing=%v", cfg.VIPsErr(), c.vips)
			}
			if len(cfg.FloatingIPs) != c.floatingIPsAfter {
				t.Errorf("floating IPs %v, want %d (never a partial list)", cfg.FloatingIPs, c.floatingIPsAfter)
			}
			var logs bytes.Buffer
			cfg.WarnUnused(slog.New(slog.NewTextHandler(&logs, nil)))
			if c.setting != "" && !strings.Contains(logs.String(), c.setting) {
				t.Errorf("WarnUnused logged %q, want a warning naming %s", logs.String(), c.setting)
			}
			if _, strict := cluster.FromNFSConf(parse(c.body)); (strict != nil) != (c.setting != "") {
				t.Errorf("FromNFSConf: %v, want it to fail exactly when a setting is unusable", strict)
			}
		})
	}
}
