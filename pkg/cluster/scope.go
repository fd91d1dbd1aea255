//go:build !noetcd

package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"nfsrecover/pkg/store"
)

// ScopeRecords keeps the NFSv4 client records of one server scope on
// etcd, as nfsdcld keeps them in SQLite: a grace table (current and
// recovery epochs) and one set of records per epoch. The node that takes
// a scope over runs its nfsdcld on the same keys and streams the scope's
// clients in GraceStart. It implements cld.Records and is safe for
// concurrent use; Creates and Removes are group-committed.
//
// Keys, under PREFIX v4/SCOPE/:
//
//	epochs                 {"current":C,"recovery":R}  (absent: C=1, R=0)
//	rec/EPOCH/HEXID        {"princhash":"HEX"}         (EPOCH zero-padded)
//
// Every change is guarded by the revision of the epochs key, so a record
// always lands in the epoch that is current when it commits. Records
// stream in key order (the kernel files them in a hash table; order does
// not matter). Kernels before 4.20, which send no GraceStart, are not
// supported on this backend.
type ScopeRecords struct {
	Client *Client
	Scope  string

	once  sync.Once
	batch batcher[scopeChange]

	mu      sync.Mutex // guards the grace table as last seen:
	seen    scopeEpochs
	seenRev int64
	seenOK  bool
}

type scopeChange struct {
	id, hash []byte
	remove   bool
}

type scopeEpochs struct {
	Current  uint64 `json:"current"`
	Recovery uint64 `json:"recovery"`
}

type scopeRecord struct {
	PrincHash string `json:"princhash"`
}

func (s *ScopeRecords) prefix() string    { return s.Client.cfg.Prefix + "v4/" + s.Scope + "/" }
func (s *ScopeRecords) epochsKey() string { return s.prefix() + "epochs" }
func (s *ScopeRecords) epochPrefix(e uint64) string {
	return fmt.Sprintf("%srec/%020d/", s.prefix(), e)
}
func (s *ScopeRecords) recordKey(e uint64, id []byte) string {
	return s.epochPrefix(e) + hex.EncodeToString(id)
}

// epochs reads the grace table and its revision (0: never written).
func (s *ScopeRecords) epochs(ctx context.Context) (scopeEpochs, int64, error) {
	resp, err := s.Client.etcd.Get(ctx, s.epochsKey())
	if err != nil {
		return scopeEpochs{}, 0, fmt.Errorf("cluster: read %s: %w", s.epochsKey(), s.Client.explain(err))
	}
	return s.parseEpochs(resp.Kvs)
}

func (s *ScopeRecords) parseEpochs(kvs []*mvccpb.KeyValue) (scopeEpochs, int64, error) {
	if len(kvs) == 0 {
		return scopeEpochs{Current: 1}, 0, nil
	}
	var e scopeEpochs
	if err := json.Unmarshal(kvs[0].Value, &e); err != nil || e.Current == 0 || e.Recovery >= e.Current {
		return e, 0, fmt.Errorf("cluster: %s: bad grace table %q", s.epochsKey(), kvs[0].Value)
	}
	return e, kvs[0].ModRevision, nil
}

// known returns the grace table as last seen, reading it when it was never
// seen (or fresh is set). A stale one costs a retry, never a wrong write:
// every change is guarded by its revision.
func (s *ScopeRecords) known(ctx context.Context, fresh bool) (scopeEpochs, int64, error) {
	s.mu.Lock()
	e, rev, ok := s.seen, s.seenRev, s.seenOK
	s.mu.Unlock()
	if ok && !fresh {
		return e, rev, nil
	}
	e, rev, err := s.epochs(ctx)
	if err == nil {
		s.remember(e, rev, true)
	}
	return e, rev, err
}

func (s *ScopeRecords) remember(e scopeEpochs, rev int64, ok bool) {
	s.mu.Lock()
	s.seen, s.seenRev, s.seenOK = e, rev, ok
	s.mu.Unlock()
}

// guarded runs ops (built for the grace table as known) in transactions
// that commit only if the grace table is unchanged; on a conflict it
// takes the table the failed transaction read and rebuilds them. fresh
// reads the table first: for a build whose answer, not only its writes,
// depends on it (Check may write nothing).
func (s *ScopeRecords) guarded(ctx context.Context, fresh bool, build func(scopeEpochs) ([]clientv3.Op, error)) (scopeEpochs, error) {
	ctx, cancel := s.Client.request(ctx)
	defer cancel()
	e, rev, err := s.known(ctx, fresh)
	for err == nil {
		var ops []clientv3.Op
		if ops, err = build(e); err != nil || len(ops) == 0 {
			break
		}
		var ok bool
		var now []*mvccpb.KeyValue
		if ok, now, err = s.commitGuarded(ctx, rev, ops); err != nil {
			s.remember(scopeEpochs{}, 0, false) // unknown outcome: read it next time
			break
		}
		if ok {
			if changesEpochs(ops, s.epochsKey()) {
				s.remember(scopeEpochs{}, 0, false)
			}
			break
		}
		if e, rev, err = s.parseEpochs(now); err == nil {
			s.remember(e, rev, true)
		}
	}
	return e, err
}

