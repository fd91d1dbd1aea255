package getopt

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var table = []Option{
	{Short: 'h', Long: "help"},
	{Short: 'd', Long: "debug"},
	{Short: 'f', Long: "foreground"},
	{Short: 's', Long: "storagedir", HasArg: true},
	{Long: "db", HasArg: true},
	{Long: "dbx"},
}

func render(ps []Parsed) string {
	var b []string
	for _, p := range ps {
		if p.Opt.HasArg {
			b = append(b, p.Key()+"="+p.Arg)
		} else {
			b = append(b, p.Key())
		}
	}
	return strings.Join(b, ",")
}

func TestParse(t *testing.T) {
	cases := []struct {
		args     []string
		opts     string
		operands []string
		err      error
	}{
		{[]string{"init"}, "", []string{"init"}, nil},
		{[]string{"-df", "check", "aa"}, "debug,foreground", []string{"check", "aa"}, nil},
		{[]string{"check", "-d", "aa"}, "debug", []string{"check", "aa"}, nil}, // permuted
		{[]string{"-s", "/x", "init"}, "storagedir=/x", []string{"init"}, nil},
		{[]string{"-s/x", "init"}, "storagedir=/x", []string{"init"}, nil},
		{[]string{"-fs/x", "init"}, "foreground,storagedir=/x", []string{"init"}, nil},
		{[]string{"--storagedir=/x", "init"}, "storagedir=/x", []string{"init"}, nil},
		{[]string{"--storagedir", "/x", "init"}, "storagedir=/x", []string{"init"}, nil},
		{[]string{"--stor=/x"}, "storagedir=/x", nil, nil}, // unique prefix
		{[]string{"--db", "p"}, "db=p", nil, nil},          // exact beats prefix of dbx
		{[]string{"--d"}, "", nil, ErrAmbiguous},
		{[]string{"gracedone", "--", "-1"}, "", []string{"gracedone", "-1"}, nil},
		{[]string{"gracedone", "-1"}, "", []string{"gracedone"}, ErrUnknown},
		{[]string{"-x", "init"}, "", nil, ErrUnknown},
		{[]string{"--bogus"}, "", nil, ErrUnknown},
		{[]string{"-s"}, "", nil, ErrMissingArg},
		{[]string{"--storagedir"}, "", nil, ErrMissingArg},
		{[]string{"--debug=1"}, "", nil, ErrUnexpectedArg},
		{[]string{"-", "x"}, "", []string{"-", "x"}, nil}, // lone dash is an operand
		{[]string{"check", ""}, "", []string{"check", ""}, nil},
	}
	for _, c := range cases {
		ps, ops, err := Parse(c.args, table)
		if !errors.Is(err, c.err) {
			t.Errorf("%q: err %v, want %v", c.args, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if got := render(ps); got != c.opts {
			t.Errorf("%q: options %q, want %q", c.args, got, c.opts)
		}
		if !reflect.DeepEqual(ops, c.operands) {
			t.Errorf("%q: operands %q, want %q", c.args, ops, c.operands)
		}
	}
}
