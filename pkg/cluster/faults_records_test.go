//go:build !noetcd

package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"nfsrecover/internal/etcdtest"
	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/store"
)

// scopeState is a server scope as nfsdcld's semantics define it: the two
// epochs and the ids in each.
type scopeState struct {
	C, R     uint64
	Cur, Rec []string // sorted
}

func (s scopeState) String() string {
	b, _ := json.Marshal(s)
	return string(b)
}

func parseScope(str string) scopeState {
	var s scopeState
	json.Unmarshal([]byte(str), &s)
	return s
}

// step applies one cld command to s, as pkg/store's bbolt version does.
func (s scopeState) step(cmd, id string) scopeState {
	start := func() {
		if s.R == 0 {
			s.R, s.C, s.Rec = s.C, s.C+1, s.Cur
		}
		s.Cur = nil
	}
	switch cmd {
	case "create":
		if !slices.Contains(s.Cur, id) {
			s.Cur = append(slices.Clone(s.Cur), id)
			slices.Sort(s.Cur)
		}
	case "gracestart":
		start()
	case "gracedone":
		if s.R == 0 {
			start()
		}
		s.R, s.Rec = 0, nil
	}
	return s
}

type scopeCall struct{ Cmd, ID string }

type scopeResult struct {
	State   string // for reads
	Unknown bool
}

var scopeModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{scopeState{C: 1}.String()} },
	Step: func(state, input, output any) []any {
		in, out := input.(scopeCall), output.(scopeResult)
		if in.Cmd == "read" {
			if out.State == state.(string) {
				return []any{state}
			}
			return nil
		}
		after := parseScope(state.(string)).step(in.Cmd, in.ID).String()
		if out.Unknown {
			return []any{state, after}
		}
		return []any{after}
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%v -> %+v", input, output)
	},
}

// snapshotState reads the scope in one etcd read, as a scopeState; ok is
// false when the read failed or records sit in an epoch that is neither
// current nor recovery (which the model has no room for: a failure).
func snapshotState(ctx context.Context, s *cluster.ScopeRecords) (string, error) {
	e, recs, err := s.Snapshot(ctx)
	if err != nil {
		return "", err
	}
	st := scopeState{C: e.Current, R: e.Recovery}
	for n, ids := range recs {
		var names []string
		for _, id := range ids {
			names = append(names, string(id))
		}
		slices.Sort(names)
		switch {
		case n == e.Current:
			st.Cur = names
		case n == e.Recovery && n != 0:
			st.Rec = names
		default:
			return fmt.Sprintf("stray epoch %d: %v", n, names), nil
		}
	}
	return st.String(), nil
}

// doScope runs one random cld command (mostly creates) or a read and
// records it; it reports whether a change was acknowledged.
func doScope(ctx context.Context, s *cluster.ScopeRecords, r *rand.Rand, h *history, client int) bool {
	t0 := h.now()
	in := scopeCall{Cmd: "create", ID: fmt.Sprintf("client-%d", r.IntN(6))}
	var err error
	switch n := r.IntN(40); {
	case n < 8:
		st, err := snapshotState(ctx, s)
		if err == nil {
			h.add(client, scopeCall{Cmd: "read"}, scopeResult{State: st}, false, t0)
		}
		return false
	case n < 10:
		in = scopeCall{Cmd: "gracestart"}
		_, err = s.GraceStart(ctx)
	case n < 12:
		in = scopeCall{Cmd: "gracedone"}
		err = s.GraceDone(ctx)
	default:
		err = s.Create(ctx, store.CldRecord{ID: []byte(in.ID)})
	}
	if err != nil {
		// Every failed change counts as unknown: a failure before the
		// write had no effect, which "unknown" allows too.
		h.add(client, in, scopeResult{Unknown: true}, true, t0)
		return false
	}
	h.add(client, in, scopeResult{}, false, t0)
	return true
}

