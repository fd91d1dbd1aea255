package cld

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"nfsrecover/pkg/store"
)

// rig is a Server over a fresh database, serving a memPipe.
type rig struct {
	t      *testing.T
	db     string
	c      *store.Committer
	s      *Server
	opener *memOpener
	pipe   *memPipe
	done   chan error
	cancel context.CancelFunc
	xid    uint32
}

func newRig(t *testing.T, chunk int) *rig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nfsrecover.db")
	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *store.Tx) error { _, _, err := tx.CldStart(); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, db: path, opener: newMemOpener(), pipe: newMemPipe(chunk), done: make(chan error, 1), cancel: cancel}
	r.c = store.NewCommitter(func() (*store.DB, error) { return store.Open(path, nil) })
	go r.c.Run(ctx)
	r.s = &Server{Records: &DBRecords{DB: r.c}}
	r.opener.pipes <- r.pipe
	go func() { r.done <- r.s.Serve(ctx, r.opener) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return r
}

// call sends one upcall and collects downcalls until a final one.
func (r *rig) call(m Msg) [][]byte {
	r.t.Helper()
	r.xid++
	r.pipe.push(upcall(m, r.xid))
	var out [][]byte
	for {
		select {
		case d := <-r.pipe.replies:
			out = append(out, d)
			if statusOf(d) != StatusEINPROGRESS {
				return out
			}
		case <-time.After(10 * time.Second):
			r.t.Fatalf("no final reply to %+v after %d downcalls", m, len(out))
		}
	}
}

func (r *rig) dump() *store.CldContents {
	r.t.Helper()
	c, err := store.DumpFile(r.db)
	if err != nil {
		r.t.Fatal(err)
	}
	return c.Cld
}

// TestCommands checks every command's status and effect against the
// spec's reply table (nfsdcld.md B1) and epoch model (B2).
func TestCommands(t *testing.T) {
	r := newRig(t, 0)
	hash := bytes.Repeat([]byte{0xab}, 32)

	d := r.call(Msg{Vers: Version1, Cmd: GetVersion})
	if m, _ := Decode(d[0]); len(d) != 1 || len(d[0]) != Size1 || m.Version != 2 || m.Status != 0 {
		t.Fatalf("GetVersion: %d replies, %+v", len(d), m)
	}
	if d := r.call(Msg{Vers: 2, Cmd: GraceStart}); len(d) != 1 || statusOf(d[0]) != 0 {
		t.Fatalf("first GraceStart: %d replies, status %d", len(d), statusOf(d[0]))
	}
	steps := []struct {
		m      Msg
		status int16
	}{
		{Msg{Vers: 2, Cmd: Create, Name: []byte("a"), PrincHash: hash}, 0},
		{Msg{Vers: 2, Cmd: Create, Name: []byte("b")}, 0},
		{Msg{Vers: 2, Cmd: Create, Name: []byte("c")}, 0},
		{Msg{Vers: 2, Cmd: Remove, Name: []byte("c")}, 0},
		{Msg{Vers: 2, Cmd: Remove, Name: []byte("never")}, 0},
		{Msg{Vers: 2, Cmd: Create, Name: []byte{}}, 0}, // zero-length id: stored, never streamed
		{Msg{Vers: 2, Cmd: GraceDone}, 0},
		{Msg{Vers: 2, Cmd: 77}, StatusEOPNOTSUPP},
	}
	for _, s := range steps {
		if s.m.Cmd == 77 {
			r.opener.pipes <- r.pipe // the reopen after an unknown command
		}
		d := r.call(s.m)
		if len(d) != 1 || statusOf(d[0]) != s.status {
			t.Fatalf("%+v: %d replies, status %d, want %d", s.m, len(d), statusOf(d[0]), s.status)
		}
		if m, _ := Decode(d[0]); !bytes.Equal(m.Name, s.m.Name) {
			t.Errorf("%+v: reply does not echo the upcall: %+v", s.m, m)
		}
	}
	// Reboot: the stream holds a and b once each, on the upcall's xid.
	d = r.call(Msg{Vers: 2, Cmd: GraceStart})
	var names []string
	for _, x := range d[:len(d)-1] {
		m, err := Decode(x)
		if err != nil || m.Status != StatusEINPROGRESS || m.XID != r.xid {
			t.Fatalf("stream reply %+v, %v", m, err)
		}
		names = append(names, string(m.Name))
		if string(m.Name) == "a" && !bytes.Equal(m.PrincHash, hash) {
			t.Errorf("a streamed without its principal hash: %x", m.PrincHash)
		}
	}
	slices.Sort(names) // written several at once: any order
	if statusOf(d[len(d)-1]) != 0 || !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("GraceStart stream %q, final %d", names, statusOf(d[len(d)-1]))
	}
	e := r.dump().Epochs
	if e.Current != 3 || e.Recovery != 2 || e.FirstTime {
		t.Errorf("epochs after two boots: %+v, want current 3 recovery 2", e)
	}
}

