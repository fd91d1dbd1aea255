package v4recovery

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadClassifies(t *testing.T) {
	dir := t.TempDir()
	good := []string{"900150983cd24fb0d6963f7d28e17f72", "d41d8cd98f00b204e9800998ecf8427e"}
	for _, n := range append(good, "900150983cd24fb0d6963f7d28e17f7", "900150983CD24FB0D6963F7D28E17F72", "zz0150983cd24fb0d6963f7d28e17f72") {
		os.Mkdir(filepath.Join(dir, n), 0o700)
	}
	os.WriteFile(filepath.Join(dir, "a1b2c3d4e5f60718293a4b5c6d7e8f90"), nil, 0o600)
	s, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Names, good) {
		t.Errorf("names %v", s.Names)
	}
	reasons := map[string]string{}
	for _, sk := range s.Skipped {
		reasons[sk.Name] = sk.Reason
	}
	want := map[string]string{
		"900150983cd24fb0d6963f7d28e17f7":  "31 characters",
		"900150983CD24FB0D6963F7D28E17F72": "uppercase",
		"zz0150983cd24fb0d6963f7d28e17f72": "not a hex",
		"a1b2c3d4e5f60718293a4b5c6d7e8f90": "not a directory",
	}
	for n, frag := range want {
		if !strings.Contains(reasons[n], frag) {
			t.Errorf("%s: reason %q, want %q", n, reasons[n], frag)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("missing dir accepted")
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "v4recovery")
	names := []string{"900150983cd24fb0d6963f7d28e17f72"}
	for i := 0; i < 2; i++ { // idempotent
		if err := Write(dir, names); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(filepath.Join(dir, names[0]))
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("client dir: %v %v", st, err)
	}
	if err := Write(dir, []string{"../escape"}); err == nil {
		t.Errorf("bad name accepted")
	}
	os.WriteFile(filepath.Join(dir, "d41d8cd98f00b204e9800998ecf8427e"), nil, 0o600)
	if err := Write(dir, []string{"d41d8cd98f00b204e9800998ecf8427e"}); err == nil {
		t.Errorf("file in the way accepted")
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("900150983cd24fb0d6963f7d28e17f72", true)
	f.Add("../../etc", true)
	f.Fuzz(func(t *testing.T, name string, isDir bool) {
		if Classify(name, isDir) == "" {
			if !isDir || len(name) != 32 || strings.ContainsAny(name, "/.\x00ABCDEFghijklmnopqrstuvwxyz") {
				t.Fatalf("accepted %q dir=%v", name, isDir)
			}
		}
	})
}
