//go:build linux

package cld

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	"nfsrecover/pkg/cld"
)

// Upcall builders, as the kernel fills them.
func getVersion() cld.Msg        { return cld.Msg{Vers: cld.Version1, Cmd: cld.GetVersion} }
func graceStart(v uint8) cld.Msg { return cld.Msg{Vers: v, Cmd: cld.GraceStart} }
func graceDone(v uint8) cld.Msg  { return cld.Msg{Vers: v, Cmd: cld.GraceDone} }
func create(v uint8, name string, princ string) cld.Msg {
	m := cld.Msg{Vers: v, Cmd: cld.Create, Name: []byte(name)}
	if princ != "" {
		h := sha256.Sum256([]byte(princ))
		m.PrincHash = h[:]
	}
	return m
}
func remove(v uint8, name string) cld.Msg {
	return cld.Msg{Vers: v, Cmd: cld.Remove, Name: []byte(name)}
}
func check(name string) cld.Msg {
	return cld.Msg{Vers: cld.Version1, Cmd: cld.Check, Name: []byte(name)}
}

// boot is what a v2 kernel sends when client tracking starts.
var boot = []step{call(getVersion()), call(graceStart(2))}

func seq(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// diffCase is a named sequence of kernel actions.
type diffCase struct {
	name  string
	steps []step
}

func TestDifferential(t *testing.T) {
	for _, c := range diffCases() {
		t.Run(c.name, func(t *testing.T) { differential(t, c.steps) })
	}
}

// diffCases are the sequences every backend must answer as nfsdcld does.
func diffCases() []diffCase {
	return []diffCase{
		{"version negotiation", seq(boot, []step{call(graceDone(2))})},
		{"create and remove, with and without princhash, then reboot", seq(boot, []step{
			call(create(2, "clientA-long-name-first", "nfs/host-a@REALM")),
			call(create(2, "cB", "")),
			call(create(2, "clientC", "nfs/host-c@REALM")),
			call(remove(2, "clientC")),
			call(remove(2, "never-created")),
			call(create(2, "cB", "nfs/now-with-princ@REALM")), // replace
			call(graceDone(2)),
			restart,
		}, boot, []step{call(graceDone(2))})},
		{"v1-only kernel (old nfsdcld answer ignored, v0 check ops)", []step{
			call(graceStart(1)),
			call(create(1, "old-1", "")),
			call(create(1, "old-2", "")),
			call(graceDone(1)),
			restart,
			call(graceStart(1)),
			call(check("old-1")),
			call(check("stranger")),
			call(graceDone(1)),
			restart,
			call(graceStart(1)),
		}},
		{"v1 check outside grace starts one", []step{
			call(graceStart(1)),
			call(create(1, "a", "")),
			call(create(1, "b", "")),
			call(graceDone(1)),
			call(check("a")),
			call(check("zz")),
			call(check("b")),
			call(graceDone(1)),
			restart,
			call(graceStart(1)),
		}},
		{"restart mid-grace re-sends the same recovery set", seq(boot, []step{
			call(create(2, "c1", "p1")), call(create(2, "c2", "")), call(graceDone(2)),
			restart,
		}, boot, []step{
			call(create(2, "c1", "p1")),
			restart,
		}, boot, []step{call(graceDone(2))})},
		{"kill -9 mid-grace", seq(boot, []step{
			call(create(2, "k1", "")), call(create(2, "k2", "pk2")), call(graceDone(2)),
			kill9,
		}, boot, []step{
			call(create(2, "k2", "pk2")),
			kill9,
		}, boot, []step{call(graceDone(2)), kill9}, boot)},
		{"unknown commands", seq(boot, []step{
			call(cld.Msg{Vers: 2, Cmd: 6}),
			call(cld.Msg{Vers: 2, Cmd: 200}),
			call(create(2, "after-unknown", "")),
			call(cld.Msg{Vers: 1, Cmd: 9}),
		})},
		{"pipe removed and created again", seq(boot, []step{
			call(create(2, "before", "")),
			repipe,
			call(create(2, "after", "pa")),
			repipe,
			call(graceDone(2)),
			restart,
		}, boot)},
		{"grace start stream of 1200 clients", bigStream(1200)},
	}
}

// bigStream creates n clients of varied name lengths, then reboots.
func bigStream(n int) []step {
	steps := seq(boot)
	for i := range n {
		name := fmt.Sprintf("client-%d-%s", i, string(make([]byte, i%40)))
		steps = append(steps, call(create(2, name, map[bool]string{true: fmt.Sprint("p", i)}[i%3 == 0])))
	}
	return seq(steps, []step{call(graceDone(2)), restart}, boot)
}

// TestDifferentialRandom sends seeded random sequences.
func TestDifferentialRandom(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			differential(t, randomSteps(rand.New(rand.NewPCG(seed, 42)), 200))
		})
	}
}

func randomSteps(r *rand.Rand, n int) []step {
	names := []string{"a", "bb", "client-ccc", "d-" + string(make([]byte, 30)), "eeeeeeeeeeeeeeeeeeeeeeeeeeeee"}
	steps := seq(boot)
	for range n {
		name := names[r.IntN(len(names))]
		switch k := r.IntN(20); {
		case k < 9:
			steps = append(steps, call(create(2, name, []string{"", "p1", "p2"}[r.IntN(3)])))
		case k < 13:
			steps = append(steps, call(remove(2, name)))
		case k < 15:
			steps = append(steps, call(graceDone(2)))
		case k < 17:
			steps = append(steps, restart)
			steps = append(steps, boot...)
		case k < 18:
			steps = append(steps, kill9)
			steps = append(steps, boot...)
		case k < 19 && r.IntN(2) == 0:
			steps = append(steps, repipe) // nfsd restarted: pipe removed and created
		default:
			steps = append(steps, call(graceStart(2)))
		}
	}
	return steps
}
