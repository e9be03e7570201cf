package tests

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// These tests run thorctl as an operator does: help for every command, produce to a topic that
// does not exist, segment dump with records, and broker status.

// cliCommands reads the command list of `thorctl --help`: every runnable command's words, and the
// groups they belong to.
func cliCommands(t *testing.T, addr string) (leaves, groups []string) {
	t.Helper()
	out, _ := mustCLI(t, addr, "", "--help")
	_, list, ok := strings.Cut(out, "\nCommands:\n")
	if !ok {
		t.Fatalf("thorctl --help lists no commands:\n%s", out)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(list, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		var words []string
		for _, w := range strings.Fields(line) {
			if w != strings.ToLower(w) || strings.HasPrefix(w, "[") {
				break // the arguments (NAME, FILE.log, [COMMAND ...]) and the summary follow
			}
			words = append(words, w)
		}
		leaves = append(leaves, strings.Join(words, " "))
		for i := 1; i < len(words); i++ {
			if g := strings.Join(words[:i], " "); !seen[g] {
				seen[g] = true
				groups = append(groups, g)
			}
		}
	}
	if len(leaves) < 10 {
		t.Fatalf("thorctl --help lists %d commands:\n%s", len(leaves), out)
	}
	return leaves, groups
}

// TestCLIHelpEveryCommand: every command and group of the binary answers --help and -h with its
// own usage and description on stdout, exit 0; a command given an unknown flag exits 2 with its
// usage on stderr.
func TestCLIHelpEveryCommand(t *testing.T) {
	addr := freeAddr(t) // help needs no broker
	leaves, groups := cliCommands(t, addr)
	for _, path := range append(append([]string{}, groups...), leaves...) {
		words := strings.Fields(path)
		for _, h := range []string{"--help", "-h"} {
			out, stderr, code := runCLI(t, addr, "", append(append([]string{}, words...), h)...)
			first, rest, _ := strings.Cut(out, "\n")
			if code != 0 || stderr != "" || !strings.HasPrefix(first, "usage: thorctl "+path) || len(strings.TrimSpace(rest)) == 0 {
				t.Errorf("thorctl %s %s: exit %d, stderr %q, stdout:\n%s\nwant 0, its usage and description on stdout", path, h, code, stderr, out)
			}
		}
	}
	for _, path := range leaves {
		out, stderr, code := runCLI(t, addr, "", append(strings.Fields(path), "--bogus")...)
		if code != 2 || out != "" || !strings.Contains(stderr, "flag provided but not defined: -bogus") || !strings.Contains(stderr, "usage: thorctl "+path) {
			t.Errorf("thorctl %s --bogus: exit %d, stdout %q, stderr:\n%s\nwant 2 and the command's usage on stderr", path, code, out, stderr)
		}
	}
	// The flags of a command, with their defaults.
	out, _ := mustCLI(t, addr, "", "topic", "create", "--help")
	for _, want := range []string{"usage: thorctl topic create NAME [flags]", "--partitions int", "(default 1)", "--replication-factor int", "--config key=value"} {
		if !strings.Contains(out, want) {
			t.Errorf("topic create --help lacks %q:\n%s", want, out)
		}
	}
	if help, _ := mustCLI(t, addr, "", "help"); !strings.HasPrefix(help, "usage: thorctl [--broker host:port] COMMAND") {
		t.Errorf("thorctl help:\n%s", help)
	}
	if script, _ := mustCLI(t, addr, "", "completion", "bash"); !strings.Contains(script, "complete -F _thorctl thorctl") {
		t.Errorf("completion bash printed:\n%s", script)
	}
}

// TestCLIProduceAutoCreatesTopic: with the broker's default settings, producing to a topic that
// does not exist creates it (as kcat and Kafka producers get it created) and the records are
// there; with auto-creation off, produce fails saying so, and nothing is created.
func TestCLIProduceAutoCreatesTopic(t *testing.T) {
	b := startBroker(t, t.TempDir())
	lines := []string{"first", "second", "third"}
	_, stderr := mustCLI(t, b.addr, strings.Join(lines, "\n")+"\n", "produce", "created-on-produce")
	if !strings.Contains(stderr, "topic created-on-produce did not exist: the broker created it with 1 partition\n") ||
		!strings.Contains(stderr, "produced 3 records in ") {
		t.Fatalf("produce to a missing topic, stderr:\n%s", stderr)
	}
	if out, _ := mustCLI(t, b.addr, "", "consume", "created-on-produce", "--from-beginning"); out != strings.Join(lines, "\n")+"\n" {
		t.Fatalf("consume printed %q", out)
	}
	if rows := describeTopic(t, b.addr, "created-on-produce"); len(rows) != 1 || rows[0].latest != 3 {
		t.Fatalf("topic describe: %+v", rows)
	}

	off := startBroker(t, t.TempDir(), "THORSTREAM_AUTO_CREATE_TOPICS=false")
	out, stderr, code := runCLI(t, off.addr, "a line\n", "produce", "not-created")
	if code != 1 || out != "" || !strings.Contains(stderr, `topic "not-created" does not exist and the broker did not create it`) ||
		!strings.Contains(stderr, "auto-creation is off") || !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("produce with auto-creation off: exit %d, stderr %q", code, stderr)
	}
	if out, _ := mustCLI(t, off.addr, "", "topic", "list"); strings.Contains(out, "not-created") {
		t.Fatalf("the topic exists after a refused produce:\n%s", out)
	}
}

