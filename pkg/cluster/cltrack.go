//go:build !noetcd

package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"nfsrecover/pkg/store"
)

// CltrackRecords keeps nfsdcltrack's client records of one server scope on
// etcd; it implements cltrack.DB, so the node that takes a scope over
// answers its clients' checks. Keys, under PREFIX v4/SCOPE/cltrack/:
//
//	c/HEXID   {"time":T,"has_session":0|1|2,"origin":O}  (store.Session, store.Origin)
//	h/NAME    a hash-only record (an imported v4recovery name)
//
// Put and Delete are blind writes; Touch, ClaimHash and DeleteWhere
// change a record only if it is unchanged since it was read, so a record
// another node refreshed meanwhile is never lost or dropped. Each method
// returns only once the etcd quorum committed its change.
type CltrackRecords struct {
	Client *Client
	Scope  string
	// CloseClient makes Close close Client too (one connection per exec).
	CloseClient bool
}

type cltrackValue struct {
	Time       int64 `json:"time"`
	HasSession uint8 `json:"has_session"`
	Origin     uint8 `json:"origin"`
}

func (r *CltrackRecords) prefix() string {
	return r.Client.cfg.Prefix + "v4/" + r.Scope + "/cltrack/"
}
func (r *CltrackRecords) key(id []byte) string    { return r.prefix() + "c/" + hex.EncodeToString(id) }
func (r *CltrackRecords) hashKey(n string) string { return r.prefix() + "h/" + n }

func encodeCltrack(c store.Client) string {
	b, _ := json.Marshal(cltrackValue{c.Time, uint8(c.HasSession), uint8(c.Origin)})
	return string(b)
}

func (r *CltrackRecords) decode(kv *mvccpb.KeyValue) (store.Client, error) {
	id, err := hex.DecodeString(strings.TrimPrefix(string(kv.Key), r.prefix()+"c/"))
	var v cltrackValue
	if err == nil {
		err = json.Unmarshal(kv.Value, &v)
	}
	if err != nil || len(id) > store.MaxIDLen || v.HasSession > uint8(store.SessionYes) {
		return store.Client{}, fmt.Errorf("cluster: bad client record %s: %v", kv.Key, err)
	}
	return store.Client{ID: id, Time: v.Time, HasSession: store.Session(v.HasSession), Origin: store.Origin(v.Origin)}, nil
}

// get reads one record and its revision.
func (r *CltrackRecords) get(ctx context.Context, id []byte) (store.Client, int64, bool, error) {
	resp, err := r.Client.etcd.Get(ctx, r.key(id))
	if err != nil {
		return store.Client{}, 0, false, fmt.Errorf("cluster: read %s: %w", r.key(id), r.Client.explain(err))
	}
	if len(resp.Kvs) == 0 {
		return store.Client{}, 0, false, nil
	}
	c, err := r.decode(resp.Kvs[0])
	return c, resp.Kvs[0].ModRevision, err == nil, err
}

func (r *CltrackRecords) txn(ctx context.Context, what string, cmps []clientv3.Cmp, ops ...clientv3.Op) (bool, error) {
	resp, err := r.Client.etcd.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("cluster: %s: %w: %w", what, ErrUnknownOutcome, r.Client.explain(err))
	}
	return resp.Succeeded, nil
}

// Lookup returns the record for id.
func (r *CltrackRecords) Lookup(id []byte) (store.Client, bool, error) {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	c, _, ok, err := r.get(ctx, id)
	return c, ok, err
}

// Put inserts or replaces a record.
func (r *CltrackRecords) Put(c store.Client) error {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	_, err := r.txn(ctx, "put "+r.key(c.ID), nil, clientv3.OpPut(r.key(c.ID), encodeCltrack(c)))
	return err
}

// Delete removes id; a missing record is not an error.
func (r *CltrackRecords) Delete(id []byte) error {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	_, err := r.txn(ctx, "delete "+r.key(id), nil, clientv3.OpDelete(r.key(id)))
	return err
}

// Touch sets an existing record's time, by compare-and-swap.
func (r *CltrackRecords) Touch(id []byte, now int64) (bool, error) {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	for {
		c, rev, ok, err := r.get(ctx, id)
		if err != nil || !ok {
			return false, err
		}
		c.Time = now
		done, err := r.txn(ctx, "touch "+r.key(id), []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(r.key(id)), "=", rev)},
			clientv3.OpPut(r.key(id), encodeCltrack(c)))
		if err != nil || done {
			return done, err
		}
	}
}

// ClaimHash replaces hash-only record name by c in one transaction.
func (r *CltrackRecords) ClaimHash(name string, c store.Client) (bool, error) {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	k := r.hashKey(name)
	return r.txn(ctx, "claim "+k, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), ">", 0)},
		clientv3.OpPut(r.key(c.ID), encodeCltrack(c)), clientv3.OpDelete(k))
}

// PutHash records a hash-only name (an imported v4recovery record).
func (r *CltrackRecords) PutHash(name string) error {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	_, err := r.txn(ctx, "put "+r.hashKey(name), nil, clientv3.OpPut(r.hashKey(name), ""))
	return err
}

