// Package nfsconf reads /etc/nfs.conf the way nfs-utils does.
//
// # Files
//
// Load reads, in order: /usr/etc/nfs.conf and /usr/etc/nfs.conf.d/*.conf
// (only when the main path is under /etc/), then the main file and its
// ".d" directory. Drop-ins must end in ".conf" and not start with "."; they
// are read in version-sort order (strverscmp). A missing file is not an
// error. Every assignment overrides any earlier one for the same section,
// subsection and key, so later files win key by key.
//
// # Syntax
//
//   - "#" or ";" at the start of a line begins a comment; in an unquoted
//     value everything from the first "#" or ";" is dropped too.
//   - "[section]" and `[section "sub"]`; section names, subsection names and
//     keys compare case-insensitively.
//   - "key = value"; a value may be "double" or 'single' quoted. An empty
//     value is ignored, as nfs-utils ignores it.
//   - A backslash before a newline joins the next line.
//   - "include = path" reads another file (relative to the including file)
//     in the current section; "include = -path" is optional: no warning when
//     it is missing.
//   - A value "$NAME" expands to the environment variable NAME, or, when that
//     is unset or empty, to key NAME of section [environment].
//
// Problems never stop parsing: each becomes a Warning printed as
// "config error at FILE:LINE: ...", which callers log.
//
// # Caveats
//
// As in nfs-utils, a final line without a newline is ignored (with a
// warning), so every tool reading the same file sees the same settings.
// Unlike some nfs-utils versions, an assignment in [sec] never removes the
// same key from [sec "sub"].
package nfsconf

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// DefaultPath is the main configuration file of nfs-utils.
const DefaultPath = "/etc/nfs.conf"

// maxIncludeDepth bounds include recursion, so a file that includes itself
// gives a warning instead of hanging the daemon that reads it.
const maxIncludeDepth = 16

// Warning is one problem found while reading the configuration.
type Warning struct {
	File string
	Line int
	Msg  string
	// Plain warnings are printed as Msg alone, without the place, as
	// nfs-utils prints its unterminated-last-line warning.
	Plain bool
}

// String formats the warning as nfs-utils does.
func (w Warning) String() string {
	if w.Plain {
		return w.Msg
	}
	if w.Line == 0 {
		return fmt.Sprintf("config error at %s: %s", w.File, w.Msg)
	}
	return fmt.Sprintf("config error at %s:%d: %s", w.File, w.Line, w.Msg)
}

type key struct{ section, sub, tag string }

// Config holds parsed settings. The zero value is an empty configuration.
type Config struct {
	values   map[key]string
	files    []string
	warnings []Warning
	// Getenv looks up environment variables for "$NAME" values; nil means
	// os.Getenv. Tests and env-free callers set it.
	Getenv func(string) string
}

// Load reads the nfs.conf files for main (DefaultPath when empty). It never
// fails: unreadable files and syntax errors become warnings.
func Load(main string) *Config {
	if main == "" {
		main = DefaultPath
	}
	c := &Config{}
	for _, f := range MainFiles(main) {
		c.loadFile(f, true)
		for _, d := range dropIns(f+".d", c) {
			c.loadFile(d, false)
		}
	}
	return c
}

// EnvPath is the environment variable that names another main file
// (tests, chroots). The kernel execs upcalls with no environment, so in
// production DefaultPath is read.
const EnvPath = "NFSRECOVER_NFS_CONF"

// LoadEnv loads the main file named by EnvPath (else DefaultPath) and
// expands "$NAME" values through the same lookup.
func LoadEnv(lookupEnv func(string) (string, bool)) *Config {
	main, _ := lookupEnv(EnvPath)
	c := Load(main)
	c.Getenv = func(k string) string { v, _ := lookupEnv(k); return v }
	return c
}

// MainFiles lists the main files Load reads for main, in order.
func MainFiles(main string) []string {
	if strings.HasPrefix(main, "/etc/") {
		return []string{"/usr" + main, main}
	}
	return []string{main}
}

