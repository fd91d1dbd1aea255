package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriterLevelsAndQuoting(t *testing.T) {
	var buf bytes.Buffer
	log := New(Options{Tag: "t", Writer: &buf})
	log.Debug("hidden")
	log.Info("event", "name", "evil\nline %s")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Errorf("debug shown without Debug: %q", out)
	}
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, `name="evil\nline %s"`) {
		t.Errorf("network strings must stay on one quoted line: %q", out)
	}
	buf.Reset()
	New(Options{Tag: "t", Writer: &buf, Debug: true}).Debug("shown")
	if !strings.Contains(buf.String(), "shown") {
		t.Errorf("debug missing with Debug: %q", buf.String())
	}
}

func TestSyslogNeverFails(t *testing.T) {
	// Whether or not /dev/log exists, logging must not fail or panic.
	log := New(Options{Tag: "nfsrecover-test", Debug: true}).With("k", "v").WithGroup("g")
	log.Error("test message", "x", 1)
	log.Debug("test message")
}