// dumpedRecord is one record line of `segment dump --records`.
type dumpedRecord struct {
	key, value []byte
	headers    string
	isNullKey  bool
}

// parseDumpValue decodes a key or value as dump prints it: null, a quoted string or 0x hex.
func parseDumpValue(t *testing.T, s string) ([]byte, bool) {
	t.Helper()
	switch {
	case s == "null":
		return nil, true
	case strings.HasPrefix(s, "0x"):
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			t.Fatalf("hex %q…: %v", s[:min(len(s), 40)], err)
		}
		return b, false
	}
	u, err := strconv.Unquote(s)
	if err != nil {
		t.Fatalf("quoted %q…: %v", s[:min(len(s), 40)], err)
	}
	return []byte(u), false
}

// parseDumpRecords parses `segment dump --records` output: records by offset, and the codec of
// each batch line.
func parseDumpRecords(t *testing.T, out string) (map[int64]dumpedRecord, []string) {
	t.Helper()
	recs := map[int64]dumpedRecord{}
	var codecs []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "position=") {
			_, c, _ := strings.Cut(line, " codec=")
			c, _, _ = strings.Cut(c, " ")
			codecs = append(codecs, c)
			continue
		}
		rest, ok := strings.CutPrefix(line, "  offset=")
		if !ok {
			continue
		}
		offText, rest, _ := strings.Cut(rest, " timestamp=")
		off, err := strconv.ParseInt(offText, 10, 64)
		if err != nil {
			t.Fatalf("record line %.80q", line)
		}
		ts, rest, _ := strings.Cut(rest, " key=")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("offset %d: timestamp %q: %v", off, ts, err)
		}
		keyText, rest, _ := strings.Cut(rest, " value=")
		valueText, headers, _ := strings.Cut(rest, " headers=")
		var r dumpedRecord
		r.key, r.isNullKey = parseDumpValue(t, keyText)
		r.value, _ = parseDumpValue(t, valueText)
		r.headers = headers
		if _, dup := recs[off]; dup {
			t.Fatalf("offset %d dumped twice", off)
		}
		recs[off] = r
	}
	return recs, codecs
}

