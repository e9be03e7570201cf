package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// command is one entry of thorctl's command table (newRoot): a group of subcommands, or a
// command with a run function.
type command struct {
	name    string
	summary string // one sentence, shown in its help and in the command lists
	details string // more help text, optional
	// offline marks commands that never talk to a broker (their help leaves --broker out).
	offline bool
	// run executes the command with the arguments after its name. It must parse them with
	// parseArgs (or return a *helpRequest for --help) before doing anything else: help and
	// completion run it with --help to learn its flags and positional arguments.
	run    func(args []string, broker string, e *env) error
	subs   []*command
	parent *command
}

// extraCommands are commands that joined the table from other files (register).
var extraCommands []struct {
	parent string
	cmd    *command
}

// register adds c under the group at parent ("" for the top level, "topic" for `thorctl topic`).
// Call it from an init function; it takes effect for every later run.
func register(parent string, c *command) {
	extraCommands = append(extraCommands, struct {
		parent string
		cmd    *command
	}{parent, c})
}

// rootCommand is the command table with the registered commands added and parents linked.
func rootCommand() *command {
	root := newRoot()
	for _, x := range extraCommands {
		g := root
		for _, name := range strings.Fields(x.parent) {
			if g = g.sub(name); g == nil {
				break
			}
		}
		if g == nil {
			panic(fmt.Sprintf("thorctl: register %q under unknown group %q", x.cmd.name, x.parent)) // a programming error, caught by any test run
		}
		g.subs = append(g.subs, x.cmd.clone())
	}
	root.link(nil)
	return root
}

// clone copies c and its subcommands: link writes their parents, and a registered command is
// shared by every table built (runs may build tables at once).
func (c *command) clone() *command {
	cc := *c
	cc.subs = make([]*command, len(c.subs))
	for i, s := range c.subs {
		cc.subs[i] = s.clone()
	}
	return &cc
}

func (c *command) link(parent *command) {
	c.parent = parent
	if parent != nil && parent.offline {
		c.offline = true
	}
	for _, s := range c.subs {
		s.link(c)
	}
}

// path is the command's words after "thorctl": "topic create" ("" for the root).
func (c *command) path() string {
	if c.parent == nil {
		return ""
	}
	if p := c.parent.path(); p != "" {
		return p + " " + c.name
	}
	return c.name
}

func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (c *command) subNames() []string {
	names := make([]string, len(c.subs))
	for i, s := range c.subs {
		names[i] = s.name
	}
	return names
}

// leaves lists the runnable commands under c, in table order.
func (c *command) leaves() []*command {
	if len(c.subs) == 0 {
		return []*command{c}
	}
	var out []*command
	for _, s := range c.subs {
		out = append(out, s.leaves()...)
	}
	return out
}

// describe runs the command with --help to learn its flags and positional arguments.
func (c *command) describe() *helpRequest {
	var h *helpRequest
	if c.run != nil {
		quiet := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
		if errors.As(c.run([]string{"--help"}, "", quiet), &h) {
			return h
		}
	}
	return &helpRequest{fs: flag.NewFlagSet(c.path(), flag.ContinueOnError)}
}

// bind attaches c to a usage error or help request that does not name its command yet.
func (c *command) bind(err error) error {
	var h *helpRequest
	var u *usageErr
	switch {
	case errors.As(err, &h) && h.cmd == nil:
		h.cmd = c
	case errors.As(err, &u) && u.cmd == nil:
		u.cmd = c
	}
	return err
}

// usageLine is "usage: thorctl topic create NAME [flags]".
func (c *command) usageLine(h *helpRequest) string {
	var b strings.Builder
	b.WriteString("usage: thorctl")
	if c.parent == nil {
		b.WriteString(" [--broker host:port] COMMAND [ARGS]")
		return b.String()
	}
	b.WriteString(" " + c.path())
	if len(c.subs) > 0 {
		b.WriteString(" COMMAND [ARGS]")
		return b.String()
	}
	for _, a := range h.args {
		b.WriteString(" " + a)
	}
	if hasFlags(h.fs) {
		b.WriteString(" [flags]")
	}
	return b.String()
}

// synopsis is the command's words and positional arguments: "topic create NAME".
func (c *command) synopsis() string {
	s := c.path()
	for _, a := range c.describe().args {
		s += " " + a
	}
	return s
}

