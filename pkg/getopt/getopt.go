// Package getopt parses command lines the way GNU getopt_long does.
//
// The nfs-utils tools we replace are invoked by the kernel and by scripts
// whose behaviour depends on getopt's exact rules: options may follow
// operands (the argument vector is permuted), "--" ends the options, short
// options combine ("-df"), an option argument may be attached ("-sDIR",
// "--storagedir=DIR") or separate, and a long option may be abbreviated to
// any unique prefix. An unknown option is an error the caller reports with
// its own exit status. Flag libraries that stop at the first operand cannot
// reproduce that contract, so the applets that must match it use this
// package; everything else uses urfave/cli.
//
// POSIXLY_CORRECT and the "+"/"-" optstring prefixes are not supported: the
// tools we mirror never use them.
package getopt

import (
	"errors"
	"fmt"
	"strings"
)

// Option describes one option. Short is 0 for a long-only option and Long
// is "" for a short-only one.
type Option struct {
	Short  byte
	Long   string
	HasArg bool
}

// Name returns the option's display name, preferring the long form.
func (o Option) Name() string {
	if o.Long != "" {
		return "--" + o.Long
	}
	return "-" + string(o.Short)
}

// Parsed is one option occurrence in command-line order.
type Parsed struct {
	Opt Option
	Arg string
}

// Key returns the long name if there is one, else the short letter. It is a
// convenient switch value for callers.
func (p Parsed) Key() string {
	if p.Opt.Long != "" {
		return p.Opt.Long
	}
	return string(p.Opt.Short)
}

// ErrUnknown reports an option that is not in the table; ErrMissingArg an
// option that needs an argument and has none; ErrAmbiguous an abbreviated
// long option that matches more than one; ErrUnexpectedArg "--flag=value" for
// a flag that takes no argument.
var (
	ErrUnknown       = errors.New("unrecognized option")
	ErrMissingArg    = errors.New("option requires an argument")
	ErrAmbiguous     = errors.New("option is ambiguous")
	ErrUnexpectedArg = errors.New("option doesn't allow an argument")
)

// Parse parses args (without the program name) against opts. It returns the
// options in order and the operands, in order, with options removed wherever
// they appeared. Everything after "--" is an operand.
func Parse(args []string, opts []Option) ([]Parsed, []string, error) {
	var parsed []Parsed
	var operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return parsed, append(operands, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			p, used, err := parseLong(a[2:], args[i+1:], opts)
			if err != nil {
				return parsed, operands, err
			}
			parsed = append(parsed, p)
			i += used
		case len(a) > 1 && a[0] == '-':
			ps, used, err := parseShort(a[1:], args[i+1:], opts)
			parsed = append(parsed, ps...)
			if err != nil {
				return parsed, operands, err
			}
			i += used
		default:
			operands = append(operands, a)
		}
	}
	return parsed, operands, nil
}

// parseLong handles one "--name[=value]" word; used is how many following
// words it consumed.
func parseLong(word string, rest []string, opts []Option) (Parsed, int, error) {
	name, val, hasVal := strings.Cut(word, "=")
	o, err := lookupLong(name, opts)
	if err != nil {
		return Parsed{}, 0, err
	}
	switch {
	case !o.HasArg && hasVal:
		return Parsed{}, 0, fmt.Errorf("'--%s': %w", o.Long, ErrUnexpectedArg)
	case !o.HasArg:
		return Parsed{Opt: o}, 0, nil
	case hasVal:
		return Parsed{Opt: o, Arg: val}, 0, nil
	case len(rest) > 0:
		return Parsed{Opt: o, Arg: rest[0]}, 1, nil
	}
	return Parsed{}, 0, fmt.Errorf("'--%s': %w", o.Long, ErrMissingArg)
}

// lookupLong finds an exact long name or its unique abbreviation.
func lookupLong(name string, opts []Option) (Option, error) {
	var found []Option
	for _, o := range opts {
		if o.Long == "" {
			continue
		}
		if o.Long == name {
			return o, nil
		}
		if name != "" && strings.HasPrefix(o.Long, name) {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 0:
		return Option{}, fmt.Errorf("'--%s': %w", name, ErrUnknown)
	case 1:
		return found[0], nil
	}
	return Option{}, fmt.Errorf("'--%s': %w", name, ErrAmbiguous)
}

// parseShort handles a cluster such as "df" or "sDIR".
func parseShort(cluster string, rest []string, opts []Option) ([]Parsed, int, error) {
	var out []Parsed
	for j := 0; j < len(cluster); j++ {
		o, ok := lookupShort(cluster[j], opts)
		if !ok {
			return out, 0, fmt.Errorf("'-%c': %w", cluster[j], ErrUnknown)
		}
		if !o.HasArg {
			out = append(out, Parsed{Opt: o})
			continue
		}
		if j+1 < len(cluster) {
			return append(out, Parsed{Opt: o, Arg: cluster[j+1:]}), 0, nil
		}
		if len(rest) == 0 {
			return out, 0, fmt.Errorf("'-%c': %w", o.Short, ErrMissingArg)
		}
		return append(out, Parsed{Opt: o, Arg: rest[0]}), 1, nil
	}
	return out, 0, nil
}

func lookupShort(c byte, opts []Option) (Option, bool) {
	for _, o := range opts {
		if o.Short != 0 && o.Short == c {
			return o, true
		}
	}
	return Option{}, false
}

// HoistVerb finds the first argument after args[0] that is one of verbs
// and moves it to args[1], so that "APPLET --db X import" works like
// "APPLET import --db X": every applet takes its options before or after
// the verb. ok is false when no verb is there.
func HoistVerb(args []string, verbs ...string) (out []string, ok bool) {
	for i := 1; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		for _, v := range verbs {
			if args[i] == v {
				out = append([]string{args[0], v}, args[1:i]...)
				return append(out, args[i+1:]...), true
			}
		}
	}
	return args, false
}