// TestCLISegmentDumpRecords: records produced by a Kafka client with every codec, with keys and
// headers, and in batches over 1 MiB (stored as sent, or compressed from more than 1 MiB), are
// printed by `segment dump --records` exactly as produced.
func TestCLISegmentDumpRecords(t *testing.T) {
	b := startKafkaBroker(t)
	const topic = "dumped"
	mustCLI(t, b.addr, "", "topic", "create", topic, "--config", "max.message.bytes=8388608")

	type produced struct {
		key, value []byte
		header     string // one header "h"
	}
	var want []produced
	produceWith := func(codec kgo.CompressionCodec, recs ...produced) {
		t.Helper()
		cl := newKafkaClient(t, b.kafkaAddr, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic),
			kgo.ProducerBatchMaxBytes(8<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		krecs := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			krecs[i] = &kgo.Record{Key: r.key, Value: r.value, Partition: 0}
			if r.header != "" {
				krecs[i].Headers = []kgo.RecordHeader{{Key: "h", Value: []byte(r.header)}}
			}
		}
		produceSync(t, cl, krecs...)
		cl.Close()
		want = append(want, recs...)
	}
	binaryValue := []byte{0, 1, 2, 0xfe, 0xff}
	for _, c := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}} {
		var recs []produced
		for i := range 20 {
			r := produced{key: fmt.Appendf(nil, "%s-%d", c.name, i), value: bytes.Repeat(fmt.Appendf(nil, "value %d of %s; ", i, c.name), i+1)}
			switch i % 4 {
			case 1:
				r.key = nil
			case 2:
				r.value = binaryValue
			case 3:
				r.header = "trace-" + c.name
			}
			recs = append(recs, r)
		}
		produceWith(c.codec, recs...)
	}
	// Over 1 MiB: an incompressible value stored as sent, and a compressible one that zstd and
	// gzip shrink far below what they decompress to.
	noise := make([]byte, 1<<20+4096)
	x := uint32(1)
	for i := range noise {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		noise[i] = byte(x)
	}
	text := bytes.Repeat([]byte("a compressible record value over a mebibyte; "), 40_000)
	produceWith(kgo.NoCompression(), produced{key: []byte("noise"), value: noise})
	produceWith(kgo.ZstdCompression(), produced{key: []byte("text-zstd"), value: text})
	produceWith(kgo.GzipCompression(), produced{key: []byte("text-gzip"), value: text}, produced{value: []byte("after")})

	b.stop()
	segment := filepath.Join(b.dataDir, topic+"-0", "00000000000000000000.log")
	out, _ := mustCLI(t, b.addr, "", "segment", "dump", "--records", segment)
	recs, codecs := parseDumpRecords(t, out)
	if len(recs) != len(want) {
		t.Fatalf("segment dump --records printed %d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		r, ok := recs[int64(i)]
		switch {
		case !ok:
			t.Fatalf("offset %d not dumped", i)
		case !bytes.Equal(r.key, w.key) || (w.key == nil) != r.isNullKey:
			t.Fatalf("offset %d: key %q, want %q", i, r.key, w.key)
		case !bytes.Equal(r.value, w.value):
			t.Fatalf("offset %d: value of %d bytes differs from the %d bytes produced", i, len(r.value), len(w.value))
		case w.header != "" && r.headers != fmt.Sprintf(`"h":%q`, w.header), w.header == "" && r.headers != "":
			t.Fatalf("offset %d: headers %q, want h=%q", i, r.headers, w.header)
		}
	}
	seen := map[string]bool{}
	for _, c := range codecs {
		seen[c] = true
	}
	for _, c := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		if !seen[c] {
			t.Errorf("no batch with codec %s in the dump (batches: %v)", c, codecs)
		}
	}
	// Printable values are text, the others hex.
	if line := lineWith(out, `key="gzip-2" `); !strings.Contains(line, " value=0x000102feff") {
		t.Errorf("binary value not in hex: %.120q", line)
	}
	if line := lineWith(out, `key="noise" `); !strings.Contains(line, " value=0x") || len(line) < 2<<20 {
		t.Errorf("the 1 MiB binary value: %d bytes printed", len(line))
	}
	// --hex prints keys and values in hex.
	out, _ = mustCLI(t, b.addr, "", "segment", "dump", "--hex", segment)
	if line := lineWith(out, "  offset=0 "); !strings.Contains(line, " key=0x"+hex.EncodeToString([]byte("none-0"))+" value=0x") {
		t.Errorf("--hex: %.200q", line)
	}
}