// help is the command's help text: usage, summary, then its flags or its subcommands.
func (c *command) help() string {
	h := c.describe()
	var b strings.Builder
	fmt.Fprintln(&b, c.usageLine(h))
	fmt.Fprintln(&b)
	if c.parent == nil {
		fmt.Fprintln(&b, "thorctl administers a Thorstream broker: topics, consumer groups, producing and consuming, the")
		fmt.Fprintln(&b, "broker's status, and the segment files of a data directory.")
	} else {
		fmt.Fprintln(&b, c.summary)
	}
	if c.details != "" {
		fmt.Fprintln(&b)
		fmt.Fprintln(&b, c.details)
	}
	if len(c.subs) > 0 {
		fmt.Fprintln(&b)
		fmt.Fprintln(&b, "Commands:")
		tw := tabwriter.NewWriter(&b, 0, 4, 3, ' ', 0)
		for _, l := range c.leaves() {
			fmt.Fprintf(tw, "  %s\t%s\n", l.synopsis(), l.summary)
		}
		tw.Flush()
	}
	if hasFlags(h.fs) {
		fmt.Fprintln(&b)
		fmt.Fprintln(&b, "Flags:")
		writeFlags(&b, h.fs)
	}
	if !c.offline {
		fmt.Fprintln(&b)
		fmt.Fprintln(&b, "Global flags (before or after the command):")
		fmt.Fprintf(&b, "  --broker host:port   the broker to talk to (default $THORSTREAM_BROKER, else %s)\n", defaultBroker)
	}
	if len(c.subs) > 0 {
		fmt.Fprintln(&b)
		fmt.Fprintf(&b, "Run 'thorctl %sCOMMAND --help' for the flags of a command.\n", strings.TrimPrefix(c.path()+" ", " "))
	}
	if c.parent == nil {
		fmt.Fprintln(&b, "Exit status: 0 on success, 1 when the command failed, 2 on bad usage.")
	}
	return b.String()
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	if fs != nil {
		fs.VisitAll(func(*flag.Flag) { n++ })
	}
	return n > 0
}

// writeFlags lists fs's flags as "  --name value   usage (default d)", sorted by name.
func writeFlags(w io.Writer, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		valueName, usage := flag.UnquoteUsage(f)
		head := "--" + f.Name
		if valueName != "" {
			head += " " + valueName
		}
		if showDefault(f) {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", head, usage)
	})
	tw.Flush()
}

// showDefault reports whether a flag's default is worth printing: not false, zero or empty.
func showDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]", "map[]":
		return false
	}
	return true
}

// isBoolFlag reports whether a flag takes no value.
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func isHelpFlag(s string) bool {
	switch s {
	case "-h", "-help", "--help", "--h":
		return true
	}
	return false
}

// takeBrokerFlag removes --broker ADDR (or --broker=ADDR) from a command's arguments, before any
// "--". ok is false when there is none.
func takeBrokerFlag(args []string) (broker string, rest []string, ok bool, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "broker" {
			continue
		}
		end := i + 1
		if !hasValue {
			if end >= len(args) {
				return "", args, false, usageError("flag needs an argument: -broker")
			}
			value, end = args[end], end+1
		}
		return value, append(append([]string{}, args[:i]...), args[end:]...), true, nil
	}
	return "", args, false, nil
}

// helpRequest asks run to print a command's help on stdout (exit status 0). parseArgs returns it
// for --help with the command's flags and positional arguments.
type helpRequest struct {
	fs   *flag.FlagSet
	args []string
	cmd  *command
}

func (h *helpRequest) Error() string        { return "help requested" }
func (h *helpRequest) Is(target error) bool { return target == flag.ErrHelp }

func (h *helpRequest) text(root *command) string {
	if h.cmd == nil {
		return root.help()
	}
	return h.cmd.help()
}

// errUsage marks bad usage (exit status 2).
var errUsage = errors.New("usage")

// usageErr is bad usage of a command: run prints msg and that command's help on stderr.
type usageErr struct {
	msg string
	cmd *command // nil: the command that returned it (see bind), or the top level
}

func (u *usageErr) Error() string        { return "usage: " + u.msg }
func (u *usageErr) Is(target error) bool { return target == errUsage }

func usageError(format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...)}
}

func (c *command) usageError(format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...), cmd: c}
}

// helpCommand is `thorctl help [COMMAND ...]`.
func helpCommand(args []string, _ string, _ *env) error {
	fs := flag.NewFlagSet("help", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{fs: fs, args: []string{"[COMMAND ...]"}}
		}
		return usageError("help: %v", err)
	}
	root := rootCommand()
	c := root
	for _, word := range fs.Args() {
		sub := c.sub(word)
		if sub == nil {
			return root.usageError("help: unknown command %q", strings.TrimSpace(c.path()+" "+word))
		}
		c = sub
	}
	return &helpRequest{cmd: c}
}