// all reads every record at one revision.
func (r *CltrackRecords) all(ctx context.Context) ([]store.Client, []*mvccpb.KeyValue, error) {
	resp, err := r.Client.etcd.Get(ctx, r.prefix()+"c/", clientv3.WithPrefix())
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: read %s: %w", r.prefix(), r.Client.explain(err))
	}
	cs := make([]store.Client, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		if cs[i], err = r.decode(kv); err != nil {
			return nil, nil, err
		}
	}
	return cs, resp.Kvs, nil
}

// DeleteWhere deletes every record for which drop is true, each only if
// it is unchanged since it was read (a client re-established meanwhile
// stays). Deletes go maxTxnOps-1 to a transaction; a transaction whose
// guard fails is retried record by record.
func (r *CltrackRecords) DeleteWhere(drop func(store.Client) bool) (int, error) {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	cs, kvs, err := r.all(ctx)
	if err != nil {
		return 0, err
	}
	var victims []*mvccpb.KeyValue
	for i, c := range cs {
		if drop(c) {
			victims = append(victims, kvs[i])
		}
	}
	n := 0
	for len(victims) > 0 {
		chunk := victims[:min(len(victims), maxTxnOps-1)]
		victims = victims[len(chunk):]
		done, err := r.deleteUnchanged(ctx, chunk)
		if err != nil {
			return n, err
		}
		if done {
			n += len(chunk)
			continue
		}
		for _, kv := range chunk { // someone changed one of them: one by one
			if done, err := r.deleteUnchanged(ctx, []*mvccpb.KeyValue{kv}); err != nil {
				return n, err
			} else if done {
				n++
			}
		}
	}
	return n, nil
}

// deleteUnchanged deletes kvs in one transaction if none changed.
func (r *CltrackRecords) deleteUnchanged(ctx context.Context, kvs []*mvccpb.KeyValue) (bool, error) {
	cmps := make([]clientv3.Cmp, len(kvs))
	ops := make([]clientv3.Op, len(kvs))
	for i, kv := range kvs {
		cmps[i] = clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)
		ops[i] = clientv3.OpDelete(string(kv.Key))
	}
	return r.txn(ctx, fmt.Sprintf("delete %d records under %s", len(kvs), r.prefix()), cmps, ops...)
}

// Clients returns every record, read at one revision.
func (r *CltrackRecords) Clients() ([]store.Client, error) {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	cs, _, err := r.all(ctx)
	return cs, err
}

// Any reports whether some record satisfies pred.
func (r *CltrackRecords) Any(pred func(store.Client) bool) (bool, error) {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	cs, _, err := r.all(ctx)
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		if pred(c) {
			return true, nil
		}
	}
	return false, nil
}

// Ping checks that etcd answers (a read of the scope's records count).
func (r *CltrackRecords) Ping() error {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	_, err := r.Client.etcd.Get(ctx, r.prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("cluster: read %s: %w", r.prefix(), r.Client.explain(err))
	}
	return nil
}

// Close closes the connection when CloseClient is set.
func (r *CltrackRecords) Close() error {
	if r.CloseClient {
		return r.Client.Close()
	}
	return nil
}

// Hashes returns the hash-only names.
func (r *CltrackRecords) Hashes() ([]string, error) {
	ctx, cancel := r.Client.request(context.Background())
	defer cancel()
	p := r.prefix() + "h/"
	resp, err := r.Client.etcd.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("cluster: read %s: %w", p, r.Client.explain(err))
	}
	out := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = strings.TrimPrefix(string(kv.Key), p)
	}
	return out, nil
}

// PutAll writes clients and hash-only names into the scope (moving a
// node's local records to etcd). It refuses a scope that has nfsdcltrack
// records unless replace is set, which deletes them first. Not atomic:
// an interrupted move is finished by running it again with replace.
func (r *CltrackRecords) PutAll(ctx context.Context, clients []store.Client, hashes []string, replace bool) error {
	rctx, cancel := r.Client.request(ctx)
	resp, err := r.Client.etcd.Get(rctx, r.prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return fmt.Errorf("cluster: read %s: %w", r.prefix(), r.Client.explain(err))
	}
	if resp.Count > 0 && !replace {
		return fmt.Errorf("cluster: scope %s: %w (%d nfsdcltrack records)", r.Scope, ErrScopeInUse, resp.Count)
	}
	// The delete goes alone: etcd refuses a put inside a range the same
	// transaction deletes.
	if err := r.Client.commitOps(ctx, "clear "+r.prefix(), []clientv3.Op{clientv3.OpDelete(r.prefix(), clientv3.WithPrefix())}); err != nil {
		return err
	}
	var ops []clientv3.Op
	for _, c := range clients {
		ops = append(ops, clientv3.OpPut(r.key(c.ID), encodeCltrack(c)))
	}
	for _, h := range hashes {
		ops = append(ops, clientv3.OpPut(r.hashKey(h), ""))
	}
	for len(ops) > 0 { // each call has its own time limit
		n := min(len(ops), 10*maxTxnOps)
		if err := r.Client.commitOps(ctx, "write "+r.prefix(), ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}