// TestCheckV0 is an old kernel: Check moves a client from the recovery
// epoch into the current one, without its hash; a stranger gets -EACCES.
func TestCheckV0(t *testing.T) {
	r := newRig(t, 0)
	r.call(Msg{Vers: 1, Cmd: GraceStart})
	r.call(Msg{Vers: 2, Cmd: Create, Name: []byte("known"), PrincHash: []byte("0123456789abcdef0123456789abcdef")})
	r.call(Msg{Vers: 1, Cmd: GraceDone})
	// A Check with no grace running starts one first (nfsdcld).
	if d := r.call(Msg{Vers: 1, Cmd: Check, Name: []byte("known")}); statusOf(d[0]) != 0 {
		t.Fatalf("check known: %d", statusOf(d[0]))
	}
	if d := r.call(Msg{Vers: 1, Cmd: Check, Name: []byte("stranger")}); statusOf(d[0]) != StatusEACCES {
		t.Fatalf("check stranger: %d, want %d", statusOf(d[0]), StatusEACCES)
	}
	c := r.dump()
	cur := c.Records[c.Epochs.Current]
	if len(cur) != 1 || string(cur[0].ID) != "known" || len(cur[0].PrincHash) != 0 {
		t.Fatalf("current epoch after check: %+v", cur)
	}
}

// TestPartialReads: an upcall read a few bytes at a time is still one
// upcall, and an empty queue (read of 0) is waited on, not spun on.
func TestPartialReads(t *testing.T) {
	r := newRig(t, 7)
	for i := range 20 {
		if d := r.call(Msg{Vers: 2, Cmd: Create, Name: []byte{byte(i)}}); statusOf(d[0]) != 0 {
			t.Fatalf("create %d: %d", i, statusOf(d[0]))
		}
	}
	r.pipe.mu.Lock()
	reads, waits := r.pipe.reads, r.pipe.waits
	r.pipe.mu.Unlock()
	if reads > 100 || waits > 200 {
		t.Errorf("%d empty reads and %d waits for 20 upcalls: busy loop", reads, waits)
	}
}

// TestReopen: an unknown version is dropped by reopening; a removed pipe
// is reopened once the kernel creates it again, the new descriptor
// opened before the old one is closed.
func TestReopen(t *testing.T) {
	r := newRig(t, 0)
	bad := upcall(Msg{Vers: 2, Cmd: GetVersion}, 99)
	bad[0] = 3
	r.pipe.push(bad)
	next := newMemPipe(0)
	r.opener.pipes <- next
	r.pipe = next
	if d := r.call(Msg{Vers: 1, Cmd: GetVersion}); statusOf(d[0]) != 0 {
		t.Fatalf("after reopen: %d", statusOf(d[0]))
	}
	old := r.pipe
	old.remove()
	third := newMemPipe(0)
	r.pipe = third
	r.opener.pipes <- third
	if d := r.call(Msg{Vers: 2, Cmd: Create, Name: []byte("x")}); statusOf(d[0]) != 0 {
		t.Fatalf("after re-creation: %d", statusOf(d[0]))
	}
	if got, want := r.opener.log(), []string{"open 1", "open 2", "close 1", "open 3", "close 2"}; !slices.Equal(got, want) {
		t.Errorf("open/close order %q, want %q", got, want)
	}
}

