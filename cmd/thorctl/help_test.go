package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/client/clienttest"
)

// allCommands lists every command path of the table, groups included ("" is the top level).
func allCommands() []*command {
	var out []*command
	var walk func(c *command)
	walk = func(c *command) {
		out = append(out, c)
		for _, s := range c.subs {
			walk(s)
		}
	}
	walk(rootCommand())
	return out
}

// TestHelpEveryCommand: every command and group answers --help and -h with its own usage line,
// its summary and every one of its flags with its default, on stdout, with exit status 0; an
// unknown flag exits 2 with the command's usage on stderr.
func TestHelpEveryCommand(t *testing.T) {
	for _, c := range allCommands() {
		path := c.path()
		words := strings.Fields(path)
		wantUsage := strings.TrimSpace("usage: thorctl " + path)
		h := c.describe()
		for _, helpFlag := range []string{"--help", "-h", "-help"} {
			r := thorctl(t, "", nil, append(append([]string{}, words...), helpFlag)...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("thorctl %s %s: exit %d, stderr %q; want 0 and nothing on stderr", path, helpFlag, r.code, r.stderr)
				continue
			}
			first, _, _ := strings.Cut(r.stdout, "\n")
			if !strings.HasPrefix(first, wantUsage) || c.parent != nil && !strings.Contains(r.stdout, "\n"+c.summary+"\n") {
				t.Errorf("thorctl %s %s printed:\n%s\nwant a first line starting %q and the summary %q", path, helpFlag, r.stdout, wantUsage, c.summary)
			}
			for _, a := range h.args {
				if !strings.Contains(first, " "+a) {
					t.Errorf("thorctl %s %s: usage line %q does not name the argument %s", path, helpFlag, first, a)
				}
			}
			h.fs.VisitAll(func(f *flag.Flag) {
				line := lineWith(r.stdout, "  --"+f.Name+" ")
				if line == "" {
					line = lineWith(r.stdout, "  --"+f.Name+"\n")
				}
				if line == "" {
					t.Errorf("thorctl %s %s does not list --%s:\n%s", path, helpFlag, f.Name, r.stdout)
				} else if showDefault(f) && !strings.Contains(line, "(default "+f.DefValue+")") {
					t.Errorf("thorctl %s %s: %q does not give the default %s", path, helpFlag, line, f.DefValue)
				}
			})
			for _, s := range c.subs {
				if !strings.Contains(r.stdout, "  "+s.path()) {
					t.Errorf("thorctl %s %s does not list %s:\n%s", path, helpFlag, s.path(), r.stdout)
				}
			}
		}
		if len(c.subs) > 0 {
			continue
		}
		// `thorctl help PATH` prints the same.
		if r, want := thorctl(t, "", nil, append([]string{"help"}, words...)...), thorctl(t, "", nil, append(words, "--help")...); r.code != 0 || r.stdout != want.stdout {
			t.Errorf("thorctl help %s: exit %d\n%s\nwant\n%s", path, r.code, r.stdout, want.stdout)
		}
		r := thorctl(t, "", nil, append(append([]string{}, words...), "--no-such-flag")...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "flag provided but not defined: -no-such-flag") ||
			!strings.Contains(r.stderr, "\n"+wantUsage) {
			t.Errorf("thorctl %s --no-such-flag: exit %d, stdout %q, stderr:\n%s\nwant 2 and the command's usage on stderr", path, r.code, r.stdout, r.stderr)
		}
	}
}

func lineWith(text, part string) string {
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.Contains(line, part) {
			return line
		}
	}
	return ""
}

