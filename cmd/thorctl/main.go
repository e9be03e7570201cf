// Command thorctl is the Thorstream command-line tool: topic and consumer group administration,
// producing lines from stdin, consuming to stdout, the broker's status, and checking segment files.
//
// Every command answers --help (or -h) with its usage, a description and its flags; `thorctl
// help` lists the commands. Exit status: 0 on success, 1 when the command failed, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/thorstream/thorstream/client"
)

// newRoot returns the command table. A command is a name, a one-sentence summary and either
// subcommands or a run function; run parses its own flags with parseArgs before anything else,
// which is how help and completion learn its flags and arguments (they call it with --help). A
// command kept in a file of its own can also join the table with register, from an init function.
func newRoot() *command {
	return &command{name: "thorctl", subs: []*command{
		{name: "topic", summary: "Create, list, describe and delete topics.", subs: []*command{
			{name: "create", run: topicCreate, summary: "Create a topic with the given partitions, replication factor and configuration."},
			{name: "list", run: topicList, summary: "List every topic with its partition count and replication factor."},
			{name: "describe", run: topicDescribe, summary: "Show a topic's configuration and its partitions with their leaders and offsets."},
			{name: "delete", run: topicDelete, summary: "Delete a topic and all its records."},
		}},
		groupCommand(),
		{name: "produce", run: produce, summary: "Produce one record per line of stdin to a topic.",
			details: "With --key-separator SEP, the text before the first SEP of a line is the record's key. A topic that\n" +
				"does not exist is created by the broker, with its default partitions, when its auto-creation is on\n" +
				"(THORSTREAM_AUTO_CREATE_TOPICS, on by default), as it is for Kafka producers."},
		{name: "consume", run: consume, summary: "Print a topic's records to stdout, one value per line.",
			details: "T is milliseconds since the epoch or RFC 3339. Without --follow, consume stops at the end offsets\n" +
				"seen when it starts.\n\n" +
				"With --group alone, consume joins the group as a member, as a Kafka consumer does: the members share\n" +
				"the topic's partitions, each starts at the group's committed offset (else the earliest with\n" +
				"--from-beginning, the latest otherwise) and commits what it printed. With --partition, --offset or\n" +
				"--timestamp it reads the partitions itself and commits to the group from outside (the group must\n" +
				"then have no members)."},
		{name: "broker", summary: "Ask the broker about itself.", subs: []*command{
			{name: "status", run: brokerStatus, summary: "Show the broker's node id, version, uptime, topics, partitions, data size and listeners."},
		}},
		{name: "segment", offline: true, summary: "Inspect the segment files of a data directory (no broker needed).", subs: []*command{
			{name: "dump", run: segmentDump, summary: "Print every batch of a .log file, and with --records every record.",
				details: "A file of bytes recovery cut off (*.log.dropped-*) is salvaged: every valid batch in it is listed,\n" +
					"with a BAD line for each damaged stretch."},
			{name: "verify", run: segmentVerify, summary: "Check a .log file, or every .log file under a directory, batch by batch."},
		}},
		{name: "completion", run: completion, offline: true, summary: "Print a shell completion script.",
			details: "Load it in the current shell with: source <(thorctl completion bash)\n" +
				"or install it: thorctl completion bash > /etc/bash_completion.d/thorctl"},
		{name: "help", run: helpCommand, offline: true, summary: "Print the help of a command, or list the commands."},
	}}
}

// defaultBroker is used when neither --broker nor THORSTREAM_BROKER is set.
const defaultBroker = "127.0.0.1:9092"

// env is the process environment, as a lookup function so tests can supply their own.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// ctx ends on SIGINT/SIGTERM (--follow); tests cancel it themselves.
	ctx context.Context
	// progressEvery is the interval of produce's progress line (1s; tests shorten it).
	progressEvery time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(os.Args[1:], &env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, ctx: ctx, progressEvery: time.Second,
	}))
}

// run executes one command line and returns the exit status.
func run(args []string, e *env) int {
	root := rootCommand()
	err := dispatch(root, args, e)
	var help *helpRequest
	var usage *usageErr
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		fmt.Fprint(e.stdout, help.text(root))
		return 0
	case errors.As(err, &usage):
		c := usage.cmd
		if c == nil {
			c = root
		}
		fmt.Fprintf(e.stderr, "thorctl: %s\n\n%s", usage.msg, c.help())
		return 2
	default:
		fmt.Fprintf(e.stderr, "thorctl: %v\n", err)
		return 1
	}
}

// dispatch finds the command args name and runs it.
func dispatch(root *command, args []string, e *env) error {
	global := flag.NewFlagSet("thorctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	broker := global.String("broker", "", "broker address host:port")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{cmd: root}
		}
		return usageError("%v", err)
	}
	rest := global.Args()
	c := root
	for len(c.subs) > 0 {
		if len(rest) == 0 {
			if c == root {
				return usageError("no command")
			}
			return c.usageError("%s: missing subcommand (%s)", c.path(), strings.Join(c.subNames(), ", "))
		}
		word := rest[0]
		if isHelpFlag(word) {
			return &helpRequest{cmd: c}
		}
		sub := c.sub(word)
		if sub == nil {
			if c == root {
				return usageError("unknown command %q", word)
			}
			return c.usageError("%s: unknown subcommand %q", c.path(), word)
		}
		c, rest = sub, rest[1:]
	}
	// --broker is also accepted after the command, where operators tend to put it.
	b, leaf, ok, err := takeBrokerFlag(rest)
	if err != nil {
		return c.bind(err)
	}
	if ok {
		*broker, rest = b, leaf
	}
	if *broker == "" {
		*broker = e.getenv("THORSTREAM_BROKER")
	}
	if *broker == "" {
		*broker = defaultBroker
	}
	return c.bind(c.run(rest, *broker, e))
}

// parseArgs parses flags that may come before, between or after positional arguments and checks
// the number of positionals. --help or -h gives a *helpRequest naming the flags and positionals.
func parseArgs(fs *flag.FlagSet, args []string, positional ...string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequest{fs: fs, args: positional}
			}
			return nil, usageError("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != len(positional) {
		if len(pos) < len(positional) {
			return nil, usageError("%s: missing %s", fs.Name(), positional[len(pos)])
		}
		return nil, usageError("%s: unexpected argument %q", fs.Name(), pos[len(positional)])
	}
	return pos, nil
}

// newClient connects to the broker named by --broker.
func newClient(broker string) (*client.Client, error) {
	return client.New(client.Options{
		Brokers:        []string{broker},
		ClientID:       "thorctl",
		DialTimeout:    5 * time.Second,
		RequestTimeout: 30 * time.Second,
	})
}
