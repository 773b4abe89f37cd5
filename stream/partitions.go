package stream

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// PartitionTransform is the stream subject transform that splits record
// messages into n partitions: <prefix>.<account>.<region> is stored as
// <prefix>.<p>.<account>.<region>, p = the server's own deterministic hash
// of the account and region tokens, {{partition(n,1,2)}} (nats-server
// 2.10 and later). Every publisher and every instance then agree on where
// an account's region goes without any code of ours, and each series — an
// account, a region and more — lies in one partition. The headers and the
// payload are untouched; only the subject changes.
func PartitionTransform(prefix string, n int) jetstream.SubjectTransformConfig {
	return jetstream.SubjectTransformConfig{
		Source:      prefix + ".*.*",
		Destination: fmt.Sprintf("%s.{{partition(%d,1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}", prefix, n),
	}
}

// PartitionSubject is the filter subject of partition k: <prefix>.<k>.>.
func PartitionSubject(prefix string, k int) string {
	return prefix + "." + strconv.Itoa(k) + ".>"
}

// CheckPartitions checks that a stream of configuration cfg is split into
// n partitions by PartitionTransform, and returns the transform's prefix.
// The error says which transform the stream needs.
func CheckPartitions(cfg jetstream.StreamConfig, n int) (prefix string, err error) {
	prefix = DefaultEventsPrefix
	if len(cfg.Subjects) == 1 && strings.HasSuffix(cfg.Subjects[0], ".>") {
		prefix = strings.TrimSuffix(cfg.Subjects[0], ".>")
	}
	tr := cfg.SubjectTransform
	if tr != nil {
		if p, ok := strings.CutSuffix(tr.Source, ".*.*"); ok {
			prefix = p
		}
	}
	want := PartitionTransform(prefix, n)
	need := func(what string) error {
		return fmt.Errorf("stream %s %s, and run.partitions is %d: give it the subject transform "+
			"{\"src\": %q, \"dest\": %q} (trailsight publish --create --partitions %d creates a stream so), "+
			"before anything is published to it, or set run.partitions to the stream's number",
			cfg.Name, what, n, want.Source, want.Destination, n)
	}
	if tr == nil || tr.Source == "" {
		return "", need("has no subject transform (its messages are not partitioned)")
	}
	norm := func(s string) string { return strings.ReplaceAll(s, " ", "") }
	if norm(tr.Source) != want.Source || norm(tr.Destination) != want.Destination {
		return "", need(fmt.Sprintf("transforms %q into %q", tr.Source, tr.Destination))
	}
	return prefix, nil
}
