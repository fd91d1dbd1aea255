package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Default rate limit: each distinct message may be logged Burst times per
// Interval; the rest are counted and reported in one line per interval.
const (
	DefaultBurst    = 20
	DefaultInterval = 10 * time.Second
	// maxKeys bounds the limiter's memory. Messages are constants of our
	// code, so this is never reached in practice; beyond it every other
	// message shares one budget.
	maxKeys = 1024
)

// limiter is the state one rate-limited handler shares with its
// WithAttrs and WithGroup children.
type limiter struct {
	burst    int
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	windows  map[limitKey]*window
}

type limitKey struct {
	level slog.Level
	msg   string
}

type window struct {
	start      time.Time
	logged     int
	suppressed int
	flushing   bool
}

// rateLimited drops repeats of a message beyond the limiter's budget. It
// applies at info level and above: debug output was asked for.
type rateLimited struct {
	next slog.Handler
	l    *limiter
}

// RateLimit wraps h so that each message (its level and text, whatever
// its attributes) is logged at most burst times per interval. Lines over
// the budget are counted, and once the interval is over one line
// "repeated messages suppressed" gives the message and the count. Debug
// lines are never limited. Remote hosts decide how often statd logs; this
// bounds what they can write into the log.
func RateLimit(h slog.Handler, burst int, interval time.Duration) slog.Handler {
	return &rateLimited{next: h, l: &limiter{burst: burst, interval: interval, now: time.Now, windows: map[limitKey]*window{}}}
}

func (h *rateLimited) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *rateLimited) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo {
		return h.next.Handle(ctx, r)
	}
	ok, report := h.l.admit(limitKey{r.Level, r.Message})
	if report > 0 {
		h.report(ctx, r.Level, r.Message, report)
	}
	if !ok {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// report logs how many lines of msg were suppressed.
func (h *rateLimited) report(ctx context.Context, level slog.Level, msg string, n int) {
	rec := slog.NewRecord(h.l.now(), level, "repeated messages suppressed", 0)
	rec.AddAttrs(slog.String("message", msg), slog.Int("count", n), slog.Duration("interval", h.l.interval))
	h.next.Handle(ctx, rec)
}

// admit decides whether a line with key may be logged now, and returns
// the count of lines suppressed in the window that just ended, if any.
func (l *limiter) admit(key limitKey) (ok bool, ended int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, known := l.windows[key]; !known && len(l.windows) >= maxKeys {
		key = limitKey{key.level, "(other messages)"}
	}
	now := l.now()
	w := l.windows[key]
	if w == nil {
		w = &window{start: now}
		l.windows[key] = w
	}
	if now.Sub(w.start) >= l.interval {
		ended = w.suppressed
		*w = window{start: now}
	}
	if w.logged < l.burst {
		w.logged++
		return true, ended
	}
	w.suppressed++
	return false, ended
}

// pending returns and clears the suppressed counts of windows that have
// ended, for a periodic flush.
func (l *limiter) pending() map[limitKey]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[limitKey]int{}
	now := l.now()
	for k, w := range l.windows {
		if w.suppressed > 0 && now.Sub(w.start) >= l.interval {
			out[k] = w.suppressed
			delete(l.windows, k)
		}
	}
	return out
}

// Flush reports every suppressed count whose window has ended. Daemons
// call it periodically (see FlushEvery) so that the count of a flood that
// stopped is not lost.
func (h *rateLimited) Flush(ctx context.Context) {
	for k, n := range h.l.pending() {
		h.report(ctx, k.level, k.msg, n)
	}
}

func (h *rateLimited) WithAttrs(as []slog.Attr) slog.Handler {
	return &rateLimited{next: h.next.WithAttrs(as), l: h.l}
}

func (h *rateLimited) WithGroup(name string) slog.Handler {
	return &rateLimited{next: h.next.WithGroup(name), l: h.l}
}

// flusher is a handler with suppressed counts to report.
type flusher interface{ Flush(context.Context) }

// FlushEvery reports suppressed counts of log's handler every interval
// until ctx ends; it returns at once when log is not rate-limited.
func FlushEvery(ctx context.Context, log *slog.Logger, interval time.Duration) {
	f, ok := log.Handler().(flusher)
	if !ok {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			f.Flush(context.Background())
			return
		case <-t.C:
			f.Flush(ctx)
		}
	}
}
