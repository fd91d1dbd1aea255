//go:build !noetcd

package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/grace"
)

// call is one grace command as the history records it.
type call struct {
	Cmd string
	IDs []string
}

// result is what the command returned: the committed database (as its
// stored form), the error's class, or unknown.
type result struct {
	DB      string
	Err     error // one of grace's sentinels, or nil
	Unknown bool
}

// errClass maps an error to the grace sentinel it wraps.
func errClass(err error) error {
	for _, e := range []error{grace.ErrNoNode, grace.ErrExists, grace.ErrNoNodes, grace.ErrBadNodeID, grace.ErrTooMany} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}

// model is the grace database as a sequential specification. A change
// with an unknown outcome may or may not have happened.
var model = porcupine.NondeterministicModel{
	Init: func() []any { return []any{string(grace.Encode(grace.New()))} },
	Step: func(state, input, output any) []any {
		in, out := input.(call), output.(result)
		cur, err := grace.Decode([]byte(state.(string)))
		if err != nil {
			return nil
		}
		if in.Cmd == "read" {
			if out.DB == state.(string) {
				return []any{state}
			}
			return nil
		}
		cmd, _ := grace.Lookup(in.Cmd)
		next := cur.Clone()
		opErr := cmd.Op(&next, in.IDs)
		after := state
		if opErr == nil {
			after = string(grace.Encode(next))
		}
		switch {
		case out.Unknown:
			return []any{state, after}
		case errClass(opErr) != out.Err:
			return nil
		case opErr == nil && out.DB != after:
			return nil
		}
		return []any{after}
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%v -> %+v", input, output)
	},
}

type history struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

// add records one operation; an unknown outcome may take effect at any
// later time, so it never returns.
func (h *history) add(client int, in, out any, unknown bool, callT int64) {
	ret := h.now()
	if unknown {
		ret = math.MaxInt64
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: callT, Output: out, Return: ret})
	h.mu.Unlock()
}

// do runs one random command on c and records it. It reports whether the
// command was acknowledged (a definite outcome, success or refusal).
func do(ctx context.Context, c *cluster.Client, r *rand.Rand, h *history, client int) (acked bool) {
	ids := []string{"a", "b", "c", "d"}
	in := call{Cmd: "read"}
	if n := r.IntN(len(grace.Commands) + 2); n < len(grace.Commands) {
		in = call{Cmd: grace.Commands[n].Name, IDs: []string{ids[r.IntN(len(ids))]}}
	}
	t0 := h.now()
	if in.Cmd == "read" {
		db, _, err := c.ReadGrace(ctx)
		if err != nil {
			return false // a failed read has no effect to record
		}
		h.add(client, in, result{DB: string(grace.Encode(db))}, false, t0)
		return true
	}
	cmd, _ := grace.Lookup(in.Cmd)
	db, err := c.UpdateGrace(ctx, cmd.Op, in.IDs)
	switch {
	case cluster.IsUnknownOutcome(err):
		h.add(client, in, result{Unknown: true}, true, t0)
		return false
	case err != nil && !grace.Refused(err):
		return false // the read before the change failed: nothing was written
	}
	h.add(client, in, result{DB: string(grace.Encode(db)), Err: errClass(err)}, false, t0)
	return err == nil
}

// TestFaultsLinearizable runs grace commands from six clients (two per
// member) while members die, the leader dies, and one member is cut off
// from the others; then checks the whole history for linearizability with
// porcupine. A client that can reach only the cut-off member must get no
// acknowledgement while it is cut off.
func TestFaultsLinearizable(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	h := &history{start: time.Now()}
	r7 := rand.New(rand.NewPCG(7, 7))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		c := dialWithin(t, ec.Endpoints(), "/t/faults/", 3*time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for {
				select {
				case <-stop:
					return
				default:
				}
				do(context.Background(), c, r, h, w)
				time.Sleep(time.Duration(r.IntN(8)) * time.Millisecond)
			}
		}()
	}
	var lone *cluster.Client
	tries := injectFaults(t, ec, func(cut int) bool {
		if lone == nil {
			lone = dialWithin(t, []string{ec.Endpoints()[cut]}, "/t/faults/", time.Second)
		}
		return do(context.Background(), lone, r7, h, 6)
	})
	close(stop)
	wg.Wait()

	acked := 0
	for _, op := range h.ops {
		if !op.Output.(result).Unknown {
			acked++
		}
	}
	t.Logf("%d operations (%d acknowledged), %d tries on the cut-off member", len(h.ops), acked, tries)
	if acked < 100 || tries == 0 {
		t.Fatalf("too little happened to check: %d acknowledged, %d tries", acked, tries)
	}
	res := porcupine.CheckOperationsTimeout(model.ToModel(), h.ops, 2*time.Minute)
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations is not linearizable (%v)", len(h.ops), res)
	}
}

// injectFaults runs the fault sequence while the caller's load runs:
// kill a member and restart it, kill the leader and restart it, then cut
// one member off from the others for 4 s, calling lone (a command sent
// only to that member) as often as it can meanwhile; lone must never be
// acknowledged. It heals the cut, lets the load run for a second more,
// and returns how many times lone was called.
func injectFaults(t *testing.T, ec *etcdtest.Cluster, lone func(cut int) (acked bool)) int {
	t.Helper()
	// Each pause below lets the load run through the fault it follows.
	time.Sleep(time.Second)
	victim := (ec.WaitLeader(10*time.Second) + 1) % 3
	t.Logf("kill member %d", victim)
	ec.Kill(victim)
	time.Sleep(1500 * time.Millisecond)
	ec.Restart(victim)

	leader := ec.WaitLeader(10 * time.Second)
	t.Logf("kill leader %d", leader)
	ec.Kill(leader)
	if ec.WaitLeader(10*time.Second) < 0 {
		t.Fatal("no new leader after killing the leader")
	}
	time.Sleep(1500 * time.Millisecond)
	ec.Restart(leader)

	cut := (ec.WaitLeader(10*time.Second) + 1) % 3
	t.Logf("cut off member %d", cut)
	ec.CutOff(cut)
	tries := 0
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); tries++ {
		if lone(cut) {
			t.Errorf("the member cut off from the quorum acknowledged a command")
		}
	}
	ec.Heal(cut)
	time.Sleep(time.Second)
	return tries
}

// TestModelCatchesLostUpdate shows the checker can fail: a history in
// which an acknowledged add is missing from a later read is refused.
func TestModelCatchesLostUpdate(t *testing.T) {
	added := grace.New()
	if err := grace.Add(&added, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	ops := []porcupine.Operation{
		{ClientId: 0, Input: call{"add", []string{"a"}}, Call: 0, Output: result{DB: string(grace.Encode(added))}, Return: 10},
		{ClientId: 1, Input: call{Cmd: "read"}, Call: 20, Output: result{DB: string(grace.Encode(grace.New()))}, Return: 30},
	}
	if porcupine.CheckOperations(model.ToModel(), ops) {
		t.Fatal("a read that lost an acknowledged add was judged linearizable")
	}
	ops[1].Output = result{DB: string(grace.Encode(added))}
	if !porcupine.CheckOperations(model.ToModel(), ops) {
		t.Fatal("a correct history was refused")
	}
	if !reflect.DeepEqual(errClass(fmt.Errorf("x: %w", grace.ErrNoNode)), grace.ErrNoNode) {
		t.Fatal("errClass")
	}
}