// Parse parses data as if read from a file called name. Includes are
// resolved relative to name on the real file system.
func Parse(name string, data []byte) *Config {
	c := &Config{}
	c.files = append(c.files, name)
	p := parser{c: c, file: name}
	p.parse(data)
	return c
}

// loadFile reads and parses one file; a missing main file is silent.
func (c *Config) loadFile(path string, silentMissing bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		if !(silentMissing && os.IsNotExist(err)) {
			c.warn(path, 0, "cannot read: "+err.Error())
		}
		return
	}
	c.files = append(c.files, path)
	p := parser{c: c, file: path}
	p.parse(data)
}

func (c *Config) warn(file string, line int, msg string) {
	c.warnings = append(c.warnings, Warning{File: file, Line: line, Msg: msg})
}

func (c *Config) set(section, sub, tag, value string) {
	if value == "" {
		return
	}
	if c.values == nil {
		c.values = make(map[key]string)
	}
	c.values[key{strings.ToLower(section), strings.ToLower(sub), strings.ToLower(tag)}] = value
}

// Warnings returns the problems found while reading, in file order.
func (c *Config) Warnings() []Warning { return c.warnings }

// Files returns the files that were read, in order.
func (c *Config) Files() []string { return c.files }

// Get returns the value of tag in [section], expanding "$NAME".
func (c *Config) Get(section, tag string) (string, bool) {
	return c.GetSub(section, "", tag)
}

// GetSub returns the value of tag in [section "sub"] ("" = no subsection).
func (c *Config) GetSub(section, sub, tag string) (string, bool) {
	for depth := 0; depth < maxIncludeDepth; depth++ {
		v, ok := c.values[key{strings.ToLower(section), strings.ToLower(sub), strings.ToLower(tag)}]
		if !ok || !strings.HasPrefix(v, "$") {
			return v, ok
		}
		if env := c.getenv(v[1:]); env != "" {
			return env, true
		}
		section, sub, tag = "environment", "", v[1:]
	}
	return "", false
}

func (c *Config) getenv(name string) string {
	if c.Getenv != nil {
		return c.Getenv(name)
	}
	return os.Getenv(name)
}

// String returns the value of tag in [section], or def when unset.
func (c *Config) String(section, tag, def string) string {
	if v, ok := c.Get(section, tag); ok {
		return v
	}
	return def
}

// Bool interprets tag in [section] as nfs-utils does: 1 t true y yes on are
// true, 0 f false n no off are false (any case); anything else is def.
func (c *Config) Bool(section, tag string, def bool) bool {
	v, ok := c.Get(section, tag)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "t", "true", "y", "yes", "on":
		return true
	case "0", "f", "false", "n", "no", "off":
		return false
	}
	return def
}

// Int interprets tag in [section] with C atoi semantics (leading blanks and
// sign, then digits; junk after them is ignored; no digits is 0), which is
// what nfs-utils' conf_get_num does. Unset gives def.
func (c *Config) Int(section, tag string, def int) int {
	v, ok := c.Get(section, tag)
	if !ok {
		return def
	}
	return atoi(v)
}

func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	end := 0
	if end < len(s) && (s[end] == '+' || s[end] == '-') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(s[:end])
	if err != nil {
		return 0
	}
	return n
}

// Entry is one setting: section, subsection (or ""), tag and value, in
// lower case except the value.
type Entry struct{ Section, Sub, Tag, Value string }

// Entries returns every setting, sorted by section, subsection and tag.
func (c *Config) Entries() []Entry {
	out := make([]Entry, 0, len(c.values))
	for k, v := range c.values {
		out = append(out, Entry{k.section, k.sub, k.tag, v})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Section, b.Section), cmp.Compare(a.Sub, b.Sub), cmp.Compare(a.Tag, b.Tag))
	})
	return out
}