// lineWith is the first line of text containing part ("" when none).
func lineWith(text, part string) string {
	i := strings.Index(text, part)
	if i < 0 {
		return ""
	}
	start := strings.LastIndexByte(text[:i], '\n') + 1
	end := strings.IndexByte(text[i:], '\n')
	if end < 0 {
		return text[start:]
	}
	return text[start : i+end]
}

// TestCLIBrokerStatus: `broker status` reports the node, the build, the uptime, the topics and
// partitions the broker hosts, the bytes of their .log files and both listeners.
func TestCLIBrokerStatus(t *testing.T) {
	b := startKafkaBroker(t, "THORSTREAM_NODE_ID=3")
	mustCLI(t, b.addr, "", "topic", "create", "status-a", "--partitions", "3")
	mustCLI(t, b.addr, "", "topic", "create", "status-b", "--partitions", "2")
	mustCLI(t, b.addr, strings.Repeat("a line of the status test\n", 1000), "produce", "status-a")
	// What the broker should count: the topics `topic list` shows and their partitions.
	var topics, partitions int
	list, _ := mustCLI(t, b.addr, "", "topic", "list")
	for _, line := range outputLines(list)[1:] {
		f := strings.Fields(line)
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("topic list line %q", line)
		}
		topics, partitions = topics+1, partitions+n
	}

	out, _ := mustCLI(t, b.addr, "", "broker", "status")
	fields := map[string]string{}
	var listeners []string
	inListeners := false
	for _, line := range outputLines(out) {
		if inListeners {
			listeners = append(listeners, strings.Join(strings.Fields(line), " "))
			continue
		}
		if line == "Listeners:" {
			inListeners = true
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("broker status line %q", line)
		}
		fields[k] = strings.TrimSpace(v)
	}
	if fields["Broker"] != b.addr || fields["Node"] != "3" || !strings.Contains(fields["Version"], "go1.") {
		t.Errorf("broker status:\n%s", out)
	}
	if up, err := time.ParseDuration(fields["Uptime"]); err != nil || up < 0 || up > 10*time.Minute {
		t.Errorf("uptime %q", fields["Uptime"])
	}
	if fields["Topics"] != strconv.Itoa(topics) || fields["Partitions"] != strconv.Itoa(partitions) {
		t.Errorf("broker status counts %s topics and %s partitions; topic list shows %d and %d:\n%s%s",
			fields["Topics"], fields["Partitions"], topics, partitions, out, list)
	}
	// The produce was acknowledged once written: the .log files hold exactly what is counted.
	logs, err := filepath.Glob(filepath.Join(b.dataDir, "*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk int64
	for _, l := range logs {
		st, err := os.Stat(l)
		if err != nil {
			t.Fatal(err)
		}
		onDisk += st.Size()
	}
	if onDisk == 0 || fields["Data"] != fmt.Sprintf("%d bytes", onDisk) && !strings.HasSuffix(fields["Data"], fmt.Sprintf("(%d bytes)", onDisk)) {
		t.Errorf("data %q, the .log files hold %d bytes", fields["Data"], onDisk)
	}
	wantListeners := []string{"binary " + b.addr + " advertised " + b.addr, "kafka " + b.kafkaAddr + " advertised " + b.kafkaAddr}
	if strings.Join(listeners, "\n") != strings.Join(wantListeners, "\n") {
		t.Errorf("listeners:\n%s\nwant:\n%s", strings.Join(listeners, "\n"), strings.Join(wantListeners, "\n"))
	}
}
