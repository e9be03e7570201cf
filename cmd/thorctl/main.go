// Command thorctl is the Thorstream command-line tool: topic administration, producing lines from
// stdin, consuming to stdout, and checking segment files.
//
// Exit status: 0 on success, 1 when the command failed, 2 on bad usage.
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

const usageText = `usage: thorctl [--broker host:port] COMMAND [ARGS]

The broker defaults to $THORSTREAM_BROKER, else 127.0.0.1:9092.

Commands:
  topic create NAME [--partitions N] [--replication-factor R] [--config k=v ...]
  topic list
  topic describe NAME
  topic delete NAME
  produce TOPIC [--key-separator SEP] [--partition N] [--acks all|1|0] [--linger D]
        one record per stdin line; the key is the text before SEP when SEP is given
  consume TOPIC [--from-beginning | --offset N | --timestamp T] [--partition N] [--follow]
        [--max-messages N] [--group G] [--print-key] [--print-offset]
        T is milliseconds since the epoch or RFC 3339; without --follow, stops at the end
        offsets seen at start
  segment dump FILE.log
  segment verify PATH          a .log file or a data directory
`

// defaultBroker is used when neither --broker nor THORSTREAM_BROKER is set.
const defaultBroker = "127.0.0.1:9092"

// errUsage marks bad usage (exit status 2).
var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

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
	err := dispatch(args, e)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(e.stdout, usageText)
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.stderr, "thorctl: %s\n\n%s", strings.TrimPrefix(err.Error(), "usage: "), usageText)
		return 2
	default:
		fmt.Fprintf(e.stderr, "thorctl: %v\n", err)
		return 1
	}
}

func dispatch(args []string, e *env) error {
	global := flag.NewFlagSet("thorctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	broker := global.String("broker", "", "broker address host:port")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	if *broker == "" {
		*broker = e.getenv("THORSTREAM_BROKER")
	}
	if *broker == "" {
		*broker = defaultBroker
	}
	rest := global.Args()
	if len(rest) == 0 {
		return usageError("no command")
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "topic":
		if len(rest) == 0 {
			return usageError("topic: missing subcommand (create, list, describe, delete)")
		}
		switch rest[0] {
		case "create":
			return topicCreate(rest[1:], *broker, e)
		case "list":
			return topicList(rest[1:], *broker, e)
		case "describe":
			return topicDescribe(rest[1:], *broker, e)
		case "delete":
			return topicDelete(rest[1:], *broker, e)
		}
		return usageError("topic: unknown subcommand %q", rest[0])
	case "produce":
		return produce(rest, *broker, e)
	case "consume":
		return consume(rest, *broker, e)
	case "segment":
		if len(rest) == 0 {
			return usageError("segment: missing subcommand (dump, verify)")
		}
		switch rest[0] {
		case "dump":
			return segmentDump(rest[1:], e)
		case "verify":
			return segmentVerify(rest[1:], e)
		}
		return usageError("segment: unknown subcommand %q", rest[0])
	case "help":
		return flag.ErrHelp
	}
	return usageError("unknown command %q", cmd)
}

// parseArgs parses flags that may come before, between or after positional arguments and checks
// the number of positionals.
func parseArgs(fs *flag.FlagSet, args []string, positional ...string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
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
