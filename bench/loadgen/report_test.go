package loadgen

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testResult builds a Result the way a run does: latencies through the meter, a series of
// three full intervals and a partial one.
func testResult(t *testing.T) *Result {
	t.Helper()
	m := &meter{}
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	s := &sampler{start: start, last: sampleState{at: start}}
	for sec := 1; sec <= 3; sec++ {
		for i := range 1000 * sec {
			m.success(100, time.Duration(i%500+1)*10*time.Microsecond*time.Duration(sec))
		}
		m.sample(s, start.Add(time.Duration(sec)*time.Second), 0)
	}
	m.count(100)
	m.failure(errors.New("a <broken> & failed record"))
	m.sample(s, start.Add(3500*time.Millisecond), time.Second)
	o := Options{Brokers: []string{"127.0.0.1:9093"}, Topic: `load<&">`, Records: 6001}.withDefaults(ModeProduce)
	return m.result(ModeProduce, o, LatencySendToAck, start, 3500*time.Millisecond)
}

var testInfo = ReportInfo{
	Command: "thorload produce --brokers 127.0.0.1:9093 --topic load --records 6001",
	Flags: []Flag{
		{Name: "brokers", Value: "127.0.0.1:9093", Set: true},
		{Name: "record-size", Value: "100"},
		{Name: "records", Value: "6001", Set: true},
	},
}

// parseReport checks that doc is well-formed XML referring to nothing outside itself, and
// returns its root element's name, how many <svg> elements it has and its text.
func parseReport(t *testing.T, doc []byte) (root string, svgs int, text string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			switch tok.Name.Local {
			case "svg":
				svgs++
			case "script", "link", "img", "image", "iframe", "object", "embed", "use", "foreignObject":
				t.Errorf("report has a <%s> element", tok.Name.Local)
			}
			for _, a := range tok.Attr {
				if a.Name.Local == "href" || a.Name.Local == "src" || strings.Contains(a.Value, "url(") {
					t.Errorf("report refers outside itself: <%s %s=%q>", tok.Name.Local, a.Name.Local, a.Value)
				}
			}
		case xml.CharData:
			b.Write(tok)
			b.WriteByte('\n')
		}
	}
	return root, svgs, b.String()
}

func TestWriteReport(t *testing.T) {
	r := testResult(t)
	if len(r.Series) != 4 || r.Series[3].TimeSec != 3.5 || r.Series[3].Records != 1 || r.Series[3].Failed != 1 {
		t.Fatalf("series %+v", r.Series)
	}
	f := func(format, wantRoot string, wantSVGs int) {
		t.Helper()
		var out bytes.Buffer
		if err := WriteReport(&out, format, r, testInfo); err != nil {
			t.Fatal(err)
		}
		doc := out.String()
		root, svgs, text := parseReport(t, out.Bytes())
		if root != wantRoot || svgs != wantSVGs {
			t.Errorf("%s: root <%s> with %d <svg>, want <%s> with %d", format, root, svgs, wantRoot, wantSVGs)
		}
		if strings.Contains(strings.ToLower(doc), "<script") || strings.Contains(doc, "@import") {
			t.Errorf("%s: report has a script or an import", format)
		}
		l := r.Latency
		for _, want := range []string{
			"p50", formatMs(l.P50Ms), "p90", formatMs(l.P90Ms), "p99", formatMs(l.P99Ms),
			"p99.9", formatMs(l.P999Ms), "max", formatMs(l.MaxMs), formatMs(l.MeanMs),
			"GOMAXPROCS", runtime.Version(), "127.0.0.1:9093", `load<&">`, "2026-03-04T05:06:07Z",
			"3.500 s", "--record-size", "--records", "6001", testInfo.Command,
			"Records per second", "MiB per second", "Latency histogram", "Latency per second",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no %q in the text of the report", format, want)
			}
		}
		// The throughput line has a step per interval: "H" for each of the four.
		if !strings.Contains(doc, `stroke="`+colourRecords+`" stroke-width`) {
			t.Errorf("%s: no records/s line", format)
		}
	}
	f(ReportHTML, "html", 4)
	f(ReportSVG, "svg", 5) // the image and its four charts

	if err := WriteReport(io.Discard, "pdf", r, testInfo); !errors.Is(err, ErrReport) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestWriteReportWithoutDataOrFlags(t *testing.T) {
	// A Result read back from JSON has no histogram; an empty run has no series either.
	r := &Result{Mode: ModeConsume, Topic: "t", Start: time.Now(), LatencyKind: LatencyRecordAge,
		Options: ResultOptions{Brokers: []string{"b:1"}, From: "end", Until: "interrupted"}}
	for _, format := range []string{ReportHTML, ReportSVG} {
		var out bytes.Buffer
		if err := WriteReport(&out, format, r, ReportInfo{}); err != nil {
			t.Fatal(err)
		}
		_, _, text := parseReport(t, out.Bytes())
		for _, want := range []string{"no samples", "no latency measured", "from", "interrupted"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no %q in the text of the report", format, want)
			}
		}
	}
}

