package logging

import (
	"bytes"
	"context"
	"log/slog"
	"log/syslog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// Messages reach syslog with the program's tag, the matching priority and
// quoted fields, once the daemon's socket is there; with no socket, every
// call still succeeds and nothing panics.
func TestSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dial := func(tag string) (*syslog.Writer, error) {
		return syslog.Dial("unixgram", sock, syslog.LOG_DAEMON|syslog.LOG_INFO, tag)
	}
	log := New(Options{Tag: "rpc.statd", Debug: true, dialSyslog: dial}).With("k", "v")
	log.Warn("peer refused", "name", "evil\nline")
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := srv.Read(buf)
	if err != nil {
		t.Fatalf("nothing reached syslog: %v", err)
	}
	got := string(buf[:n])
	// <28> is facility daemon (3) * 8 + warning (4).
	for _, want := range []string{"<28>", "rpc.statd[", `msg="peer refused" k=v name="evil\nline"`} {
		if !strings.Contains(got, want) {
			t.Errorf("syslog line %q lacks %q", got, want)
		}
	}
	gone := func(string) (*syslog.Writer, error) {
		return syslog.Dial("unixgram", filepath.Join(t.TempDir(), "none"), syslog.LOG_DAEMON, "x")
	}
	quiet := New(Options{Tag: "x", Debug: true, dialSyslog: gone})
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if err := quiet.Handler().Handle(context.Background(), slog.NewRecord(time.Now(), l, "m", 0)); err != nil {
			t.Errorf("level %v without syslog: %v", l, err)
		}
	}
}

// A flood of one message is cut to the burst per interval, the count of
// what was dropped is reported once the interval is over, other messages
// and debug lines are not affected.
func TestRateLimit(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	h := RateLimit(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), 3, 10*time.Second)
	h.(*rateLimited).l.now = func() time.Time { return now }
	log := slog.New(h).With("host", "x")
	for i := 0; i < 1000; i++ {
		log.Info("SM_NOTIFY", "i", i)
		log.Debug("per peer", "i", i)
	}
	log.Warn("other")
	out := buf.String()
	if n := strings.Count(out, "msg=SM_NOTIFY"); n != 3 {
		t.Errorf("%d SM_NOTIFY lines in the first interval, want 3", n)
	}
	if n := strings.Count(out, `msg="per peer"`); n != 1000 {
		t.Errorf("%d debug lines, want all 1000", n)
	}
	if !strings.Contains(out, "msg=other") {
		t.Error("a different message was suppressed")
	}
	if strings.Contains(out, "suppressed") {
		t.Error("suppression reported before the interval ended")
	}
	now = now.Add(11 * time.Second)
	buf.Reset()
	h.(*rateLimited).Flush(context.Background())
	if !strings.Contains(buf.String(), `msg="repeated messages suppressed" message=SM_NOTIFY count=997`) {
		t.Errorf("flush after the interval: %q", buf.String())
	}
	buf.Reset()
	log.Info("SM_NOTIFY", "i", 1)
	if strings.Count(buf.String(), "msg=SM_NOTIFY") != 1 || strings.Contains(buf.String(), "suppressed") {
		t.Errorf("a new interval starts afresh, with nothing left to report: %q", buf.String())
	}
}
