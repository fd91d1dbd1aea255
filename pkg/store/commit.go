package store

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Committer applies database changes in groups, for long-running users
// (statd, notify). Every change submitted while a commit is in progress
// joins the next one, so N concurrent changes cost one transaction and one
// fsync instead of N, and throughput rises with load instead of
// collapsing. Do returns only once the change is on stable storage. The
// database is opened per group and closed right after, so nfsdcltrack
// upcalls never wait long for the file lock (see the locking rule above).
type Committer struct {
	open     func() (*DB, error)
	ops      chan *change
	maxBatch int
	commits  atomic.Int64
	changes  atomic.Int64
}

type change struct {
	apply func(*Tx) error
	done  chan error
}

// NewCommitter returns a committer over the database that open returns.
// Run must be running for Do to make progress.
func NewCommitter(open func() (*DB, error)) *Committer {
	return &Committer{open: open, ops: make(chan *change, 4096), maxBatch: 4096}
}

// Do queues apply and waits until it is committed (nil) or failed. apply
// must change nothing when it returns an error.
func (c *Committer) Do(ctx context.Context, apply func(*Tx) error) error {
	ch := &change{apply: apply, done: make(chan error, 1)}
	select {
	case c.ops <- ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ch.done:
		return err
	case <-ctx.Done():
		// The change may still commit; the caller must treat it as unknown.
		return ctx.Err()
	}
}

// Run commits queued changes until ctx ends.
func (c *Committer) Run(ctx context.Context) {
	for {
		var batch []*change
		select {
		case ch := <-c.ops:
			batch = append(batch, ch)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < c.maxBatch {
			select {
			case ch := <-c.ops:
				batch = append(batch, ch)
			default:
				break drain
			}
		}
		c.commit(batch)
	}
}

// commit applies a batch in one transaction. A change that fails is
// answered with its error and the others still commit.
func (c *Committer) commit(batch []*change) {
	results := make([]error, len(batch))
	db, err := c.open()
	if err == nil {
		err = db.Update(func(tx *Tx) error {
			for i, ch := range batch {
				results[i] = ch.apply(tx)
			}
			return nil
		})
		db.Close() // after Update returned, the changes are durable
	}
	c.commits.Add(1)
	c.changes.Add(int64(len(batch)))
	for i, ch := range batch {
		switch {
		case err != nil:
			ch.done <- fmt.Errorf("store: commit: %w", err)
		default:
			ch.done <- results[i]
		}
	}
}

// View runs fn in a read-only transaction on a database opened for it
// alone (and closed right after), outside the commit queue.
func (c *Committer) View(fn func(*Tx) error) error {
	db, err := c.open()
	if err != nil {
		return fmt.Errorf("store: view: %w", err)
	}
	defer db.Close()
	return db.View(fn)
}

// Stats returns how many transactions and changes were committed.
func (c *Committer) Stats() (commits, changes int64) { return c.commits.Load(), c.changes.Load() }
