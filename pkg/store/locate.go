package store

import "nfsrecover/pkg/nfsconf"

// EnvPath is the environment variable that names the database file.
const EnvPath = "NFSRECOVER_DB"

// PathHelp describes Locate's precedence for --db flag help texts.
const PathHelp = "database `PATH` (default: $" + EnvPath + ", nfs.conf [nfsrecover] db, " + DefaultPath + ")"

// Locate decides which database file to use and says why. Precedence,
// highest first: the command-line value (flag, "" if not given), the
// NFSRECOVER_DB environment variable, "[nfsrecover] db" in nfs.conf, and
// DefaultPath. The kernel execs nfsdcltrack with an empty environment, so
// a site that moves the database must do it in nfs.conf.
func Locate(flag string, lookupEnv func(string) (string, bool), conf *nfsconf.Config) (path, source string) {
	if flag != "" {
		return flag, "command line"
	}
	if v, ok := lookupEnv(EnvPath); ok && v != "" {
		return v, "environment " + EnvPath
	}
	if conf != nil {
		if v, ok := conf.Get("nfsrecover", "db"); ok {
			return v, "nfs.conf [nfsrecover] db"
		}
	}
	return DefaultPath, "default"
}