// TestConcurrentCreatesShareCommits: upcalls from many nfsd threads at
// once are committed together, each acknowledged only after its commit.
func TestConcurrentCreatesShareCommits(t *testing.T) {
	r := newRig(t, 0)
	const n = 200
	for i := range n {
		r.pipe.push(upcall(Msg{Vers: 2, Cmd: Create, Name: []byte{byte(i), byte(i >> 8)}}, uint32(i+1)))
	}
	seen := map[uint32]bool{}
	for range n {
		d := <-r.pipe.replies
		m, _ := Decode(d)
		if m.Status != 0 || seen[m.XID] {
			t.Fatalf("reply %+v (dup %v)", m, seen[m.XID])
		}
		seen[m.XID] = true
	}
	commits, changes := r.c.Stats()
	if changes != n || commits >= n {
		t.Errorf("%d creates took %d commits: not grouped", changes, commits)
	}
	if got := len(r.dump().Records[1]); got != n {
		t.Errorf("%d records stored, want %d", got, n)
	}
}

// TestOldKernelGrace: a kernel before 4.20 sends no GraceStart; with
// v4_end_grace saying N, a Create first starts the grace period (so the
// previous epoch's clients stay reclaimable), as nfsdcld does there.
func TestOldKernelGrace(t *testing.T) {
	r := newRig(t, 0)
	endGrace := filepath.Join(t.TempDir(), "v4_end_grace")
	r.s.Records.(*DBRecords).EndGraceFile = endGrace
	os.WriteFile(endGrace, []byte("Y\n"), 0o644)
	r.call(Msg{Vers: 1, Cmd: Create, Name: []byte("before-reboot")})
	if e := r.dump().Epochs; e.Current != 1 || e.Recovery != 0 {
		t.Fatalf("outside grace a create must not start one: %+v", e)
	}
	os.WriteFile(endGrace, []byte("N\n"), 0o644) // the reboot: nfsd in grace
	r.call(Msg{Vers: 1, Cmd: Create, Name: []byte("after-reboot")})
	c := r.dump()
	if c.Epochs.Current != 2 || c.Epochs.Recovery != 1 || len(c.Records[1]) != 1 || len(c.Records[2]) != 1 {
		t.Fatalf("epochs %+v, records %+v: want the create in a new epoch 2 and epoch 1 recoverable", c.Epochs, c.Records)
	}
	os.Remove(endGrace)
	r.call(Msg{Vers: 1, Cmd: GraceDone})
	if d := r.call(Msg{Vers: 1, Cmd: Create, Name: []byte("x")}); statusOf(d[0]) != StatusEREMOTEIO {
		t.Errorf("unreadable v4_end_grace: status %d, want %d", statusOf(d[0]), StatusEREMOTEIO)
	}
}

// TestOldPipeClosedAfterItsReplies: when the pipe goes while an upcall is
// being answered, the old descriptor stays open until that reply was
// tried; closing it earlier would let another file reuse its number and
// receive the reply.
func TestOldPipeClosedAfterItsReplies(t *testing.T) {
	r := newRig(t, 0)
	r.pipe.hold = make(chan struct{})
	r.pipe.push(upcall(Msg{Vers: 2, Cmd: Create, Name: []byte("late")}, 1))
	next := newMemPipe(0)
	r.opener.pipes <- next
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s; events %q", what, r.opener.log())
			}
		}
	}
	// The create's handler is now blocked writing its reply.
	waitFor("the create to be read", func() bool {
		r.pipe.mu.Lock()
		defer r.pipe.mu.Unlock()
		return len(r.pipe.queue) == 0 && r.pipe.cur == nil
	})
	r.pipe.remove()
	waitFor("the new pipe to open", func() bool { return slices.Contains(r.opener.log(), "open 2") })
	if slices.Contains(r.opener.log(), "close 1") {
		t.Fatalf("old pipe closed while a reply was still being written: %q", r.opener.log())
	}
	close(r.pipe.hold)
	waitFor("the old pipe to close", func() bool { return slices.Contains(r.opener.log(), "close 1") })
	r.pipe = next
}
