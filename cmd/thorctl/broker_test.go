package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/client/clienttest"
	"github.com/thorstream/thorstream/codec/proto"
)

// TestProduceAutoCreatesTopic: produce to a missing topic asks for it with auto-creation
// allowed, as Kafka producers do, says the broker created it, and writes the lines; an existing
// topic is not announced.
func TestProduceAutoCreatesTopic(t *testing.T) {
	fc := newCluster(t, clienttest.Options{AutoCreatePartitions: 3})
	env := map[string]string{"THORSTREAM_BROKER": fc.Addrs()[0]}
	r := thorctl(t, "a\nb\nc\n", env, "produce", "fresh", "--partition", "2")
	if r.code != 0 || !strings.Contains(r.stderr, "topic fresh did not exist: the broker created it with 3 partitions\n") {
		t.Fatalf("produce to a missing topic: %+v", r)
	}
	if got := fc.Records("fresh", 2); len(got) != 3 || string(got[2].Value) != "c" {
		t.Fatalf("stored %+v", got)
	}
	r = thorctl(t, "d\n", env, "produce", "fresh")
	if r.code != 0 || strings.Contains(r.stderr, "did not exist") {
		t.Fatalf("produce to the topic once it exists: %+v", r)
	}
}

// TestProduceAutoCreateOff: a broker that does not create the topic gets an error saying why and
// what to do, with the broker's code.
func TestProduceAutoCreateOff(t *testing.T) {
	fc := newCluster(t, clienttest.Options{})
	r := thorctl(t, "a\n", map[string]string{"THORSTREAM_BROKER": fc.Addrs()[0]}, "produce", "missing")
	for _, want := range []string{
		`produce missing: topic "missing" does not exist and the broker did not create it`,
		"auto-creation is off", "THORSTREAM_AUTO_CREATE_TOPICS=false", "'thorctl topic create missing'",
		"UNKNOWN_TOPIC_OR_PARTITION",
	} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, stderr %q: want 1 and %q", r.code, r.stderr, want)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
}

// TestBrokerStatusOlderBroker: a broker without BrokerStatus is reported as too old.
func TestBrokerStatusOlderBroker(t *testing.T) {
	fc := newCluster(t, clienttest.Options{}) // the fake broker predates BrokerStatus
	r := thorctl(t, "", map[string]string{"THORSTREAM_BROKER": fc.Addrs()[0]}, "broker", "status")
	if r.code != 1 || !strings.Contains(r.stderr, "the broker does not serve BrokerStatus (it is older than this thorctl)") ||
		!strings.Contains(r.stderr, "UNSUPPORTED_VERSION") {
		t.Fatalf("%+v", r)
	}
}

func TestWriteBrokerStatus(t *testing.T) {
	var out bytes.Buffer
	writeBrokerStatus(&out, "10.0.0.1:9092", &proto.BrokerStatusResponse{
		NodeID: 2, Version: "devel (08188fc2a1b3, go1.26.8)", UptimeMs: 3*86_400_000 + 3_723_400,
		Topics: 4, Partitions: 13, DataBytes: 3 << 29,
		Listeners: []proto.BrokerListener{
			{Name: "binary", Address: "0.0.0.0:9092", Advertised: "10.0.0.1:9092"},
			{Name: "kafka", Address: "0.0.0.0:19093", Advertised: "broker-2.example:19093"},
		},
	})
	want := `Broker:     10.0.0.1:9092
Node:       2
Version:    devel (08188fc2a1b3, go1.26.8)
Uptime:     3d1h2m3s
Topics:     4
Partitions: 13
Data:       1.5 GiB (1610612736 bytes)
Listeners:
  binary  0.0.0.0:9092   advertised 10.0.0.1:9092
  kafka   0.0.0.0:19093  advertised broker-2.example:19093
`
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestFormatBytesAndUptime(t *testing.T) {
	for in, want := range map[int64]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1.0 KiB (1024 bytes)", 5 << 20: "5.0 MiB (5242880 bytes)", 1 << 50: "1.0 PiB (1125899906842624 bytes)", 1 << 62: "4096.0 PiB (4611686018427387904 bytes)"} {
		if got := formatBytes(in); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]string{0: "0s", 499: "0s", 42_000: "42s", 3_600_000: "1h0m0s", 86_400_000: "1d0s", 90_061_000: "1d1h1m1s"} {
		if got := formatUptime(in); got != want {
			t.Errorf("formatUptime(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestBashCompletion runs the generated script in bash: commands, subcommands, flags, flag
// values, files, and the words after flags that take a value.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed: the completion script cannot be exercised")
	}
	r := thorctl(t, "", nil, "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "complete -F _thorctl thorctl") {
		t.Fatalf("completion bash: %+v", r)
	}
	dir := t.TempDir()
	f := func(line string, want string) {
		t.Helper()
		words := strings.Split(line, " ")
		script := r.stdout + `
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=()
_thorctl
printf '%s\n' "${COMPREPLY[*]}"
`
		cmd := exec.Command(bash, append([]string{"-c", script, "bash"}, words...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if got := strings.TrimSuffix(string(out), "\n"); err != nil || got != want {
			t.Errorf("completing %q: %q (%v), want %q", line, got, err, want)
		}
	}
	f("thorctl ", "topic group produce consume broker segment completion help")
	f("thorctl to", "topic")
	f("thorctl topic ", "create list describe delete alter add-partitions")
	f("thorctl --broker h:1 topic create x --pa", "--partitions")
	f("thorctl topic create --config a=b --rep", "--replication-factor")
	f("thorctl produce t --acks ", "all 1 0")
	f("thorctl produce t --linger ", "")
	f("thorctl consume t --print-", "--print-key --print-offset")
	f("thorctl segment d", "dump")
	f("thorctl segment dump --re", "--records")
	f("thorctl segment dump -", "--help --hex --records")
	f("thorctl broker status -", "--help --broker")
	f("thorctl completion ", "bash")
	f("thorctl segment verify x ", "")
	if err := exec.Command("touch", dir+"/00000000000000000000.log").Run(); err != nil {
		t.Fatal(err)
	}
	f("thorctl segment dump 0000", "00000000000000000000.log")
}
