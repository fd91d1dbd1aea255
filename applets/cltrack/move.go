//go:build !noetcd

package cltrack

import (
	"context"
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
	return cliutil.PushPull("copy the database's nfsdcltrack records to this node's server scope on etcd, before switching to backend = etcd",
		"copy the server scope's nfsdcltrack records from etcd into the database, before switching back to backend = bbolt",
		dbFlag,
		func(c *cli.Context, force bool) error { return push(c.Context, stdout, conf, dbPath(c), force) },
		func(c *cli.Context, force bool) error { return pull(c.Context, stdout, conf, dbPath(c), force) })
}

func scopeRecords(ctx context.Context, conf *nfsconf.Config) (*cluster.CltrackRecords, error) {
	cc, err := cluster.FromNFSConf(conf)
	if err != nil {
		return nil, err
	}
	c, err := cluster.Dial(ctx, cc)
	if err != nil {
		return nil, err
	}
	return &cluster.CltrackRecords{Client: c, Scope: cc.V4Scope, CloseClient: true}, nil
}

func push(ctx context.Context, stdout io.Writer, conf *nfsconf.Config, dbPath string, force bool) error {
	contents, err := store.DumpFile(dbPath)
	if err != nil {
		return err
	}
	r, err := scopeRecords(ctx, conf)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.PutAll(ctx, contents.Clients, contents.Hashes, force); err != nil {
		return fmt.Errorf("%w (--force replaces the scope's records; after a failure, push again with --force)", err)
	}
	fmt.Fprintf(stdout, "pushed %d clients and %d hash-only records from %s to scope %s on etcd\n", len(contents.Clients), len(contents.Hashes), dbPath, r.Scope)
	return nil
}

func pull(ctx context.Context, stdout io.Writer, conf *nfsconf.Config, dbPath string, force bool) error {
	r, err := scopeRecords(ctx, conf)
	if err != nil {
		return err
	}
	defer r.Close()
	clients, err := r.Clients()
	if err != nil {
		return err
	}
	hashes, err := r.Hashes()
	if err != nil {
		return err
	}
	db, err := store.Open(dbPath, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.Update(func(tx *store.Tx) error {
		exists, err := tx.AnyClient(func(store.Client) bool { return true })
		if err != nil {
			return err
		}
		if exists && !force {
			return fmt.Errorf("%s already has nfsdcltrack records: nothing written; --force replaces them", dbPath)
		}
		if err := tx.DeleteAllClients(); err != nil {
			return err
		}
		if err := tx.DeleteAllHashes(); err != nil {
			return err
		}
		for _, c := range clients {
			if err := tx.PutClient(c); err != nil {
				return err
			}
		}
		for _, h := range hashes {
			if err := tx.PutHash(h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pulled %d clients and %d hash-only records of scope %s from etcd into %s\n", len(clients), len(hashes), r.Scope, dbPath)
	return nil
}
