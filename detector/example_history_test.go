package detector_test

import (
	"fmt"
	"time"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/stream"
)

// A chart's data: right after an End, History gives the series' hours and
// minutes beside what its model expects of them.
func ExampleDetector_History() {
	d, _ := detector.New(detector.DefaultConfig())
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for m := range 3 * 1440 {
		n := 3 // a steady 3 calls a minute, then 40 for 10 minutes on day 3
		if m >= 2*1440+600 && m < 2*1440+610 {
			n = 40
		}
		for i := range n {
			d.Add(&stream.Event{Time: t0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second),
				Account: "111122223333", Region: "us-east-1", Source: "ec2.amazonaws.com", Name: "RunInstances",
				Type: "AwsApiCall", Category: stream.Management, ID: fmt.Sprint(m, "-", i)})
		}
		for _, in := range d.Advance() {
			if in.State != detector.End {
				continue
			}
			h, _ := d.History(in.Key())
			for _, p := range h.Minutes {
				if p.Time.Equal(t0.Add((2*1440 + 600) * time.Minute)) {
					fmt.Printf("%s %s: %v calls at %s, %.1f expected (band %.1f–%.1f)\n", in.EventName, in.State,
						p.Observed, p.Time.Format("15:04"), p.Expected, p.Low, p.High)
				}
			}
		}
	}
	// Output:
	// RunInstances End: 40 calls at 10:00, 3.0 expected (band 0.0–8.2)
}