// TestFaultsRecordsSurvive: cld commands on one server scope (creates,
// grace start and done) and SM_MONs per VIP run from six clients while
// members die, the leader dies and a member is cut off. The cld history
// must be linearizable (porcupine, with nfsdcld's semantics as the
// model), every acknowledged SM_MON must be on etcd at the end, and
// nothing sent only to the cut-off member may be acknowledged.
func TestFaultsRecordsSurvive(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	h := &history{start: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]store.Monitor{} // SM_MONs acknowledged, by peer
	for w := 0; w < 6; w++ {
		c := dialWithin(t, ec.Endpoints(), "/t/rfaults/", 3*time.Second)
		scope := &cluster.ScopeRecords{Client: c, Scope: "s1"}
		rec := &cluster.NSMRecorder{Client: c, VIPs: fixedVIPs("192.0.2.10")}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 5))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if w%2 == 0 {
					doScope(context.Background(), scope, r, h, w)
					continue
				}
				m := monitorFor(fmt.Sprintf("10.%d.%d.%d", w, i/250, i%250+1), byte(i))
				if rec.Monitor(context.Background(), m) == nil {
					mu.Lock()
					acked[m.MonName] = m
					mu.Unlock()
				}
			}
		}()
	}
	var lone *cluster.Client
	i := 0
	tries := injectFaults(t, ec, func(cut int) bool {
		if lone == nil {
			lone = dialWithin(t, []string{ec.Endpoints()[cut]}, "/t/rfaults/", time.Second)
		}
		i++
		m := monitorFor(fmt.Sprintf("10.200.%d.%d", i/250, i%250+1), 1)
		monErr := (&cluster.NSMRecorder{Client: lone, VIPs: fixedVIPs("192.0.2.10")}).Monitor(context.Background(), m)
		createErr := (&cluster.ScopeRecords{Client: lone, Scope: "s1"}).Create(context.Background(), store.CldRecord{ID: []byte("lone")})
		return monErr == nil || createErr == nil
	})
	close(stop)
	wg.Wait()

	admin := dial(t, ec.Endpoints(), "/t/rfaults/")
	got, err := admin.VIPMonitors(context.Background(), "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]store.Monitor{}
	for _, g := range got {
		stored[g.MonName] = g.Monitor
	}
	for name, m := range acked {
		if stored[name] != m {
			t.Errorf("acknowledged SM_MON for %s lost (stored: %+v)", name, stored[name])
		}
	}
	changes := 0
	for _, op := range h.ops {
		if in := op.Input.(scopeCall); in.Cmd != "read" && !op.Output.(scopeResult).Unknown {
			changes++
		}
	}
	t.Logf("%d SM_MONs acknowledged; %d cld operations (%d changes acknowledged); %d tries on the cut-off member",
		len(acked), len(h.ops), changes, tries)
	if len(acked) < 100 || changes < 100 || tries == 0 {
		t.Fatalf("too little happened to check: %d SM_MONs, %d cld changes, %d tries", len(acked), changes, tries)
	}
	if res := porcupine.CheckOperationsTimeout(scopeModel.ToModel(), h.ops, 2*time.Minute); res != porcupine.Ok {
		t.Fatalf("cld history of %d operations is not linearizable (%v)", len(h.ops), res)
	}
}

// TestScopeModelCatchesLostCreate shows the checker can fail: a read that
// misses an acknowledged create is refused.
func TestScopeModelCatchesLostCreate(t *testing.T) {
	created := scopeState{C: 1}.step("create", "a").String()
	ops := []porcupine.Operation{
		{ClientId: 0, Input: scopeCall{"create", "a"}, Call: 0, Output: scopeResult{}, Return: 10},
		{ClientId: 1, Input: scopeCall{Cmd: "read"}, Call: 20, Output: scopeResult{State: scopeState{C: 1}.String()}, Return: 30},
	}
	if porcupine.CheckOperations(scopeModel.ToModel(), ops) {
		t.Fatal("a read that lost an acknowledged create was judged linearizable")
	}
	ops[1].Output = scopeResult{State: created}
	if !porcupine.CheckOperations(scopeModel.ToModel(), ops) {
		t.Fatal("a correct history was refused")
	}
	if got := parseScope(created); got.String() != created {
		t.Fatalf("parseScope round trip: %q -> %q", created, got)
	}
}
