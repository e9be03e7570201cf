package main

import (
	"strings"
	"testing"
)

func TestTopicAlterUsage(t *testing.T) {
	f := func(wantInStderr string, args ...string) {
		t.Helper()
		r := thorctl(t, "", map[string]string{"THORSTREAM_BROKER": "127.0.0.1:1"}, args...)
		if r.code != 2 || !strings.Contains(r.stderr, wantInStderr) || !strings.Contains(r.stderr, "usage: thorctl topic") {
			t.Errorf("thorctl %q: exit %d, stderr %q: want 2 and %q with the usage", args, r.code, r.stderr, wantInStderr)
		}
	}
	f("missing NAME", "topic", "alter")
	f("nothing to change", "topic", "alter", "t")
	f("want key=value", "topic", "alter", "t", "--config", "novalue")
	f("retention.ms is both set and deleted", "topic", "alter", "t", "--config", "retention.ms=1", "--delete-config", "retention.ms")
	f("missing NAME", "topic", "add-partitions", "--count", "3")
	f("--count must be at least 1", "topic", "add-partitions", "t")
	f("--count must be at least 1", "topic", "add-partitions", "t", "--count", "0")

	for _, args := range [][]string{{"topic", "alter", "--help"}, {"topic", "add-partitions", "-h"}} {
		r := thorctl(t, "", nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "usage: thorctl "+args[0]+" "+args[1]+" NAME") {
			t.Errorf("thorctl %q: %+v", args, r)
		}
	}
	if r := thorctl(t, "", nil, "topic", "--help"); !strings.Contains(r.stdout, "topic alter NAME") || !strings.Contains(r.stdout, "topic add-partitions NAME") {
		t.Errorf("topic help does not list the commands:\n%s", r.stdout)
	}
}
