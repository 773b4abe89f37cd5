package detector

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestIDsStable(t *testing.T) {
	start := time.Date(2024, 12, 11, 16, 52, 0, 0, time.UTC)
	a := SharedEventID("888888888888", "us-east-1", "cloudtrail.amazonaws.com", "DescribeQuery", ApiErrorRate, "QueryIdNotFoundException", start)
	b := SharedEventID("888888888888", "us-east-1", "cloudtrail.amazonaws.com", "DescribeQuery", ApiErrorRate, "QueryIdNotFoundException",
		start.Add(59*time.Second).In(time.FixedZone("X", 3600)))
	if a != b {
		t.Errorf("SharedEventID differs within one minute / across zones: %s vs %s", a, b)
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 5 || u.Variant() != uuid.RFC4122 {
		t.Errorf("SharedEventID = %s: not an RFC 4122 version 5 UUID (err %v)", a, err)
	}
	if EventID(a, Start) != EventID(a, Start) {
		t.Error("EventID not deterministic")
	}
	if EventID(a, Start) == EventID(a, End) {
		t.Error("EventID(Start) == EventID(End)")
	}
	if EventID(a, Start) == a {
		t.Error("EventID == SharedEventID")
	}
}

func TestIDsDistinct(t *testing.T) {
	start := time.Date(2024, 12, 11, 16, 52, 0, 0, time.UTC)
	type in struct {
		account, region, source, name string
		t                             InsightType
		code                          string
		start                         time.Time
	}
	base := in{"111122223333", "us-east-1", "ec2.amazonaws.com", "RunInstances", ApiCallRate, "", start}
	variants := []in{
		base,
		{"111122223334", "us-east-1", "ec2.amazonaws.com", "RunInstances", ApiCallRate, "", start},
		{"111122223333", "us-east-2", "ec2.amazonaws.com", "RunInstances", ApiCallRate, "", start},
		{"111122223333", "us-east-1", "iam.amazonaws.com", "RunInstances", ApiCallRate, "", start},
		{"111122223333", "us-east-1", "ec2.amazonaws.com", "StopInstances", ApiCallRate, "", start},
		{"111122223333", "us-east-1", "ec2.amazonaws.com", "RunInstances", ApiErrorRate, "", start},
		{"111122223333", "us-east-1", "ec2.amazonaws.com", "RunInstances", ApiErrorRate, "AccessDenied", start},
		{"111122223333", "us-east-1", "ec2.amazonaws.com", "RunInstances", ApiCallRate, "", start.Add(time.Minute)},
		// Field boundaries must not be forgeable by moving characters across them.
		{"111122223333u", "s-east-1", "ec2.amazonaws.com", "RunInstances", ApiCallRate, "", start},
		{"111122223333", "us-east-1\n", "ec2.amazonaws.com", "RunInstances", ApiCallRate, "", start},
	}
	seen := map[string]int{}
	for i, v := range variants {
		id := SharedEventID(v.account, v.region, v.source, v.name, v.t, v.code, v.start)
		if j, dup := seen[id]; dup {
			t.Errorf("variants %d and %d share SharedEventID %s", j, i, id)
		}
		seen[id] = i
	}
}

// TestIDsGolden pins the derivation: IDs end up in S3 keys and NATS message
// IDs, so changing it silently would defeat de-duplication across versions.
func TestIDsGolden(t *testing.T) {
	start := time.Date(2024, 7, 10, 1, 42, 0, 0, time.UTC)
	shared := SharedEventID("123456789012", "us-east-1", "autoscaling.amazonaws.com", "CompleteLifecycleAction", ApiCallRate, "", start)
	for _, c := range []struct{ name, got, want string }{
		{"SharedEventID", shared, goldenShared},
		{"EventID(Start)", EventID(shared, Start), goldenStart},
		{"EventID(End)", EventID(shared, End), goldenEnd},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
}

const (
	goldenShared = "2b698fde-847c-5a7c-965e-e49f52349597"
	goldenStart  = "d70b5e98-1e2e-5d4f-b90e-56c9a63c0812"
	goldenEnd    = "88c5224c-5975-57f7-b1be-8e965d4c783a"
)
