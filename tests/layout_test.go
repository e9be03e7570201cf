package tests

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// layout is docs/ARCHITECTURE.md's package table as rules: which of Thorstream's packages each
// package may import (non-test files). A package not listed may import nothing of ours beyond
// what its parent's rule allows; prefixes match a folder and everything under it.
var layout = map[string][]string{
	"codec/batch":           {},
	"codec/errcode":         {},
	"codec/proto":           {},
	"codec/murmur2":         {},
	"codec/compress":        {"codec/batch"},
	"log/vfs":               {},
	"log/segment":           {"codec/batch", "log/vfs"},
	"log/partition":         {"codec/", "log/segment", "log/vfs"},
	"log/cleaner":           {"log/partition"},
	"cluster/meta":          {"codec/errcode"},
	"cluster/raftnode":      {},
	"cluster/controller":    {"cluster/meta", "cluster/raftnode", "codec/"},
	"cluster":               {"cluster/meta", "codec/", "log/"},
	"cluster/clustertest":   {"cluster", "cluster/meta", "codec/", "log/"},
	"groups":                {"codec/"},
	"groups/offsetslog":     {"cluster", "cluster/meta", "groups", "codec/"},
	"reactor/core":          {"codec/", "cluster", "cluster/meta", "groups", "log/"},
	"reactor/kafka":         {"codec/", "cluster", "cluster/meta", "groups", "reactor/core"},
	"reactor/peer":          {"codec/", "reactor", "reactor/core"},
	"reactor":               {"codec/", "reactor/core"},
	"reactor/node":          {"codec/", "log/", "cluster", "cluster/", "groups", "groups/", "reactor", "reactor/core", "reactor/kafka", "reactor/peer"},
	"reactor/node/nodetest": {"cluster", "cluster/", "groups", "log/vfs", "reactor/node"},
	"client":                {"codec/"},
	"client/internal":       {"codec/", "groups"},
	"client/clienttest":     {"client/internal/"},
	"cmd/thorctl":           {"client", "codec/", "log/"},
	"cmd/thorload":          {"bench/loadgen"},
	"cmd/thorstream":        {"codec/", "log/", "cluster", "cluster/", "groups", "groups/", "reactor", "reactor/"},
	"bench":                 {"*"},
	"tests":                 {"*"},
}

const module = "github.com/thorstream/thorstream/"

// ruleFor is the rule of pkg: its own entry, or its nearest listed parent's.
func ruleFor(pkg string) ([]string, bool) {
	for p := pkg; ; {
		if r, ok := layout[p]; ok {
			return r, true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			return nil, false
		}
		p = p[:i]
	}
}

func allowed(rule []string, imp string) bool {
	for _, r := range rule {
		switch {
		case r == "*":
			return true
		case strings.HasSuffix(r, "/") && strings.HasPrefix(imp, r):
			return true
		case r == imp:
			return true
		}
	}
	return false
}

// TestPackageLayout keeps the arrows of the layout true: libraries never import binaries,
// benchmarks or tests, and every package imports only the layers its row allows.
func TestPackageLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkg, ok := strings.CutPrefix(p.ImportPath, module)
		if !ok {
			continue
		}
		rule, ok := ruleFor(pkg)
		if !ok {
			t.Errorf("package %s has no row in the layout: add it to docs/ARCHITECTURE.md and to this test", pkg)
			continue
		}
		checked++
		for _, imp := range p.Imports {
			ours, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if !allowed(rule, ours) {
				t.Errorf("%s imports %s, which its row of the layout does not allow", pkg, ours)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d packages checked: go list found too few", checked)
	}
}
