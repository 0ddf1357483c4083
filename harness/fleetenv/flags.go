package fleetenv

import (
	"flag"
	"fmt"
)

// flagValue keeps a flag's text as given: ResolveOptions parses it with the
// code and error texts its variable gets.
type flagValue struct {
	text   string
	isBool bool
}

func (v *flagValue) String() string {
	if v == nil {
		return ""
	}
	return v.text
}

func (v *flagValue) Set(s string) error {
	v.text = s
	return nil
}

// IsBoolFlag lets a bare -reuse mean -reuse=true, as for flag.Bool.
func (v *flagValue) IsBoolFlag() bool { return v.isBool }

// RegisterFlags adds every option's flag to fs (flag.CommandLine in a
// TestMain, before flag.Parse, so that go test -args -envs=staging works)
// and sets fs.Usage to list the options first, then the set's other flags.
// ResolveOptions reads them once fs is parsed.
func RegisterFlags(fs *flag.FlagSet) {
	for _, opt := range optionTable() {
		fs.Var(&flagValue{isBool: opt.isBool}, opt.flag, plain(fmt.Sprintf("%s; variable %s, default: %s", opt.meaning, opt.env, opt.defaultText())))
	}
	fs.Usage = func() { printFlagSetUsage(fs) }
}

// printFlagSetUsage is -help: the options as PrintUsage lists them, then
// the flags others registered in fs (go test's -test.*, e2e-framework's).
func printFlagSetUsage(fs *flag.FlagSet) {
	out := fs.Output()
	PrintUsage(out)
	others := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	others.SetOutput(out)
	fs.VisitAll(func(f *flag.Flag) {
		if _, ours := lookupOption(f.Name); !ours {
			others.Var(f.Value, f.Name, f.Usage)
			// Var takes the current value as the default; show the real one.
			others.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	fmt.Fprintln(out, "\nOther flags:")
	others.PrintDefaults()
}
