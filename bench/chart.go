package bench

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WriteChart draws throughput against concurrency, one line per contender,
// in a panel per transport and workload, and writes it as a PNG to path.
func WriteChart(path string, plan Plan, samples []Sample) error {
	if len(plan.Transports) == 0 || len(plan.Workloads) == 0 {
		return fmt.Errorf("chart: the plan has no transport or no workload")
	}
	summaries := Summarise(samples)
	cols := columns(samples)
	rows := make([][]*plot.Plot, len(plan.Transports))
	for i, t := range plan.Transports {
		rows[i] = make([]*plot.Plot, len(plan.Workloads))
		for j, w := range plan.Workloads {
			p := plot.New()
			p.Title.Text = fmt.Sprintf("%s, %s", w.Title, transportTitle(t))
			p.X.Label.Text = "goroutines (pgbench: clients)"
			p.Y.Label.Text = w.Units + " per second"
			if len(plan.Concurrency) > 1 { // a log scale of one point has no range, and gonum panics
				p.X.Scale = plot.LogScale{}
				p.X.Tick.Marker = concurrencyTicks(plan.Concurrency)
			}
			p.Y.Min = 0
			p.Legend.Top = true
			var lines []any
			for _, c := range cols {
				var xys plotter.XYs
				for _, conc := range plan.Concurrency {
					if s, ok := summaries[Point{t, w.Name, conc}][c.at(conc)]; ok {
						xys = append(xys, plotter.XY{X: float64(conc), Y: s.Throughput})
					}
				}
				lines = append(lines, c.title, xys)
			}
			if err := plotutil.AddLinePoints(p, lines...); err != nil {
				return fmt.Errorf("chart: %w", err)
			}
			rows[i][j] = p
		}
	}
	const width, height = 6 * vg.Inch, 4 * vg.Inch
	img := vgimg.New(width*vg.Length(len(plan.Workloads)), height*vg.Length(len(plan.Transports)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plan.Transports), Cols: len(plan.Workloads), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4}
	canvases := plot.Align(rows, tiles, dc)
	for i := range rows {
		for j := range rows[i] {
			rows[i][j].Draw(canvases[i][j])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart: %w", err)
	}
	return f.Close()
}

// concurrencyTicks marks exactly the concurrencies measured.
type concurrencyTicks []int

func (c concurrencyTicks) Ticks(_, _ float64) []plot.Tick {
	ticks := make([]plot.Tick, len(c))
	for i, n := range c {
		ticks[i] = plot.Tick{Value: float64(n), Label: fmt.Sprint(n)}
	}
	return ticks
}