func changesEpochs(ops []clientv3.Op, key string) bool {
	for _, op := range ops {
		if op.IsPut() && string(op.KeyBytes()) == key {
			return true
		}
	}
	return false
}

// commitGuarded writes ops in transactions of at most maxTxnOps, each
// guarded by the grace table's revision. On a conflict it returns false
// and the table as the failed transaction read it (then only blind,
// idempotent record writes may have gone out).
func (s *ScopeRecords) commitGuarded(ctx context.Context, rev int64, ops []clientv3.Op) (bool, []*mvccpb.KeyValue, error) {
	guard := clientv3.Compare(clientv3.ModRevision(s.epochsKey()), "=", rev)
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps-1)
		txn, err := s.Client.etcd.Txn(ctx).If(guard).Then(ops[:n]...).Else(clientv3.OpGet(s.epochsKey())).Commit()
		if err != nil {
			return false, nil, fmt.Errorf("cluster: write %s: %w: %w", s.prefix(), ErrUnknownOutcome, s.Client.explain(err))
		}
		if !txn.Succeeded {
			return false, txn.Responses[0].GetResponseRange().Kvs, nil
		}
		ops = ops[n:]
	}
	return true, nil, nil
}

// putEpochs is the op writing e.
func (s *ScopeRecords) putEpochs(e scopeEpochs) clientv3.Op {
	b, _ := json.Marshal(e)
	return clientv3.OpPut(s.epochsKey(), string(b))
}

func (s *ScopeRecords) putRecord(e uint64, id, hash []byte) clientv3.Op {
	b, _ := json.Marshal(scopeRecord{hex.EncodeToString(hash)})
	return clientv3.OpPut(s.recordKey(e, id), string(b))
}

// Create implements cld.Records.
func (s *ScopeRecords) Create(ctx context.Context, r store.CldRecord) error {
	return s.change(ctx, scopeChange{id: r.ID, hash: r.PrincHash})
}

// Remove implements cld.Records.
func (s *ScopeRecords) Remove(ctx context.Context, id []byte) error {
	return s.change(ctx, scopeChange{id: id, remove: true})
}

func (s *ScopeRecords) change(ctx context.Context, c scopeChange) error {
	s.once.Do(func() { s.batch.commit = s.commitChanges })
	return s.batch.do(ctx, c)
}

// commitChanges writes a batch of creates and removes into the current
// epoch, in order (a later change to one id wins).
func (s *ScopeRecords) commitChanges(cs []scopeChange) error {
	_, err := s.guarded(context.Background(), false, func(e scopeEpochs) ([]clientv3.Op, error) {
		last := make(map[string]scopeChange, len(cs))
		var order []string
		for _, c := range cs {
			if _, seen := last[string(c.id)]; !seen {
				order = append(order, string(c.id))
			}
			last[string(c.id)] = c
		}
		ops := make([]clientv3.Op, 0, len(order))
		for _, id := range order {
			c := last[id]
			if c.remove {
				ops = append(ops, clientv3.OpDelete(s.recordKey(e.Current, c.id)))
			} else {
				ops = append(ops, s.putRecord(e.Current, c.id, c.hash))
			}
		}
		return ops, nil
	})
	return err
}

// startOps opens a grace period on e (unless one runs) and empties the
// new current epoch, as nfsdcld's grace start does.
func (s *ScopeRecords) startOps(e *scopeEpochs) []clientv3.Op {
	if e.Recovery == 0 {
		e.Recovery, e.Current = e.Current, e.Current+1
	}
	return []clientv3.Op{s.putEpochs(*e), clientv3.OpDelete(s.epochPrefix(e.Current), clientv3.WithPrefix())}
}

// GraceStart implements cld.Records.
func (s *ScopeRecords) GraceStart(ctx context.Context) (store.Epochs, error) {
	var out scopeEpochs
	_, err := s.guarded(ctx, false, func(e scopeEpochs) ([]clientv3.Op, error) {
		ops := s.startOps(&e)
		out = e
		return ops, nil
	})
	return store.Epochs{Current: out.Current, Recovery: out.Recovery}, err
}

