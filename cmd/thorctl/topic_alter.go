package main

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/thorstream/thorstream/client"
)

func init() {
	register("topic", &command{name: "alter", run: topicAlter,
		summary: "Change a topic's configuration while it serves: set keys, or delete them back to the broker's defaults.",
		details: "The changes apply together or not at all; the topic's partitions run with them when the command returns."})
	register("topic", &command{name: "add-partitions", run: topicAddPartitions,
		summary: "Grow a topic to N partitions (the new total); partitions are never removed.",
		details: "Records of a key may go to a different partition once the count changes."})
}

// stringsFlag collects a repeated flag's values.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty key")
	}
	*s = append(*s, v)
	return nil
}

func topicAlter(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("topic alter", flag.ContinueOnError)
	set := configFlag{}
	fs.Var(set, "config", "set a topic configuration `key=value` (repeatable)")
	var deleted stringsFlag
	fs.Var(&deleted, "delete-config", "drop the topic's own value of `key`, back to the broker's default (repeatable)")
	validateOnly := fs.Bool("validate-only", false, "only check the changes with the broker")
	pos, err := parseArgs(fs, args, "NAME")
	if err != nil {
		return err
	}
	if len(set) == 0 && len(deleted) == 0 {
		return usageError("topic alter: nothing to change: give --config key=value or --delete-config key")
	}
	var ops []client.ConfigOp
	var done []string
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if slices.Contains(deleted, k) {
			return usageError("topic alter: %s is both set and deleted", k)
		}
		ops = append(ops, client.ConfigOp{Op: client.ConfigSet, Key: k, Value: set[k]})
		done = append(done, fmt.Sprintf("set %s=%s", k, set[k]))
	}
	for _, k := range deleted {
		ops = append(ops, client.ConfigOp{Op: client.ConfigDelete, Key: k})
		done = append(done, "deleted "+k)
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.AlterTopicConfig(e.ctx, pos[0], ops, *validateOnly); err != nil {
		return fmt.Errorf("topic alter %s: %w", pos[0], err)
	}
	if *validateOnly {
		fmt.Fprintf(e.stdout, "topic %s would accept: %s (nothing changed)\n", pos[0], strings.Join(done, ", "))
		return nil
	}
	fmt.Fprintf(e.stdout, "altered topic %s: %s\n", pos[0], strings.Join(done, ", "))
	return nil
}

func topicAddPartitions(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("topic add-partitions", flag.ContinueOnError)
	count := fs.Int("count", 0, "the partition count the topic is to have (`N`, larger than its current count)")
	validateOnly := fs.Bool("validate-only", false, "only check with the broker that the topic could grow")
	pos, err := parseArgs(fs, args, "NAME")
	if err != nil {
		return err
	}
	if *count < 1 || *count > 1<<31-1 {
		return usageError("topic add-partitions: --count must be at least 1 (the new partition count)")
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CreatePartitions(e.ctx, pos[0], int32(*count), *validateOnly); err != nil {
		return fmt.Errorf("topic add-partitions %s: %w", pos[0], err)
	}
	if *validateOnly {
		fmt.Fprintf(e.stdout, "topic %s could grow to %d partitions (nothing changed)\n", pos[0], *count)
		return nil
	}
	fmt.Fprintf(e.stdout, "topic %s now has %d partitions\n", pos[0], *count)
	return nil
}
