package tests

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// abuseLong reports whether the long versions of the hostile-client tests were asked for
// (`make abuse`).
func abuseLong() bool { return os.Getenv("THORSTREAM_ABUSE_LONG") == "1" }

// procStatusKiB reads a kB field (VmRSS, VmHWM) of a process's /proc status.
func procStatusKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