// GraceDone implements cld.Records: the recovery epoch's records go
// (with no grace period running, one is started first, as nfsdcld does).
func (s *ScopeRecords) GraceDone(ctx context.Context) error {
	_, err := s.guarded(ctx, false, func(e scopeEpochs) ([]clientv3.Op, error) {
		var ops []clientv3.Op
		if e.Recovery == 0 {
			ops = s.startOps(&e)[1:]
		}
		rec := e.Recovery
		e.Recovery = 0
		return append(ops, s.putEpochs(e), clientv3.OpDelete(s.epochPrefix(rec), clientv3.WithPrefix())), nil
	})
	return err
}

// Check implements cld.Records: whether id is in the recovery epoch
// (starting a grace period first when none runs); a found client is
// copied into the current epoch without its principal hash.
func (s *ScopeRecords) Check(ctx context.Context, id []byte) (bool, error) {
	// Outside grace, one is started first, in a transaction of its own:
	// etcd refuses a put inside a range the same transaction deletes.
	_, err := s.guarded(ctx, true, func(e scopeEpochs) ([]clientv3.Op, error) {
		if e.Recovery != 0 {
			return nil, nil
		}
		return s.startOps(&e), nil // the recovery epoch is the old current one
	})
	if err != nil {
		return false, err
	}
	found := false
	_, err = s.guarded(ctx, true, func(e scopeEpochs) ([]clientv3.Op, error) {
		if e.Recovery == 0 {
			return nil, errGraceEnded
		}
		resp, err := s.Client.etcd.Get(ctx, s.recordKey(e.Recovery, id))
		if err != nil {
			return nil, fmt.Errorf("cluster: read %s: %w", s.recordKey(e.Recovery, id), s.Client.explain(err))
		}
		if found = len(resp.Kvs) > 0; !found {
			return nil, nil
		}
		return []clientv3.Op{s.putRecord(e.Current, id, nil)}, nil
	})
	return found, err
}

// errGraceEnded: another node ended the grace period a check started.
var errGraceEnded = errors.New("cluster: the grace period ended during the check")

// Reclaimable implements cld.Records, reading the epoch in pages from one
// revision (a consistent view). The record written last is handed out
// last, as nfsdcld's rowid order does: its final GraceStart reply names
// that client.
func (s *ScopeRecords) Reclaimable(ctx context.Context, epoch uint64, limit int, each func([]store.CldRecord) error) error {
	p := s.epochPrefix(epoch)
	from, end := p, clientv3.GetPrefixRangeEnd(p)
	var rev, lastRev int64
	var last *store.CldRecord // the newest record so far, held back
	for {
		resp, err := s.page(ctx, from, end, rev, limit)
		if err != nil {
			return err
		}
		rev = resp.Header.Revision
		recs := make([]store.CldRecord, 0, len(resp.Kvs)+1)
		for _, kv := range resp.Kvs {
			r, err := decodeScopeRecord(p, kv.Key, kv.Value)
			if err != nil {
				return err
			}
			if kv.ModRevision > lastRev { // r is the newest yet: hold it, let the one held go
				prev, newest := last, r
				last, lastRev = &newest, kv.ModRevision
				if prev == nil {
					continue
				}
				r = *prev
			}
			recs = append(recs, r)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			if last != nil {
				recs = append(recs, *last)
			}
			return each(recs)
		}
		if err := each(recs); err != nil {
			return err
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// page reads up to limit keys in [from, end) at revision rev (0: now).
func (s *ScopeRecords) page(ctx context.Context, from, end string, rev int64, limit int) (*clientv3.GetResponse, error) {
	ctx, cancel := s.Client.request(ctx)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(limit))}
	if rev != 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := s.Client.etcd.Get(ctx, from, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: read %s: %w", from, s.Client.explain(err))
	}
	return resp, nil
}

func decodeScopeRecord(prefix string, key, value []byte) (store.CldRecord, error) {
	id, err := hex.DecodeString(string(key[len(prefix):]))
	var r scopeRecord
	if err == nil {
		err = json.Unmarshal(value, &r)
	}
	var hash []byte
	if err == nil {
		hash, err = hex.DecodeString(r.PrincHash)
	}
	if err != nil || len(id) > store.MaxIDLen || len(hash) > 32 {
		return store.CldRecord{}, fmt.Errorf("cluster: bad client record %s: %v", key, err)
	}
	return store.CldRecord{ID: id, PrincHash: hash}, nil
}

// ScopeEpochs returns the scope's grace table (a linearizable read).
func (s *ScopeRecords) ScopeEpochs(ctx context.Context) (store.Epochs, error) {
	ctx, cancel := s.Client.request(ctx)
	defer cancel()
	e, _, err := s.epochs(ctx)
	return store.Epochs{Current: e.Current, Recovery: e.Recovery}, err
}

// Snapshot reads the scope at one revision: its grace table and the ids
// in every epoch that has records (State without the hashes).
func (s *ScopeRecords) Snapshot(ctx context.Context) (store.Epochs, map[uint64][][]byte, error) {
	e, recs, err := s.State(ctx)
	ids := map[uint64][][]byte{}
	for n, rs := range recs {
		for _, r := range rs {
			ids[n] = append(ids[n], r.ID)
		}
	}
	return e, ids, err
}

// State reads the whole scope at one revision: its grace table and the
// records of every epoch that has any. It reads the whole scope at once,
// so it is for checks, moves and small scopes, not for streaming.
func (s *ScopeRecords) State(ctx context.Context) (store.Epochs, map[uint64][]store.CldRecord, error) {
	ctx, cancel := s.Client.request(ctx)
	defer cancel()
	resp, err := s.Client.etcd.Get(ctx, s.prefix(), clientv3.WithPrefix())
	if err != nil {
		return store.Epochs{}, nil, fmt.Errorf("cluster: read %s: %w", s.prefix(), s.Client.explain(err))
	}
	e := scopeEpochs{Current: 1}
	recs := map[uint64][]store.CldRecord{}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		switch {
		case k == s.epochsKey():
			if e, _, err = s.parseEpochs([]*mvccpb.KeyValue{kv}); err != nil {
				return store.Epochs{}, nil, err
			}
			continue
		case strings.HasPrefix(k, s.prefix()+"cltrack/"):
			continue // nfsdcltrack's records (CltrackRecords)
		}
		num, _, ok := strings.Cut(strings.TrimPrefix(k, s.prefix()+"rec/"), "/")
		n, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil || len(num) != 20 {
			return store.Epochs{}, nil, fmt.Errorf("cluster: unexpected key %s", k)
		}
		r, err := decodeScopeRecord(s.epochPrefix(n), kv.Key, kv.Value)
		if err != nil {
			return store.Epochs{}, nil, err
		}
		recs[n] = append(recs[n], r)
	}
	return store.Epochs{Current: e.Current, Recovery: e.Recovery}, recs, nil
}

