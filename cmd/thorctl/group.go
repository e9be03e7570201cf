package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/thorstream/thorstream/client"
	"github.com/thorstream/thorstream/codec/errcode"
)

// groupCommand is `thorctl group`: consumer groups, whichever protocol their members speak.
func groupCommand() *command {
	return &command{name: "group", summary: "List, describe and delete consumer groups, and reset their committed offsets.", subs: []*command{
		{name: "list", run: groupList, summary: "List the consumer groups of every broker with their state and protocol type."},
		{name: "describe", run: groupDescribe, summary: "Show a group's state, members and their partitions, and per partition its committed offset and lag.",
			details: "LAG is the partition's log end offset minus the group's committed offset; '-' where the group has\n" +
				"committed nothing for a partition it is assigned."},
		{name: "delete", run: groupDelete, summary: "Delete a group and its committed offsets (only while it has no members)."},
		{name: "reset-offsets", run: groupResetOffsets, summary: "Set a group's committed offsets of a topic: print the plan, and with --execute commit it.",
			details: "Give exactly one of --to-earliest, --to-latest, --to-offset and --to-datetime. --topic T takes every\n" +
				"partition of T, --topic T:0,2 only those. A target outside a partition's log is moved to its log start or\n" +
				"end. The offsets of a group can only be reset while it has no members: stop its consumers first."},
	}}
}

