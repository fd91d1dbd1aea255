package store

import (
	"path/filepath"

	"nfsrecover/pkg/nfsconf"
)

// EnvPath is the environment variable that names the database file.
const EnvPath = "NFSRECOVER_DB"

// FileName is the database's name inside a state directory.
const FileName = "nfsrecover.db"

// PathHelp describes Locate's precedence for --db flag help texts.
const PathHelp = "database `PATH` (default: STATEDIR/" + FileName + " when a state directory is given, else $" + EnvPath +
	", nfs.conf [nfsrecover] db, " + DefaultPath + ")"

// Where is what a command line and nfs.conf say about where the database
// is. The zero value means "nothing said".
type Where struct {
	DB      string // --db PATH
	Dir     string // a state directory given on the command line: -P (statd, sm-notify), -s (nfsdcltrack)
	ConfDir string // the state directory nfs.conf gives ([statd] state-directory-path)
}

// Locate decides which database file to use and says why. It is the one
// rule every applet follows; highest first:
//
//  1. --db PATH;
//  2. a state directory on the command line: DIR/nfsrecover.db;
//  3. the NFSRECOVER_DB environment variable;
//  4. "[nfsrecover] db" in nfs.conf;
//  5. the state directory nfs.conf gives: DIR/nfsrecover.db;
//  6. DefaultPath (the default state directory's nfsrecover.db).
//
// A state directory named on the command line beats the environment and
// nfs.conf because HA scripts point sm-notify at copied directories
// (sm-notify -P COPY): state from elsewhere would notify the wrong peers.
// The kernel execs nfsdcltrack with an empty environment, so a site that
// moves the database must do it in nfs.conf.
func Locate(w Where, lookupEnv func(string) (string, bool), conf *nfsconf.Config) (path, source string) {
	switch {
	case w.DB != "":
		return w.DB, "command line"
	case w.Dir != "":
		return filepath.Join(w.Dir, FileName), "state directory " + w.Dir
	}
	if v, ok := lookupEnv(EnvPath); ok && v != "" {
		return v, "environment " + EnvPath
	}
	if conf != nil {
		if v, ok := conf.Get("nfsrecover", "db"); ok {
			return v, "nfs.conf [nfsrecover] db"
		}
	}
	if w.ConfDir != "" {
		return filepath.Join(w.ConfDir, FileName), "nfs.conf state directory " + w.ConfDir
	}
	return DefaultPath, "default"
}