// ErrScopeInUse: PutState found the scope already holding state.
var ErrScopeInUse = errors.New("the server scope already has state on etcd")

// PutState writes a whole cld state into the scope (moving a node's local
// records to etcd): the records first, the grace table last, so a scope
// without a grace table is one whose move did not finish. It refuses a
// scope that has a grace table or records unless replace is set, which
// first deletes the scope's cld state. Stop the scope's nfsdcld first.
func (s *ScopeRecords) PutState(ctx context.Context, e store.Epochs, recs map[uint64][]store.CldRecord, replace bool) error {
	old, got, err := s.State(ctx)
	if err != nil {
		return err
	}
	if len(got) > 0 || old.Current != 1 || old.Recovery != 0 {
		if !replace {
			return fmt.Errorf("cluster: scope %s: %w (current epoch %d, %d epochs with records)", s.Scope, ErrScopeInUse, old.Current, len(got))
		}
	}
	clear := []clientv3.Op{clientv3.OpDelete(s.epochsKey()), clientv3.OpDelete(s.prefix()+"rec/", clientv3.WithPrefix())}
	if err := s.Client.commitOps(ctx, "clear "+s.prefix(), clear); err != nil {
		return err
	}
	var ops []clientv3.Op
	for n, rs := range recs {
		for _, r := range rs {
			ops = append(ops, s.putRecord(n, r.ID, r.PrincHash))
		}
	}
	for len(ops) > 0 { // each call has its own time limit
		n := min(len(ops), 10*maxTxnOps)
		if err := s.Client.commitOps(ctx, "write "+s.prefix(), ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	ctx, cancel := s.Client.request(ctx)
	defer cancel()
	txn, err := s.Client.etcd.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(s.epochsKey()), "=", 0)).
		Then(s.putEpochs(scopeEpochs{Current: e.Current, Recovery: e.Recovery})).Commit()
	if err != nil {
		return fmt.Errorf("cluster: write %s: %w: %w", s.epochsKey(), ErrUnknownOutcome, s.Client.explain(err))
	}
	if !txn.Succeeded {
		return fmt.Errorf("cluster: scope %s: %w: a daemon wrote its grace table during the move", s.Scope, ErrScopeInUse)
	}
	s.remember(scopeEpochs{}, 0, false)
	return nil
}