func groupList(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("group list", flag.ContinueOnError)
	states := fs.String("state", "", "only groups in these comma-separated `states` (Empty, PreparingRebalance, CompletingRebalance, Stable)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	var filter []string
	for _, s := range strings.Split(*states, ",") {
		if s = strings.TrimSpace(s); s != "" {
			filter = append(filter, s)
		}
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	groups, err := c.ListGroups(e.ctx, filter...)
	if err != nil {
		return fmt.Errorf("group list: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Group, g.State, dash(g.ProtocolType))
	}
	return tw.Flush()
}

func groupDelete(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("group delete", flag.ContinueOnError)
	pos, err := parseArgs(fs, args, "GROUP")
	if err != nil {
		return err
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.DeleteGroup(e.ctx, pos[0]); err != nil {
		if errcode.Of(err) == errcode.NonEmptyGroup {
			return fmt.Errorf("group delete %s: the group has active members; stop its consumers first: %w", pos[0], err)
		}
		return fmt.Errorf("group delete %s: %w", pos[0], err)
	}
	fmt.Fprintf(e.stdout, "deleted group %s\n", pos[0])
	return nil
}

// partitionOffsets is what describe and reset-offsets know of one partition.
type partitionOffsets struct {
	tp        client.TopicPartition
	committed int64  // -1: none
	logEnd    int64  // -1: unknown (the topic is gone)
	member    string // the member assigned it, "" for none
}

func groupDescribe(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("group describe", flag.ContinueOnError)
	pos, err := parseArgs(fs, args, "GROUP")
	if err != nil {
		return err
	}
	name := pos[0]
	fail := func(err error) error { return fmt.Errorf("group describe %s: %w", name, err) }
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	g, err := c.DescribeGroup(e.ctx, name)
	if err != nil {
		return fail(err)
	}
	committed, err := c.FetchAllCommitted(e.ctx, name)
	if err != nil {
		return fail(err)
	}

	// Every partition the group has committed or a member is assigned.
	rows := map[client.TopicPartition]*partitionOffsets{}
	row := func(tp client.TopicPartition) *partitionOffsets {
		if rows[tp] == nil {
			rows[tp] = &partitionOffsets{tp: tp, committed: -1, logEnd: -1}
		}
		return rows[tp]
	}
	for tp, off := range committed {
		row(tp).committed = off
	}
	assignments := make([]string, len(g.Members))
	for i, m := range g.Members {
		assignments[i] = "-"
		if g.ProtocolType != "consumer" {
			if len(m.Assignment) > 0 {
				assignments[i] = fmt.Sprintf("(%d bytes of protocol %q)", len(m.Assignment), g.ProtocolType)
			}
			continue
		}
		topics, err := decodeAssignment(m.Assignment)
		if err != nil {
			assignments[i] = fmt.Sprintf("(%d undecodable bytes)", len(m.Assignment))
			continue
		}
		assignments[i] = formatAssignment(topics)
		for _, t := range topics {
			for _, p := range t.Partitions {
				row(client.TopicPartition{Topic: t.Topic, Partition: p}).member = m.MemberID
			}
		}
	}
	list := make([]*partitionOffsets, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool { return tpLess(list[i].tp, list[j].tp) })
	for _, r := range list {
		end, err := c.ListOffsets(e.ctx, r.tp.Topic, r.tp.Partition, client.TimestampLatest)
		switch {
		case err == nil:
			r.logEnd = end
		case errcode.Of(err) == errcode.UnknownTopicOrPartition:
			// Offsets of a deleted topic (or partition) stay until the coordinator drops them.
		default:
			return fail(fmt.Errorf("partition %s/%d: %w", r.tp.Topic, r.tp.Partition, err))
		}
	}
	writeGroupDescription(e.stdout, g, assignments, list)
	return nil
}

// writeGroupDescription prints the group's facts, its members, then its partitions.
func writeGroupDescription(w io.Writer, g *client.GroupDescription, assignments []string, parts []*partitionOffsets) {
	protocol := dash(g.ProtocolType)
	if g.Protocol != "" {
		protocol += "/" + g.Protocol
	}
	fmt.Fprintf(w, "Group: %s\nState: %s\nProtocol: %s\n", g.Group, g.State, protocol)
	if len(g.Members) == 0 {
		fmt.Fprintln(w, "Members: none")
	} else {
		fmt.Fprintf(w, "Members: %d\n", len(g.Members))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  MEMBER\tINSTANCE\tCLIENT-ID\tHOST\tPARTITIONS")
		for i, m := range g.Members {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.MemberID, dash(m.InstanceID), dash(m.ClientID), dash(m.ClientHost), assignments[i])
		}
		tw.Flush()
	}
	if len(parts) == 0 {
		fmt.Fprintln(w, "Offsets: none committed")
		return
	}
	var total int64
	for _, p := range parts {
		if p.committed >= 0 && p.logEnd >= 0 {
			total += max(p.logEnd-p.committed, 0)
		}
	}
	fmt.Fprintf(w, "Lag: %d\n", total)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tLOG-END\tLAG\tMEMBER")
	for _, p := range parts {
		lag := "-"
		if p.committed >= 0 && p.logEnd >= 0 {
			lag = strconv.FormatInt(max(p.logEnd-p.committed, 0), 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", p.tp.Topic, p.tp.Partition, offsetOrDash(p.committed), offsetOrDash(p.logEnd), lag, dash(p.member))
	}
	tw.Flush()
}

// resetTarget is where reset-offsets moves each partition.
type resetTarget struct {
	mode   string // "earliest", "latest", "offset", "datetime"
	offset int64  // for "offset"
	millis int64  // for "datetime"
}

func parseResetOffsets(args []string) (group, topic string, partitions []int32, target resetTarget, execute bool, err error) {
	fs := flag.NewFlagSet("group reset-offsets", flag.ContinueOnError)
	topicFlag := fs.String("topic", "", "the topic `T`, or T:P,P,... for some of its partitions (required)")
	earliest := fs.Bool("to-earliest", false, "move to each partition's log start offset")
	latest := fs.Bool("to-latest", false, "move to each partition's log end offset (skip everything so far)")
	toOffset := fs.Int64("to-offset", 0, "move to offset `N` of each partition")
	toDatetime := fs.String("to-datetime", "", "move to the first record at or after `TIME` (RFC 3339, e.g. 2024-05-01T12:00:00Z)")
	exec := fs.Bool("execute", false, "commit the new offsets (without it, only print the plan)")
	pos, err := parseArgs(fs, args, "GROUP")
	if err != nil {
		return "", "", nil, target, false, err
	}
	if *topicFlag == "" {
		return "", "", nil, target, false, usageError("group reset-offsets: --topic is required")
	}
	topic, parts, hasParts := strings.Cut(*topicFlag, ":")
	if topic == "" {
		return "", "", nil, target, false, usageError("group reset-offsets: --topic %q names no topic", *topicFlag)
	}
	if hasParts {
		for _, s := range strings.Split(parts, ",") {
			p, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
			if perr != nil || p < 0 {
				return "", "", nil, target, false, usageError("group reset-offsets: --topic %q: %q is not a partition number", *topicFlag, s)
			}
			partitions = append(partitions, int32(p))
		}
	}
	seen := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { seen[f.Name] = true })
	var modes []string
	for _, m := range []string{"to-earliest", "to-latest", "to-offset", "to-datetime"} {
		if seen[m] {
			modes = append(modes, "--"+m)
		}
	}
	switch {
	case len(modes) == 0:
		return "", "", nil, target, false, usageError("group reset-offsets: give one of --to-earliest, --to-latest, --to-offset N and --to-datetime TIME")
	case len(modes) > 1:
		return "", "", nil, target, false, usageError("group reset-offsets: %s exclude each other", strings.Join(modes, " and "))
	}
	switch {
	case *earliest:
		target.mode = "earliest"
	case *latest:
		target.mode = "latest"
	case seen["to-offset"]:
		if *toOffset < 0 {
			return "", "", nil, target, false, usageError("group reset-offsets: --to-offset must be >= 0")
		}
		target.mode, target.offset = "offset", *toOffset
	case seen["to-datetime"]:
		t, terr := time.Parse(time.RFC3339Nano, *toDatetime)
		if terr != nil {
			return "", "", nil, target, false, usageError("group reset-offsets: --to-datetime %q is not RFC 3339 (like 2024-05-01T12:00:00Z)", *toDatetime)
		}
		if t.UnixMilli() < 0 {
			return "", "", nil, target, false, usageError("group reset-offsets: --to-datetime %q is before 1970", *toDatetime)
		}
		target.mode, target.millis = "datetime", t.UnixMilli()
	default: // --to-earliest=false or --to-latest=false alone
		return "", "", nil, target, false, usageError("group reset-offsets: give one of --to-earliest, --to-latest, --to-offset N and --to-datetime TIME")
	}
	return pos[0], topic, partitions, target, *exec, nil
}

func groupResetOffsets(args []string, broker string, e *env) error {
	group, topic, partitions, target, execute, err := parseResetOffsets(args)
	if err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("group reset-offsets %s: %w", group, err) }
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := e.ctx

	// As Kafka's tool: only a group without members (or one that does not exist yet).
	if err := checkInactive(ctx, c, group); err != nil {
		return fail(err)
	}
	info, err := c.DescribeTopic(ctx, topic)
	if err != nil {
		return fail(err)
	}
	if partitions == nil {
		for _, p := range info.Partitions {
			partitions = append(partitions, p.Partition)
		}
	}
	var tps []client.TopicPartition
	for _, p := range partitions {
		if int(p) >= len(info.Partitions) {
			return fail(fmt.Errorf("topic %s has no partition %d (it has %d)", topic, p, len(info.Partitions)))
		}
		tps = append(tps, client.TopicPartition{Topic: topic, Partition: p})
	}
	current, err := c.FetchCommitted(ctx, group, tps)
	if err != nil {
		return fail(err)
	}
	plan := make(map[client.TopicPartition]int64, len(tps))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT\tNEW")
	for _, tp := range tps {
		next, err := resetOffset(ctx, c, tp, target)
		if err != nil {
			return fail(fmt.Errorf("partition %s/%d: %w", tp.Topic, tp.Partition, err))
		}
		plan[tp] = next
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", tp.Topic, tp.Partition, offsetOrDash(current[tp]), next)
	}
	tw.Flush()
	if !execute {
		fmt.Fprintln(e.stdout, "dry run: nothing committed; run again with --execute to commit these offsets")
		return nil
	}
	// Checked again just before the commit: a consumer may have joined meanwhile. The broker
	// refuses a commit from outside the group while it has members anyway.
	if err := checkInactive(ctx, c, group); err != nil {
		return fail(err)
	}
	if err := c.CommitOffsets(ctx, group, plan); err != nil {
		return fail(err)
	}
	fmt.Fprintf(e.stdout, "committed the new offsets of %d partitions for group %s\n", len(plan), group)
	return nil
}

// checkInactive fails while group has members.
func checkInactive(ctx context.Context, c *client.Client, group string) error {
	g, err := c.DescribeGroup(ctx, group)
	if errcode.Of(err) == errcode.GroupIDNotFound {
		return nil // a new group: its offsets can be set before any consumer joins
	}
	if err != nil {
		return err
	}
	if len(g.Members) > 0 || g.State != "Empty" {
		members := "members"
		if len(g.Members) == 1 {
			members = "member"
		}
		return fmt.Errorf("the group has %d active %s (state %s): offsets can only be reset while it has none; stop its consumers first",
			len(g.Members), members, g.State)
	}
	return nil
}

// resetOffset is tp's new offset for target, within the partition's log.
func resetOffset(ctx context.Context, c *client.Client, tp client.TopicPartition, target resetTarget) (int64, error) {
	start, err := c.ListOffsets(ctx, tp.Topic, tp.Partition, client.TimestampEarliest)
	if err != nil {
		return 0, err
	}
	end, err := c.ListOffsets(ctx, tp.Topic, tp.Partition, client.TimestampLatest)
	if err != nil {
		return 0, err
	}
	switch target.mode {
	case "earliest":
		return start, nil
	case "latest":
		return end, nil
	case "datetime":
		off, err := c.ListOffsets(ctx, tp.Topic, tp.Partition, target.millis)
		if err != nil {
			return 0, err
		}
		if off < 0 { // no record at or after the time: the log end
			return end, nil
		}
		return min(max(off, start), end), nil
	}
	return min(max(target.offset, start), end), nil
}

func tpLess(a, b client.TopicPartition) bool {
	return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func offsetOrDash(off int64) string {
	if off < 0 {
		return "-"
	}
	return strconv.FormatInt(off, 10)
}