func TestSeriesSamples(t *testing.T) {
	start := time.Now()
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }

	m := &meter{}
	s := &sampler{start: start, last: sampleState{at: start}}
	for range 300 {
		m.count(1 << 10)
	}
	m.success(1<<10, 3*time.Millisecond)
	m.sample(s, at(500), 0)
	m.sample(s, at(1000), 0)           // an empty interval is kept
	m.sample(s, at(1001), time.Second) // a short idle last interval is dropped
	if len(m.series) != 2 {
		t.Fatalf("%d samples, want 2: %+v", len(m.series), m.series)
	}
	first := m.series[0]
	if first.TimeSec != 0.5 || first.Records != 301 || first.RecordsPerSec != 602 ||
		first.MiBPerSec != 301.0*1024/0.5/(1<<20) || first.Latency != 1 || first.P99Ms < 3 || first.P99Ms > 3.03 {
		t.Errorf("first sample %+v", first)
	}
	if second := m.series[1]; second.TimeSec != 1 || second.Records != 0 || second.Latency != 0 || second.P99Ms != 0 {
		t.Errorf("second sample %+v", second)
	}

	// A short last interval with records in it is folded into the one before, latencies too.
	m = &meter{}
	s = &sampler{start: start, last: sampleState{at: start}}
	m.count(1)
	m.sample(s, at(1000), 0)
	m.success(1, 5*time.Millisecond)
	m.sample(s, at(2000), 0)
	m.success(1, 7*time.Millisecond)
	m.count(1)
	m.sample(s, at(2200), time.Second)
	if len(m.series) != 2 {
		t.Fatalf("%d samples, want 2: %+v", len(m.series), m.series)
	}
	if last := m.series[1]; last.TimeSec != 2.2 || last.Records != 3 || last.RecordsPerSec != 3/1.2 ||
		last.Latency != 2 || last.P50Ms < 5 || last.P50Ms > 5.05 || last.MaxMs != 7 {
		t.Errorf("merged last sample %+v", last)
	}
	// A run shorter than a quarter interval still has its one sample.
	m = &meter{}
	s = &sampler{start: start, last: sampleState{at: start}}
	m.count(1)
	m.sample(s, at(100), time.Second)
	if len(m.series) != 1 || m.series[0].Records != 1 {
		t.Errorf("short run: %+v", m.series)
	}
}

func TestNiceScaleAndTicks(t *testing.T) {
	f := func(top float64, n int, wantStep, wantEnd float64) {
		t.Helper()
		if step, end := niceScale(top, n); step != wantStep || end != wantEnd {
			t.Errorf("niceScale(%v, %d) = %v, %v; want %v, %v", top, n, step, end, wantStep, wantEnd)
		}
	}
	f(0, 5, 0.2, 1)
	f(4.2, 10, 0.5, 4.5)
	f(2.5, 10, 0.25, 2.5)
	f(2_000_000, 5, 500_000, 2_000_000)
	f(7.3, 5, 2, 8)
	g := func(v, step float64, want string) {
		t.Helper()
		if got := formatTick(v, step); got != want {
			t.Errorf("formatTick(%v, %v) = %q, want %q", v, step, got, want)
		}
	}
	g(0, 1e6, "0")
	g(1.5e6, 5e5, "1.5M")
	g(2e6, 1e6, "2M")
	g(25000, 5000, "25k")
	g(0.75, 0.25, "0.75")
	g(2.5, 0.5, "2.5")
	g(12, 2, "12")
	for e, want := range map[int]string{-4: "0.1 µs", -3: "1 µs", -1: "100 µs", 0: "1 ms", 2: "100 ms", 4: "10 s"} {
		if got := formatDecade(e); got != want {
			t.Errorf("formatDecade(%d) = %q, want %q", e, got, want)
		}
	}
}
