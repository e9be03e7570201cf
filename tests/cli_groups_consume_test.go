package tests

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cliProc is a thorctl command running in the background.
type cliProc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
}

func startCLI(t *testing.T, addr string, args ...string) *cliProc {
	t.Helper()
	p := &cliProc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, "thorctl"), append([]string{"--broker", addr}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// interrupt sends SIGINT and waits for a clean exit.
func (p *cliProc) interrupt(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatalf("thorctl %v did not exit within a minute of SIGINT; stderr:\n%s", p.cmd.Args, p.stderr.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("thorctl %v exited %d after SIGINT; stderr:\n%s", p.cmd.Args, code, p.stderr.String())
	}
}

// TestCLIConsumeGroup: `thorctl consume --group` makes thorctl a member of the group: two of them
// share the partitions, `group describe` shows them with their partitions and the lag going to
// zero as they commit what they print, and together they print every record once.
func TestCLIConsumeGroup(t *testing.T) {
	b := startBroker(t, t.TempDir(), "THORSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS=0")
	const topic, group = "events", "printers"
	mustCLI(t, b.addr, "", "topic", "create", topic, "--partitions", "2")
	var first strings.Builder
	for i := range 20 {
		fmt.Fprintf(&first, "k%d:first-%d\n", i, i)
	}
	mustCLI(t, b.addr, first.String(), "produce", topic, "--key-separator", ":")

	one := startCLI(t, b.addr, "consume", topic, "--group", group, "--from-beginning", "--follow", "--print-offset")
	d := waitForGroup(t, b.addr, group, "one member at lag 0", func(d groupDescription) bool {
		return d.state == "Stable" && len(d.members) == 1 && d.lag == 0 && len(d.rows) == 2
	})
	if m := d.members[0]; !strings.Contains(m, " thorctl ") || !strings.HasSuffix(m, "events(0,1)") {
		t.Fatalf("member line %q: want client id thorctl and events(0,1)", m)
	}

	two := startCLI(t, b.addr, "consume", topic, "--group", group, "--from-beginning", "--follow", "--print-offset")
	waitForGroup(t, b.addr, group, "two members with a partition each", func(d groupDescription) bool {
		if d.state != "Stable" || len(d.members) != 2 {
			return false
		}
		owned := d.members[0][strings.LastIndexByte(d.members[0], ' ')+1:] + " " + d.members[1][strings.LastIndexByte(d.members[1], ' ')+1:]
		return owned == "events(0) events(1)" || owned == "events(1) events(0)"
	})
	var second strings.Builder
	for i := range 20 {
		fmt.Fprintf(&second, "k%d:second-%d\n", i, i)
	}
	mustCLI(t, b.addr, second.String(), "produce", topic, "--key-separator", ":")
	d = waitForGroup(t, b.addr, group, "lag 0 after 20 more records", func(d groupDescription) bool {
		total := int64(0)
		for _, row := range d.rows {
			end, _ := strconv.ParseInt(row[1], 10, 64)
			total += end
		}
		return d.lag == 0 && total == 40
	})

	one.interrupt(t)
	two.interrupt(t)
	waitForGroup(t, b.addr, group, "both members leaving", func(d groupDescription) bool { return d.state == "Empty" && len(d.members) == 0 })
	recs := append(parseConsumed(t, one.stdout.String(), false), parseConsumed(t, two.stdout.String(), false)...)
	seen := map[string]int{}
	for _, r := range recs {
		seen[fmt.Sprintf("%d/%d", r.partition, r.offset)]++
	}
	for tp, row := range d.rows {
		p := strings.TrimPrefix(tp, topic+"/")
		end, _ := strconv.ParseInt(row[1], 10, 64)
		for off := int64(0); off < end; off++ {
			if n := seen[fmt.Sprintf("%s/%d", p, off)]; n != 1 {
				t.Errorf("record %s/%d printed %d times, want once", p, off, n)
			}
		}
	}
	if len(recs) != 40 {
		t.Errorf("the two members printed %d records, want 40", len(recs))
	}
}
