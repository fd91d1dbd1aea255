package statd

import (
	"context"
	"log/slog"
	"os/exec"
	"time"
)

// Callouts runs the HA callout program (rpc.statd -H) without a shell:
// argv[0] is the program, then the event's arguments. Calls are queued
// (bounded; overflow is logged and dropped) and run one at a time with a
// timeout, so a slow script never blocks the RPC path.
type Callouts struct {
	Program string
	Timeout time.Duration // default 10s
	Log     *slog.Logger
	queue   chan []string
}

// NewCallouts returns a runner for program; Run must be running.
func NewCallouts(program string, log *slog.Logger) *Callouts {
	return &Callouts{Program: program, Log: log, queue: make(chan []string, 1024)}
}

// Call queues one callout; it never blocks.
func (c *Callouts) Call(args ...string) {
	select {
	case c.queue <- args:
	default:
		c.Log.Error("HA callout queue full, event dropped", "args", args)
	}
}

// Run executes queued callouts until ctx ends.
func (c *Callouts) Run(ctx context.Context) {
	for {
		select {
		case args := <-c.queue:
			c.run(ctx, args)
		case <-ctx.Done():
			return
		}
	}
}

func (c *Callouts) run(ctx context.Context, args []string) {
	ctx, cancel := context.WithTimeout(ctx, orDefault(c.Timeout, 10*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Program, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.Log.Warn("HA callout failed", "program", c.Program, "args", args, "err", err, "output", string(out))
		return
	}
	c.Log.Debug("HA callout done", "program", c.Program, "args", args)
}
