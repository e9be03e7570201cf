package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrReport is wrapped by the errors of WriteReport.
var ErrReport = errors.New("loadgen: report")

// Report formats for WriteReport.
const (
	// ReportHTML is an HTML page with the charts as inline SVG.
	ReportHTML = "html"
	// ReportSVG is one standalone SVG image holding the same charts and settings.
	ReportSVG = "svg"
)

// ReportInfo is how a run was started, shown in its report beside the Result.
type ReportInfo struct {
	// Command is the command line (program name first).
	Command string
	// Flags lists every flag of the command with its value; with none, the report lists the
	// Result's options instead.
	Flags []Flag
}

// Flag is one command-line flag and the value the run used.
type Flag struct {
	Name  string
	Value string
	// Set is whether the command line gave the flag; otherwise Value is its default.
	Set bool
}

// WriteReport writes r as a self-contained page in format (ReportHTML or ReportSVG):
// throughput per interval of the run (records/s and MiB/s), latency percentiles per interval,
// the latency histogram with its percentiles, and the run's settings. The page refers to
// nothing outside itself (no scripts, fonts, style sheets or images) and is well-formed XML,
// and its charts have a fixed size, so two reports can be compared side by side.
func WriteReport(w io.Writer, format string, r *Result, info ReportInfo) error {
	var p page
	switch format {
	case ReportHTML:
		p.html(r, info)
	case ReportSVG:
		p.svg(r, info)
	default:
		return fmt.Errorf("%w: unknown format %q", ErrReport, format)
	}
	if _, err := io.WriteString(w, p.String()); err != nil {
		return fmt.Errorf("%w: %w", ErrReport, err)
	}
	return nil
}

// Chart geometry, shared by both formats so that every report looks alike.
const (
	reportWidth  = 960
	chartHeight  = 220
	histHeight   = 260
	marginLeft   = 76
	marginRight  = 24
	marginTop    = 30
	marginBottom = 38
	// histBinsPerDecade is the resolution of the histogram chart (the Histogram itself is
	// finer: 128 buckets per power of two).
	histBinsPerDecade = 20
)

// Chart colours.
const (
	colourRecords = "#1f77b4"
	colourBytes   = "#2ca02c"
	colourP50     = "#1f77b4"
	colourP99     = "#d62728"
	colourAxis    = "#444"
	colourGrid    = "#e6e6e6"
	colourBar     = "#7aa6d6"
)

// page accumulates a report. Every piece of text from the Result or the command line goes
// through esc.
type page struct{ strings.Builder }

