package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// timingsDocPath is the document whose bench section every successful
// bench rewrites, relative to the repository root: the figures people
// read are the last ones measured, never typed by hand.
const timingsDocPath = "docs/timings.md"

// The lines that delimit the generated section; everything outside them
// is left as it is.
const (
	benchSectionBegin = "<!-- bench:begin -->"
	benchSectionEnd   = "<!-- bench:end -->"
)

// machine is what the figures were measured on.
type machine struct {
	cores    int
	memBytes uint64 // 0: unknown
}

func (m machine) String() string {
	mem := "memory unknown"
	if m.memBytes > 0 {
		mem = fmt.Sprintf("%.1f GiB memory", float64(m.memBytes)/(1<<30))
	}
	return fmt.Sprintf("%d cores, %s", m.cores, mem)
}

// thisMachine reads the core count and, on Linux, the total memory; a
// machine whose memory cannot be read still gets its figures written.
func thisMachine() machine {
	m := machine{cores: runtime.NumCPU()}
	if meminfo, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.memBytes, _ = memTotal(string(meminfo))
	}
	return m
}

// memTotal is the MemTotal line of /proc/meminfo, in bytes.
func memTotal(meminfo string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(meminfo))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[0] != "MemTotal:" || fields[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading MemTotal %q: %w", fields[1], err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no MemTotal line in kB")
}

// benchRecord is everything the generated section states about one bench.
type benchRecord struct {
	date    time.Time
	command string // how to run the same bench again
	machine machine
	samples []sample
	ways    []way
}

// updateTimingsDoc rewrites the bench section of the timings document at
// path with this bench's figures, and says so on out.
func updateTimingsDoc(out io.Writer, path string, cfg config, samples []sample, ways []way) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the timings document: %w", err)
	}
	section := timingsSection(benchRecord{
		date:    time.Now(),
		command: benchCommand(cfg, filepath.Dir(filepath.Dir(path))),
		machine: thisMachine(),
		samples: samples,
		ways:    ways,
	})
	updated, err := replaceSection(string(doc), section)
	if err != nil {
		return fmt.Errorf("updating %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
		return fmt.Errorf("writing the timings document: %w", err)
	}
	fmt.Fprintf(out, "bench: figures written to %s\n", path)
	return nil
}

// benchCommand is the command line that repeats this bench; a fleet under
// root is named relative to it, as a reader of the document would type it.
func benchCommand(cfg config, root string) string {
	fleet := cfg.fleet
	if filepath.IsAbs(fleet) {
		if rel, err := filepath.Rel(root, fleet); err == nil && !strings.HasPrefix(rel, "..") {
			fleet = rel
		}
	}
	cmd := fmt.Sprintf("go run ./hack/bench -n %d -fleet %s -envs %s", cfg.runs, filepath.ToSlash(fleet), strings.Join(cfg.envs, ","))
	if !cfg.bare {
		cmd += " -bare=false"
	}
	return cmd
}

// replaceSection puts section between the bench markers of doc, which
// must each stand once, on a line of their own, begin before end.
func replaceSection(doc, section string) (string, error) {
	begin := markerLine(doc, benchSectionBegin)
	end := markerLine(doc, benchSectionEnd)
	switch {
	case begin < 0 || end < 0:
		return "", fmt.Errorf("want the lines %s and %s, each once", benchSectionBegin, benchSectionEnd)
	case end < begin:
		return "", fmt.Errorf("%s comes before %s", benchSectionEnd, benchSectionBegin)
	}
	bodyStart := begin + len(benchSectionBegin) + 1
	return doc[:bodyStart] + strings.TrimSuffix(section, "\n") + "\n" + doc[end:], nil
}

// markerLine is the offset of the one line of doc that is exactly marker,
// or -1 when there is none or more than one.
func markerLine(doc, marker string) int {
	at := -1
	offset := 0
	for _, line := range strings.SplitAfter(doc, "\n") {
		if strings.TrimRight(line, "\r\n") == marker {
			if at >= 0 {
				return -1
			}
			at = offset
		}
		offset += len(line)
	}
	return at
}

// timingsSection is the generated markdown: how and where the bench ran,
// then each phase's median (min–max) per way and the ratio of the medians.
func timingsSection(r benchRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Written by `make bench` on %s: `%s`, %s. Successful runs only; ↳ marks a phase that runs inside the one above it and does not add to green.\n\n",
		r.date.Format("2006-01-02"), r.command, r.machine)
	per := successfulByWay(r.samples)
	b.WriteString("| Phase |")
	for _, w := range r.ways {
		fmt.Fprintf(&b, " %s (n=%d): median (min–max) |", w.name, len(per[w.name]))
	}
	if len(r.ways) == 2 {
		fmt.Fprintf(&b, " %s / %s (medians) |", r.ways[1].name, r.ways[0].name)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(r.ways)))
	if len(r.ways) == 2 {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, phase := range phaseOrder {
		name := strings.TrimSpace(phase)
		if name != phase {
			name = "↳ " + name
		}
		fmt.Fprintf(&b, "| %s |", name)
		var medians []time.Duration
		for _, w := range r.ways {
			var ds []time.Duration
			for _, s := range per[w.name] {
				ds = append(ds, s.phases[phase])
			}
			st := statsOf(ds)
			medians = append(medians, st.median)
			fmt.Fprintf(&b, " %s |", medianRange(st))
		}
		if len(medians) == 2 {
			fmt.Fprintf(&b, " %s |", ratio(medians[1], medians[0]))
		}
		b.WriteString("\n")
	}
	var resyncs []time.Duration
	for _, s := range r.samples {
		resyncs = append(resyncs, s.resyncs...)
	}
	if len(resyncs) > 0 {
		fmt.Fprintf(&b, "\nRe-sync of an edited fleet on kept clusters, every environment (n=%d): %s.\n", len(resyncs), medianRange(statsOf(resyncs)))
	}
	return b.String()
}

// successfulByWay groups the runs that succeeded by the way they ran.
func successfulByWay(samples []sample) map[string][]sample {
	per := map[string][]sample{}
	for _, s := range samples {
		if s.err == nil {
			per[s.way] = append(per[s.way], s)
		}
	}
	return per
}

// medianRange reads "34.6 s (33.0–34.9)", the median first: it is the
// figure to compare.
func medianRange(st stats) string {
	if st.n == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f s (%.1f–%.1f)", st.median.Seconds(), st.min.Seconds(), st.max.Seconds())
}
