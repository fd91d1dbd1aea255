// Package logging builds the slog.Logger every applet uses: one line per
// event with key=value fields, sent to syslog (the default: daemons and
// kernel upcalls have no terminal) or to a writer such as stderr.
//
// Syslog never makes a program fail: when /dev/log is missing (initramfs,
// containers, early boot) messages are dropped. Values are quoted by
// slog's text format, so network-supplied strings can never act as format
// strings or inject control characters into the log.
package logging

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"log/syslog"
	"sync"
)

// Options chooses where and how much to log.
type Options struct {
	// Tag is the syslog identifier (program name).
	Tag string
	// Debug enables debug-level lines. Default: info and above.
	Debug bool
	// Writer, when set, receives the log lines instead of syslog.
	Writer io.Writer
	// Unlimited turns the rate limit off (see RateLimit). Default: each
	// message at info level and above at most DefaultBurst times per
	// DefaultInterval.
	Unlimited bool
	// dialSyslog replaces syslog.New (tests).
	dialSyslog func(tag string) (*syslog.Writer, error)
}

// New returns a logger for opts.
func New(opts Options) *slog.Logger {
	level := slog.LevelInfo
	if opts.Debug {
		level = slog.LevelDebug
	}
	var h slog.Handler
	if opts.Writer != nil {
		h = slog.NewTextHandler(opts.Writer, &slog.HandlerOptions{Level: level})
	} else {
		dial := opts.dialSyslog
		if dial == nil {
			dial = func(tag string) (*syslog.Writer, error) { return syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, tag) }
		}
		h = &syslogHandler{conn: &syslogConn{tag: opts.Tag, dial: dial}, level: level}
	}
	if !opts.Unlimited {
		h = RateLimit(h, DefaultBurst, DefaultInterval)
	}
	return slog.New(h)
}

// syslogConn connects on first use: most successful upcalls log nothing at
// info level, and connecting costs a system call or three per exec. A
// failed connection is remembered and messages are dropped.
type syslogConn struct {
	mu     sync.Mutex
	tag    string
	dial   func(tag string) (*syslog.Writer, error)
	tried  bool
	writer *syslog.Writer
}

func (c *syslogConn) send(level slog.Level, msg string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tried {
		c.tried = true
		c.writer, _ = c.dial(c.tag)
	}
	w := c.writer
	switch {
	case w == nil:
		return nil
	case level >= slog.LevelError:
		return w.Err(msg)
	case level >= slog.LevelWarn:
		return w.Warning(msg)
	case level >= slog.LevelInfo:
		return w.Info(msg)
	}
	return w.Debug(msg)
}

// syslogHandler formats records with slog's text handler (without time and
// level, which syslog carries itself) and sends them at the matching
// priority.
type syslogHandler struct {
	conn   *syslogConn
	level  slog.Level
	attrs  []slog.Attr
	groups []string
}

func (h *syslogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	var buf bytes.Buffer
	var th slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	th = th.WithAttrs(h.attrs)
	for _, g := range h.groups {
		th = th.WithGroup(g)
	}
	if err := th.Handle(ctx, r); err != nil {
		return err
	}
	return h.conn.send(r.Level, string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))))
}

func (h *syslogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups = append(append([]string(nil), h.groups...), name)
	return &c
}