// TestTopLevelHelpListsCommands: --help, -h and help list every command with its arguments and
// summary; a usage error of a subcommand shows that command's usage, not the whole list.
func TestTopLevelHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"--broker", "x:1", "help"}} {
		r := thorctl(t, "", nil, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: thorctl [--broker host:port] COMMAND") {
			t.Fatalf("thorctl %q: %+v", args, r)
		}
		for _, c := range rootCommand().leaves() {
			if line := lineWith(r.stdout, "  "+c.synopsis()+" "); !strings.Contains(line, c.summary) {
				t.Errorf("thorctl %q does not list %q with its summary:\n%s", args, c.synopsis(), r.stdout)
			}
		}
	}
	r := thorctl(t, "", nil, "topic", "create", "t", "--partitions", "0")
	if r.code != 2 || !strings.Contains(r.stderr, "usage: thorctl topic create NAME [flags]") || strings.Contains(r.stderr, "segment dump") {
		t.Fatalf("usage error of topic create: %+v", r)
	}
	if r := thorctl(t, "", nil, "help", "topic", "nope"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "topic nope"`) {
		t.Fatalf("help of an unknown command: %+v", r)
	}
}

// TestRegisterCommand: a command kept in its own file joins a group with register, and gets
// dispatch, help and completion like the others.
func TestRegisterCommand(t *testing.T) {
	saved := extraCommands
	t.Cleanup(func() { extraCommands = saved })
	var got []string
	register("topic", &command{name: "rename", summary: "Rename a topic.", run: func(args []string, broker string, e *env) error {
		fs := flag.NewFlagSet("topic rename", flag.ContinueOnError)
		force := fs.Bool("force", false, "rename even if in use")
		pos, err := parseArgs(fs, args, "NAME", "NEW-NAME")
		if err != nil {
			return err
		}
		got = append(pos, broker, map[bool]string{true: "forced"}[*force])
		return nil
	}})
	if r := thorctl(t, "", nil, "topic", "rename", "a", "b", "--force", "--broker", "h:1"); r.code != 0 || strings.Join(got, " ") != "a b h:1 forced" {
		t.Fatalf("registered command: %+v, ran with %q", r, got)
	}
	if r := thorctl(t, "", nil, "topic", "--help"); !strings.Contains(r.stdout, "topic rename NAME NEW-NAME   Rename a topic.") {
		t.Fatalf("topic --help does not list the registered command:\n%s", r.stdout)
	}
	if r := thorctl(t, "", nil, "topic", "rename", "-h"); r.code != 0 || !strings.Contains(r.stdout, "--force") {
		t.Fatalf("help of the registered command: %+v", r)
	}
	if r := thorctl(t, "", nil, "completion", "bash"); !strings.Contains(r.stdout, `"topic rename") subs=""; flags="--help --broker --force"`) {
		t.Fatalf("completion does not know the registered command:\n%s", r.stdout)
	}
}

// TestBrokerFlagAfterCommand: --broker works after the command too, in both spellings, and wins
// over the environment.
func TestBrokerFlagAfterCommand(t *testing.T) {
	fc := newCluster(t, clienttest.Options{})
	if err := fc.CreateTopic("t", 1, nil); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"THORSTREAM_BROKER": "127.0.0.1:1"}
	for _, args := range [][]string{
		{"topic", "list", "--broker", fc.Addrs()[0]},
		{"topic", "list", "--broker=" + fc.Addrs()[0]},
		{"topic", "describe", "-broker", fc.Addrs()[0], "t"},
	} {
		if r := thorctl(t, "", env, args...); r.code != 0 || !strings.Contains(r.stdout, "\nt ") && !strings.HasPrefix(r.stdout, "Topic: t\n") {
			t.Errorf("thorctl %q: %+v", args, r)
		}
	}
	if r := thorctl(t, "", nil, "topic", "list", "--broker"); r.code != 2 || !strings.Contains(r.stderr, "flag needs an argument") {
		t.Errorf("--broker without a value: %+v", r)
	}
}

func TestTakeBrokerFlag(t *testing.T) {
	f := func(args []string, wantBroker string, wantRest []string, wantOK bool) {
		t.Helper()
		b, rest, ok, err := takeBrokerFlag(args)
		if err != nil || b != wantBroker || ok != wantOK || strings.Join(rest, "|") != strings.Join(wantRest, "|") {
			t.Errorf("takeBrokerFlag(%q) = %q, %q, %v; want %q, %q, %v", args, b, rest, ok, wantBroker, wantRest, wantOK)
		}
	}
	f([]string{"t", "--broker", "a:1", "--x"}, "a:1", []string{"t", "--x"}, true)
	f([]string{"--broker=a:1", "t"}, "a:1", []string{"t"}, true)
	f([]string{"t", "--", "--broker", "a:1"}, "", []string{"t", "--", "--broker", "a:1"}, false)
	f([]string{"t", "--brokers", "a:1"}, "", []string{"t", "--brokers", "a:1"}, false)
	f([]string{"t", "broker"}, "", []string{"t", "broker"}, false)
	if _, _, _, err := takeBrokerFlag([]string{"t", "--broker"}); err == nil {
		t.Error("--broker without a value accepted")
	}
}
