package store

import (
	"testing"

	"nfsrecover/pkg/nfsconf"
)

// The one precedence rule every applet uses, case by case.
func TestLocate(t *testing.T) {
	withDB := nfsconf.Parse("nfs.conf", []byte("[nfsrecover]\ndb = /conf/x.db\n"))
	none := nfsconf.Parse("nfs.conf", nil)
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) { return v, k == EnvPath && v != "" }
	}
	cases := []struct {
		name string
		w    Where
		env  string
		conf *nfsconf.Config
		want string
	}{
		{"--db beats everything", Where{DB: "/flag.db", Dir: "/dir", ConfDir: "/cdir"}, "/env.db", withDB, "/flag.db"},
		{"-P/-s beats environment and nfs.conf", Where{Dir: "/dir", ConfDir: "/cdir"}, "/env.db", withDB, "/dir/nfsrecover.db"},
		{"environment beats nfs.conf", Where{ConfDir: "/cdir"}, "/env.db", withDB, "/env.db"},
		{"[nfsrecover] db beats the configured state directory", Where{ConfDir: "/cdir"}, "", withDB, "/conf/x.db"},
		{"configured state directory", Where{ConfDir: "/cdir"}, "", none, "/cdir/nfsrecover.db"},
		{"default", Where{}, "", none, DefaultPath},
		{"no nfs.conf at all", Where{}, "", nil, DefaultPath},
	}
	for _, c := range cases {
		if got, why := Locate(c.w, env(c.env), c.conf); got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, why, c.want)
		}
	}
}
