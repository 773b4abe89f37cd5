package datasets_test

import (
	"os"
	"time"

	"github.com/trailsight/trailsight/datasets"
	"github.com/trailsight/trailsight/detector"
)

func ExampleEvaluate() {
	t := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	labels := datasets.Labels{Labels: []datasets.Label{{
		Kind: datasets.KindBurst, InsightType: "ApiCallRateInsight", Account: "111122223333", Region: "us-east-1",
		EventSource: "iam.amazonaws.com", EventName: "CreateUser", Start: t, End: t.Add(10 * time.Minute),
	}}}
	start := detector.Insight{Time: t.Add(2 * time.Minute), Account: "111122223333", Region: "us-east-1",
		SharedEventID: "s1", State: detector.Start, EventSource: "iam.amazonaws.com", EventName: "CreateUser",
		Type: detector.ApiCallRate, Stats: detector.Statistics{BaselineAverage: 0.001, InsightAverage: 3}}
	end := start
	end.State, end.Time = detector.End, t.Add(9*time.Minute)
	r := datasets.Evaluate(labels, []detector.Insight{start, end}, datasets.EvalOptions{})
	r.WriteText(os.Stdout)
	// Output:
	// kind    labels detected insights   true precision recall median delay worst delay
	// burst        1        1        1      1      100%   100%           2m          2m
	// gap          0        0        0      0         -      -            -           -
	// limit        0        0        0      0         -      -            -           -
	// error        0        0        0      0         -      -            -           -
	// all          1        1        1      1      100%   100%           2m          2m
	//
	// F1=1.000 precision=1.000 recall=1.000
}
