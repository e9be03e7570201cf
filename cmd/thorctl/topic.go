package main

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/thorstream/thorstream/client"
)

// configFlag collects repeated --config k=v.
type configFlag map[string]string

func (c configFlag) String() string { return "" }

func (c configFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	c[k] = v
	return nil
}

func topicCreate(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("topic create", flag.ContinueOnError)
	partitions := fs.Int("partitions", 1, "number of partitions")
	replication := fs.Int("replication-factor", -1, "replicas per partition (default: the cluster's, 3 on a cluster of three nodes, 1 on a single node)")
	configs := configFlag{}
	fs.Var(configs, "config", "topic configuration `key=value` (repeatable)")
	pos, err := parseArgs(fs, args, "NAME")
	if err != nil {
		return err
	}
	if *partitions < 1 {
		return usageError("topic create: --partitions must be at least 1")
	}
	if (*replication < 1 && *replication != -1) || *replication > 32767 {
		return usageError("topic create: --replication-factor must be between 1 and 32767")
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CreateTopic(e.ctx, pos[0], int32(*partitions), int16(*replication), configs); err != nil {
		return fmt.Errorf("topic create %s: %w", pos[0], err)
	}
	if *replication == -1 {
		fmt.Fprintf(e.stdout, "created topic %s (%d partitions, the cluster's default replication factor)\n", pos[0], *partitions)
		return nil
	}
	fmt.Fprintf(e.stdout, "created topic %s (%d partitions, replication factor %d)\n", pos[0], *partitions, *replication)
	return nil
}

func topicDelete(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("topic delete", flag.ContinueOnError)
	pos, err := parseArgs(fs, args, "NAME")
	if err != nil {
		return err
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.DeleteTopic(e.ctx, pos[0]); err != nil {
		return fmt.Errorf("topic delete %s: %w", pos[0], err)
	}
	fmt.Fprintf(e.stdout, "deleted topic %s\n", pos[0])
	return nil
}

func topicList(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("topic list", flag.ContinueOnError)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	topics, err := c.ListTopics(e.ctx)
	if err != nil {
		return fmt.Errorf("topic list: %w", err)
	}
	writeTopicList(e, topics)
	return nil
}

// writeTopicList prints one line per topic: name, partitions, replication factor.
func writeTopicList(e *env, topics []client.TopicInfo) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION")
	for _, t := range topics {
		rf := 0
		if len(t.Partitions) > 0 {
			rf = len(t.Partitions[0].Replicas)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Name, len(t.Partitions), rf)
	}
	tw.Flush()
}

func topicDescribe(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("topic describe", flag.ContinueOnError)
	pos, err := parseArgs(fs, args, "NAME")
	if err != nil {
		return err
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.DescribeTopic(e.ctx, pos[0])
	if err != nil {
		return fmt.Errorf("topic describe %s: %w", pos[0], err)
	}
	offsets := make([]describedPartition, len(info.Partitions))
	for i, p := range info.Partitions {
		if p.Leader < 0 {
			// No node leads it right now (its node is down): only a leader knows its offsets.
			continue
		}
		earliest, err := c.ListOffsets(e.ctx, info.Name, p.Partition, client.TimestampEarliest)
		if err != nil {
			return fmt.Errorf("topic describe %s: partition %d: %w", info.Name, p.Partition, err)
		}
		latest, err := c.ListOffsetsReplicas(e.ctx, info.Name, p.Partition, client.TimestampLatest)
		if err != nil {
			return fmt.Errorf("topic describe %s: partition %d: %w", info.Name, p.Partition, err)
		}
		offsets[i] = describedPartition{earliest: earliest, latest: latest.Offset, lag: replicaLags(p.Replicas, latest)}
	}
	writeTopicDescription(e, info, offsets)
	return nil
}

// describedPartition is what a partition's leader says of it: its earliest and latest offsets and
// how far behind it each replica is.
type describedPartition struct {
	earliest, latest int64
	lag              string
}

// replicaLags is the LAG column: for each replica, in the order of replicas, the records it is
// behind the leader's log end, "?" where the leader does not know (it has not heard from the
// follower since it became leader, or the broker does not report replicas).
func replicaLags(replicas []int32, at client.PartitionOffset) string {
	if len(replicas) == 0 {
		return "-"
	}
	parts := make([]string, len(replicas))
	for i, id := range replicas {
		parts[i] = "?"
		if lag, ok := at.Lag(id); ok {
			parts[i] = strconv.FormatInt(lag, 10)
		}
	}
	return strings.Join(parts, ",")
}

// writeTopicDescription prints a topic's configs and a table of its partitions: each one's leader
// (-1: none right now), replicas, in-sync replicas, offsets and each replica's lag behind the
// leader's log end ("-" without a leader).
func writeTopicDescription(e *env, info client.TopicInfo, offsets []describedPartition) {
	fmt.Fprintf(e.stdout, "Topic: %s\nPartitions: %d\n", info.Name, len(info.Partitions))
	keys := make([]string, 0, len(info.Configs))
	for k := range info.Configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		fmt.Fprintln(e.stdout, "Configs: (none)")
	} else {
		fmt.Fprintln(e.stdout, "Configs:")
		for _, k := range keys {
			fmt.Fprintf(e.stdout, "  %s=%s\n", k, info.Configs[k])
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tREPLICAS\tISR\tEARLIEST\tLATEST\tLAG")
	for i, p := range info.Partitions {
		earliest, latest, lag := "-", "-", "-"
		if p.Leader >= 0 {
			o := offsets[i]
			earliest, latest, lag = strconv.FormatInt(o.earliest, 10), strconv.FormatInt(o.latest, 10), o.lag
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Partition, p.Leader, joinIDs(p.Replicas), joinIDs(p.ISR), earliest, latest, lag)
	}
	tw.Flush()
}

func joinIDs(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}
