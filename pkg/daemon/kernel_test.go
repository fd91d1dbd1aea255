package daemon

import "testing"

func TestReleaseBefore(t *testing.T) {
	for _, c := range []struct {
		release string
		want    bool
	}{
		{"4.18.0-553.el8_10.x86_64", true},
		{"4.19.282", true},
		{"4.20.0", false},
		{"5.4.0-150-generic", false},
		{"6.18.44-fc-v657", false},
		{"3.10.0-1160.el7.x86_64", true},
		{"garbage", false},
	} {
		if got := releaseBefore(c.release, 4, 20); got != c.want {
			t.Errorf("releaseBefore(%q, 4.20) = %v, want %v", c.release, got, c.want)
		}
	}
}
