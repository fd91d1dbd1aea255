package applets

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyRules enforces the layout rules: dependencies point
// main -> applets -> pkg; only pkg/store imports bbolt; only pkg/cluster
// imports the etcd client (and only internal/etcdtest its server); only applets
// import urfave/cli; applets never import each other; sm-notify shares
// the state directory's rules with statd through pkg/nsmdir, not by
// importing the daemon.
func TestDependencyRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "nfsrecover/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, imports := f[0], f[1:]
		for _, imp := range imports {
			switch {
			case strings.HasPrefix(imp, "go.etcd.io/bbolt") && pkg != "nfsrecover/pkg/store":
				t.Errorf("%s imports bbolt; only pkg/store may", pkg)
			case strings.HasPrefix(imp, "go.etcd.io/etcd/client") && pkg != "nfsrecover/pkg/cluster":
				t.Errorf("%s imports the etcd client; only pkg/cluster may", pkg)
			case strings.HasPrefix(imp, "go.etcd.io/etcd/server") && pkg != "nfsrecover/internal/etcdtest":
				t.Errorf("%s imports the etcd server; only the tests' internal/etcdtest may", pkg)
			case strings.HasPrefix(imp, "github.com/urfave/cli") && !strings.HasPrefix(pkg, "nfsrecover/applets"):
				t.Errorf("%s imports urfave/cli; only applets may", pkg)
			case strings.HasPrefix(pkg, "nfsrecover/pkg/") && strings.HasPrefix(imp, "nfsrecover/applets"):
				t.Errorf("%s imports %s: pkg must not depend on applets", pkg, imp)
			case strings.HasPrefix(pkg, "nfsrecover/applets/") && strings.HasPrefix(imp, "nfsrecover/applets") &&
				!strings.HasPrefix(imp, "nfsrecover/applets/internal/"):
				t.Errorf("applet %s imports applet %s", pkg, imp)
			case pkg == "nfsrecover/applets/notify" && imp == "nfsrecover/pkg/statd":
				t.Errorf("sm-notify imports the statd daemon; what they share lives in pkg/nsmdir")
			}
		}
	}
}
