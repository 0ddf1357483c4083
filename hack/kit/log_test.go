package main

import (
	"bytes"
	"testing"
	"time"
)

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	l := newLogger(&out)
	l.now = func() time.Time { return time.Date(2026, 11, 26, 9, 30, 5, 0, time.UTC) }
	w := l.lines("node-image")
	for _, chunk := range []string{"building ", "x\nERROR: one\r\n", "", "partial"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	w.Flush()
	w.Flush()
	l.printf("stage %s", "done")
	want := "[kit 09:30:05] node-image: building x\n" +
		"[kit 09:30:05] node-image: ERROR: one\n" +
		"[kit 09:30:05] node-image: partial\n" +
		"[kit 09:30:05] stage done\n"
	if out.String() != want {
		t.Errorf("log =\n%s\nwant\n%s", out.String(), want)
	}
}

func TestTimingTable(t *testing.T) {
	got := timingTable([]timing{{stage: "docker-engine", took: 120 * time.Millisecond},
		{stage: "node-image", lane: "kubernetes", took: 91 * time.Second},
		{stage: "node-image-preloaded", took: 754*time.Second + 360*time.Millisecond}})
	want := "  docker-engine              0.1s\n" +
		"  node-image                91.0s  kubernetes lane\n" +
		"  node-image-preloaded     754.4s\n"
	if got != want {
		t.Errorf("timingTable =\n%q\nwant\n%q", got, want)
	}
}
