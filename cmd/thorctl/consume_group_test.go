package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/clienttest"
)

// TestConsumeAsGroupMember: consume --group alone joins the group (group describe shows it with
// the topic's partitions, its commits at the log end), prints from the committed offsets, and
// leaves when interrupted; without --follow it stops at the end offsets of its partitions.
func TestConsumeAsGroupMember(t *testing.T) {
	fc := newCluster(t, clienttest.Options{})
	environ := map[string]string{"THORSTREAM_BROKER": fc.Addrs()[0]}
	if err := fc.CreateTopic("t", 2, nil); err != nil {
		t.Fatal(err)
	}
	appendRecords(fc, "t", 0, 3, 1000)
	appendRecords(fc, "t", 1, 2, 1000)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	follow, interrupt := context.WithCancel(ctx)
	var out bytes.Buffer
	codeCh := make(chan int, 1)
	go func() {
		codeCh <- run([]string{"--broker", fc.Addrs()[0], "consume", "t", "--group", "g", "--from-beginning", "--follow", "--print-offset"}, &env{
			stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard,
			getenv: func(string) string { return "" }, ctx: follow, progressEvery: time.Hour,
		})
	}()
	want := "Members: 1\n"
	var r result
	for deadline := time.Now().Add(testTimeout); ; {
		r = thorctl(t, "", environ, "group", "describe", "g")
		// Lag 0 counts only committed partitions: wait for both partitions' commits as well.
		if r.code == 0 && strings.Contains(r.stdout, want) && strings.Contains(r.stdout, "Lag: 0\n") &&
			strings.Contains(r.stdout, "t      0          3          3        0") && strings.Contains(r.stdout, "t      1          2          2        0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member did not show with lag 0:\n%s%s", r.stdout, r.stderr)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
	for _, part := range []string{"State: Stable\n", "Protocol: consumer/range\n", " thorctl ", " t(0,1)\n", "t      0          3          3        0", "t      1          2          2        0"} {
		if !strings.Contains(r.stdout, part) {
			t.Errorf("describe does not show %q:\n%s", part, r.stdout)
		}
	}
	interrupt()
	if code := <-codeCh; code != 0 {
		t.Fatalf("exit %d after interrupt", code)
	}
	if got := out.String(); got != "0/0\tv\n0/1\tv\n0/2\tv\n1/0\tv\n1/1\tv\n" && got != "1/0\tv\n1/1\tv\n0/0\tv\n0/1\tv\n0/2\tv\n" {
		t.Fatalf("printed %q", got)
	}
	if r = thorctl(t, "", environ, "group", "describe", "g"); r.code != 0 || !strings.Contains(r.stdout, "State: Empty\n") || !strings.Contains(r.stdout, "Members: none\n") {
		t.Fatalf("after the member left: %+v", r)
	}

	// A new member resumes after the commits: only the new records, then it stops at the end.
	appendRecords(fc, "t", 1, 2, 2000)
	if r = thorctl(t, "", environ, "consume", "t", "--group", "g", "--print-offset"); r.code != 0 || r.stdout != "1/2\tv\n1/3\tv\n" {
		t.Fatalf("second member: %+v", r)
	}
	if got := fc.Committed("g", "t", 1); got != 4 {
		t.Fatalf("committed %d, want 4", got)
	}
	if r = thorctl(t, "", environ, "consume", "t", "--group", "g"); r.code != 0 || r.stdout != "" {
		t.Fatalf("a member with nothing left to read: %+v", r)
	}
}
