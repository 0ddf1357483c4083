package report

import (
	"fmt"
	"slices"
	"time"
)

// The timeline's geometry, in SVG user units: the SVG scales to the page's
// width, so these fix only proportions and the text's size relative to it.
const (
	chartWidth  = 480.0
	axisHeight  = 20.0
	rowHeight   = 28.0
	barHeight   = 9.0
	labelRunes  = 72
	minBarWidth = 2.0
)

// timeline is one environment's Gantt chart: a bar per step, then a bar per
// object from first seen to Ready (or to the wait's end).
type timeline struct {
	Height float64
	Ticks  []tick
	Bars   []bar
}

type tick struct {
	X      float64
	Bottom float64 // where the tick's line ends: the chart's foot
	Label  string
}

type bar struct {
	X, Y, W float64
	LabelY  float64
	Label   string
	Title   string // the full text, shown on hover or long press
	Class   string // step, step-failed, object, already, pending or failed; then critical
}

// timeRange spans everything an environment's timeline draws.
type timeRange struct{ start, end time.Time }

func (tr *timeRange) add(t time.Time) {
	if t.IsZero() {
		return
	}
	if tr.start.IsZero() || t.Before(tr.start) {
		tr.start = t
	}
	if t.After(tr.end) {
		tr.end = t
	}
}

func (tr timeRange) x(t time.Time) float64 {
	span := tr.end.Sub(tr.start)
	if span <= 0 || t.IsZero() {
		return 0
	}
	return chartWidth * float64(t.Sub(tr.start)) / float64(span)
}

// newTimeline lays out an environment's steps (the run's, then its own)
// and objects, ordered by when they turned Ready.
func newTimeline(steps []Step, e *Environment) timeline {
	var tr timeRange
	for _, s := range steps {
		tr.add(s.Start)
		tr.add(s.End)
	}
	for _, o := range e.Objects {
		tr.add(o.FirstSeen)
		tr.add(o.ReadyAt)
	}
	tr.add(e.WaitStart)
	tr.add(e.WaitEnd)

	tl := timeline{Ticks: ticks(tr)}
	for _, s := range steps {
		class := "step"
		label := s.Name + "  " + formatDuration(s.End.Sub(s.Start))
		if s.Error != "" {
			class, label = "step-failed", label+"  FAILED: "+s.Error
		}
		tl.addBar(tr, s.Start, s.End, label, class)
	}
	critical := criticalPath(e)
	for _, o := range sortedObjects(e.Objects) {
		start, end, label, class := objectBar(o, e, tr)
		if critical[o.Ref()] {
			class, label = class+" critical", label+"  (critical path)"
		}
		tl.addBar(tr, start, end, label, class)
	}
	tl.Height = axisHeight + rowHeight*float64(len(tl.Bars)) + 4
	for i := range tl.Ticks {
		tl.Ticks[i].Bottom = tl.Height
	}
	return tl
}

func (tl *timeline) addBar(tr timeRange, start, end time.Time, label, class string) {
	y := axisHeight + rowHeight*float64(len(tl.Bars))
	x := tr.x(start)
	w := max(tr.x(end)-x, minBarWidth)
	x = min(x, chartWidth-w)
	short := label
	if r := []rune(label); len(r) > labelRunes {
		short = string(r[:labelRunes-1]) + "…"
	}
	tl.Bars = append(tl.Bars, bar{X: x, Y: y + 15, W: w, LabelY: y + 12, Label: short, Title: label, Class: class})
}

// objectBar is where an object's bar runs and what it says: from first
// seen to Ready, or to the end of the wait when it never was.
func objectBar(o Object, e *Environment, tr timeRange) (start, end time.Time, label, class string) {
	start, end = o.FirstSeen, o.ReadyAt
	if start.IsZero() {
		start = tr.start
	}
	switch {
	case o.Failed:
		end, class, label = orTime(e.WaitEnd, tr.end), "failed", o.Ref()+"  failed: "+o.Reason
	case !o.Ready():
		end, class, label = orTime(e.WaitEnd, tr.end), "pending", o.Ref()+"  not Ready: "+o.Reason
	case o.AlreadyReady:
		class, label = "already", o.Ref()+"  already Ready"
	default:
		class, label = "object", o.Ref()+"  "+formatDuration(end.Sub(start))
	}
	return start, end, label, class
}

func orTime(t, fallback time.Time) time.Time {
	if t.IsZero() {
		return fallback
	}
	return t
}

// criticalPath is the chain of objects that decided when the environment
// turned green: from the object Ready last (or the failed one), back
// through what each waited for, always to the one Ready latest. Without
// dependencies it is the last object alone.
func criticalPath(e *Environment) map[string]bool {
	byRef := map[string]Object{}
	var cur *Object
	for _, o := range e.Objects {
		byRef[o.Ref()] = o
		if o.Ready() && (cur == nil || o.ReadyAt.After(cur.ReadyAt)) {
			c := o
			cur = &c
		}
	}
	if e.Failure != nil {
		if o, ok := byRef[e.Failure.Object]; ok {
			cur = &o
		}
	}
	path := map[string]bool{}
	for cur != nil && !path[cur.Ref()] {
		path[cur.Ref()] = true
		var next *Object
		for _, ref := range cur.After {
			o, ok := byRef[ref]
			if !ok || !o.Ready() || (cur.Ready() && o.ReadyAt.After(cur.ReadyAt)) {
				continue
			}
			if next == nil || o.ReadyAt.After(next.ReadyAt) {
				next = &o
			}
		}
		cur = next
	}
	return path
}

// ticks marks the time axis at a round interval, at most about six marks.
func ticks(tr timeRange) []tick {
	span := tr.end.Sub(tr.start)
	if span <= 0 {
		return nil
	}
	steps := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}
	i := slices.IndexFunc(steps, func(d time.Duration) bool { return span/d <= 6 })
	if i < 0 {
		i = len(steps) - 1
	}
	var out []tick
	for d := time.Duration(0); d <= span; d += steps[i] {
		out = append(out, tick{X: tr.x(tr.start.Add(d)), Label: d.String()})
	}
	return out
}

// formatDuration is a duration as a reader wants it: tenths of a second
// under a minute, whole seconds above.
func formatDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
