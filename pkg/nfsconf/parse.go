package nfsconf

import (
	"path/filepath"
	"strings"
)

// parser holds the state of one file: its current section and subsection.
type parser struct {
	c          *Config
	file       string
	section    string
	hasSection bool
	sub        string
	depth      int
}

// parse splits data into logical lines (joining backslash-newline) and
// parses each. A final unterminated line is ignored, as in nfs-utils.
func (p *parser) parse(data []byte) {
	text := string(data)
	lineno, start := 1, 1
	var cur strings.Builder
	for len(text) > 0 {
		nl := strings.IndexByte(text, '\n')
		if nl < 0 {
			p.lastLineUnterminated(lineno)
			return
		}
		line := text[:nl]
		text = text[nl+1:]
		lineno++
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(line[:len(line)-1])
			cur.WriteString("  ")
			continue
		}
		cur.WriteString(line)
		p.line(cur.String(), start)
		cur.Reset()
		start = lineno
	}
	if cur.Len() > 0 {
		p.lastLineUnterminated(start)
	}
}

// lastLineUnterminated warns, in nfs-utils' words, that the file's last
// line had no newline and was ignored.
func (p *parser) lastLineUnterminated(line int) {
	p.c.warnings = append(p.c.warnings, Warning{File: p.file, Line: line, Msg: "conf_parse: last line non-terminated, ignored.", Plain: true})
}

const blanks = " \t"
const spaces = " \t\n\v\f\r"

// line parses one logical line.
func (p *parser) line(line string, n int) {
	line = strings.TrimLeft(line, spaces)
	switch {
	case line == "", line[0] == '#', line[0] == ';':
		return
	case line[0] == '[':
		p.header(line[1:], n)
		return
	}
	tag, val, ok := strings.Cut(line, "=")
	if !ok {
		p.c.warn(p.file, n, "line not empty and not an assignment")
		return
	}
	if !p.hasSection {
		p.c.warn(p.file, n, "ignoring line not in a section")
		return
	}
	tag = strings.TrimRight(tag, blanks)
	val, ok = value(val)
	if !ok {
		p.c.warn(p.file, n, "unmatched quotes")
		return
	}
	if tag == "" {
		p.c.warn(p.file, n, "missing tag in assignment")
		return
	}
	if strings.EqualFold(tag, "include") {
		p.include(val, n)
		return
	}
	p.c.set(p.section, p.sub, tag, val)
}

// header parses what follows "[" in a section line.
func (p *parser) header(rest string, n int) {
	p.hasSection, p.section, p.sub = false, "", ""
	rest = strings.TrimLeft(rest, blanks)
	body, _, ok := strings.Cut(rest, "]")
	if !ok {
		p.c.warn(p.file, n, "non-matched ']', ignoring until next section")
		return
	}
	body = strings.TrimRight(body, blanks)
	name, sub, quoted := strings.Cut(body, `"`)
	p.section, p.hasSection = strings.TrimRight(name, blanks), true
	if !quoted {
		return
	}
	sub, _, ok = strings.Cut(sub, `"`)
	if !ok {
		p.c.warn(p.file, n, `non-matched '"', ignoring until next section`)
		return
	}
	p.sub = sub
}

// value parses the right-hand side of an assignment; ok is false for an
// unmatched quote.
func value(v string) (string, bool) {
	v = strings.TrimLeft(v, blanks)
	if v != "" && (v[0] == '"' || v[0] == '\'') {
		inner, _, ok := strings.Cut(v[1:], v[:1])
		return inner, ok
	}
	if i := strings.IndexByte(v, '#'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.TrimRight(v, spaces), true
}

// include parses another file in the current section.
func (p *parser) include(val string, n int) {
	optional := strings.HasPrefix(val, "-")
	if optional {
		val = val[1:]
	}
	path := val
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(p.file), val)
	}
	if p.depth >= maxIncludeDepth {
		p.c.warn(p.file, n, "includes nested too deeply, ignoring "+path)
		return
	}
	data, err := readFile(path)
	if err != nil {
		if !optional {
			p.c.warn(p.file, n, "error loading included config") // nfs-utils' words
		}
		return
	}
	p.c.files = append(p.c.files, path)
	child := *p
	child.file, child.depth = path, p.depth+1
	child.parse(data)
}
