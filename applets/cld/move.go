//go:build !noetcd

package cld

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"nfsrecover/applets/internal/cliutil"

	"nfsrecover/pkg/cluster"
	"nfsrecover/pkg/nfsconf"
	"nfsrecover/pkg/store"
)

// moveCommands are push and pull, between the database and etcd.
func moveCommands(stdout io.Writer, conf *nfsconf.Config, dbFlag cli.Flag, dbPath func(*cli.Context) string) []*cli.Command {
	return cliutil.PushPull("copy the database's grace epochs and clients to this node's server scope on etcd (nfs.conf [nfsrecover] v4-scope and etcd-*), before switching to backend = etcd; stop nfsdcld first",
		"copy the server scope's grace epochs and clients from etcd into the database, before switching back to backend = bbolt; stop nfsdcld first",
		dbFlag,
		func(c *cli.Context, force bool) error { return push(c.Context, stdout, conf, dbPath(c), force) },
		func(c *cli.Context, force bool) error { return pull(c.Context, stdout, conf, dbPath(c), force) })
}

// scope connects to this node's server scope on etcd.
func scope(ctx context.Context, conf *nfsconf.Config) (*cluster.ScopeRecords, func(), error) {
	cc, err := cluster.FromNFSConf(conf)
	if err != nil {
		return nil, nil, err
	}
	c, err := cluster.Dial(ctx, cc)
	if err != nil {
		return nil, nil, err
	}
	return &cluster.ScopeRecords{Client: c, Scope: cc.V4Scope}, func() { c.Close() }, nil
}

// push copies the local cld state into the scope on etcd.
func push(ctx context.Context, stdout io.Writer, conf *nfsconf.Config, dbPath string, force bool) error {
	contents, err := store.DumpFile(dbPath)
	if err != nil {
		return err
	}
	if contents.Cld == nil {
		return fmt.Errorf("%s has no nfsdcld state: the cld applet never ran on it (nothing written)", dbPath)
	}
	s, done, err := scope(ctx, conf)
	if err != nil {
		return err
	}
	defer done()
	e, recs := contents.Cld.Epochs, contents.Cld.Records
	if err := s.PutState(ctx, e, recs, force); err != nil {
		if errors.Is(err, cluster.ErrScopeInUse) {
			return fmt.Errorf("%w (nothing written; --force replaces it)", err)
		}
		return fmt.Errorf("%w; run push again (the scope has no grace table until a push completes)", err)
	}
	fmt.Fprintf(stdout, "pushed current epoch %d (%d clients) and recovery epoch %d (%d clients) from %s to scope %s on etcd\n",
		e.Current, len(recs[e.Current]), e.Recovery, len(recs[e.Recovery]), dbPath, s.Scope)
	return nil
}

// pull copies the scope's state from etcd into the local database.
func pull(ctx context.Context, stdout io.Writer, conf *nfsconf.Config, dbPath string, force bool) error {
	s, done, err := scope(ctx, conf)
	if err != nil {
		return err
	}
	defer done()
	e, recs, err := s.State(ctx)
	if err != nil {
		return err
	}
	if contents, err := store.DumpFile(dbPath); err == nil && contents.Cld != nil && !force {
		return fmt.Errorf("%s already has nfsdcld state (current epoch %d): nothing written; --force replaces it", dbPath, contents.Cld.Epochs.Current)
	}
	if err := update(dbPath, func(tx *store.Tx) error { return tx.PutCldState(e, recs) }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pulled current epoch %d (%d clients) and recovery epoch %d (%d clients) of scope %s from etcd into %s\n",
		e.Current, len(recs[e.Current]), e.Recovery, len(recs[e.Recovery]), s.Scope, dbPath)
	return nil
}
