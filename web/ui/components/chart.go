package components

import "strconv"

// Bar is one bar of a bar chart.
type Bar struct {
	Label string // under the bar; keep it short
	Value int64
	// Tip and Text, when set, replace Label and the raw value in the bar's
	// tooltip, e.g. "2026-11-25 14:00" and "1.2 MiB".
	Tip  string
	Text string
}

// barGeom is a bar laid out in the chart's SVG coordinates.
type barGeom struct {
	X, Y, W, H int
	Label      string
	Tip        string
	Value      string
	ShowLabel  bool
}

// showLabel thins the labels of crowded charts: every other one up to 31
// bars (a month of days), every sixth beyond (hours).
func showLabel(i, n int) bool {
	switch {
	case n <= 8:
		return true
	case n <= 31:
		return i%2 == n%2
	}
	return (n-1-i)%6 == 0
}

const chartW, chartH, chartPad = 560, 140, 18

func layoutBars(bars []Bar) []barGeom {
	if len(bars) == 0 {
		return nil
	}
	var max int64 = 1
	for _, b := range bars {
		if b.Value > max {
			max = b.Value
		}
	}
	slot := chartW / len(bars)
	out := make([]barGeom, len(bars))
	for i, b := range bars {
		h := int(b.Value * int64(chartH-2*chartPad) / max)
		if b.Value > 0 && h < 2 {
			h = 2
		}
		w := slot - 4
		if w < 1 {
			w = 1
		}
		out[i] = barGeom{X: i*slot + 2, Y: chartH - chartPad - h, W: w, H: h, Label: b.Label, Tip: b.Label,
			Value: strconv.FormatInt(b.Value, 10), ShowLabel: showLabel(i, len(bars))}
		if b.Tip != "" {
			out[i].Tip = b.Tip
		}
		if b.Text != "" {
			out[i].Value = b.Text
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func viewBox() string { return "0 0 " + itoa(chartW) + " " + itoa(chartH) }

func allZero(bars []Bar) bool {
	for _, b := range bars {
		if b.Value != 0 {
			return false
		}
	}
	return true
}
