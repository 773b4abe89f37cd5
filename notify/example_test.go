package notify_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/notify"
)

func exampleInsight() detector.Insight {
	start := time.Date(2024, 12, 11, 16, 52, 0, 0, time.UTC)
	shared := detector.SharedEventID("888888888888", "us-east-1", "iam.amazonaws.com", "GetRolePolicy",
		detector.ApiErrorRate, "NoSuchEntityException", start)
	return detector.Insight{
		EventVersion: "1.09", Time: start, Region: "us-east-1", Account: "888888888888",
		EventID: detector.EventID(shared, detector.Start), SharedEventID: shared,
		State: detector.Start, EventSource: "iam.amazonaws.com", EventName: "GetRolePolicy",
		Type: detector.ApiErrorRate, ErrorCode: "NoSuchEntityException", Category: "Management",
		Stats: detector.Statistics{BaselineAverage: 0.5, InsightAverage: 40, InsightDuration: 1, BaselineDuration: 10080},
	}
}

func ExampleFolder() {
	dir, err := os.MkdirTemp("", "insights")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	f, err := notify.NewFolder(dir, notify.FolderOptions{StrictAWS: true})
	if err != nil {
		panic(err)
	}
	if err := f.Notify(context.Background(), []detector.Insight{exampleInsight()}); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
	fmt.Println(f.Keys()[0])
	ins, _, _ := detector.ReadInsights(dir)
	fmt.Println(len(ins), ins[0].EventName, ins[0].ErrorCode)
	// Output:
	// AWSLogs/888888888888/CloudTrail-Insight/us-east-1/2024/12/11/888888888888_CloudTrail-Insight_us-east-1_20241211T1652Z_gANz3oZLC1LyFjX3.json.gz
	// 1 GetRolePolicy NoSuchEntityException
}

func ExampleNewJSONLines() {
	out := notify.NewJSONLines(os.Stdout, notify.JSONLinesOptions{})
	defer out.Close()
	if err := out.Notify(context.Background(), []detector.Insight{exampleInsight()}); err != nil {
		panic(err)
	}
	// Output:
	// {"eventVersion":"1.09","eventTime":"2024-12-11T16:52:00Z","awsRegion":"us-east-1","eventID":"8b0811d5-3779-57c7-a0d6-003b047d9e36","eventType":"AwsCloudTrailInsight","recipientAccountId":"888888888888","sharedEventID":"947a166f-27df-5693-bbf6-898ec21597f6","insightDetails":{"state":"Start","eventSource":"iam.amazonaws.com","eventName":"GetRolePolicy","insightType":"ApiErrorRateInsight","errorCode":"NoSuchEntityException","sourceEventCategory":"Management","insightContext":{"statistics":{"baseline":{"average":0.5},"insight":{"average":40},"insightDuration":1,"baselineDuration":10080}}},"eventCategory":"Insight"}
}
