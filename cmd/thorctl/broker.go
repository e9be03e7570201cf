package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// brokerStatus is `thorctl broker status`.
func brokerStatus(args []string, broker string, e *env) error {
	fs := flag.NewFlagSet("broker status", flag.ContinueOnError)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := newClient(broker)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.BrokerStatus(e.ctx)
	if err != nil {
		if errcode.Of(err) == errcode.UnsupportedVersion {
			return fmt.Errorf("broker status: the broker does not serve BrokerStatus (it is older than this thorctl): %w", err)
		}
		return fmt.Errorf("broker status: %w", err)
	}
	writeBrokerStatus(e.stdout, broker, st)
	return nil
}

// writeBrokerStatus prints one "Field: value" line per fact, then the listeners.
func writeBrokerStatus(w io.Writer, broker string, st *proto.BrokerStatusResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Broker:\t%s\n", broker)
	fmt.Fprintf(tw, "Node:\t%d\n", st.NodeID)
	fmt.Fprintf(tw, "Version:\t%s\n", st.Version)
	fmt.Fprintf(tw, "Uptime:\t%s\n", formatUptime(st.UptimeMs))
	fmt.Fprintf(tw, "Topics:\t%d\n", st.Topics)
	fmt.Fprintf(tw, "Partitions:\t%d\n", st.Partitions)
	fmt.Fprintf(tw, "Data:\t%s\n", formatBytes(st.DataBytes))
	tw.Flush()
	fmt.Fprintln(w, "Listeners:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, l := range st.Listeners {
		fmt.Fprintf(tw, "  %s\t%s\tadvertised %s\n", l.Name, l.Address, l.Advertised)
	}
	tw.Flush()
}

// formatUptime is a duration to the second, with days: "3d4h5m6s", "42s".
func formatUptime(ms int64) string {
	d := (time.Duration(ms) * time.Millisecond).Round(time.Second)
	days := d / (24 * time.Hour)
	if days == 0 {
		return d.String()
	}
	return fmt.Sprintf("%dd%s", days, d-days*24*time.Hour)
}

// formatBytes is a size in binary units with the exact count: "1.5 GiB (1610612736 bytes)".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	value, suffix := float64(n), ""
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		value, suffix = value/unit, s
		if value < unit {
			break
		}
	}
	return fmt.Sprintf("%.1f %s (%d bytes)", value, suffix, n)
}