func (p *page) f(format string, args ...any) { fmt.Fprintf(&p.Builder, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

// setting is one row of the settings table.
type setting struct {
	name, value string
	isDefault   bool
}

func (p *page) html(r *Result, info ReportInfo) {
	title := reportTitle(r)
	p.f("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
	p.f("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n")
	p.f("<title>%s</title>\n", esc(title))
	p.f("<style>\n"+
		"body{font-family:sans-serif;color:#222;margin:24px;max-width:%dpx}\n"+
		"h1{font-size:22px}h2{font-size:17px;margin-top:28px}\n"+
		"table{border-collapse:collapse;margin:8px 0 16px}\n"+
		"th,td{border:1px solid #ddd;padding:3px 10px;text-align:left;font-size:13px}\n"+
		"td.n{text-align:right;font-variant-numeric:tabular-nums}\n"+
		"tr.default td{color:#888}\n"+
		"svg{display:block;margin:8px 0}\n"+
		"</style>\n</head>\n<body>\n", reportWidth)
	p.f("<h1>%s</h1>\n<p>%s</p>\n", esc(title), esc(summaryLine(r)))

	p.f("<h2>Result</h2>\n<table>\n")
	for _, row := range resultRows(r) {
		p.f("<tr><th>%s</th><td class=\"n\">%s</td></tr>\n", esc(row.name), esc(row.value))
	}
	p.f("</table>\n")

	p.f("<h2>Throughput</h2>\n")
	p.recordsChart(r, 0, 0)
	p.bytesChart(r, 0, 0)

	p.f("<h2>Latency (%s)</h2>\n<p>%s</p>\n<table>\n<tr>", esc(r.LatencyKind), esc(latencyNote(r)))
	rows := percentileRows(r)
	for _, row := range rows {
		p.f("<th>%s</th>", esc(row.name))
	}
	p.f("</tr>\n<tr>")
	for _, row := range rows {
		p.f("<td class=\"n\">%s</td>", esc(row.value))
	}
	p.f("</tr>\n</table>\n")
	p.histogramChart(r, 0, 0)
	p.latencyChart(r, 0, 0)

	p.f("<h2>Settings</h2>\n<table>\n")
	for _, s := range settingRows(r, info) {
		class := ""
		if s.isDefault {
			class = " class=\"default\""
		}
		p.f("<tr%s><th>%s</th><td>%s</td></tr>\n", class, esc(s.name), esc(s.value))
	}
	p.f("</table>\n<p>Grey flags are at their default.</p>\n")

	if len(r.FirstErrors) > 0 {
		p.f("<h2>First errors</h2>\n<ul>\n")
		for _, e := range r.FirstErrors {
			p.f("<li>%s</li>\n", esc(e))
		}
		p.f("</ul>\n")
	}
	p.f("</body>\n</html>\n")
}

func (p *page) svg(r *Result, info ReportInfo) {
	const line = 17 // text line height
	settings := settingRows(r, info)
	// The command line gets the full width below the two columns of settings.
	var command []string
	settings = slices.DeleteFunc(settings, func(s setting) bool { return s.name == "command" })
	if info.Command != "" {
		command = wrap("command: "+info.Command, 140)
	}
	results := append(resultRows(r), percentileRows(r)...)
	// Header (title, summary, the result rows in three columns), charts, settings.
	chartsTop := 64 + line*((len(results)+2)/3) + 12
	chartsHeight := 3*(chartHeight+12) + histHeight + 12
	settingsTop := chartsTop + chartsHeight + 8
	settingsRows := (len(settings) + 1) / 2
	height := settingsTop + 30 + line*(settingsRows+len(command)) + 16

	p.f("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	p.f("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
		reportWidth, height, reportWidth, height)
	p.f("<title>%s</title>\n", esc(reportTitle(r)))
	p.f("<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", reportWidth, height)
	p.f("<text x=\"16\" y=\"28\" font-size=\"18\" font-weight=\"bold\">%s</text>\n", esc(reportTitle(r)))
	p.f("<text x=\"16\" y=\"50\">%s</text>\n", esc(summaryLine(r)))
	colWidth := (reportWidth - 32) / 3
	for i, row := range results {
		x, y := 16+(i%3)*colWidth, 72+(i/3)*line
		p.f("<text x=\"%d\" y=\"%d\"><tspan font-weight=\"bold\">%s</tspan> %s</text>\n", x, y, esc(row.name), esc(row.value))
	}

	y := chartsTop
	p.recordsChart(r, 0, y)
	y += chartHeight + 12
	p.bytesChart(r, 0, y)
	y += chartHeight + 12
	p.histogramChart(r, 0, y)
	y += histHeight + 12
	p.latencyChart(r, 0, y)

	p.f("<text x=\"16\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">Settings</text>\n", settingsTop+16)
	colWidth = (reportWidth - 32) / 2
	for i, s := range settings {
		x, y := 16+(i/settingsRows)*colWidth, settingsTop+38+(i%settingsRows)*line
		fill := ""
		if s.isDefault {
			fill = " fill=\"#888\""
		}
		p.f("<text x=\"%d\" y=\"%d\"%s><tspan font-weight=\"bold\">%s</tspan> %s</text>\n",
			x, y, fill, esc(s.name), esc(clip(s.value, 60)))
	}
	for i, l := range command {
		p.f("<text x=\"16\" y=\"%d\" font-family=\"monospace\">%s</text>\n", settingsTop+38+(settingsRows+i)*line, esc(l))
	}
	p.f("</svg>\n")
}

// wrap splits s into lines of at most n runes, at spaces where it can.
func wrap(s string, n int) []string {
	var lines []string
	for r := []rune(s); len(r) > 0; {
		if len(r) <= n {
			lines = append(lines, string(r))
			break
		}
		cut := n
		for i := n; i > n/2; i-- {
			if r[i] == ' ' {
				cut = i
				break
			}
		}
		lines = append(lines, string(r[:cut]))
		r = r[cut:]
		for len(r) > 0 && r[0] == ' ' {
			r = r[1:]
		}
	}
	return lines
}

// clip shortens s to n runes for a fixed-width column.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func reportTitle(r *Result) string {
	return fmt.Sprintf("thorload %s: topic %s, %s", r.Mode, r.Topic, r.Start.Format("2006-01-02 15:04:05 MST"))
}

func summaryLine(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records in %.2f s: %.0f records/s, %.2f MiB/s", r.Records, r.ElapsedSec, r.RecordsPerSec, r.MiBPerSec)
	if r.Mode == ModeEndToEnd {
		fmt.Fprintf(&b, " (%d produced)", r.Produced)
	}
	fmt.Fprintf(&b, ", %d failed; latency p50 %s, p99 %s", r.Failed, formatMs(r.Latency.P50Ms), formatMs(r.Latency.P99Ms))
	return b.String()
}

func latencyNote(r *Result) string {
	what := map[string]string{
		LatencySendToAck: "From handing each record to the client to its acknowledgement.",
		LatencyRecordAge: "Each record's age on arrival: its producer's timestamp to the moment it was received.",
		LatencyEndToEnd:  "From handing each record to the producer to its receipt by the consumer in the same process.",
	}[r.LatencyKind]
	if int64(r.Latency.Count) < r.Records {
		what += fmt.Sprintf(" Measured on %d of the %d records (a uniform sample).", r.Latency.Count, r.Records)
	}
	return what
}

func resultRows(r *Result) []setting {
	rows := []setting{
		{name: "records", value: strconv.FormatInt(r.Records, 10)},
		{name: "bytes", value: strconv.FormatInt(r.Bytes, 10)},
		{name: "failed", value: strconv.FormatInt(r.Failed, 10)},
		{name: "elapsed", value: fmt.Sprintf("%.3f s", r.ElapsedSec)},
		{name: "records/s", value: fmt.Sprintf("%.0f", r.RecordsPerSec)},
		{name: "MiB/s", value: fmt.Sprintf("%.2f", r.MiBPerSec)},
	}
	if r.Mode == ModeEndToEnd {
		rows = append(rows, setting{name: "produced", value: strconv.FormatInt(r.Produced, 10)})
	}
	return rows
}

func percentileRows(r *Result) []setting {
	l := r.Latency
	minMs := 0.0
	if r.histogram != nil {
		minMs = nsToMs(r.histogram.Min())
	}
	return []setting{
		{name: "count", value: strconv.FormatUint(l.Count, 10)},
		{name: "mean", value: formatMs(l.MeanMs)},
		{name: "min", value: formatMs(minMs)},
		{name: "p50", value: formatMs(l.P50Ms)},
		{name: "p90", value: formatMs(l.P90Ms)},
		{name: "p99", value: formatMs(l.P99Ms)},
		{name: "p99.9", value: formatMs(l.P999Ms)},
		{name: "max", value: formatMs(l.MaxMs)},
	}
}

func formatMs(ms float64) string { return fmt.Sprintf("%.3f ms", ms) }

// settingRows lists what the run was: its command, target, start, host and every flag.
func settingRows(r *Result, info ReportInfo) []setting {
	h := r.Host
	rows := []setting{
		{name: "mode", value: r.Mode},
		{name: "topic", value: r.Topic},
		{name: "brokers", value: strings.Join(r.Options.Brokers, ",")},
		{name: "start", value: r.Start.Format(time.RFC3339)},
		{name: "duration", value: fmt.Sprintf("%.3f s", r.ElapsedSec)},
		{name: "until", value: r.Options.Until},
		{name: "latency", value: r.LatencyKind},
		{name: "host", value: h.Hostname},
		{name: "os/arch", value: h.OS + "/" + h.Arch},
		{name: "CPUs", value: strconv.Itoa(h.NumCPU)},
		{name: "GOMAXPROCS", value: strconv.Itoa(h.GOMAXPROCS)},
		{name: "Go version", value: h.GoVersion},
	}
	if h.Revision != "" {
		rows = append(rows, setting{name: "revision", value: h.Revision})
	}
	if info.Command != "" {
		rows = append(rows, setting{name: "command", value: info.Command})
	}
	for _, f := range info.Flags {
		rows = append(rows, setting{name: "--" + f.Name, value: f.Value, isDefault: !f.Set})
	}
	if len(info.Flags) == 0 {
		// Without the command line, the options the run used (after defaults).
		var m map[string]any
		if b, err := json.Marshal(r.Options); err == nil && json.Unmarshal(b, &m) == nil {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				rows = append(rows, setting{name: k, value: fmt.Sprint(m[k])})
			}
		}
	}
	return rows
}

// line is one series of a time chart: values[i] covers the interval ending at Series[i].
type line struct {
	name, colour string
	value        func(Sample) (float64, bool) // false: no value in this interval
}

func (p *page) recordsChart(r *Result, x, y int) {
	p.timeChart(r, x, y, "Records per second", "records/s", []line{{
		name: "records/s", colour: colourRecords,
		value: func(s Sample) (float64, bool) { return s.RecordsPerSec, true },
	}})
}

func (p *page) bytesChart(r *Result, x, y int) {
	p.timeChart(r, x, y, "MiB per second (key and value bytes)", "MiB/s", []line{{
		name: "MiB/s", colour: colourBytes,
		value: func(s Sample) (float64, bool) { return s.MiBPerSec, true },
	}})
}

func (p *page) latencyChart(r *Result, x, y int) {
	measured := func(v func(Sample) float64) func(Sample) (float64, bool) {
		return func(s Sample) (float64, bool) { return v(s), s.Latency > 0 }
	}
	p.timeChart(r, x, y, "Latency per second ("+r.LatencyKind+")", "ms", []line{
		{name: "p50", colour: colourP50, value: measured(func(s Sample) float64 { return s.P50Ms })},
		{name: "p99", colour: colourP99, value: measured(func(s Sample) float64 { return s.P99Ms })},
	})
}

// openChart starts a chart's <svg> element with its frame, title and legend.
func (p *page) openChart(x, y, height int, title string, legend []line) {
	p.f("<svg xmlns=\"http://www.w3.org/2000/svg\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n",
		x, y, reportWidth, height, reportWidth, height)
	p.f("<rect x=\"0.5\" y=\"0.5\" width=\"%d\" height=\"%d\" fill=\"#fff\" stroke=\"#ccc\"/>\n", reportWidth-1, height-1)
	p.f("<text x=\"10\" y=\"19\" font-size=\"13\" font-weight=\"bold\">%s</text>\n", esc(title))
	right := reportWidth - marginRight
	for i := len(legend) - 1; i >= 0; i-- {
		l := legend[i]
		right -= 7*len(l.name) + 22
		p.f("<rect x=\"%d\" y=\"10\" width=\"12\" height=\"4\" fill=\"%s\"/>", right, l.colour)
		p.f("<text x=\"%d\" y=\"16\">%s</text>\n", right+16, esc(l.name))
	}
}

// timeChart draws lines over the run's intervals as steps: each interval's value spans it.
func (p *page) timeChart(r *Result, x, y int, title, unit string, lines []line) {
	p.openChart(x, y, chartHeight, title, lines)
	defer p.f("</svg>\n")
	plotW := float64(reportWidth - marginLeft - marginRight)
	plotH := float64(chartHeight - marginTop - marginBottom)
	if len(r.Series) == 0 {
		p.f("<text x=\"%d\" y=\"%d\" fill=\"#888\">no samples</text>\n", reportWidth/2-30, chartHeight/2)
		return
	}
	xMax := r.Series[len(r.Series)-1].TimeSec
	yMax := 0.0
	for _, l := range lines {
		for _, s := range r.Series {
			if v, ok := l.value(s); ok {
				yMax = max(yMax, v)
			}
		}
	}
	xStep, xTop := niceScale(xMax, 10)
	yStep, yTop := niceScale(yMax, 5)
	px := func(t float64) float64 { return float64(marginLeft) + t/xTop*plotW }
	py := func(v float64) float64 { return float64(marginTop) + plotH - v/yTop*plotH }

	for v := 0.0; v <= yTop*(1+1e-9); v += yStep {
		p.f("<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>", marginLeft, px(xTop), py(v), py(v), colourGrid)
		p.f("<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", marginLeft-6, py(v)+4, esc(formatTick(v, yStep)))
	}
	for t := 0.0; t <= xTop*(1+1e-9); t += xStep {
		p.f("<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>", px(t), px(t), marginTop, py(0), colourGrid)
		p.f("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px(t), py(0)+14, esc(formatTick(t, xStep)))
	}
	p.axes(unit, "seconds since the start", chartHeight)

	for _, l := range lines {
		var d strings.Builder
		prevT, open := 0.0, false
		for _, s := range r.Series {
			v, ok := l.value(s)
			switch {
			case !ok:
				open = false
			case open:
				fmt.Fprintf(&d, "V%.1fH%.1f", py(v), px(s.TimeSec))
			default:
				fmt.Fprintf(&d, "M%.1f %.1fH%.1f", px(prevT), py(v), px(s.TimeSec))
				open = true
			}
			prevT = s.TimeSec
		}
		if d.Len() > 0 {
			p.f("<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"/>\n", d.String(), l.colour)
		}
	}
}

// axes draws the two axes of a chart's plot area and their labels.
func (p *page) axes(yUnit, xLabel string, height int) {
	bottom := height - marginBottom
	p.f("<path d=\"M%d %dV%dH%d\" fill=\"none\" stroke=\"%s\"/>\n", marginLeft, marginTop, bottom, reportWidth-marginRight, colourAxis)
	p.f("<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\" text-anchor=\"middle\">%s</text>\n",
		(marginTop+bottom)/2, (marginTop+bottom)/2, esc(yUnit))
	p.f("<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#666\">%s</text>\n",
		(marginLeft+reportWidth-marginRight)/2, height-6, esc(xLabel))
}

// histogramChart draws the run's latency distribution on a logarithmic axis, with a marker at
// each percentile.
func (p *page) histogramChart(r *Result, x, y int) {
	p.openChart(x, y, histHeight, "Latency histogram ("+r.LatencyKind+")", nil)
	defer p.f("</svg>\n")
	h := r.histogram
	if h == nil || h.Count() == 0 {
		p.f("<text x=\"%d\" y=\"%d\" fill=\"#888\">no latency measured</text>\n", reportWidth/2-60, histHeight/2)
		return
	}
	plotW := float64(reportWidth - marginLeft - marginRight)
	plotH := float64(histHeight - marginTop - marginBottom)
	const floorMs = 0.001 // 1 µs: the axis is logarithmic, 0 cannot be on it
	loExp := int(math.Floor(math.Log10(max(nsToMs(h.Min()), floorMs))))
	hiExp := int(math.Ceil(math.Log10(max(nsToMs(h.Max()), floorMs))))
	hiExp = max(hiExp, loExp+1)
	lo, decades := math.Pow(10, float64(loExp)), float64(hiExp-loExp)
	bins := make([]uint64, int(decades)*histBinsPerDecade)
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		bLo, bHi := bucketBounds(i)
		mid := max(nsToMs(bLo/2+bHi/2), lo)
		k := int(math.Log10(mid/lo) * histBinsPerDecade)
		bins[min(max(k, 0), len(bins)-1)] += c
	}
	top := 0.0
	for _, c := range bins {
		top = max(top, float64(c)/float64(h.Count())*100)
	}
	px := func(ms float64) float64 {
		return float64(marginLeft) + math.Log10(max(ms, lo)/lo)/decades*plotW
	}
	yStep, yTop := niceScale(top, 5)
	py := func(share float64) float64 { return float64(marginTop) + plotH - share/yTop*plotH }

	for v := 0.0; v <= yTop*(1+1e-9); v += yStep {
		p.f("<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>", marginLeft, reportWidth-marginRight, py(v), py(v), colourGrid)
		p.f("<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", marginLeft-6, py(v)+4, esc(formatTick(v, yStep)))
	}
	for e := loExp; e <= hiExp; e++ {
		ms := math.Pow(10, float64(e))
		p.f("<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>", px(ms), px(ms), marginTop, py(0), colourGrid)
		p.f("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px(ms), py(0)+14, esc(formatDecade(e)))
	}
	binW := plotW / float64(len(bins))
	for k, c := range bins {
		if c == 0 {
			continue
		}
		share := float64(c) / float64(h.Count()) * 100
		p.f("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
			float64(marginLeft)+float64(k)*binW, py(share), max(binW-1, 0.5), py(0)-py(share), colourBar)
	}
	p.axes("% of measured records", "latency (ms, logarithmic)", histHeight)

	l := r.Latency
	marks := []struct {
		name string
		ms   float64
	}{{"p50", l.P50Ms}, {"p90", l.P90Ms}, {"p99", l.P99Ms}, {"p99.9", l.P999Ms}, {"max", l.MaxMs}}
	for i, m := range marks {
		mx := px(m.ms)
		colour := colourP99
		if i < 2 {
			colour = colourP50
		}
		p.f("<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"4 3\"/>", mx, mx, marginTop, py(0), colour)
		anchor, dx := "start", 3.0
		if mx > float64(reportWidth-marginRight-110) {
			anchor, dx = "end", -3
		}
		p.f("<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" fill=\"%s\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">%s %s</text>\n",
			mx+dx, marginTop+11+12*i, anchor, colour, m.name, esc(formatMs(m.ms)))
	}
}

// niceScale returns a tick step of 1, 2, 2.5 or 5 times a power of ten giving about n ticks
// up to top, and the axis end: the first tick at or above top (1 when top is not positive).
func niceScale(top float64, n int) (step, end float64) {
	if !(top > 0) || math.IsInf(top, 0) {
		return 0.2, 1
	}
	raw := top / float64(n)
	magnitude := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * magnitude
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*magnitude >= raw {
			step = m * magnitude
			break
		}
	}
	return step, math.Ceil(top/step*(1-1e-12)) * step
}

// formatTick writes an axis value of an axis stepping by step, with k and M for thousands and
// millions and no more decimals than the step needs.
func formatTick(v, step float64) string {
	unit, suffix := 1.0, ""
	switch {
	case math.Abs(v) >= 1e6:
		unit, suffix = 1e6, "M"
	case math.Abs(v) >= 1e3:
		unit, suffix = 1e3, "k"
	}
	decimals := 0
	for s := step / unit; decimals < 6 && math.Abs(s-math.Round(s)) > 1e-9*math.Max(1, s); s *= 10 {
		decimals++
	}
	text := strconv.FormatFloat(v/unit, 'f', decimals, 64)
	if strings.Contains(text, ".") {
		text = strings.TrimRight(strings.TrimRight(text, "0"), ".")
	}
	return text + suffix
}

// formatDecade writes 10^e milliseconds in µs, ms or s.
func formatDecade(e int) string {
	pow := func(e int) string { return "1" + strings.Repeat("0", e) }
	switch {
	case e < -3:
		return strconv.FormatFloat(math.Pow(10, float64(e+3)), 'g', -1, 64) + " µs"
	case e < 0:
		return pow(e+3) + " µs"
	case e >= 3:
		return pow(e-3) + " s"
	}
	return pow(e) + " ms"
}
