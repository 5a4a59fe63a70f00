package bench

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes the whole report as JSON, which ReadReport reads back.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// ReadReport reads a report WriteJSON wrote, so that it can be rendered
// again without measuring again.
func ReadReport(rd io.Reader) (Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return Report{}, fmt.Errorf("decode report: %w", err)
	}
	if len(r.Samples) == 0 || len(r.Plan.Workloads) == 0 {
		return Report{}, fmt.Errorf("decode report: no plan or no samples in it (written before dbbench saved whole reports?)")
	}
	// A workload's scripts are not in the JSON; take them from the name.
	for i, w := range r.Plan.Workloads {
		full, err := WorkloadNamed(w.Name)
		if err != nil {
			return Report{}, fmt.Errorf("decode report: %w", err)
		}
		r.Plan.Workloads[i] = full
	}
	return r, nil
}
