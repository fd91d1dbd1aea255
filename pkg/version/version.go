// Package version holds the program version, the one place every applet
// reads it from. Release builds set it with
// -ldflags "-X nfsrecover/pkg/version.Version=...".
package version

// Version is the program version.
var Version = "0.1.0-dev"
