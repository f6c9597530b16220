package components

import "strconv"

// Bar is one bar of a bar chart.
type Bar struct {
	Label string
	Value int64
}

// barGeom is a bar laid out in the chart's SVG coordinates.
type barGeom struct {
	X, Y, W, H int
	Label      string
	Value      string
	ShowLabel  bool
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
		out[i] = barGeom{X: i*slot + 2, Y: chartH - chartPad - h, W: slot - 4, H: h, Label: b.Label,
			Value: strconv.FormatInt(b.Value, 10), ShowLabel: i%2 == len(bars)%2 || len(bars) <= 8}
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
